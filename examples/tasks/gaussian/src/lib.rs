//! A separable gaussian filter as a Tessera WASM task.
//!
//! Same semantics as the worker's native `gaussian` kernel (and
//! `scipy.ndimage.gaussian_filter(a, sigma, mode="reflect", truncate=truncate)`):
//! float64 input gives float64, every other type gives float32 computed in float32,
//! and each output element adds the same products in the same order as the native
//! kernel, so the two agree bit for bit.

#![deny(unsafe_code)]

use serde::Deserialize;
use tessera_guest::{AnyArray, ArrayD, task};

/// The widest kernel radius accepted.
const MAX_RADIUS: f64 = 1_000_000.0;

/// Parameters of [`gaussian`].
#[derive(Deserialize)]
struct Params {
    /// One standard deviation per axis (0 leaves an axis alone).
    sigma: Vec<f64>,
    /// Kernel half-width in standard deviations.
    #[serde(default = "default_truncate")]
    truncate: f64,
}

fn default_truncate() -> f64 {
    4.0
}

/// Gaussian filter with one sigma per axis, borders reflected (scipy's "reflect").
#[task]
fn gaussian(block: AnyArray, #[params] p: Params) -> Result<AnyArray, String> {
    let ndim = block.shape().len();
    if p.sigma.len() != ndim {
        return Err(format!("got {} sigmas {:?} for a {ndim}-d block", p.sigma.len(), p.sigma));
    }
    if let Some(s) = p.sigma.iter().find(|s| !(**s >= 0.0 && s.is_finite())) {
        return Err(format!("sigma must be finite and non-negative, got {s} in {:?}", p.sigma));
    }
    if !(p.truncate >= 0.0 && p.truncate.is_finite()) {
        return Err(format!("truncate must be finite and non-negative, got {}", p.truncate));
    }
    let mut kernels = Vec::with_capacity(ndim);
    for &s in &p.sigma {
        if s <= 1e-15 {
            kernels.push(None);
            continue;
        }
        let radius = p.truncate * s + 0.5;
        if radius > MAX_RADIUS {
            return Err(format!("sigma {s} with truncate {} needs a kernel radius above {MAX_RADIUS}", p.truncate));
        }
        kernels.push(Some(kernel(s, radius as usize)));
    }
    Ok(match block {
        AnyArray::F64(a) => AnyArray::F64(filter(a, &kernels, |w| w)),
        other => AnyArray::F32(filter(other.to_f32(), &kernels, |w| w as f32)),
    })
}

/// `exp(-0.5 x² / σ²)` for `x` in `-radius..=radius`, normalised to sum 1.
fn kernel(sigma: f64, radius: usize) -> Vec<f64> {
    let r = radius as i64;
    let k = -0.5 / (sigma * sigma);
    let w: Vec<f64> = (-r..=r).map(|x| (k * (x * x) as f64).exp()).collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|v| v / total).collect()
}

/// The float arithmetic the filter needs.
trait Real: Copy + Default + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> + std::ops::AddAssign {}
impl Real for f32 {}
impl Real for f64 {}

/// Applies each 1-D kernel along its axis, one axis after another.
fn filter<F: Real>(a: ArrayD<F>, kernels: &[Option<Vec<f64>>], weight: impl Fn(f64) -> F) -> ArrayD<F> {
    let shape = a.shape().to_vec();
    let mut cur: Vec<F> = a.iter().copied().collect();
    if cur.is_empty() {
        return a;
    }
    let mut next = vec![F::default(); cur.len()];
    for (axis, k) in kernels.iter().enumerate() {
        let Some(k) = k else { continue };
        let w: Vec<F> = k.iter().map(|&v| weight(v)).collect();
        correlate_axis(&cur, &mut next, &shape, axis, &w);
        std::mem::swap(&mut cur, &mut next);
    }
    ArrayD::from_shape_vec(shape, cur).expect("the filter keeps the number of elements")
}

/// Index `k` of a line of length `n` extended by reflection (`d c b a | a b c d | d c`).
fn reflect(k: isize, n: usize) -> usize {
    let period = 2 * n as isize;
    let m = k.rem_euclid(period) as usize;
    if m >= n { 2 * n - 1 - m } else { m }
}

/// Correlates C-order `src` with the symmetric kernel `w` along `axis` into `dst`.
fn correlate_axis<F: Real>(src: &[F], dst: &mut [F], shape: &[usize], axis: usize, w: &[F]) {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let r = w.len() / 2;
    let mut line = vec![F::default(); n];
    let mut out = vec![F::default(); n];
    for (sp, dp) in src.chunks_exact(n * inner).zip(dst.chunks_exact_mut(n * inner)) {
        for j in 0..inner {
            for (i, v) in line.iter_mut().enumerate() {
                *v = sp[i * inner + j];
            }
            filter_line(&line, &mut out, w, r);
            for (i, v) in out.iter().enumerate() {
                dp[i * inner + j] = *v;
            }
        }
    }
}

/// One line: `out[k] = w[r]·x[k] + Σ_d w[r+d]·(x[k-d] + x[k+d])`, with the pairs
/// added four at a time in the same grouping as the native kernel.
fn filter_line<F: Real>(x: &[F], out: &mut [F], w: &[F], r: usize) {
    let n = x.len();
    let at = |k: isize| x[reflect(k, n)];
    for (k, o) in out.iter_mut().enumerate() {
        let k = k as isize;
        let pair = |d: usize| at(k - d as isize) + at(k + d as isize);
        let mut acc = w[r] * x[k as usize];
        let mut d = 1;
        while d + 3 <= r {
            acc += (w[r + d] * pair(d) + w[r + d + 1] * pair(d + 1))
                + (w[r + d + 2] * pair(d + 2) + w[r + d + 3] * pair(d + 3));
            d += 4;
        }
        for d in d..=r {
            acc += w[r + d] * pair(d);
        }
        *o = acc;
    }
}

tessera_guest::export_tasks!(gaussian);
