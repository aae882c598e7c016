//! WASM task components used from arrays through the embedded engine.
//!
//! Needs the guest components `cargo xtask build-tasks` builds (`cargo xtask test`
//! exports `TESSERA_TEST_COMPONENTS`); without them the tests skip, unless
//! `TESSERA_REQUIRE_TEST_SERVICES` is set.

mod common;

use common::{Rng, client, service};
use ndarray::{ArrayD, IxDyn};
use serde_json::json;
use tessera::array::{self, Boundary, ZarrOptions};
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
    let native = x.gaussian_filter(&sigma)?.compute_with(&client)?;
    // The filter reflects at its block's edges itself, so with no padding layer the
    // array's edges are reflected just the same.
    for boundary in [Boundary::Reflect, Boundary::None] {
        let wasm = x.map_overlap_wasm(&module.task("gaussian")?, params.clone(), &depth, boundary, DType::F32)?;
        assert_eq!(wasm.compute_with(&client)?, native, "boundary {boundary:?}");
    }
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

#[test]
fn a_failed_wasm_block_writes_no_chunk_and_names_the_guest_error() -> Result<()> {
    let Some(module) = component("probes") else { return Ok(()) };
    let client = client()?;
    let dir = tempfile::tempdir().unwrap();
    // Block (i, j) holds the value 2i + j; the task fails on the block holding 3.
    let data = ArrayD::from_shape_fn(IxDyn(&[4, 4]), |ix| (2 * (ix[0] / 2) + ix[1] / 2) as f64);
    let x = array::from_ndarray(data.clone(), &[2, 2])?;
    let fail_on = |value: f64| x.map_blocks_wasm(&module.task("fail_on")?, json!({ "value": value }), DType::F64);
    let target = dir.path().join("partial.zarr");
    let url = target.to_str().unwrap();
    let err = fail_on(3.0)?.to_zarr_with(&client, url, "/", &ZarrOptions::default()).unwrap_err().to_string();
    assert!(err.contains("found 3 in block") && err.contains("(1,1)"), "the guest's message and key: {err}");
    assert!(target.join("zarr.json").exists(), "the array was created");
    assert!(!target.join("c/1/1").exists(), "the failed block left a chunk");
    // Written again without the failure, every block is there.
    fail_on(-1.0)?.to_zarr_with(&client, url, "/", &ZarrOptions::default())?;
    assert!(target.join("c/1/1").exists(), "the block's chunk is where it was looked for");
    assert_eq!(array::from_zarr(url, "/")?.compute_with(&client)?.into_typed::<f64>()?, data);
    Ok(())
}

#[test]
fn blockwise_wasm_pairs_the_blocks_of_several_arrays() -> Result<()> {
    let Some(module) = component("ratio") else { return Ok(()) };
    let client = client()?;
    let mut rng = Rng(21);
    let mut plane = |shape: &[usize]| ArrayD::from_shape_fn(IxDyn(shape), |_| rng.next());
    let (s, r, b) = (plane(&[24, 30]), plane(&[24, 30]), plane(&[24, 30]).mapv(|v| v * 0.25));
    let signal = array::from_ndarray(s.clone(), &[8, 10])?;
    let reference = array::from_ndarray(r.clone(), &[12, 30])?;
    let background = array::from_ndarray(b.clone(), &[24, 7])?;
    let args = [(&signal, "yx"), (&reference, "yx"), (&background, "yx")];
    let ratio = array::blockwise_wasm(&module.task("ratio")?, json!(null), "yx", &args, DType::F64)?;
    let expected = ArrayD::from_shape_fn(IxDyn(&[24, 30]), |ix| (s[&ix] - b[&ix]) / (r[&ix] - b[&ix]));
    assert_eq!(ratio.compute_with(&client)?.into_typed::<f64>()?, expected);

    // One 2-D mask over every time point of a (t, y, x) stack.
    let data = image();
    let keep = plane(&[50, 45]).mapv(|v| v > 0.4);
    let stack = array::from_ndarray(data.clone(), &[3, 20, 16])?;
    let mask = array::from_ndarray(keep.clone(), &[20, 16])?;
    let args = [(&stack, "tyx"), (&mask, "yx")];
    let masked = array::blockwise_wasm(&module.task("apply_mask")?, json!(null), "tyx", &args, DType::U16)?;
    let expected = ArrayD::from_shape_fn(data.raw_dim(), |ix| if keep[[ix[1], ix[2]]] { data[&ix] } else { 0 });
    assert_eq!(masked.compute_with(&client)?.into_typed::<u16>()?, expected);
    Ok(())
}

