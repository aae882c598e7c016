//! Reductions and histograms through the local engine, against naive references
//! computed here with plain loops over the whole array.

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use tessera::array::{self, Array, Axes};
use tessera::{Client, DType, Key, Result};
use tessera_core::op::ReduceKind;

mod common;
use common::{Rng, client};

fn random(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.next() * 20.0 - 10.0)
}

/// Computes `a` as float64 values.
fn compute(a: &Array, client: &Client) -> Result<ArrayD<f64>> {
    a.compute_with(client)?.cast(DType::F64).into_typed::<f64>()
}

/// The values of `data` along `axes` for every output element, in C order of
/// the output and, within one output element, in C order of the reduced coordinates.
fn groups(data: &ArrayD<f64>, axes: &[usize]) -> (Vec<usize>, Vec<Vec<f64>>) {
    let mut axes = axes.to_vec();
    axes.sort_unstable();
    let nd = data.ndim();
    let out_shape: Vec<usize> = (0..nd).filter(|a| !axes.contains(a)).map(|a| data.shape()[a]).collect();
    let red_shape: Vec<usize> = axes.iter().map(|&a| data.shape()[a]).collect();
    let mut out = Vec::new();
    for oi in ndarray::indices(IxDyn(&out_shape)) {
        let mut vals = Vec::new();
        for ri in ndarray::indices(IxDyn(&red_shape)) {
            let (mut o, mut r) = (0, 0);
            let mut full = vec![0; nd];
            for (a, f) in full.iter_mut().enumerate() {
                if axes.contains(&a) {
                    *f = ri[r];
                    r += 1;
                } else {
                    *f = oi[o];
                    o += 1;
                }
            }
            vals.push(data[IxDyn(&full)]);
        }
        out.push(vals);
    }
    (out_shape, out)
}

/// Index of the first best value (NaN wins, as NumPy).
fn arg_best(v: &[f64], max: bool) -> f64 {
    if let Some(p) = v.iter().position(|x| x.is_nan()) {
        return p as f64;
    }
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if (max && x > v[best]) || (!max && x < v[best]) {
            best = i;
        }
    }
    best as f64
}

fn naive_value(kind: ReduceKind, v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mut sum = 0.0;
    for x in v {
        sum += x;
    }
    let var = |ddof: f64| {
        let m = sum / n;
        let mut s = 0.0;
        for x in v {
            s += (x - m) * (x - m);
        }
        if n - ddof > 0.0 { s / (n - ddof) } else { f64::NAN }
    };
    match kind {
        ReduceKind::Sum => sum,
        ReduceKind::Mean => sum / n,
        ReduceKind::Var { ddof } => var(ddof),
        ReduceKind::Std { ddof } => var(ddof).sqrt(),
        ReduceKind::Min => v.iter().fold(f64::INFINITY, |a, &b| if b < a || b.is_nan() { b } else { a }),
        ReduceKind::Max => v.iter().fold(f64::NEG_INFINITY, |a, &b| if b > a || b.is_nan() { b } else { a }),
        ReduceKind::ArgMin => arg_best(v, false),
        ReduceKind::ArgMax => arg_best(v, true),
        ReduceKind::Any => f64::from(u8::from(v.iter().any(|&x| x != 0.0))),
        ReduceKind::All => f64::from(u8::from(v.iter().all(|&x| x != 0.0))),
    }
}

/// The reduction of `data` along `axes`, computed naively: (shape without the reduced
/// axes, values in C order).
fn naive(data: &ArrayD<f64>, kind: ReduceKind, axes: &[usize]) -> (Vec<usize>, Vec<f64>) {
    let (shape, groups) = groups(data, axes);
    (shape, groups.iter().map(|g| naive_value(kind, g)).collect())
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol * (1.0 + w.abs());
        assert!(ok, "{what}: element {i}: got {g}, want {w}\n got {got:?}\nwant {want:?}");
    }
}

