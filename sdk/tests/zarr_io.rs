//! Zarr through object storage: local files, memory, a real S3-protocol server, and
//! compatibility with zarr-python in both directions.
//!
//! The S3 and Python tests need services that `cargo xtask test` starts (it sets
//! `TESSERA_TEST_S3_BUCKET`, the `AWS_*` variables and `TESSERA_TEST_PYTHON`); run
//! alone without them they skip, unless `TESSERA_REQUIRE_TEST_SERVICES` is set.

#[allow(dead_code)] // this file uses only the service helper
mod common;

use common::service;
use ndarray::{ArrayD, IxDyn};
use std::process::Command;
use tessera::array::{self, Codec, ZarrOptions};
use tessera::{Client, DType};

fn client() -> Client {
    Client::local_with(2, None).unwrap().with_progress(false)
}

fn sample() -> ArrayD<i32> {
    ArrayD::from_shape_fn(IxDyn(&[13, 9, 5]), |ix| (ix[0] * 100 + ix[1] * 10 + ix[2]) as i32 - 300)
}

fn round_trip(url: &str, options: &ZarrOptions) {
    let client = client();
    let data = sample();
    let x = array::from_ndarray(data.clone(), &[4, 4, 5]).unwrap();
    x.to_zarr_with(&client, url, "/group/values", options).unwrap();
    let back = array::from_zarr(url, "/group/values").unwrap();
    assert_eq!(back.shape(), &[13, 9, 5]);
    assert_eq!(back.dtype(), DType::I32);
    let expected_chunks = options.shards.clone().unwrap_or(vec![4, 4, 5]);
    assert_eq!(back.chunks()[0][0], expected_chunks[0]);
    assert_eq!(back.compute_with(&client).unwrap().into_typed::<i32>().unwrap(), data);
    // Reading with a different chunking gives the same values.
    let rechunked = array::from_zarr_with_chunks(url, "/group/values", &[5, 2, 3]).unwrap();
    assert_eq!(rechunked.compute_with(&client).unwrap().into_typed::<i32>().unwrap(), data);
}

#[test]
fn local_files_round_trip_with_every_codec_and_sharding() {
    let dir = tempfile::tempdir().unwrap();
    for (i, codec) in [Codec::None, Codec::Zstd, Codec::Blosc].into_iter().enumerate() {
        let url = dir.path().join(format!("a{i}.zarr"));
        round_trip(url.to_str().unwrap(), &ZarrOptions { codec, shards: None });
    }
    let url = format!("file://{}", dir.path().join("sharded.zarr").display());
    round_trip(&url, &ZarrOptions { codec: Codec::Zstd, shards: Some(vec![8, 8, 5]) });
}

#[test]
fn every_dtype_round_trips() {
    let client = client();
    let dir = tempfile::tempdir().unwrap();
    let values = ArrayD::from_shape_fn(IxDyn(&[7, 6]), |ix| ix[0] as f64 * 6.0 + ix[1] as f64 - 20.0);
    for dtype in DType::ALL {
        let x = array::from_ndarray(values.clone(), &[3, 4]).unwrap().astype(dtype).unwrap();
        let url = dir.path().join(format!("{dtype}.zarr"));
        let url = url.to_str().unwrap();
        x.to_zarr_with(&client, url, "/", &ZarrOptions::default()).unwrap();
        let back = array::from_zarr(url, "/").unwrap();
        assert_eq!(back.dtype(), dtype);
        assert_eq!(back.compute_with(&client).unwrap(), x.compute_with(&client).unwrap(), "{dtype}");
    }
}

#[test]
fn memory_store_round_trips() {
    round_trip("memory://zarr-io-test", &ZarrOptions::default());
}

#[test]
fn s3_round_trips_through_a_real_server() {
    let Some(bucket) = service("TESSERA_TEST_S3_BUCKET") else { return };
    round_trip(&format!("s3://{bucket}/tessera-tests/round-trip.zarr"), &ZarrOptions::default());
}

#[test]
fn missing_corrupt_and_unreachable_stores_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("nothing.zarr");
    let err = array::from_zarr(url.to_str().unwrap(), "/").unwrap_err().to_string();
    assert!(err.contains("nothing.zarr") && err.contains("cannot open Zarr array"), "{err}");

    let corrupt = dir.path().join("corrupt.zarr");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("zarr.json"), b"{ this is not json").unwrap();
    let err = array::from_zarr(corrupt.to_str().unwrap(), "/").unwrap_err().to_string();
    assert!(err.contains("corrupt.zarr"), "{err}");

    let err = array::from_zarr("s3://", "/").unwrap_err().to_string();
    assert!(err.contains("needs a bucket"), "{err}");
}

