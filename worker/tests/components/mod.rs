//! The guest components the WASM tests load, built by `cargo xtask build-tasks`.

use std::path::Path;

/// The bytes of guest component `name` from the folder `TESSERA_TEST_COMPONENTS` names,
/// or `None` (skip) when it is not set; a panic instead when
/// `TESSERA_REQUIRE_TEST_SERVICES` is set.
pub fn component(name: &str) -> Option<Vec<u8>> {
    let dir = match std::env::var("TESSERA_TEST_COMPONENTS") {
        Ok(dir) if !dir.is_empty() => dir,
        _ if std::env::var_os("TESSERA_REQUIRE_TEST_SERVICES").is_some() => {
            panic!(
                "TESSERA_TEST_COMPONENTS is not set but TESSERA_REQUIRE_TEST_SERVICES is: run through `cargo xtask test`"
            )
        }
        _ => {
            eprintln!("skipping: TESSERA_TEST_COMPONENTS is not set (run `cargo xtask build-tasks` and export it)");
            return None;
        }
    };
    let path = Path::new(&dir).join(format!("{name}.wasm"));
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())))
}