/// Reduces `x` (holding `data`) with every option and checks shape, chunks, dtype and
/// values against the naive reference.
fn check(
    client: &Client,
    x: &Array,
    data: &ArrayD<f64>,
    kind: ReduceKind,
    axes: &[usize],
    keepdims: bool,
    split_every: Option<usize>,
) -> Result<()> {
    let what =
        format!("{kind:?} over {axes:?} keepdims={keepdims} split_every={split_every:?} chunks={:?}", x.chunks());
    let r = x.reduction(kind, axes.to_vec(), keepdims, split_every)?;
    let (shape, want) = naive(data, kind, axes);
    let mut expected_shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
    let mut expected_chunks: Vec<Vec<u64>> =
        (0..x.ndim()).filter(|a| !axes.contains(a)).map(|a| x.chunks()[a].clone()).collect();
    if keepdims {
        expected_shape = (0..x.ndim()).map(|a| if axes.contains(&a) { 1 } else { x.shape()[a] }).collect();
        expected_chunks =
            (0..x.ndim()).map(|a| if axes.contains(&a) { vec![1] } else { x.chunks()[a].clone() }).collect();
    }
    assert_eq!(r.shape(), expected_shape.as_slice(), "{what}");
    assert_eq!(r.chunks(), expected_chunks.as_slice(), "{what}");
    assert_eq!(r.dtype(), kind.result_dtype(x.dtype()), "{what}");
    let got = compute(&r, client)?;
    assert_eq!(got.shape().iter().map(|&s| s as u64).collect::<Vec<_>>(), expected_shape, "{what}");
    assert_close(&got.iter().copied().collect::<Vec<_>>(), &want, 1e-10, &what);
    Ok(())
}

const FLOAT_KINDS: [ReduceKind; 7] = [
    ReduceKind::Sum,
    ReduceKind::Mean,
    ReduceKind::Var { ddof: 0.0 },
    ReduceKind::Std { ddof: 1.0 },
    ReduceKind::Min,
    ReduceKind::Max,
    ReduceKind::Any,
];

#[test]
fn float_reductions_over_every_axis_choice() -> Result<()> {
    let client = client()?;
    let data = random(&[7, 5, 6], 1);
    // Ragged last blocks on every axis.
    let x = array::from_ndarray(data.clone(), &[3, 2, 4])?;
    let axis_sets: [&[usize]; 9] = [&[], &[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2], &[0, 1, 2], &[2, 0]];
    for kind in FLOAT_KINDS {
        for axes in axis_sets {
            for keepdims in [false, true] {
                for split_every in [None, Some(2)] {
                    check(&client, &x, &data, kind, axes, keepdims, split_every)?;
                }
            }
        }
    }
    Ok(())
}

/// Blocks larger than a worker's cache tile (160 × 160 float64 = 200 KiB) are reduced
/// tile by tile; `x + x.T` also reads its second operand across rows, and a random
/// array is generated inside the reduction (transposed in place for `x.T`).
#[test]
fn reductions_of_blocks_larger_than_a_cache_tile_match_naive() -> Result<()> {
    let client = client()?;
    let data = random(&[300, 300], 9);
    let x = array::from_ndarray(data.clone(), &[160, 160])?;
    let sum = &data + &data.t();
    let x_plus_t = x.add(&x.t()?)?;
    for kind in FLOAT_KINDS.into_iter().chain([ReduceKind::ArgMax, ReduceKind::ArgMin]) {
        for axes in [&[0][..], &[1], &[0, 1]] {
            let what = format!("{kind:?} of x + x.T over {axes:?}");
            let got = compute(&x_plus_t.reduction(kind, axes.to_vec(), false, None)?, &client)?;
            assert_close(&got.iter().copied().collect::<Vec<_>>(), &naive(&sum, kind, axes).1, 1e-10, &what);
        }
    }
    let u = array::random::uniform(&[300, 300], &[160, 160], -2.0, 5.0, 4)?;
    let values = compute(&u, &client)?;
    let sum = &values + &values.t();
    let got = compute(&u.add(&u.t()?)?.mean(0)?.std(Axes::All)?, &client)?;
    let column_means = naive(&sum, ReduceKind::Mean, &[0]).1;
    let want = naive_value(ReduceKind::Std { ddof: 0.0 }, &column_means);
    assert_close(&got.iter().copied().collect::<Vec<_>>(), &[want], 1e-10, "std of the column means of u + u.T");
    Ok(())
}

