//! `map_blocks`, `map_overlap` (halos and boundaries), `gaussian_filter` and Otsu
//! thresholds through the local engine, against naive whole-array references written
//! here.

use ndarray::{ArrayD, Dimension, IxDyn};
use tessera::array::{self, Array, Axes, Boundary};
use tessera::{Chunk, Client, DType, Result};
use tessera_core::Op;

mod common;
use common::{Rng, client};

fn random(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || (rng.next() * 100.0).round() / 4.0)
}

fn compute(a: &Array, client: &Client) -> Result<ArrayD<f64>> {
    a.compute_with(client)?.cast(DType::F64).into_typed::<f64>()
}

fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    for ((ix, g), w) in got.indexed_iter().zip(want.iter()) {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: at {ix:?} got {g}, want {w}");
    }
}

/// Index `k` of an axis of length `n` extended by mirroring including the edge
/// (`d c b a | a b c d | d c b a`), repeated as often as needed.
fn mirror(k: i64, n: usize) -> usize {
    let n = n as i64;
    let mut k = k.rem_euclid(2 * n);
    if k >= n {
        k = 2 * n - 1 - k;
    }
    k as usize
}

/// The value at a possibly out-of-range global index under a boundary rule. Under
/// `Boundary::None` the moving sum below treats missing elements as zero.
fn value_at(data: &ArrayD<f64>, ix: &[i64], boundary: Boundary) -> f64 {
    let shape = data.shape();
    let inside = ix.iter().zip(shape).all(|(&i, &n)| i >= 0 && (i as usize) < n);
    let clamp =
        |f: &dyn Fn(i64, usize) -> usize| -> Vec<usize> { ix.iter().zip(shape).map(|(&i, &n)| f(i, n)).collect() };
    match boundary {
        _ if inside => data[IxDyn(&clamp(&|i, _| i as usize))],
        Boundary::Reflect => data[IxDyn(&clamp(&mirror))],
        Boundary::Nearest => data[IxDyn(&clamp(&|i, n| i.clamp(0, n as i64 - 1) as usize))],
        Boundary::Constant(c) => c,
        Boundary::None => 0.0,
    }
}

/// Every offset of a box of `radius` elements on each side.
fn box_offsets(radius: &[usize]) -> Vec<Vec<i64>> {
    let sides: Vec<usize> = radius.iter().map(|r| 2 * r + 1).collect();
    ndarray::indices(IxDyn(&sides))
        .into_iter()
        .map(|o| o.as_array_view().iter().zip(radius).map(|(&o, &r)| o as i64 - r as i64).collect())
        .collect()
}

/// The moving box sum of the whole array, with the boundary rule beyond its edges.
fn naive_box_sum(data: &ArrayD<f64>, radius: &[usize], boundary: Boundary) -> ArrayD<f64> {
    let offsets = box_offsets(radius);
    ArrayD::from_shape_fn(data.raw_dim(), |ix| {
        let ix = ix.as_array_view().to_vec();
        offsets
            .iter()
            .map(|o| {
                let at: Vec<i64> = ix.iter().zip(o).map(|(&i, &d)| i as i64 + d).collect();
                value_at(data, &at, boundary)
            })
            .sum()
    })
}

/// A `map_overlap` function: the moving box sum of one block, elements beyond the
/// block counting as zero.
fn box_sum(radius: Vec<usize>) -> impl Fn(&Chunk) -> Result<Chunk> + Send + Sync + 'static {
    move |c: &Chunk| {
        let a = c.cast(DType::F64).into_typed::<f64>()?;
        let offsets = box_offsets(&radius);
        let out = ArrayD::from_shape_fn(a.raw_dim(), |ix| {
            offsets
                .iter()
                .filter_map(|o| {
                    let at: Option<Vec<usize>> = ix
                        .as_array_view()
                        .iter()
                        .zip(o)
                        .zip(a.shape())
                        .map(|((&i, &d), &n)| usize::try_from(i as i64 + d).ok().filter(|&j| j < n))
                        .collect();
                    at.map(|at: Vec<usize>| a[IxDyn(&at)])
                })
                .sum::<f64>()
        });
        Ok(Chunk::from_array(out))
    }
}

