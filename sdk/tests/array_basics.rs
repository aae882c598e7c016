//! Creation, element-wise maths, persist, delayed and graph inspection, checked
//! against values computed independently with ndarray in the test.

use ndarray::{ArrayD, IxDyn, arr1};
use std::sync::Arc;
use tessera::array::{self, Axes, random};
use tessera::{Client, DType, Scalar, Value, delayed};

fn client() -> Client {
    Client::local_with(2, None).unwrap().with_progress(false)
}

fn f64s(a: &tessera::array::Array, c: &Client) -> ArrayD<f64> {
    a.compute_with(c).unwrap().into_typed::<f64>().unwrap()
}

fn close(a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
    }
}

#[test]
fn constants_and_ranges() {
    let c = client();
    let z = array::zeros(&[5, 3], &[2, 2], DType::I16).unwrap();
    assert_eq!((z.dtype(), z.chunks().to_vec(), z.nbytes()), (DType::I16, vec![vec![2, 2, 1], vec![2, 1]], 30));
    assert_eq!(z.compute_with(&c).unwrap().into_typed::<i16>().unwrap(), ArrayD::<i16>::zeros(IxDyn(&[5, 3])));
    let f = array::full(&[2, 2], &[1, 1], Scalar::F64(2.5), DType::F32).unwrap();
    assert_eq!(f.compute_with(&c).unwrap().into_typed::<f32>().unwrap(), ArrayD::from_elem(IxDyn(&[2, 2]), 2.5f32));
    let r = array::arange(1.0, 10.0, 2.0, 2, DType::I64).unwrap();
    assert_eq!(r.compute_with(&c).unwrap().into_typed::<i64>().unwrap(), arr1(&[1i64, 3, 5, 7, 9]).into_dyn());
    let l = array::linspace(0.0, 1.0, 5, 3).unwrap();
    close(&f64s(&l, &c), &arr1(&[0.0, 0.25, 0.5, 0.75, 1.0]).into_dyn(), 1e-15);
    assert!(array::zeros(&[4], &[0], DType::F64).unwrap_err().to_string().contains("zero length"));
}

#[test]
fn random_values_do_not_depend_on_chunking() {
    let c = client();
    let a = f64s(&random::random_sample(&[37, 23], &[37, 23], 9).unwrap(), &c);
    let b = f64s(&random::random_sample(&[37, 23], &[5, 1], 9).unwrap(), &c);
    assert_eq!(a, b);
    assert!(a.iter().all(|v| (0.0..1.0).contains(v)));
    let other_seed = f64s(&random::random_sample(&[37, 23], &[5, 1], 10).unwrap(), &c);
    assert_ne!(a, other_seed);
    let n = f64s(&random::normal(&[200, 200], &[64, 64], 3.0, 2.0, 1).unwrap(), &c);
    let mean = n.mean().unwrap();
    let std = n.std(0.0);
    assert!((mean - 3.0).abs() < 0.05 && (std - 2.0).abs() < 0.05, "mean {mean} std {std}");
}

#[test]
fn broadcasting_arithmetic_matches_ndarray() {
    let c = client();
    let a_data = ArrayD::from_shape_fn(IxDyn(&[6, 5]), |ix| ix[0] as f64 * 1.5 - ix[1] as f64);
    let b_data = ArrayD::from_shape_fn(IxDyn(&[5]), |ix| ix[0] as f64 + 0.25);
    let col_data = ArrayD::from_shape_fn(IxDyn(&[6, 1]), |ix| ix[0] as f64 * 2.0);
    let a = array::from_ndarray(a_data.clone(), &[4, 2]).unwrap();
    let b = array::from_ndarray(b_data.clone(), &[3]).unwrap();
    let col = array::from_ndarray(col_data.clone(), &[1, 1]).unwrap();
    let expect = |f: &dyn Fn(usize, usize) -> f64| ArrayD::from_shape_fn(IxDyn(&[6, 5]), |ix| f(ix[0], ix[1]));
    close(&f64s(&a.add(&b).unwrap(), &c), &expect(&|i, j| a_data[[i, j]] + b_data[[j]]), 0.0);
    close(&f64s(&a.mul(&col).unwrap(), &c), &expect(&|i, j| a_data[[i, j]] * col_data[[i, 0]]), 0.0);
    close(&f64s(&b.sub(&col).unwrap(), &c), &expect(&|i, j| b_data[[j]] - col_data[[i, 0]]), 0.0);
    close(&f64s(&a.div(2.0).unwrap(), &c), &a_data.mapv(|v| v / 2.0), 0.0);
    close(&f64s(&a.rbinary(array::BinaryOp::Sub, 1.0).unwrap(), &c), &a_data.mapv(|v| 1.0 - v), 0.0);
    close(&f64s(&a.abs().unwrap().sqrt().unwrap(), &c), &a_data.mapv(|v| v.abs().sqrt()), 1e-15);
    close(&f64s(&a.exp().unwrap().log().unwrap(), &c), &a_data, 1e-12);
    let err = a.add(array::zeros(&[4], &[4], DType::F64).unwrap()).unwrap_err().to_string();
    assert!(err.contains("could not be broadcast") && err.contains("[6, 5]") && err.contains("[4]"), "{err}");
}