#[test]
fn all_axes_gives_a_zero_d_array_with_one_block() -> Result<()> {
    let client = client()?;
    let data = random(&[9, 4], 2);
    let x = array::from_ndarray(data.clone(), &[2, 3])?;
    let total = x.sum(Axes::All)?;
    assert_eq!(total.shape(), &[] as &[u64]);
    assert_eq!(total.keys(), vec![Key::new(total.name().to_string(), [])]);
    let got = compute(&total, &client)?;
    assert_eq!(got.ndim(), 0);
    assert_close(&[got[IxDyn(&[])]], &[data.iter().sum()], 1e-12, "sum");
    // keepdims over every axis keeps a (1, 1) block.
    let kept = x.reduction(ReduceKind::Max, Axes::All, true, Some(2))?;
    assert_eq!(kept.shape(), &[1, 1]);
    assert_eq!(kept.keys(), vec![Key::new(kept.name().to_string(), [0, 0])]);
    // A 0-d input.
    let scalar = array::from_ndarray(ndarray::arr0(4.5).into_dyn(), &[])?;
    assert_eq!(compute(&scalar.mean(Axes::All)?, &client)?[IxDyn(&[])], 4.5);
    assert_eq!(compute(&scalar.argmax(None)?, &client)?[IxDyn(&[])], 0.0);
    Ok(())
}

#[test]
fn convenience_methods_match_naive() -> Result<()> {
    let client = client()?;
    let data = random(&[11, 6], 3);
    let x = array::from_ndarray(data.clone(), &[4, 1])?;
    let cases: Vec<(Array, ReduceKind, Vec<usize>)> = vec![
        (x.sum(0)?, ReduceKind::Sum, vec![0]),
        (x.mean([1])?, ReduceKind::Mean, vec![1]),
        (x.min(vec![0, 1])?, ReduceKind::Min, vec![0, 1]),
        (x.max(&[1usize][..])?, ReduceKind::Max, vec![1]),
        (x.var(Axes::All)?, ReduceKind::Var { ddof: 0.0 }, vec![0, 1]),
        (x.std(0)?, ReduceKind::Std { ddof: 0.0 }, vec![0]),
        (x.var_ddof(1, 1.0)?, ReduceKind::Var { ddof: 1.0 }, vec![1]),
        (x.std_ddof(Axes::All, 2.0)?, ReduceKind::Std { ddof: 2.0 }, vec![0, 1]),
        (x.argmin(None)?, ReduceKind::ArgMin, vec![0, 1]),
        (x.argmax(Some(0))?, ReduceKind::ArgMax, vec![0]),
        (x.any(1)?, ReduceKind::Any, vec![1]),
        (x.all(0)?, ReduceKind::All, vec![0]),
    ];
    for (r, kind, axes) in cases {
        let (shape, want) = naive(&data, kind, &axes);
        let got = compute(&r, &client)?;
        assert_eq!(got.shape(), shape.as_slice(), "{kind:?}");
        assert_close(&got.iter().copied().collect::<Vec<_>>(), &want, 1e-10, &format!("{kind:?} {axes:?}"));
    }
    Ok(())
}