const BOUNDARIES: [Boundary; 4] = [Boundary::Reflect, Boundary::Nearest, Boundary::Constant(2.5), Boundary::None];

fn check_box_sum(client: &Client, shape: &[usize], chunks: &[u64], depth: &[u64]) -> Result<()> {
    let data = random(shape, shape.iter().product::<usize>() as u64);
    let x = array::from_ndarray(data.clone(), chunks)?;
    let radius: Vec<usize> = depth.iter().map(|&d| d as usize).collect();
    for boundary in BOUNDARIES {
        let y = x.map_overlap("box-sum", depth, boundary, DType::F64, box_sum(radius.clone()))?;
        assert_eq!(y.shape(), x.shape());
        assert_eq!(y.dtype(), DType::F64);
        let what = format!("shape {shape:?} chunks {:?} depth {depth:?} {boundary:?}", y.chunks());
        let want = naive_box_sum(&data, &radius, boundary);
        assert_close(&compute(&y, client)?, &want, 1e-12, &what);
    }
    Ok(())
}

#[test]
fn map_overlap_matches_a_whole_array_moving_sum_for_every_boundary() -> Result<()> {
    let client = client()?;
    // Ragged last blocks, different depths per axis.
    check_box_sum(&client, &[9, 11], &[3, 4], &[1, 2])?;
    // A depth equal to the block length.
    check_box_sum(&client, &[9, 11], &[3, 4], &[3, 3])?;
    // No halo along one axis.
    check_box_sum(&client, &[9, 11], &[3, 4], &[2, 0])?;
    // 1-D, and single-block axes (padding only).
    check_box_sum(&client, &[10], &[4], &[2])?;
    check_box_sum(&client, &[6, 8], &[6, 3], &[2, 1])?;
    // 3-D: up to 27 pieces per block, corners included.
    check_box_sum(&client, &[5, 6, 7], &[2, 3, 3], &[1, 1, 1])?;
    check_box_sum(&client, &[4, 5, 6], &[2, 2, 3], &[2, 1, 0])?;
    Ok(())
}

#[test]
fn map_overlap_fuses_into_one_task_per_block() -> Result<()> {
    let x = array::from_ndarray(random(&[9, 11], 1), &[3, 4])?;
    for boundary in BOUNDARIES {
        let y = x.map_overlap("box-sum", &[1, 1], boundary, DType::F64, box_sum(vec![1, 1]))?;
        let keys = y.keys();
        let fused = y.graph().cull(&keys)?.fuse_blockwise(&keys);
        // The 9 input blocks stay (each feeds several neighbours); everything else is
        // one task per output block.
        assert_eq!(fused.len(), 9 + 9, "{boundary:?}");
        for k in &keys {
            let task = fused.get(k).expect("output task");
            let Op::Fused(f) = &task.op else { panic!("{boundary:?}: {k} is not fused: {:?}", task.op) };
            let names: Vec<String> = f.steps.iter().map(|s| s.op.name()).collect();
            assert_eq!(names.first().map(String::as_str), Some("assemble"), "{names:?}");
            assert!(names.contains(&"box-sum".to_string()), "{names:?}");
            assert_eq!(names.last().map(String::as_str), Some("getitem"), "{names:?}");
        }
        // The corner block (0, 0) reads itself and 3 neighbours; the centre reads 9.
        assert_eq!(fused.get(&y.key(&[0, 0])).map(|t| t.deps.len()), Some(4));
        assert_eq!(fused.get(&y.key(&[1, 1])).map(|t| t.deps.len()), Some(9));
    }
    Ok(())
}

#[test]
fn blocks_shorter_than_the_depth_are_merged_first() -> Result<()> {
    let client = client()?;
    let data = random(&[10, 7], 2);
    // The last block along axis 0 (one element) and every block along axis 1 are
    // shorter than the depth.
    let x = array::from_ndarray(data.clone(), &[3, 1])?;
    let y = x.map_overlap("box-sum", &[2, 2], Boundary::Reflect, DType::F64, box_sum(vec![2, 2]))?;
    assert_eq!(y.chunks(), &[vec![3, 3, 4], vec![2, 2, 3]]);
    assert_close(&compute(&y, &client)?, &naive_box_sum(&data, &[2, 2], Boundary::Reflect), 1e-12, "merged");
    Ok(())
}

