//! The demo command end to end on a small volume: a real `tessera` process.

use std::process::Command;
use tessera::Client;
use tessera::array::{self, Axes};

fn field(stdout: &str, name: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= line in:\n{stdout}"))
        .parse()
        .unwrap()
}

#[test]
fn demo_writes_volume_mask_and_pictures_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["demo", "--shape", "6,96,80", "--chunks", "4,32,48", "--threads", "2", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let first = run();
    assert!(first.contains("generated in"), "{first}");
    for file in ["volume.zarr/zarr.json", "mask.zarr/zarr.json", "max_projection.png", "mask_projection.png"] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let threshold = field(&first, "threshold");
    let foreground = field(&first, "foreground");

    // The stored mask agrees with the printed fraction and is the smoothed volume
    // above the printed threshold.
    let client = Client::local_with(2, None).unwrap().with_progress(false);
    let volume = array::from_zarr(out.join("volume.zarr").to_str().unwrap(), "/").unwrap();
    assert_eq!(volume.shape(), &[6, 96, 80]);
    assert_eq!(volume.dtype(), tessera::DType::U16);
    let mask = array::from_zarr(out.join("mask.zarr").to_str().unwrap(), "/").unwrap();
    assert_eq!(mask.dtype(), tessera::DType::Bool);
    let stored = mask.compute_with(&client).unwrap().into_typed::<bool>().unwrap();
    let fraction = stored.iter().filter(|&&v| v).count() as f64 / stored.len() as f64;
    assert!((fraction - foreground).abs() < 1e-12, "{fraction} vs {foreground}");
    assert!(fraction > 0.0 && fraction < 0.5, "blobs are a minority of voxels: {fraction}");
    let smoothed = volume.gaussian_filter(&[0.0, 2.0, 2.0]).unwrap().compute_with(&client).unwrap();
    let expected = smoothed.into_typed::<f32>().unwrap().mapv(|v| v > threshold as f32);
    assert_eq!(stored, expected);
    let lo = volume.min(Axes::All).unwrap().compute_with(&client).unwrap().first().unwrap().to_f64();
    let hi = volume.max(Axes::All).unwrap().compute_with(&client).unwrap().first().unwrap().to_f64();
    assert!(lo < threshold && threshold < hi, "{lo} < {threshold} < {hi}");

    // A second run reuses the stored volume and gets the same answer.
    let second = run();
    assert!(second.contains("existing"), "{second}");
    assert_eq!(field(&second, "threshold"), threshold);
}

#[test]
fn demo_rejects_bad_shapes() {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera")).args(["demo", "--shape", "4,0,4"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("three positive numbers"));
}