#[test]
fn integer_and_boolean_reductions_are_exact() -> Result<()> {
    let client = client()?;
    let mut rng = Rng(7);
    let ints = ArrayD::from_shape_simple_fn(IxDyn(&[13, 10]), || (rng.next() * 2000.0 - 1000.0) as i32);
    let x = array::from_ndarray(ints.clone(), &[5, 3])?;
    let data = ints.mapv(f64::from);
    for axes in [vec![0], vec![1], vec![0, 1]] {
        let sum = x.reduction(ReduceKind::Sum, axes.clone(), false, Some(2))?;
        assert_eq!(sum.dtype(), DType::I64);
        let got = sum.compute_with(&client)?.into_typed::<i64>()?;
        let (_, want) = naive(&data, ReduceKind::Sum, &axes);
        assert_eq!(got.iter().map(|&v| v as f64).collect::<Vec<_>>(), want);
        let min = x.min(axes.clone())?;
        assert_eq!(min.dtype(), DType::I32);
        let got = min.compute_with(&client)?.into_typed::<i32>()?;
        assert_eq!(got.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), naive(&data, ReduceKind::Min, &axes).1);
        let mean = x.mean(axes.clone())?;
        assert_eq!(mean.dtype(), DType::F64);
        assert_close(
            &compute(&mean, &client)?.iter().copied().collect::<Vec<_>>(),
            &naive(&data, ReduceKind::Mean, &axes).1,
            1e-12,
            "mean",
        );
    }
    // Unsigned bytes sum in uint64 without wrapping at 255.
    let bytes = ArrayD::from_elem(IxDyn(&[40, 40]), 200u8);
    let s = array::from_ndarray(bytes, &[7, 9])?.sum(Axes::All)?;
    assert_eq!(s.dtype(), DType::U64);
    assert_eq!(s.compute_with(&client)?.into_typed::<u64>()?[IxDyn(&[])], 320_000);
    // Booleans: sparse trues.
    let flags = ArrayD::from_shape_fn(IxDyn(&[6, 8]), |ix| ix[0] == 2 && ix[1] % 3 == 0);
    let b = array::from_ndarray(flags.clone(), &[4, 3])?;
    let fdata = flags.mapv(|v| f64::from(u8::from(v)));
    for axes in [vec![0], vec![1], vec![0, 1]] {
        for kind in [ReduceKind::Any, ReduceKind::All, ReduceKind::Sum] {
            let r = b.reduction(kind, axes.clone(), false, None)?;
            assert_eq!(r.dtype(), kind.result_dtype(DType::Bool));
            assert_eq!(compute(&r, &client)?.iter().copied().collect::<Vec<_>>(), naive(&fdata, kind, &axes).1);
        }
    }
    Ok(())
}

#[test]
fn float32_statistics_stay_float32() -> Result<()> {
    let client = client()?;
    let data = random(&[10, 3], 4);
    let x = array::from_ndarray(data.mapv(|v| v as f32), &[3, 2])?;
    let data32 = data.mapv(|v| f64::from(v as f32));
    for kind in [ReduceKind::Mean, ReduceKind::Var { ddof: 0.0 }, ReduceKind::Std { ddof: 0.0 }] {
        let r = x.reduction(kind, 0, false, None)?;
        assert_eq!(r.dtype(), DType::F32);
        let got = r.compute_with(&client)?;
        assert_eq!(got.dtype(), DType::F32);
        let got: Vec<f64> = got.cast(DType::F64).into_typed::<f64>()?.iter().copied().collect();
        assert_close(&got, &naive(&data32, kind, &[0]).1, 1e-6, &format!("{kind:?}"));
    }
    Ok(())
}