#[test]
fn map_blocks_runs_a_function_per_block() -> Result<()> {
    let client = client()?;
    let data = random(&[7, 5], 3);
    let x = array::from_ndarray(data.clone(), &[3, 2])?;
    let doubled = x.map_blocks("double", DType::F32, |c| {
        let a = c.typed::<f64>()?;
        Ok(Chunk::from_array(a.mapv(|v| v * 2.0)))
    })?;
    assert_eq!(doubled.chunks(), x.chunks());
    assert_eq!(doubled.dtype(), DType::F32);
    let got = doubled.compute_with(&client)?;
    assert_eq!(got.dtype(), DType::F32);
    let got = got.cast(DType::F64).into_typed::<f64>()?;
    assert_close(&got, &data.mapv(|v| f64::from((v * 2.0) as f32)), 0.0, "double");
    // A function changing the block's shape fails when computed, naming itself.
    let bad = x.map_blocks("shrink", DType::F64, |c| {
        let a = c.typed::<f64>()?;
        Ok(Chunk::from_array(a.slice(ndarray::s![.., 0..1]).to_owned().into_dyn()))
    })?;
    let err = bad.compute_with(&client).unwrap_err().to_string();
    assert!(err.contains("shrink") && err.contains("shape") && err.contains("[3, 1]"), "{err}");
    // Errors of the function itself come back too.
    let failing = x.map_blocks("boom", DType::F64, |_| Err(tessera::Error::invalid("boom", "no luck")))?;
    let err = failing.compute_with(&client).unwrap_err().to_string();
    assert!(err.contains("no luck"), "{err}");
    Ok(())
}

/// scipy's 1-D gaussian weights for `sigma`, truncated at 4 sigmas.
fn weights(sigma: f64) -> Vec<f64> {
    let r = (4.0 * sigma + 0.5) as i64;
    let w: Vec<f64> = (-r..=r).map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp()).collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|v| v / total).collect()
}

/// The gaussian filter of the whole array as one n-D correlation (not separable
/// passes), reflecting at the borders.
fn naive_gaussian(data: &ArrayD<f64>, sigma: &[f64]) -> ArrayD<f64> {
    let w: Vec<Vec<f64>> = sigma.iter().map(|&s| if s > 0.0 { weights(s) } else { vec![1.0] }).collect();
    let radius: Vec<usize> = w.iter().map(|w| w.len() / 2).collect();
    let offsets = box_offsets(&radius);
    ArrayD::from_shape_fn(data.raw_dim(), |ix| {
        let ix = ix.as_array_view().to_vec();
        offsets
            .iter()
            .map(|o| {
                let weight: f64 =
                    o.iter().zip(&w).zip(&radius).map(|((&d, w), &r)| w[(d + r as i64) as usize]).product();
                let at: Vec<i64> = ix.iter().zip(o).map(|(&i, &d)| i as i64 + d).collect();
                weight * value_at(data, &at, Boundary::Reflect)
            })
            .sum()
    })
}

