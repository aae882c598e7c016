//! Maps a WASM task over the blocks of an array: the `otsu` example component's
//! threshold task turns random numbers into a mask.
//!
//! Build the component first: `cargo xtask build-tasks`, then
//! `cargo run -p tessera --example wasm_mask [COMPONENT.wasm]`.

use tessera::array;
use tessera::wasm::Module;

fn main() -> tessera::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "target/wasm-tasks/components/otsu.wasm".to_owned());
    let module = Module::from_file(&path)?;
    let x = array::random::random_sample(&[100, 100], &[50, 50], 1)?;
    let params = serde_json::json!({ "threshold": 0.5 });
    let mask = x.map_blocks_wasm(&module.task("otsu")?, params, tessera::DType::Bool)?;
    let above = mask.sum(array::Axes::All)?.compute_scalar()?;
    println!("{above} of {} values are above 0.5", x.len());
    Ok(())
}