#[test]
fn arg_reductions_give_first_occurrence_and_flat_indices() -> Result<()> {
    let client = client()?;
    // Few distinct values, so ties across blocks are common.
    let mut rng = Rng(11);
    let data = ArrayD::from_shape_simple_fn(IxDyn(&[5, 7, 4]), || (rng.next() * 4.0).floor());
    for chunks in [[1, 1, 1], [2, 3, 4], [5, 7, 4], [4, 2, 3]] {
        let x = array::from_ndarray(data.clone(), &chunks)?;
        for kind in [ReduceKind::ArgMin, ReduceKind::ArgMax] {
            for axes in [vec![0], vec![1], vec![2], vec![0, 1, 2]] {
                for split_every in [None, Some(2), Some(3)] {
                    check(&client, &x, &data, kind, &axes, false, split_every)?;
                }
            }
            check(&client, &x, &data, kind, &[1], true, Some(2))?;
        }
    }
    // NaN counts as the extreme value.
    let mut with_nan = random(&[6, 5], 5);
    with_nan[[4, 1]] = f64::NAN;
    with_nan[[5, 3]] = f64::NAN;
    let x = array::from_ndarray(with_nan.clone(), &[2, 2])?;
    assert_eq!(compute(&x.argmin(None)?, &client)?[IxDyn(&[])], 21.0);
    assert_eq!(compute(&x.argmax(None)?, &client)?[IxDyn(&[])], 21.0);
    check(&client, &x, &with_nan, ReduceKind::ArgMax, &[0], false, Some(2))?;
    check(&client, &x, &with_nan, ReduceKind::Max, &[1], false, Some(2))?;
    Ok(())
}

#[test]
fn one_element_blocks_build_multi_level_trees() -> Result<()> {
    let client = client()?;
    let data = random(&[16], 6);
    let x = array::from_ndarray(data.clone(), &[1])?;
    // 16 inputs, 16 partials, combine levels of 8, 4, 2 and 1 task, one finalize.
    let s = x.reduction(ReduceKind::Sum, 0, false, Some(2))?;
    assert_eq!(s.graph().len(), 16 + 16 + 8 + 4 + 2 + 1 + 1);
    // The default fan-in of 16 needs one combine level.
    assert_eq!(x.sum(0)?.graph().len(), 16 + 16 + 1 + 1);
    // Two reduced axes of 8 blocks: 4 x 4 groups by default, so 2 x 2 then 1 x 1.
    let square = array::from_ndarray(random(&[8, 8], 7), &[1, 1])?;
    assert_eq!(square.sum(Axes::All)?.graph().len(), 64 + 64 + 4 + 1 + 1);
    // A reduction along one axis builds one tree per block row.
    assert_eq!(square.sum(1)?.graph().len(), 64 + 64 + 8 + 8);
    for split_every in [Some(2), Some(3), Some(5), None] {
        for kind in FLOAT_KINDS {
            check(&client, &x, &data, kind, &[0], false, split_every)?;
        }
    }
    let data2 = random(&[5, 9, 3], 8);
    let y = array::from_ndarray(data2.clone(), &[1, 2, 1])?;
    for axes in [vec![0, 1], vec![1, 2], vec![0, 1, 2], vec![0, 2]] {
        for kind in [ReduceKind::Mean, ReduceKind::Var { ddof: 0.0 }, ReduceKind::ArgMax] {
            if kind == ReduceKind::ArgMax && axes.len() != 3 {
                continue;
            }
            check(&client, &y, &data2, kind, &axes, true, Some(2))?;
            check(&client, &y, &data2, kind, &axes, false, Some(4))?;
        }
    }
    Ok(())
}

#[test]
fn empty_arrays_reduce_like_numpy() -> Result<()> {
    let client = client()?;
    let empty = array::from_ndarray(ArrayD::<f64>::zeros(IxDyn(&[0, 3])), &[2, 2])?;
    let s = compute(&empty.sum(0)?, &client)?;
    assert_eq!(s.shape(), &[3]);
    assert!(s.iter().all(|&v| v == 0.0));
    let m = compute(&empty.max(1)?, &client)?;
    assert_eq!(m.shape(), &[0]);
    let err = empty.min(0).unwrap_err().to_string();
    assert!(err.contains("no identity") && err.contains(empty.name()) && err.contains("[0, 3]"), "{err}");
    assert!(empty.argmax(None).is_err());
    Ok(())
}

