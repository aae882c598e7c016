//! A per-chunk statistic usable as a tree reduction: count, mean, spread and range of
//! every value of an array.
//!
//! `partial` turns one block into a partial result `[count, mean, m2, min, max]`
//! (float64, `m2` the sum of squared deviations from the mean), `combine` merges any
//! number of partials (Chan et al.'s parallel update) and `aggregate` turns the final
//! partial into JSON `{count, mean, std, min, max}` (population standard deviation).

#![deny(unsafe_code)]

use tessera_guest::ndarray::{Array1, arr1};
use tessera_guest::serde_json::{Value, json};
use tessera_guest::{AnyArray, task};

/// The partial of an empty block: no values, and a range that any value widens.
fn empty() -> [f64; 5] {
    [0.0, 0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY]
}

/// Merges partial `b` into `a`.
fn merge(a: [f64; 5], b: [f64; 5]) -> [f64; 5] {
    let [na, ma, qa, lo_a, hi_a] = a;
    let [nb, mb, qb, lo_b, hi_b] = b;
    let n = na + nb;
    if n == 0.0 {
        return empty();
    }
    let delta = mb - ma;
    let mean = ma + delta * nb / n;
    let m2 = qa + qb + delta * delta * na * nb / n;
    [n, mean, m2, lo_a.min(lo_b), hi_a.max(hi_b)]
}

/// Reads a partial, naming the argument when it has the wrong length.
fn unpack(p: &Array1<f64>, which: usize) -> Result<[f64; 5], String> {
    p.as_slice()
        .and_then(|s| <[f64; 5]>::try_from(s).ok())
        .ok_or_else(|| format!("partial {which} has {} values, expected 5 (count, mean, m2, min, max)", p.len()))
}

/// One block's partial `[count, mean, m2, min, max]` (float64).
#[task]
fn partial(block: AnyArray) -> Array1<f64> {
    let values = block.to_f64();
    let p = values.iter().fold(empty(), |acc, &v| merge(acc, [1.0, v, 0.0, v, v]));
    arr1(&p)
}

/// Merges any number of partials into one.
#[task]
fn combine(#[rest] parts: Vec<Array1<f64>>) -> Result<Array1<f64>, String> {
    let mut acc = empty();
    for (i, p) in parts.iter().enumerate() {
        acc = merge(acc, unpack(p, i + 1)?);
    }
    Ok(arr1(&acc))
}

/// The final statistics as JSON `{count, mean, std, min, max}`.
#[task]
fn aggregate(total: Array1<f64>) -> Result<Value, String> {
    let [n, mean, m2, lo, hi] = unpack(&total, 1)?;
    if n == 0.0 {
        return Err("no values: the statistics of an empty array are undefined".into());
    }
    Ok(json!({ "count": n, "mean": mean, "std": (m2 / n).sqrt(), "min": lo, "max": hi }))
}

tessera_guest::export_tasks!(partial, combine, aggregate);
