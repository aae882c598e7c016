//! WASM task components used from arrays through the embedded engine.
//!
//! Needs the guest components `cargo xtask build-tasks` builds (`cargo xtask test`
//! exports `TESSERA_TEST_COMPONENTS`); without them the tests skip, unless
//! `TESSERA_REQUIRE_TEST_SERVICES` is set.

mod common;

use common::{Rng, client, service};
use ndarray::{ArrayD, IxDyn};
use serde_json::json;
use tessera::array::{self, Boundary};
use tessera::wasm::Module;
use tessera::{DType, Result};

fn component(name: &str) -> Option<Module> {
    let dir = service("TESSERA_TEST_COMPONENTS")?;
    Some(Module::from_file(std::path::Path::new(&dir).join(format!("{name}.wasm"))).unwrap())
}

fn image() -> ArrayD<u16> {
    let mut rng = Rng(11);
    ArrayD::from_shape_fn(IxDyn(&[4, 50, 45]), |_| (rng.next() * 4000.0) as u16)
}

#[test]
fn map_overlap_with_the_wasm_gaussian_equals_the_native_filter() -> Result<()> {
    let Some(module) = component("gaussian") else { return Ok(()) };
    let client = client()?;
    let x = array::from_ndarray(image(), &[2, 20, 16])?;
    let sigma = [1.0, 2.0, 1.5];
    let depth: Vec<u64> = sigma.iter().map(|s| (4.0 * s + 0.5) as u64).collect();
    let params = json!({ "sigma": sigma, "truncate": 4.0 });
    let wasm = x.map_overlap_wasm(&module.task("gaussian")?, params, &depth, Boundary::Reflect, DType::F32)?;
    let native = x.gaussian_filter(&sigma)?;
    assert_eq!(wasm.compute_with(&client)?, native.compute_with(&client)?);
    Ok(())
}

#[test]
fn map_blocks_with_the_wasm_otsu_mask_thresholds_every_block() -> Result<()> {
    let Some(module) = component("otsu") else { return Ok(()) };
    let client = client()?;
    let data = image();
    let x = array::from_ndarray(data.clone(), &[3, 17, 20])?;
    let mask = x.map_blocks_wasm(&module.task("otsu")?, json!({ "threshold": 1234.5 }), DType::Bool)?;
    let expected = data.mapv(|v| f64::from(v) > 1234.5);
    assert_eq!(mask.compute_with(&client)?.into_typed::<bool>()?, expected);
    let err = module.task("gaussian").unwrap_err().to_string();
    assert!(err.contains("has no task `gaussian` (it has: otsu)"), "{err}");
    Ok(())
}