#[test]
fn reduction_wasm_runs_a_custom_statistic_as_a_tree() -> Result<()> {
    let Some(module) = component("stats") else { return Ok(()) };
    let client = client()?;
    let data = image();
    let x = array::from_ndarray(data.clone(), &[1, 9, 10])?; // 4 × 6 × 5 = 120 blocks
    let (partial, combine, aggregate) = (module.task("partial")?, module.task("combine")?, module.task("aggregate")?);
    // split_every 4: 120 partials → 30 → 8 → 2 → 1, three combine levels.
    let stats = x.reduction_wasm(&partial, &combine, &aggregate, json!(null), Some(4))?;
    let value = stats.compute_with(&client)?;
    let tessera::Value::Json(json) = &*value else { panic!("expected JSON, got {value:?}") };
    let values: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert_eq!(json["count"], n);
    assert!((json["mean"].as_f64().unwrap() - mean).abs() < 1e-9 * mean, "{json}");
    assert!((json["std"].as_f64().unwrap() - std).abs() < 1e-9 * std, "{json}");
    assert_eq!(json["min"], values.iter().copied().fold(f64::INFINITY, f64::min));
    assert_eq!(json["max"], values.iter().copied().fold(f64::NEG_INFINITY, f64::max));

    let err = x.reduction_wasm(&partial, &combine, &aggregate, json!(null), Some(1)).unwrap_err().to_string();
    assert!(err.contains("split_every must be at least 2"), "{err}");
    Ok(())
}

#[test]
fn delayed_wasm_calls_estimate_pi_from_eight_tasks() -> Result<()> {
    let Some(module) = component("pi") else { return Ok(()) };
    let client = client()?;
    let params = json!({ "samples": 200_000 });
    let (sample, estimate) = (module.task("sample")?, module.task("estimate")?);
    let counts: Vec<tessera::delayed::Delayed> = (0..8).map(|_| sample.call(&params, &[])).collect();
    let pi = estimate.call(&params, &counts.iter().collect::<Vec<_>>());
    let first = pi.compute_with(&client)?.as_chunk()?.first().unwrap().to_f64();
    // 1.6 million points: the estimate's standard error is about 0.0013.
    assert!((first - std::f64::consts::PI).abs() < 0.01, "π ≈ {first}");
    // Each task's points come from its key, so a rerun gives the same estimate.
    let again = pi.compute_with(&client)?.as_chunk()?.first().unwrap().to_f64();
    assert_eq!(first, again);
    Ok(())
}

#[test]
fn whole_arrays_pass_to_delayed_calls_and_back() -> Result<()> {
    let Some(module) = component("stats") else { return Ok(()) };
    let client = client()?;
    let data = image();
    let x = array::from_ndarray(data.clone(), &[2, 20, 16])?;
    // The whole array (its 2 × 3 × 3 blocks glued together) is one argument.
    let partial = module.task("partial")?.call(&json!(null), &[&x.to_delayed()?]);
    let back = array::from_delayed(&partial, &[5], DType::F64)?;
    let p = back.compute_with(&client)?.into_typed::<f64>()?;
    let values: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(p[0], values.len() as f64);
    assert!((p[1] - values.iter().sum::<f64>() / p[0]).abs() < 1e-9 * p[1]);
    assert_eq!(back.shape(), &[5]);
    Ok(())
}