#[test]
fn comparisons_where_clip_and_astype() {
    let c = client();
    let data = ArrayD::from_shape_fn(IxDyn(&[7]), |ix| ix[0] as i32 * 3 - 9);
    let x = array::from_ndarray(data.clone(), &[3]).unwrap();
    let positive = x.gt(0i32).unwrap();
    assert_eq!(positive.dtype(), DType::Bool);
    let got = positive.compute_with(&c).unwrap().into_typed::<bool>().unwrap();
    assert_eq!(got, data.mapv(|v| v > 0));
    let w = array::where_(&positive, &x, 0i32).unwrap();
    assert_eq!(w.compute_with(&c).unwrap().into_typed::<i32>().unwrap(), data.mapv(|v| v.max(0)));
    let clipped = x.clip(Some(Scalar::I32(-3)), Some(Scalar::I32(4))).unwrap();
    assert_eq!(clipped.compute_with(&c).unwrap().into_typed::<i32>().unwrap(), data.mapv(|v| v.clamp(-3, 4)));
    let u = x.astype(DType::U8).unwrap();
    assert_eq!(u.dtype(), DType::U8);
    assert_eq!(u.compute_with(&c).unwrap().into_typed::<u8>().unwrap(), data.mapv(|v| v as u8));
    let both = positive.and(x.lt(9i32).unwrap()).unwrap().invert().unwrap();
    assert_eq!(both.compute_with(&c).unwrap().into_typed::<bool>().unwrap(), data.mapv(|v| !(v > 0 && v < 9)));
    // Integer true division gives float64, as in NumPy.
    assert_eq!(x.div(&x).unwrap().dtype(), DType::F64);
    assert!(x.invert().unwrap_err().to_string().contains("not bool"));
    assert!(x.clip(Some(Scalar::I32(5)), Some(Scalar::I32(1))).is_err());
}

#[test]
fn persist_keeps_blocks_and_later_work_reuses_them() {
    let c = client();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let x = array::ones(&[4, 4], &[2, 2], DType::F64)
        .unwrap()
        .map_blocks("count", DType::F64, move |b| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(b.clone())
        })
        .unwrap();
    let p = x.persist_with(&c).unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    let total = p.sum(Axes::All).unwrap().compute_with(&c).unwrap();
    assert_eq!(total.first(), Some(Scalar::F64(16.0)));
    let doubled = p.mul(2.0).unwrap().compute_with(&c).unwrap();
    assert_eq!(doubled.into_typed::<f64>().unwrap(), ArrayD::from_elem(IxDyn(&[4, 4]), 2.0));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4, "persisted blocks were recomputed");
}

#[test]
fn delayed_runs_native_functions_in_parallel() {
    let c = client();
    let parts: Vec<_> =
        (0..8u64).map(|i| delayed::call("square", move |_| Ok(Value::Json(serde_json::json!(i * i))), &[])).collect();
    let refs: Vec<_> = parts.iter().collect();
    let total = delayed::call(
        "total",
        |args| {
            Ok(Value::Json(serde_json::json!(
                args.iter()
                    .map(|v| match v {
                        Value::Json(j) => j.as_u64().unwrap_or(0),
                        _ => 0,
                    })
                    .sum::<u64>()
            )))
        },
        &refs,
    );
    assert_eq!(*total.compute_with(&c).unwrap(), Value::Json(serde_json::json!(140)));
    let failing = delayed::call("fails", |_| Err(tessera::Error::invalid("fails", "on purpose")), &[]);
    let err = failing.compute_with(&c).unwrap_err().to_string();
    assert!(err.contains("on purpose") && err.contains("fails"), "{err}");
}

#[test]
fn visualize_shows_the_fused_graph() {
    let x = array::ones(&[4, 4], &[2, 2], DType::F64).unwrap();
    let y = x.add(1.0).unwrap().mul(2.0).unwrap();
    let dot = y.visualize().unwrap();
    // ones → add → mul fuses into one task per block: 4 nodes, no edges.
    assert_eq!(dot.matches("label=").count(), 4, "{dot}");
    assert!(dot.contains("full+add+mul"), "{dot}");
    assert_eq!(dot.matches("->").count(), 0);
}