#[test]
fn a_failed_block_writes_no_chunk_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let client = client();
    // Block (i, j) holds the value 2i + j; the task of block (1, 1) fails.
    let data = ArrayD::from_shape_fn(IxDyn(&[4, 4]), |ix| (2 * (ix[0] / 2) + ix[1] / 2) as f64);
    let x = array::from_ndarray(data, &[2, 2]).unwrap();
    let failing = x
        .map_blocks("fail-on-three", DType::F64, |c| {
            if c.typed::<f64>()?.iter().any(|&v| v == 3.0) {
                Err(tessera::Error::invalid("fail-on-three", "deliberate failure"))
            } else {
                Ok(c.clone())
            }
        })
        .unwrap();
    let target = dir.path().join("partial.zarr");
    let err = failing.to_zarr_with(&client, target.to_str().unwrap(), "/", &ZarrOptions::default()).unwrap_err();
    assert!(err.to_string().contains("deliberate failure"), "{err}");
    let files = walk(&target);
    assert!(files.iter().any(|f| f.ends_with("zarr.json")), "{files:?}");
    assert!(!files.iter().any(|f| f.ends_with("c/1/1")), "the failed block left a chunk: {files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

fn python(script: &str) -> Option<String> {
    let python = service("TESSERA_TEST_PYTHON")?;
    let out = Command::new(python).arg("-c").arg(script).output().expect("python runs");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn zarr_python_reads_what_tessera_writes() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("from-tessera.zarr");
    let data = sample();
    let x = array::from_ndarray(data.clone(), &[4, 4, 5]).unwrap();
    x.to_zarr_with(&client(), url.to_str().unwrap(), "/", &ZarrOptions::default()).unwrap();
    let script = format!(
        "import zarr, numpy as np\n\
         a = zarr.open_array({url:?}, mode='r')\n\
         i = np.indices((13, 9, 5))\n\
         expected = (i[0] * 100 + i[1] * 10 + i[2] - 300).astype('int32')\n\
         print(a.dtype, a.shape, a.chunks, bool((a[...] == expected).all()))",
        url = url.display().to_string()
    );
    let Some(out) = python(&script) else { return };
    assert_eq!(out, "int32 (13, 9, 5) (4, 4, 5) True");
}

#[test]
fn tessera_reads_what_zarr_python_writes_v3_and_v2() {
    let dir = tempfile::tempdir().unwrap();
    let v3 = dir.path().join("v3.zarr");
    let v2 = dir.path().join("v2.zarr");
    let script = format!(
        "import zarr, numpy as np\n\
         data = (np.arange(7 * 11, dtype='float32').reshape(7, 11) / 4).astype('float32')\n\
         a = zarr.create_array({v3:?}, shape=data.shape, chunks=(3, 4), dtype='float32')\n\
         a[...] = data\n\
         b = zarr.create_array({v2:?}, shape=data.shape, chunks=(3, 4), dtype='uint16', zarr_format=2)\n\
         b[...] = (data * 4).astype('uint16')\n\
         print('ok')",
        v3 = v3.display().to_string(),
        v2 = v2.display().to_string()
    );
    let Some(out) = python(&script) else { return };
    assert_eq!(out, "ok");
    let expected = ArrayD::from_shape_fn(IxDyn(&[7, 11]), |ix| (ix[0] * 11 + ix[1]) as f32 / 4.0);
    let a = array::from_zarr(v3.to_str().unwrap(), "/").unwrap();
    assert_eq!(a.chunks()[1], vec![4, 4, 3]);
    assert_eq!(a.compute_with(&client()).unwrap().into_typed::<f32>().unwrap(), expected);
    let b = array::from_zarr(v2.to_str().unwrap(), "/").unwrap();
    assert_eq!(b.dtype(), DType::U16);
    let expected_u16 = expected.mapv(|v| (v * 4.0) as u16);
    assert_eq!(b.compute_with(&client()).unwrap().into_typed::<u16>().unwrap(), expected_u16);
}