#[test]
fn gaussian_filter_matches_a_naive_whole_array_filter() -> Result<()> {
    let client = client()?;
    let cases: [(&[usize], &[u64], &[f64]); 5] = [
        (&[24, 18], &[8, 6], &[1.5, 0.8]),
        (&[10, 9, 8], &[5, 5, 4], &[1.0, 0.5, 0.7]),
        (&[16, 12], &[5, 12], &[1.0, 0.0]),
        // Radius 8 on an axis of 5 elements in one block: reflected more than once.
        (&[5, 30], &[5, 10], &[2.0, 1.0]),
        // Blocks shorter than the radius: merged first.
        (&[30], &[4], &[1.2]),
    ];
    for (shape, chunks, sigma) in cases {
        let data = random(shape, 4);
        let x = array::from_ndarray(data.clone(), chunks)?;
        let y = x.gaussian_filter(sigma)?;
        assert_eq!(y.dtype(), DType::F64);
        let what = format!("shape {shape:?} chunks {chunks:?} sigma {sigma:?}");
        assert_close(&compute(&y, &client)?, &naive_gaussian(&data, sigma), 1e-10, &what);
    }
    // Bytes give float32.
    let data = random(&[20, 14], 5).mapv(|v| v.round());
    let x = array::from_ndarray(data.mapv(|v| v as u8), &[7, 7])?;
    let y = x.gaussian_filter(&[1.0, 1.5])?;
    assert_eq!(y.dtype(), DType::F32);
    let got = y.compute_with(&client)?;
    assert_eq!(got.dtype(), DType::F32);
    let got = got.cast(DType::F64).into_typed::<f64>()?;
    assert_close(&got, &naive_gaussian(&data, &[1.0, 1.5]), 1e-5, "uint8");
    Ok(())
}

/// Otsu's threshold from a histogram: the bin centre maximising the between-class
/// variance (the first one on ties).
fn otsu_from_histogram(hist: &[f64], centres: &[f64]) -> f64 {
    let mut best = (0, f64::NEG_INFINITY);
    for split in 0..hist.len() - 1 {
        let (a, b) = (&hist[..=split], &hist[split + 1..]);
        let w1: f64 = a.iter().sum();
        let w2: f64 = b.iter().sum();
        if w1 == 0.0 || w2 == 0.0 {
            continue;
        }
        let m1 = a.iter().zip(centres).map(|(n, c)| n * c).sum::<f64>() / w1;
        let m2 = b.iter().zip(&centres[split + 1..]).map(|(n, c)| n * c).sum::<f64>() / w2;
        let between = w1 * w2 * (m1 - m2) * (m1 - m2);
        if between > best.1 {
            best = (split, between);
        }
    }
    centres[best.0]
}

/// scikit-image's `threshold_otsu` for float data, from scratch: `bins` equal bins
/// over `[min, max]`.
fn naive_otsu(data: &ArrayD<f64>, bins: usize) -> f64 {
    let lo = data.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = (hi - lo) / bins as f64;
    let mut hist = vec![0.0; bins];
    for &v in data {
        let i = (((v - lo) / width) as usize).min(bins - 1);
        hist[i] += 1.0;
    }
    let centres: Vec<f64> = (0..bins).map(|i| lo + (i as f64 + 0.5) * width).collect();
    otsu_from_histogram(&hist, &centres)
}

/// scikit-image's `threshold_otsu` for integer data: one bin per value from the
/// minimum to the maximum.
fn naive_otsu_integers(data: &ArrayD<i64>) -> f64 {
    let lo = data.iter().copied().min().unwrap_or(0);
    let hi = data.iter().copied().max().unwrap_or(0);
    let mut hist = vec![0.0; (hi - lo + 1) as usize];
    for &v in data {
        hist[(v - lo) as usize] += 1.0;
    }
    let centres: Vec<f64> = (lo..=hi).map(|v| v as f64).collect();
    otsu_from_histogram(&hist, &centres)
}