#[test]
fn histogram_matches_a_naive_count() -> Result<()> {
    let client = client()?;
    let mut data = random(&[37, 23], 9);
    // Values on the edges, outside the range, and NaN.
    data[[0, 0]] = -5.0;
    data[[0, 1]] = 5.0;
    data[[0, 2]] = 2.5;
    data[[1, 0]] = 100.0;
    data[[1, 1]] = f64::NAN;
    // 10 x 6 = 60 blocks: two levels of adds.
    let x = array::from_ndarray(data.clone(), &[4, 4])?;
    let bins = 8;
    let (counts, edges) = x.histogram(bins, (-5.0, 5.0))?;
    assert_eq!(counts.shape(), &[bins as u64]);
    assert_eq!(counts.chunks(), &[vec![bins as u64]]);
    assert_eq!(counts.dtype(), DType::U64);
    let want_edges: Vec<f64> = (0..=bins).map(|i| -5.0 + i as f64 * 1.25).collect();
    assert_eq!(edges, want_edges);
    let mut want = vec![0u64; bins];
    for &v in &data {
        if !(-5.0..=5.0).contains(&v) {
            continue;
        }
        // Bin i holds [edge i, edge i+1); the last bin also holds its upper edge.
        let i = (0..bins).rfind(|&i| v >= want_edges[i]).unwrap_or(0);
        want[i] += 1;
    }
    let got = counts.compute_with(&client)?.into_typed::<u64>()?;
    assert_eq!(got.iter().copied().collect::<Vec<_>>(), want);
    // One block: no add tasks.
    let single = array::from_ndarray(data.clone(), &[37, 23])?;
    let (one, _) = single.histogram(bins, (-5.0, 5.0))?;
    assert_eq!(one.graph().len(), 2);
    assert_eq!(one.compute_with(&client)?.into_typed::<u64>()?.iter().copied().collect::<Vec<_>>(), want);
    // Bytes, and a degenerate range widened as NumPy does.
    let bytes = ArrayD::from_shape_fn(IxDyn(&[50]), |ix| (ix[0] % 7) as u8);
    let b = array::from_ndarray(bytes, &[3])?;
    let (c, e) = b.histogram(7, (0.0, 7.0))?;
    assert_eq!(e.len(), 8);
    let got: Vec<u64> = c.compute_with(&client)?.into_typed::<u64>()?.iter().copied().collect();
    assert_eq!(got, vec![8, 7, 7, 7, 7, 7, 7]);
    let (c, e) = b.histogram(2, (3.0, 3.0))?;
    assert_eq!(e, vec![2.5, 3.0, 3.5]);
    assert_eq!(c.compute_with(&client)?.into_typed::<u64>()?.iter().sum::<u64>(), 7);
    Ok(())
}

#[test]
fn bad_arguments_are_reported_when_the_graph_is_built() -> Result<()> {
    let x = array::from_ndarray(random(&[4, 5, 6], 10), &[2, 2, 2])?;
    let name = x.name().to_string();
    let err = |r: Result<Array>| r.map(|_| ()).unwrap_err().to_string();
    let e = err(x.sum(3));
    assert!(e.starts_with("sum:") && e.contains("axis 3") && e.contains(&name) && e.contains("3 axes"), "{e}");
    let e = err(x.mean([1, 0, 1]));
    assert!(e.starts_with("mean:") && e.contains("axis 1 is repeated") && e.contains(&name), "{e}");
    let e = err(x.reduction(ReduceKind::ArgMin, [0, 1], false, None));
    assert!(e.starts_with("argmin:") && e.contains("[0, 1]") && e.contains(&name), "{e}");
    let e = err(x.argmax(Some(5)));
    assert!(e.contains("axis 5"), "{e}");
    let e = err(x.reduction(ReduceKind::Sum, 0, false, Some(1)));
    assert!(e.contains("split_every") && e.contains("got 1"), "{e}");
    let e = err(x.var_ddof(0, f64::NAN));
    assert!(e.contains("ddof") && e.contains("NaN"), "{e}");
    let h = |r: Result<(Array, Vec<f64>)>| r.map(|_| ()).unwrap_err().to_string();
    let e = h(x.histogram(0, (0.0, 1.0)));
    assert!(e.starts_with("histogram:") && e.contains("bins") && e.contains(&name), "{e}");
    let e = h(x.histogram(4, (2.0, 1.0)));
    assert!(e.contains("(2, 1)") && e.contains("low <= high"), "{e}");
    let e = h(x.histogram(4, (0.0, f64::INFINITY)));
    assert!(e.contains("not finite"), "{e}");
    Ok(())
}