#[test]
fn threshold_otsu_matches_a_naive_otsu() -> Result<()> {
    let client = client()?;
    // Two populations: around 10 and around 40.
    let mut rng = Rng(99);
    let data = ArrayD::from_shape_fn(IxDyn(&[40, 30]), |ix| {
        let base = if (ix[0] / 10 + ix[1] / 10) % 2 == 0 { 10.0 } else { 40.0 };
        base + (rng.next() + rng.next() + rng.next() - 1.5) * 8.0
    });
    let x = array::from_ndarray(data.clone(), &[16, 16])?;
    for bins in [16, 64, 256] {
        let t = x.threshold_otsu_with(&client, bins)?;
        assert_eq!(t.shape(), &[] as &[u64]);
        assert_eq!(t.dtype(), DType::F64);
        let got = compute(&t, &client)?[IxDyn(&[])];
        let want = naive_otsu(&data, bins);
        assert!((got - want).abs() <= 1e-9 * want.abs(), "bins {bins}: got {got}, want {want}");
        assert!(got > 15.0 && got < 35.0, "{got}");
    }
    // Bounds computed elsewhere give the same threshold.
    let bounds = array::compute_all(&client, &[&x.min(Axes::All)?, &x.max(Axes::All)?])?;
    let (min, max) = (bounds[0].first().unwrap().to_f64(), bounds[1].first().unwrap().to_f64());
    let t = x.threshold_otsu_in_range(64, min, max)?;
    assert_eq!(compute(&t, &client)?[IxDyn(&[])], naive_otsu(&data, 64));
    let e = x.threshold_otsu_in_range(64, max, min).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("inverted") && e.contains(x.name()), "{e}");
    // The default client.
    let t = x.threshold_otsu(32)?;
    assert_eq!(t.compute_scalar()?, naive_otsu(&data, 32));
    // Integers: one bin per value when they fit in the bins, so the threshold is one
    // of the values.
    let levels = data.mapv(|v| (v * 3.0).round().clamp(0.0, 255.0) as i64);
    let small = array::from_ndarray(levels.mapv(|v| v as u8), &[16, 16])?;
    let t = compute(&small.threshold_otsu_with(&client, 256)?, &client)?[IxDyn(&[])];
    assert_eq!(t, naive_otsu_integers(&levels));
    assert_eq!(t, t.round());
    let signed = array::from_ndarray(levels.mapv(|v| v as i32 - 60), &[7, 9])?;
    let t = compute(&signed.threshold_otsu_with(&client, 1000)?, &client)?[IxDyn(&[])];
    assert_eq!(t, naive_otsu_integers(&levels.mapv(|v| v - 60)));
    // Too many values for the bins: equal bins over [min, max].
    let t = compute(&signed.threshold_otsu_with(&client, 10)?, &client)?[IxDyn(&[])];
    assert_eq!(t, naive_otsu(&levels.mapv(|v| (v - 60) as f64), 10));
    // One distinct value: that value.
    let flat = array::from_ndarray(ArrayD::from_elem(IxDyn(&[4, 4]), 7u16), &[2, 2])?;
    assert_eq!(compute(&flat.threshold_otsu_with(&client, 10)?, &client)?[IxDyn(&[])], 7.0);
    Ok(())
}

#[test]
fn bad_arguments_are_reported_when_the_graph_is_built() -> Result<()> {
    let client = client()?;
    let x = array::from_ndarray(random(&[6, 8], 6), &[3, 4])?;
    let name = x.name().to_string();
    let err = |r: Result<Array>| r.map(|_| ()).unwrap_err().to_string();
    let e = err(x.map_overlap("box-sum", &[1], Boundary::Nearest, DType::F64, box_sum(vec![1])));
    assert!(e.starts_with("box-sum:") && e.contains("[1]") && e.contains(&name) && e.contains("2 axes"), "{e}");
    let e = err(x.gaussian_filter(&[1.0]));
    assert!(e.starts_with("gaussian_filter:") && e.contains("1 sigmas") && e.contains(&name), "{e}");
    let e = err(x.gaussian_filter(&[1.0, -2.0]));
    assert!(e.contains("-2") && e.contains("non-negative"), "{e}");
    let e = err(x.gaussian_filter(&[f64::NAN, 1.0]));
    assert!(e.contains("NaN"), "{e}");
    let e = err(x.threshold_otsu_with(&client, 0));
    assert!(e.starts_with("threshold_otsu:") && e.contains("bins") && e.contains(&name), "{e}");
    let empty = array::from_ndarray(ArrayD::<f64>::zeros(IxDyn(&[0, 4])), &[1, 2])?;
    let e = err(empty.threshold_otsu_with(&client, 8));
    assert!(e.contains("no elements") && e.contains(empty.name()), "{e}");
    let mut with_nan = random(&[4, 4], 7);
    with_nan[[2, 2]] = f64::NAN;
    let e = err(array::from_ndarray(with_nan, &[2, 2])?.threshold_otsu_with(&client, 8));
    assert!(e.contains("non-finite") && e.contains("NaN"), "{e}");
    Ok(())
}