/// A regular block length for an axis of `len` elements.
fn chunk_size(len: usize, pick: usize) -> u64 {
    (pick % len + 1) as u64
}

/// Irregular blocks of an axis of `len` elements, cut at the positions drawn.
fn irregular(len: usize, cuts: &[usize]) -> Vec<u64> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % len).filter(|&c| c > 0).collect();
    at.push(0);
    at.push(len);
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| (w[1] - w[0]) as u64).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Reductions give the same result whatever the chunking and tree shape.
    #[test]
    fn reductions_do_not_depend_on_chunking(
        shape in proptest::collection::vec(1usize..9, 1..4),
        picks in proptest::collection::vec(0usize..100, 3),
        cuts in proptest::collection::vec(proptest::collection::vec(0usize..100, 0..5), 3),
        seed in 0u64..1000,
        axis_mask in 0usize..8,
        split_every in 2usize..6,
    ) {
        let client = client().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let data = random(&shape, seed);
        let axes: Vec<usize> = (0..shape.len()).filter(|a| axis_mask & (1 << a) != 0).collect();
        // One regular chunking, and one irregular chunking made by rechunking.
        let first: Vec<u64> = shape.iter().zip(&picks).map(|(&n, &p)| chunk_size(n, p)).collect();
        let second: Vec<Vec<u64>> = shape.iter().zip(&cuts).map(|(&n, c)| irregular(n, c)).collect();
        let whole: Vec<u64> = shape.iter().map(|&n| n as u64).collect();
        let run = || -> Result<()> {
            let a = array::from_ndarray(data.clone(), &first)?;
            let b = array::from_ndarray(data.clone(), &whole)?.rechunk_to(second.clone())?;
            assert_eq!(b.chunks(), second.as_slice());
            for kind in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Var { ddof: 0.0 }, ReduceKind::Min, ReduceKind::Max] {
                let ra = compute(&a.reduction(kind, axes.clone(), false, Some(split_every))?, &client)?;
                let rb = compute(&b.reduction(kind, axes.clone(), false, None)?, &client)?;
                let what = format!("{kind:?} over {axes:?}, chunks {first:?} vs {second:?}");
                assert_close(&ra.iter().copied().collect::<Vec<_>>(), &rb.iter().copied().collect::<Vec<_>>(), 1e-10, &what);
                assert_close(&ra.iter().copied().collect::<Vec<_>>(), &naive(&data, kind, &axes).1, 1e-10, &what);
            }
            let all: Vec<usize> = (0..shape.len()).collect();
            for (kind, ax) in [(ReduceKind::ArgMax, all.clone()), (ReduceKind::ArgMin, vec![0])] {
                let ra = compute(&a.reduction(kind, ax.clone(), false, Some(split_every))?, &client)?;
                let rb = compute(&b.reduction(kind, ax.clone(), false, None)?, &client)?;
                let want = naive(&data, kind, &ax).1;
                assert_eq!(ra.iter().copied().collect::<Vec<_>>(), want.clone());
                assert_eq!(rb.iter().copied().collect::<Vec<_>>(), want);
            }
            Ok(())
        };
        run().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
