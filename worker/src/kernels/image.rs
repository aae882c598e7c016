//! Image kernels: histogram, Otsu threshold, separable gaussian filter.
//!
//! - [`histogram`] follows `numpy.histogram` with equal-width bins (values are binned
//!   against the same bin edges NumPy computes, so values on an edge land in the same
//!   bin; float32 input uses float32 edges as NumPy does). uint8 and uint16 blocks are
//!   counted per value first and then folded into bins.
//! - [`otsu_threshold`] is scikit-image's `threshold_otsu(hist=(counts, centers))`,
//!   including its float32 class weights and the trimming of empty end bins.
//! - [`gaussian_filter`] is `scipy.ndimage.gaussian_filter` with `mode="reflect"`,
//!   computed as separable 1-D passes over a contiguous float buffer.

use ndarray::{ArrayD, IxDyn};
use std::ops::Range;
use tessera_core::{Chunk, Element, Error, Result, Scalar, chunk_map};

/// The most bins [`histogram`] accepts (the counts are held in memory).
const MAX_BINS: usize = 1 << 24;

/// The widest gaussian kernel radius [`gaussian_filter`] accepts.
const MAX_RADIUS: f64 = 1_000_000.0;

/// Rows of a non-last axis are filtered in tiles of this many elements so the lines
/// of one tile stay in cache.
const TILE: usize = 2048;

/// Element types the image kernels read, with conversions that inline into hot loops.
trait Pixel: Element {
    /// The value as f32 (booleans become 0 or 1).
    fn as_f32(self) -> f32;
    /// The value as f64 (booleans become 0 or 1).
    fn as_f64(self) -> f64;
}

macro_rules! impl_pixel {
    ($($t:ty),*) => {$(
        impl Pixel for $t {
            #[inline(always)]
            fn as_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn as_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
impl_pixel!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl Pixel for bool {
    #[inline(always)]
    fn as_f32(self) -> f32 {
        f32::from(u8::from(self))
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
}

/// Checks that `range` is finite, increasing and has a finite width.
fn check_range(name: &str, (lo, hi): (f64, f64)) -> Result<()> {
    if !(lo.is_finite() && hi.is_finite() && (hi - lo).is_finite()) {
        return Err(Error::invalid(name, format!("range ({lo}, {hi}) must be finite")));
    }
    if lo >= hi {
        return Err(Error::invalid(name, format!("range ({lo}, {hi}) must have low < high")));
    }
    Ok(())
}

/// Maps values to the bins of `numpy.histogram(a, bins, range)`.
struct Binner {
    /// First edge (values below are ignored).
    lo: f64,
    /// Last edge (values above are ignored; the last bin includes it).
    hi: f64,
    /// `bins / (hi - lo)`, for the first guess of a value's bin.
    scale: f64,
    /// Index of the last bin.
    last: usize,
    /// The `bins + 1` edges, as `numpy.linspace` computes them.
    edges: Vec<f64>,
    /// How close (in bins) a first guess may come to a whole number and still be off
    /// by one: how far any edge lies from where the guess puts it, plus the guess's own
    /// rounding. A guess farther than this from both ends of its bin is that bin.
    margin: f64,
}

/// How many values [`scan_hist`] tries to count from their first guesses at once.
const LANES: usize = 8;

impl Binner {
    /// Edges for `bins` bins over `(lo, hi)`; `f32_edges` rounds them to float32 as
    /// NumPy does for float32 input.
    fn new(bins: usize, (lo, hi): (f64, f64), f32_edges: bool) -> Binner {
        let round = |v: f64| if f32_edges { v as f32 as f64 } else { v };
        let step = (hi - lo) / bins as f64;
        let mut edges: Vec<f64> = (0..bins).map(|i| round(i as f64 * step + lo)).collect();
        edges.push(round(hi));
        let (lo, scale) = (round(lo), bins as f64 / (hi - lo));
        let rounding = 8.0 * (bins as f64 + 1.0) * f64::EPSILON;
        let off = edges.iter().enumerate().map(|(k, &e)| ((e - lo) * scale - k as f64).abs()).fold(0.0, f64::max);
        Binner { lo, hi: round(hi), scale, last: bins - 1, edges, margin: off + 2.0 * rounding }
    }

    /// The bin of `x`, or `None` outside the range (or NaN).
    #[inline(always)]
    fn bin(&self, x: f64) -> Option<usize> {
        if !(x >= self.lo && x <= self.hi) {
            return None;
        }
        // The guess is within one bin; the edges decide, as in NumPy.
        let mut i = (((x - self.lo) * self.scale) as usize).min(self.last);
        if x < self.edges[i] {
            i = i.saturating_sub(1);
        } else if i < self.last && x >= self.edges[i + 1] {
            i += 1;
        }
        Some(i)
    }

    /// The bins of `run`, if every value is in range and its first guess lies clear of
    /// its bin's edges (by more than `margin`), so that no edge needs looking at.
    /// Branch-free, so the guesses are computed side by side.
    #[inline(always)]
    fn clear_bins<T: Pixel>(&self, run: &[T]) -> Option<[usize; LANES]> {
        let mut bins = [0; LANES];
        let mut clear = run.len() == LANES;
        for (b, &v) in bins.iter_mut().zip(run) {
            let x = v.as_f64();
            let guess = (x - self.lo) * self.scale;
            let whole = guess.floor();
            let frac = guess - whole;
            clear &= (x >= self.lo) & (x <= self.hi) & (frac > self.margin) & (frac < 1.0 - self.margin);
            *b = whole as usize;
        }
        clear.then_some(bins)
    }
}

/// Counts of `a`'s values in `bins` equal-width bins over `range` (u64, 1-D), as
/// `numpy.histogram`: the last bin includes the upper edge, values outside the range
/// and NaN are ignored.
pub fn histogram(a: &Chunk, bins: usize, range: (f64, f64)) -> Result<Chunk> {
    const NAME: &str = "histogram";
    check_range(NAME, range)?;
    if bins == 0 || bins > MAX_BINS {
        return Err(Error::invalid(NAME, format!("bins must be between 1 and {MAX_BINS}, got {bins}")));
    }
    let binner = Binner::new(bins, range, false);
    let mut hist = vec![0u64; bins];
    match a {
        Chunk::U8(x) => table_hist(&mut hist, x, 256, &binner),
        Chunk::U16(x) => table_hist(&mut hist, x, 1 << 16, &binner),
        Chunk::F32(x) => scan_hist(&mut hist, x, &Binner::new(bins, range, true)),
        Chunk::Bool(x) => scan_hist(&mut hist, x, &binner),
        Chunk::I8(x) => scan_hist(&mut hist, x, &binner),
        Chunk::I16(x) => scan_hist(&mut hist, x, &binner),
        Chunk::I32(x) => scan_hist(&mut hist, x, &binner),
        Chunk::I64(x) => scan_hist(&mut hist, x, &binner),
        Chunk::U32(x) => scan_hist(&mut hist, x, &binner),
        Chunk::U64(x) => scan_hist(&mut hist, x, &binner),
        Chunk::F64(x) => scan_hist(&mut hist, x, &binner),
    }
    Ok(Chunk::U64(ndarray::Array1::from(hist).into_dyn()))
}

/// Histogram of small unsigned integers: count each of the `values` possible values,
/// then add each value's count to its bin.
fn table_hist<T: Element + Into<usize>>(hist: &mut [u64], x: &ArrayD<T>, values: usize, binner: &Binner) {
    let mut counts = vec![0u64; values];
    let mut add = |v: T| {
        if let Some(c) = counts.get_mut(v.into()) {
            *c += 1;
        }
    };
    match x.as_slice() {
        Some(s) => s.iter().for_each(|&v| add(v)),
        None => x.iter().for_each(|&v| add(v)),
    }
    for (v, &c) in counts.iter().enumerate() {
        if let Some(h) = binner.bin(v as f64).and_then(|b| hist.get_mut(b)) {
            *h += c;
        }
    }
}

/// Histogram of any values: runs of [`LANES`] values whose bins their first guesses
/// settle are counted at once, the others value by value against the edges.
fn scan_hist<T: Pixel>(hist: &mut [u64], x: &ArrayD<T>, binner: &Binner) {
    let add = |hist: &mut [u64], v: T| {
        if let Some(h) = binner.bin(v.as_f64()).and_then(|b| hist.get_mut(b)) {
            *h += 1;
        }
    };
    let Some(values) = x.as_slice() else {
        return x.iter().for_each(|&v| add(hist, v));
    };
    for run in values.chunks(LANES) {
        match binner.clear_bins(run) {
            Some(bins) => bins.iter().for_each(|&b| {
                if let Some(h) = hist.get_mut(b) {
                    *h += 1;
                }
            }),
            None => run.iter().for_each(|&v| add(hist, v)),
        }
    }
}

/// Otsu's threshold from a histogram over `range`, as a 0-d float64 chunk.
///
/// Matches scikit-image's `threshold_otsu(hist=(counts, centers))` with bin centers
/// `lo + (i + 0.5) * width`: empty bins at both ends are trimmed, class weights are
/// cumulative float32 sums, and the first maximum of the between-class variance wins.
/// A histogram with a single non-empty bin gives that bin's center.
pub fn otsu_threshold(hist: &Chunk, range: (f64, f64)) -> Result<Chunk> {
    const NAME: &str = "otsu";
    check_range(NAME, range)?;
    if hist.shape().len() != 1 {
        return Err(Error::invalid(NAME, format!("expected a 1-d histogram, got shape {:?}", hist.shape())));
    }
    let counts: Vec<f64> = chunk_map!(hist, h: T => h.iter().map(|v| v.as_f64()).collect());
    if let Some(bad) = counts.iter().find(|c| !(**c >= 0.0 && c.is_finite())) {
        return Err(Error::invalid(NAME, format!("histogram counts must be finite and non-negative, found {bad}")));
    }
    let (Some(start), Some(last)) = (counts.iter().position(|&c| c > 0.0), counts.iter().rposition(|&c| c > 0.0))
    else {
        return Err(Error::invalid(
            NAME,
            format!("the histogram of {} bins is empty (all counts are zero)", counts.len()),
        ));
    };
    let (lo, hi) = range;
    let width = (hi - lo) / counts.len() as f64;
    let centers: Vec<f64> = (start..=last).map(|i| lo + (i as f64 + 0.5) * width).collect();
    let c: Vec<f32> = counts[start..=last].iter().map(|&v| v as f32).collect();
    let weighted: Vec<f64> = c.iter().zip(&centers).map(|(&n, &x)| f64::from(n) * x).collect();
    // Class 1 is the bins up to i, class 2 the bins from i on.
    let mut weight1 = Vec::with_capacity(c.len());
    let mut mean1 = Vec::with_capacity(c.len());
    let (mut w, mut s) = (0.0f32, 0.0f64);
    for (&n, &cx) in c.iter().zip(&weighted) {
        w += n;
        s += cx;
        weight1.push(w);
        mean1.push(s / f64::from(w));
    }
    let mut weight2 = vec![0.0f32; c.len()];
    let mut mean2 = vec![0.0f64; c.len()];
    let (mut w, mut s) = (0.0f32, 0.0f64);
    for (((&n, &cx), w2), m2) in c.iter().zip(&weighted).zip(&mut weight2).zip(&mut mean2).rev() {
        w += n;
        s += cx;
        *w2 = w;
        *m2 = s / f64::from(w);
    }
    let mut best: Option<(usize, f64)> = None;
    let pairs = weight1.iter().zip(&mean1).zip(weight2.iter().zip(&mean2).skip(1));
    for (i, ((&w1, &m1), (&w2, &m2))) in pairs.enumerate() {
        let d = m1 - m2;
        let v = f64::from(w1 * w2) * (d * d);
        if v.is_nan() {
            // NumPy's argmax stops at the first NaN.
            best = Some((i, v));
            break;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    let threshold = centers.get(best.map_or(0, |(i, _)| i)).copied().unwrap_or(lo);
    Ok(Chunk::scalar(Scalar::F64(threshold)))
}

/// A float type the gaussian filter computes in.
trait Real: Element + num_traits::Float + std::ops::AddAssign {
    /// Converts an input element.
    fn from_pixel<T: Pixel>(v: T) -> Self;
    /// Converts a kernel weight.
    fn from_weight(w: f64) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn from_pixel<T: Pixel>(v: T) -> f32 {
        v.as_f32()
    }
    fn from_weight(w: f64) -> f32 {
        w as f32
    }
}

impl Real for f64 {
    #[inline(always)]
    fn from_pixel<T: Pixel>(v: T) -> f64 {
        v.as_f64()
    }
    fn from_weight(w: f64) -> f64 {
        w
    }
}

/// Gaussian filter of `a` with one `sigma` per axis (axes with sigma 0 are left
/// alone), `truncate` sigmas wide, borders reflected (`d c b a | a b c d`), as
/// `scipy.ndimage.gaussian_filter(a, sigma, mode="reflect", truncate=truncate)`.
///
/// Only the `window` of the result is computed and returned (the whole block when
/// `None`): one range of indices per axis. The borders reflected are the block's own,
/// so a block holding a halo at least as deep as the kernel's radius around its
/// window gives the window's values of the filter over the whole array.
///
/// float64 input gives float64; every other type gives float32, computed in float32.
pub fn gaussian_filter(a: &Chunk, sigma: &[f64], truncate: f64, window: Option<&[Range<usize>]>) -> Result<Chunk> {
    const NAME: &str = "gaussian";
    let shape = a.shape();
    if sigma.len() != shape.len() {
        return Err(Error::invalid(
            NAME,
            format!("got {} sigmas {sigma:?} for a {}-d block", sigma.len(), shape.len()),
        ));
    }
    let whole: Vec<Range<usize>> = shape.iter().map(|&n| 0..n).collect();
    let window = window.unwrap_or(&whole);
    if window.len() != shape.len() || window.iter().zip(shape).any(|(w, &n)| w.start > w.end || w.end > n) {
        return Err(Error::invalid(
            NAME,
            format!("window {window:?} does not lie within the block of shape {shape:?}"),
        ));
    }
    if let Some(s) = sigma.iter().find(|s| !(**s >= 0.0 && s.is_finite())) {
        return Err(Error::invalid(NAME, format!("sigma must be finite and non-negative, got {s} in {sigma:?}")));
    }
    if !(truncate >= 0.0 && truncate.is_finite()) {
        return Err(Error::invalid(NAME, format!("truncate must be finite and non-negative, got {truncate}")));
    }
    let mut kernels = Vec::with_capacity(sigma.len());
    for &s in sigma {
        // scipy skips axes whose sigma is (numerically) zero.
        if s <= 1e-15 {
            kernels.push(None);
            continue;
        }
        let radius = truncate * s + 0.5;
        if radius > MAX_RADIUS {
            return Err(Error::invalid(
                NAME,
                format!("sigma {s} with truncate {truncate} needs a kernel radius above {MAX_RADIUS}"),
            ));
        }
        kernels.push(Some(gaussian_kernel(s, radius as usize)));
    }
    match a {
        Chunk::F64(x) => Ok(Chunk::F64(filter::<f64, f64>(x, &kernels, window)?)),
        other => chunk_map!(other, x: T => Ok(Chunk::F32(filter::<T, f32>(x, &kernels, window)?))),
    }
}

/// scipy's `_gaussian_kernel1d`: `exp(-0.5 x² / σ²)` for `x` in `-radius..=radius`,
/// normalised to sum 1.
fn gaussian_kernel(sigma: f64, radius: usize) -> Vec<f64> {
    let r = radius as i64;
    let k = -0.5 / (sigma * sigma);
    let w: Vec<f64> = (-r..=r).map(|x| (k * (x * x) as f64).exp()).collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|v| v / total).collect()
}

/// Converts `x` to `F` and applies the 1-D kernels along their axes, keeping the
/// `window` of the result; one slab of the unsmoothed leading axes at a time.
fn filter<T: Pixel, F: Real>(
    x: &ArrayD<T>,
    kernels: &[Option<Vec<f64>>],
    window: &[Range<usize>],
) -> Result<ArrayD<F>> {
    let shape = x.shape().to_vec();
    let out_shape: Vec<usize> = window.iter().map(|w| w.len()).collect();
    if out_shape.contains(&0) {
        return Ok(ArrayD::zeros(IxDyn(&out_shape)));
    }
    // Every smoothed axis gets a pass, and so does an unsmoothed axis the window cuts
    // (with the identity kernel).
    let passes: Vec<Option<Vec<F>>> = kernels
        .iter()
        .zip(window.iter().zip(&shape))
        .map(|(kernel, (range, &n))| match kernel {
            Some(k) => Some(k.iter().map(|&v| F::from_weight(v)).collect()),
            None if *range != (0..n) => Some(vec![F::one()]),
            None => None,
        })
        .collect();
    // Leading axes without a pass split the block into independent slabs, each
    // filtered while it is in cache.
    let first = passes.iter().position(Option::is_some).unwrap_or(0);
    let slab_shape = &shape[first..];
    let slab_len: usize = slab_shape.iter().product();
    let out_slab_len: usize = out_shape[first..].iter().product();
    // The last pass of each slab writes straight into the output.
    let last_pass = passes.iter().rposition(Option::is_some);
    let mut out: Vec<F> = vec![F::zero(); out_shape.iter().product()];
    let (mut cur, mut tmp) = (Vec::with_capacity(slab_len), Vec::with_capacity(slab_len));
    let mut values = x.iter();
    let contiguous = x.as_slice();
    for (slab, out_slab) in out.chunks_mut(out_slab_len).enumerate() {
        cur.clear();
        match contiguous {
            Some(s) => cur.extend(s[slab * slab_len..(slab + 1) * slab_len].iter().map(|&v| F::from_pixel(v))),
            None => cur.extend(values.by_ref().take(slab_len).map(|&v| F::from_pixel(v))),
        }
        let Some(last_pass) = last_pass else {
            // No pass at all: the window is the whole block.
            out_slab.copy_from_slice(&cur);
            continue;
        };
        let mut cur_shape = slab_shape.to_vec();
        for (axis, w) in passes[first..=last_pass].iter().enumerate() {
            let Some(w) = w else { continue };
            let range = &window[first + axis];
            if first + axis == last_pass {
                correlate_axis(&cur, out_slab, &cur_shape, axis, w, range.start);
                break;
            }
            let mut dst_shape = cur_shape.clone();
            dst_shape[axis] = range.len();
            tmp.resize(dst_shape.iter().product(), F::zero());
            correlate_axis(&cur, &mut tmp, &cur_shape, axis, w, range.start);
            std::mem::swap(&mut cur, &mut tmp);
            cur_shape = dst_shape;
        }
    }
    ArrayD::from_shape_vec(IxDyn(&out_shape), out)
        .map_err(|e| Error::invalid("gaussian", format!("cannot shape the result as {out_shape:?}: {e}")))
}

/// Index `k` of a line of length `n` extended by reflection (`d c b a | a b c d | d c`).
fn reflect(k: isize, n: usize) -> usize {
    let period = 2 * n as isize;
    if period == 0 {
        return 0;
    }
    let m = k.rem_euclid(period) as usize;
    if m >= n { 2 * n - 1 - m } else { m }
}

/// Correlates the C-order array `src` of `shape` with the symmetric kernel `w` (odd
/// length) along `axis`, writing to `dst` the positions from `start` on (as many as
/// `dst` holds along that axis). `src` and `dst` must not be empty.
///
/// CPUs with AVX-512 run a copy compiled for it (twice the lanes of the AVX2 build);
/// the sums are added in the same order, so the results are the same bits.
fn correlate_axis<F: Real>(src: &[F], dst: &mut [F], shape: &[usize], axis: usize, w: &[F], start: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU was just checked for the feature the function is compiled with.
        unsafe { correlate_axis_avx512(src, dst, shape, axis, w, start) };
        return;
    }
    correlate_axis_any(src, dst, shape, axis, w, start);
}

/// [`correlate_axis`] compiled for AVX-512 (foundation).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn correlate_axis_avx512<F: Real>(src: &[F], dst: &mut [F], shape: &[usize], axis: usize, w: &[F], start: usize) {
    correlate_axis_any(src, dst, shape, axis, w, start);
}

/// [`correlate_axis`] for any CPU; inlined into each compiled copy.
#[inline(always)]
fn correlate_axis_any<F: Real>(src: &[F], dst: &mut [F], shape: &[usize], axis: usize, w: &[F], start: usize) {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let m = dst.len() / (src.len() / n);
    let r = w.len() / 2;
    if inner == 1 {
        // Contiguous lines: pad each into a scratch buffer by reflection, then add
        // shifted windows of it.
        let mut pad = vec![F::zero(); n + 2 * r];
        for (line, out) in src.chunks_exact(n).zip(dst.chunks_exact_mut(m)) {
            pad[r..r + n].copy_from_slice(line);
            for j in 0..r {
                pad[r - 1 - j] = line[reflect(-1 - j as isize, n)];
                pad[r + n + j] = line[reflect((n + j) as isize, n)];
            }
            let (pad, c) = (&pad[..], r + start);
            weighted_sum(out, &pad[c..], w, |d| (&pad[c - d..], &pad[c + d..]));
        }
    } else {
        // Lines are rows (or planes) `inner` apart: add whole shifted rows, a tile at a
        // time so the rows of one tile stay in cache, two output rows at a time.
        for (sp, dp) in src.chunks_exact(n * inner).zip(dst.chunks_exact_mut(m * inner)) {
            for t0 in (0..inner).step_by(TILE) {
                let t = TILE.min(inner - t0);
                let line = |k: isize| &sp[reflect(k, n) * inner + t0..][..t];
                let mut pairs = dp.chunks_exact_mut(2 * inner);
                let mut i = start as isize;
                for two in pairs.by_ref() {
                    let (o0, o1) = two.split_at_mut(inner);
                    weighted_sum_two(&mut o0[t0..t0 + t], &mut o1[t0..t0 + t], line, i, w);
                    i += 2;
                }
                let last = pairs.into_remainder();
                if !last.is_empty() {
                    weighted_sum(&mut last[t0..t0 + t], line(i), w, |d| (line(i - d as isize), line(i + d as isize)));
                }
            }
        }
    }
}

/// `out[k] = w[r] * mid[k] + Σ_d w[r + d] * (before_d[k] + after_d[k])` for `d` in
/// `1..=r`, where `lines(d)` gives `(before_d, after_d)`; every line holds at least
/// `out.len()` elements. Four pairs of lines are added per sweep over `out`.
// Indexed loops over re-sliced lines compile to tight loops without bounds checks even
// at opt-level 1, where zipped iterators do not.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn weighted_sum<'a, F: Real>(out: &mut [F], mid: &[F], w: &[F], lines: impl Fn(usize) -> (&'a [F], &'a [F])) {
    let n = out.len();
    let r = w.len() / 2;
    let (out, mid, c) = (&mut out[..n], &mid[..n], w[r]);
    for k in 0..n {
        out[k] = c * mid[k];
    }
    let mut d = 1;
    while d + 3 <= r {
        let ((a0, b0), (a1, b1), (a2, b2), (a3, b3)) = (lines(d), lines(d + 1), lines(d + 2), lines(d + 3));
        let (a0, b0, a1, b1) = (&a0[..n], &b0[..n], &a1[..n], &b1[..n]);
        let (a2, b2, a3, b3) = (&a2[..n], &b2[..n], &a3[..n], &b3[..n]);
        let (w0, w1, w2, w3) = (w[r + d], w[r + d + 1], w[r + d + 2], w[r + d + 3]);
        for k in 0..n {
            out[k] += (w0 * (a0[k] + b0[k]) + w1 * (a1[k] + b1[k])) + (w2 * (a2[k] + b2[k]) + w3 * (a3[k] + b3[k]));
        }
        d += 4;
    }
    for d in d..=r {
        let ((a, b), wd) = (lines(d), w[r + d]);
        let (a, b) = (&a[..n], &b[..n]);
        for k in 0..n {
            out[k] += wd * (a[k] + b[k]);
        }
    }
}

/// Output lines `k` and `k + 1` of [`weighted_sum`] over the lines `line(i)`, each
/// added in the same order as [`weighted_sum`] adds it, in one sweep per four pairs:
/// the two outputs share most of their input lines, so each is read once for both.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn weighted_sum_two<'a, F: Real>(o0: &mut [F], o1: &mut [F], line: impl Fn(isize) -> &'a [F], k: isize, w: &[F]) {
    let n = o0.len();
    let r = w.len() / 2;
    let (o0, o1, c) = (&mut o0[..n], &mut o1[..n], w[r]);
    let (m0, m1) = (&line(k)[..n], &line(k + 1)[..n]);
    for j in 0..n {
        o0[j] = c * m0[j];
        o1[j] = c * m1[j];
    }
    let below = |d: usize| &line(k - d as isize)[..n];
    let above = |d: usize| &line(k + d as isize)[..n];
    let mut d = 1;
    while d + 3 <= r {
        let (l0, l1, l2, l3, l4) = (below(d - 1), below(d), below(d + 1), below(d + 2), below(d + 3));
        let (h0, h1, h2, h3, h4) = (above(d), above(d + 1), above(d + 2), above(d + 3), above(d + 4));
        let (w0, w1, w2, w3) = (w[r + d], w[r + d + 1], w[r + d + 2], w[r + d + 3]);
        for j in 0..n {
            o0[j] += (w0 * (l1[j] + h0[j]) + w1 * (l2[j] + h1[j])) + (w2 * (l3[j] + h2[j]) + w3 * (l4[j] + h3[j]));
            o1[j] += (w0 * (l0[j] + h1[j]) + w1 * (l1[j] + h2[j])) + (w2 * (l2[j] + h3[j]) + w3 * (l3[j] + h4[j]));
        }
        d += 4;
    }
    for d in d..=r {
        let (a0, b0, a1, b1, wd) = (below(d), above(d), below(d - 1), above(d + 1), w[r + d]);
        for j in 0..n {
            o0[j] += wd * (a0[j] + b0[j]);
            o1[j] += wd * (a1[j] + b1[j]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::DType;

    fn chunk1(v: &[f64]) -> Chunk {
        Chunk::F64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap())
    }

    fn counts(c: Chunk) -> Vec<u64> {
        c.into_typed::<u64>().unwrap().into_raw_vec_and_offset().0
    }

    /// Deterministic pseudo-random numbers in [0, 1).
    fn uniform(seed: u64, n: usize) -> Vec<f64> {
        (0..n as u64).map(|i| crate::kernels::create::uniform01(seed, i)).collect()
    }

    #[test]
    fn histogram_matches_numpy() {
        // np.histogram([0, 1, 1.5, 2, 2.5, 3, 3, -1, 4, nan], bins=3, range=(0, 3))
        let a = chunk1(&[0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0, -1.0, 4.0, f64::NAN]);
        assert_eq!(counts(histogram(&a, 3, (0.0, 3.0)).unwrap()), vec![1, 2, 4]);
        // Values on or next to the edges of np.histogram(x, bins=10, range=(0, 1)).
        let x = [0.1, 0.2, 0.3, 0.7, 0.6, 0.9999999999999999, 1.0, 0.29999999999999993, 0.30000000000000004];
        assert_eq!(counts(histogram(&chunk1(&x), 10, (0.0, 1.0)).unwrap()), vec![0, 1, 3, 1, 0, 1, 1, 0, 0, 2]);
        // ... and of x.astype(np.float32), binned against float32 edges.
        let x32 = chunk1(&x).cast(DType::F32);
        assert_eq!(counts(histogram(&x32, 10, (0.0, 1.0)).unwrap()), vec![0, 1, 1, 3, 0, 0, 1, 1, 0, 2]);
        // np.histogram(np.float32([0.3]), 3, (0, 0.3)): float32(0.3) > 0.3 but equals the last edge.
        let v = chunk1(&[0.3]);
        assert_eq!(counts(histogram(&v.cast(DType::F32), 3, (0.0, 0.3)).unwrap()), vec![0, 0, 1]);
        assert_eq!(counts(histogram(&chunk1(&[0.30000001192092896]), 3, (0.0, 0.3)).unwrap()), vec![0, 0, 0]);
        // np.histogram(np.uint16([0, 1, 2, 3, 65535, 1000, 30000, 30001]), bins=7, range=(1, 30000.5))
        let u = chunk1(&[0.0, 1.0, 2.0, 3.0, 65535.0, 1000.0, 30000.0, 30001.0]).cast(DType::U16);
        assert_eq!(counts(histogram(&u, 7, (1.0, 30000.5)).unwrap()), vec![4, 0, 0, 0, 0, 0, 1]);
    }

    /// Bin by linear search over edges `lo + i * (hi - lo) / bins` (last edge `hi`).
    fn naive_histogram(values: &[f64], bins: usize, lo: f64, hi: f64) -> Vec<u64> {
        naive_histogram_rounded(values, bins, lo, hi, |v| v)
    }

    /// [`naive_histogram`] with every edge (and so the range) passed through `round`.
    fn naive_histogram_rounded(values: &[f64], bins: usize, lo: f64, hi: f64, round: fn(f64) -> f64) -> Vec<u64> {
        let step = (hi - lo) / bins as f64;
        let edges: Vec<f64> = (0..=bins).map(|i| round(if i == bins { hi } else { i as f64 * step + lo })).collect();
        let (lo, hi) = (edges[0], edges[bins]);
        let mut out = vec![0; bins];
        for &v in values {
            if v >= lo && v <= hi {
                let b = (0..bins).rev().find(|&b| edges[b] <= v).unwrap();
                out[b] += 1;
            }
        }
        out
    }

    #[test]
    fn histogram_paths_agree_with_naive_binning() {
        let values: Vec<f64> = uniform(5, 37 * 41).into_iter().map(|v| (v * 65536.0).floor()).collect();
        let u16s = Chunk::F64(ArrayD::from_shape_vec(IxDyn(&[37, 41]), values.clone()).unwrap()).cast(DType::U16);
        for (bins, range) in [(256, (0.0, 65535.0)), (7, (100.5, 40000.0)), (1000, (-3.0, 70000.0)), (1, (0.0, 1.0))] {
            let want = naive_histogram(&values, bins, range.0, range.1);
            for dtype in [DType::U16, DType::U32, DType::I64, DType::F64, DType::F32] {
                let got = counts(histogram(&u16s.cast(dtype), bins, range).unwrap());
                assert_eq!(got, want, "{dtype} bins {bins} range {range:?}");
            }
            let transposed = Chunk::U16(u16s.typed::<u16>().unwrap().t().to_owned());
            let t = u16s.typed::<u16>().unwrap().t();
            assert!(t.as_slice().is_none());
            let strided = Chunk::U16(t.into_owned().reversed_axes());
            assert_eq!(counts(histogram(&transposed, bins, range).unwrap()), want);
            assert_eq!(counts(histogram(&strided, bins, range).unwrap()), want);
        }
        let bytes: Vec<f64> = uniform(6, 500).into_iter().map(|v| (v * 256.0).floor()).collect();
        let u8s = chunk1(&bytes).cast(DType::U8);
        assert_eq!(counts(histogram(&u8s, 10, (3.0, 250.0)).unwrap()), naive_histogram(&bytes, 10, 3.0, 250.0));
        let bools = chunk1(&[1.0, 0.0, 1.0, 1.0]).cast(DType::Bool);
        assert_eq!(counts(histogram(&bools, 2, (0.0, 1.0)).unwrap()), vec![1, 3]);
        let empty = Chunk::F32(ArrayD::zeros(IxDyn(&[0, 4])));
        assert_eq!(counts(histogram(&empty, 3, (0.0, 1.0)).unwrap()), vec![0, 0, 0]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Values on, next to and between the edges, out of range and NaN, over ranges
        /// from wide to narrower than a float32 step: counting runs of values from their
        /// first guesses gives the bins of one look-up per value, and, where the edges
        /// are distinct, those of a search of the edges.
        #[test]
        fn histogram_of_floats_agrees_with_a_search_of_the_edges(
            bins in 1usize..300,
            lo in -1e4f64..1e4,
            width_exp in -3.0f64..6.0,
            picks in proptest::collection::vec((0usize..301, 0u8..5, 0.0f64..1.0), 0..700),
        ) {
            let hi = lo + 10f64.powf(width_exp);
            let step = (hi - lo) / bins as f64;
            let values: Vec<f64> = picks
                .iter()
                .map(|&(k, how, u)| {
                    let edge = lo + (k % (bins + 1)) as f64 * step;
                    match how {
                        0 => edge,
                        1 => edge + u * step,
                        2 => (edge as f32).next_up() as f64,
                        3 => (edge as f32).next_down() as f64,
                        _ => [f64::NAN, lo - step * (1.0 + u), hi + step * u, hi][k % 4],
                    }
                })
                .collect();
            let as_f32 = |v: f64| v as f32 as f64;
            let f32s: Vec<f64> = values.iter().map(|&v| as_f32(v)).collect();
            for (data, dtype, f32_edges) in [(&values, DType::F64, false), (&f32s, DType::F32, true)] {
                let binner = Binner::new(bins, (lo, hi), f32_edges);
                let mut one_by_one = vec![0; bins];
                data.iter().filter_map(|&v| binner.bin(v)).for_each(|b| one_by_one[b] += 1);
                let got = counts(histogram(&chunk1(data).cast(dtype), bins, (lo, hi)).unwrap());
                proptest::prop_assert_eq!(&got, &one_by_one, "{}", dtype);
                if binner.edges.windows(2).all(|e| e[0] < e[1]) {
                    let round = if f32_edges { as_f32 } else { |v| v };
                    proptest::prop_assert_eq!(&got, &naive_histogram_rounded(data, bins, lo, hi, round), "{}", dtype);
                }
            }
        }
    }

    #[test]
    fn histogram_rejects_bad_arguments() {
        let a = chunk1(&[1.0]);
        let err = |bins, range| histogram(&a, bins, range).unwrap_err().to_string();
        assert_eq!(err(0, (0.0, 1.0)), "histogram: bins must be between 1 and 16777216, got 0");
        assert_eq!(err(4, (1.0, 1.0)), "histogram: range (1, 1) must have low < high");
        assert_eq!(err(4, (2.0, 1.0)), "histogram: range (2, 1) must have low < high");
        assert_eq!(err(4, (0.0, f64::INFINITY)), "histogram: range (0, inf) must be finite");
        assert_eq!(err(4, (f64::NAN, 1.0)), "histogram: range (NaN, 1) must be finite");
        assert_eq!(
            err(4, (-f64::MAX, f64::MAX)),
            format!("histogram: range ({}, {}) must be finite", -f64::MAX, f64::MAX)
        );
    }

    fn otsu(counts: &[f64], range: (f64, f64)) -> Result<f64> {
        let h = chunk1(counts).cast(DType::U64);
        let t = otsu_threshold(&h, range)?;
        assert_eq!(t.shape(), &[] as &[usize]);
        Ok(t.into_typed::<f64>()?.into_raw_vec_and_offset().0[0])
    }

    #[test]
    fn otsu_matches_scikit_image() {
        // threshold_otsu(hist=(counts, lo + (np.arange(n) + 0.5) * (hi - lo) / n))
        assert_eq!(otsu(&[0.0, 0.0, 5.0, 3.0, 0.0, 0.0, 4.0, 6.0, 0.0, 0.0], (0.0, 10.0)).unwrap(), 3.5);
        assert_eq!(otsu(&[3.0, 5.0, 0.0, 0.0, 4.0, 6.0, 0.0, 0.0], (0.0, 8.0)).unwrap(), 1.5);
        let random = [
            0, 4, 8, 11, 9, 40, 43, 29, 1, 4, 16, 21, 31, 23, 13, 7, 34, 36, 1, 5, 22, 19, 44, 25, 21, 21, 33, 29, 8,
            0, 0, 0,
        ];
        let random: Vec<f64> = random.iter().map(|&c| c as f64).collect();
        assert_eq!(otsu(&random, (-2.0, 3.0)).unwrap(), 0.421875);
        // Large counts: scikit-image's float32 class weights decide between close maxima.
        let big: Vec<f64> = (0..256)
            .map(|i| match i {
                20..60 => ((i - 20) * 1000) as f64,
                150..200 => ((199 - i) * 2000003) as f64,
                _ => 0.0,
            })
            .collect();
        assert_eq!(otsu(&big, (0.0, 65535.0)).unwrap(), 43135.341796875);
    }

    #[test]
    fn otsu_of_a_histogram_splits_two_modes() {
        let values: Vec<f64> = uniform(8, 4000)
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 3 == 0 { 1000.0 + v * 500.0 } else { 9000.0 + v * 800.0 })
            .collect();
        let h = histogram(&chunk1(&values).cast(DType::U16), 256, (0.0, 65535.0)).unwrap();
        let t = otsu_threshold(&h, (0.0, 65535.0)).unwrap().first().unwrap().to_f64();
        assert!((1000.0..9000.0).contains(&t), "threshold {t}");
    }

    #[test]
    fn otsu_edge_cases_and_errors() {
        // One non-empty bin: its center (scikit-image >= 0.25 raises instead).
        assert_eq!(otsu(&[0.0, 7.0, 0.0, 0.0], (0.0, 8.0)).unwrap(), 3.0);
        let err = |c: &[f64], range| otsu(c, range).unwrap_err().to_string();
        assert_eq!(err(&[0.0, 0.0], (0.0, 1.0)), "otsu: the histogram of 2 bins is empty (all counts are zero)");
        assert_eq!(err(&[], (0.0, 1.0)), "otsu: the histogram of 0 bins is empty (all counts are zero)");
        assert_eq!(err(&[1.0, 2.0], (1.0, 0.0)), "otsu: range (1, 0) must have low < high");
        let neg = chunk1(&[1.0, -2.0]);
        assert_eq!(
            otsu_threshold(&neg, (0.0, 1.0)).unwrap_err().to_string(),
            "otsu: histogram counts must be finite and non-negative, found -2"
        );
        let two_d = Chunk::U64(ArrayD::zeros(IxDyn(&[2, 2])));
        assert_eq!(
            otsu_threshold(&two_d, (0.0, 1.0)).unwrap_err().to_string(),
            "otsu: expected a 1-d histogram, got shape [2, 2]"
        );
    }

    /// Reflects `k` into `0..n` by repeated mirroring (`d c b a | a b c d | d c b a`).
    fn mirror(mut k: i64, n: i64) -> usize {
        while k < 0 || k >= n {
            k = if k < 0 { -k - 1 } else { 2 * n - 1 - k };
        }
        k as usize
    }

    /// Direct n-d correlation: every output is a sum over the whole kernel box.
    fn naive_gaussian(a: &ArrayD<f64>, sigma: &[f64], truncate: f64) -> ArrayD<f64> {
        let kernels: Vec<Vec<f64>> = sigma
            .iter()
            .map(|&s| {
                if s == 0.0 {
                    return vec![1.0];
                }
                let r = (truncate * s + 0.5).floor() as i64;
                let w: Vec<f64> = (-r..=r).map(|x| (-(x * x) as f64 / (2.0 * s * s)).exp()).collect();
                let total: f64 = w.iter().sum();
                w.iter().map(|v| v / total).collect()
            })
            .collect();
        let shape = a.shape().to_vec();
        ArrayD::from_shape_fn(IxDyn(&shape), |idx| {
            let mut total = 0.0;
            let sizes: Vec<usize> = kernels.iter().map(|k| k.len()).collect();
            let count: usize = sizes.iter().product();
            for flat in 0..count {
                let (mut rest, mut weight) = (flat, 1.0);
                let mut src = vec![0; shape.len()];
                for d in (0..shape.len()).rev() {
                    let t = rest % sizes[d];
                    rest /= sizes[d];
                    let off = t as i64 - (sizes[d] / 2) as i64;
                    weight *= kernels[d][t];
                    src[d] = mirror(idx[d] as i64 + off, shape[d] as i64);
                }
                total += weight * a[IxDyn(&src)];
            }
            total
        })
    }

    fn as_f64(c: Chunk) -> ArrayD<f64> {
        c.cast(DType::F64).into_typed::<f64>().unwrap()
    }

    fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>, tol: f64) {
        assert_eq!(got.shape(), want.shape());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tol * w.abs().max(1.0), "got {g} want {w}\n{got}\n{want}");
        }
    }

    #[test]
    fn gaussian_matches_scipy() {
        // scipy.ndimage.gaussian_filter(np.arange(6.), 1.0)
        let got = as_f64(gaussian_filter(&chunk1(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]), &[1.0], 4.0, None).unwrap());
        let want = [
            0.42704095039117346,
            1.067955865403872,
            2.004699522869261,
            2.9953004771307397,
            3.9320441345961283,
            4.572959049608827,
        ];
        assert_close(&got, &ArrayD::from_shape_vec(IxDyn(&[6]), want.to_vec()).unwrap(), 1e-14);
        // gaussian_filter([[1, 0, 0, 2], [0, 0, 3, 0], [5, 0, 0, 0]], (0.7, 1.3), truncate=3.0)
        let a = ArrayD::from_shape_vec(IxDyn(&[3, 4]), vec![1., 0., 0., 2., 0., 0., 3., 0., 5., 0., 0., 0.]).unwrap();
        let got = as_f64(gaussian_filter(&Chunk::F64(a), &[0.7, 1.3], 3.0, None).unwrap());
        let want = [
            0.5568922494595492,
            0.5952673918655979,
            0.8068309565929417,
            1.060249515751123,
            0.899653918050251,
            0.8652966599583906,
            0.8490871201219548,
            0.8160498101835181,
            2.1556023286494614,
            1.4059217904405086,
            0.6666559361710716,
            0.3224923227556311,
        ];
        assert_close(&got, &ArrayD::from_shape_vec(IxDyn(&[3, 4]), want.to_vec()).unwrap(), 1e-14);
        // gaussian_filter([3, 1, 4], 2.5): the kernel (radius 10) is wider than the line.
        let got = as_f64(gaussian_filter(&chunk1(&[3.0, 1.0, 4.0]), &[2.5], 4.0, None).unwrap());
        let want = [2.65043674444331, 2.6666530726456816, 2.6829101829110065];
        assert_close(&got, &ArrayD::from_shape_vec(IxDyn(&[3]), want.to_vec()).unwrap(), 1e-14);
    }

    #[test]
    fn gaussian_matches_direct_nd_sum() {
        let cases: [(&[usize], &[f64], f64); 7] = [
            (&[5, 7, 9], &[0.8, 1.5, 0.0], 4.0),
            // Transposed below, an input that is not in C order and has an unsmoothed
            // leading axis (filtered slab by slab).
            (&[9, 4, 6], &[1.0, 2.0, 0.0], 4.0),
            (&[5, 7, 9], &[2.0, 0.0, 3.0], 2.5),
            (&[1, 6, 1], &[1.0, 1.0, 1.0], 4.0),
            (&[4, 3, 2100], &[1.0, 0.0, 0.0], 4.0),
            (&[3, 2, 2], &[0.3, 0.5, 7.0], 4.0),
            (&[2, 50], &[0.0, 6.0], 1.0),
        ];
        for (shape, sigma, truncate) in cases {
            let n = shape.iter().product();
            let a = ArrayD::from_shape_vec(
                IxDyn(shape),
                uniform(n as u64, n).iter().map(|v| (v * 1000.0).floor()).collect(),
            )
            .unwrap();
            let want = naive_gaussian(&a, sigma, truncate);
            let got = gaussian_filter(&Chunk::F64(a.clone()), sigma, truncate, None).unwrap();
            assert_eq!(got.dtype(), DType::F64);
            assert_close(&as_f64(got), &want, 1e-12);
            for dtype in [DType::U16, DType::F32, DType::I32] {
                let got = gaussian_filter(&Chunk::F64(a.clone()).cast(dtype), sigma, truncate, None).unwrap();
                assert_eq!(got.dtype(), DType::F32, "{dtype}");
                assert_close(&as_f64(got), &want, 2e-6);
            }
            let t = a.t();
            let got = gaussian_filter(
                &Chunk::F64(t.to_owned()),
                &sigma.iter().rev().copied().collect::<Vec<_>>(),
                truncate,
                None,
            );
            assert_close(&as_f64(got.unwrap()), &want.t().to_owned(), 1e-12);
            // A window of the result, cut from the inside of every axis, is computed
            // alone with the block's own borders reflected.
            let window: Vec<Range<usize>> = shape.iter().map(|&n| n / 3..n - n / 4).collect();
            let want_window = want.slice_each_axis(|ax| ndarray::Slice::from(window[ax.axis.index()].clone()));
            for dtype in [DType::F64, DType::U16] {
                let got = gaussian_filter(&Chunk::F64(a.clone()).cast(dtype), sigma, truncate, Some(&window)).unwrap();
                assert_close(&as_f64(got), &want_window.to_owned(), 2e-6);
            }
        }
    }

    #[test]
    fn two_rows_at_once_give_the_bits_of_one_row_at_a_time() {
        // Lines 0..12 of 33 values; reflected lookups past either end, as at a block's
        // border. Every radius from 0 to 9 covers each mix of 4-pair groups and single
        // pairs.
        let lines: Vec<Vec<f32>> =
            (0..12).map(|i| uniform(i, 33).iter().map(|&v| v as f32 * 100.0).collect()).collect();
        let line = |k: isize| &lines[reflect(k, lines.len())][..];
        for r in 0..10usize {
            let w: Vec<f32> = gaussian_kernel(1.0 + r as f64 / 3.0, r).into_iter().map(|v| v as f32).collect();
            for k in [-3isize, 0, 5, 10, 11] {
                let (mut o0, mut o1) = (vec![0.0f32; 33], vec![0.0f32; 33]);
                weighted_sum_two(&mut o0, &mut o1, line, k, &w);
                for (i, got) in [(k, o0), (k + 1, o1)] {
                    let mut want = vec![0.0f32; 33];
                    weighted_sum(&mut want, line(i), &w, |d| (line(i - d as isize), line(i + d as isize)));
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
                    assert_eq!(bits(&got), bits(&want), "radius {r}, output line {i}");
                }
            }
        }
    }

    #[test]
    fn gaussian_identity_and_small_blocks() {
        let u = chunk1(&[0.0, 255.0, 7.0]).cast(DType::U8);
        assert_eq!(gaussian_filter(&u, &[0.0], 4.0, None).unwrap(), chunk1(&[0.0, 255.0, 7.0]).cast(DType::F32));
        let b = chunk1(&[1.0, 0.0]).cast(DType::Bool);
        assert_eq!(gaussian_filter(&b, &[0.0], 4.0, None).unwrap(), chunk1(&[1.0, 0.0]).cast(DType::F32));
        // A single element, a length-one axis and a zero-size block.
        assert_eq!(gaussian_filter(&chunk1(&[4.0]), &[3.0], 4.0, None).unwrap(), chunk1(&[4.0]));
        let scalar = Chunk::scalar(tessera_core::Scalar::I16(-3));
        assert_eq!(gaussian_filter(&scalar, &[], 4.0, None).unwrap(), Chunk::scalar(tessera_core::Scalar::F32(-3.0)));
        let empty = Chunk::U16(ArrayD::zeros(IxDyn(&[0, 5])));
        assert_eq!(gaussian_filter(&empty, &[1.0, 1.0], 4.0, None).unwrap(), Chunk::F32(ArrayD::zeros(IxDyn(&[0, 5]))));
        // truncate 0 gives a one-tap kernel.
        assert_eq!(gaussian_filter(&chunk1(&[1.0, 5.0]), &[2.0], 0.0, None).unwrap(), chunk1(&[1.0, 5.0]));
    }

    #[test]
    fn gaussian_rejects_bad_arguments() {
        let a = Chunk::F32(ArrayD::zeros(IxDyn(&[2, 3])));
        let err = |sigma: &[f64], truncate| gaussian_filter(&a, sigma, truncate, None).unwrap_err().to_string();
        assert_eq!(err(&[1.0], 4.0), "gaussian: got 1 sigmas [1.0] for a 2-d block");
        assert_eq!(err(&[1.0, -0.5], 4.0), "gaussian: sigma must be finite and non-negative, got -0.5 in [1.0, -0.5]");
        assert_eq!(
            err(&[f64::NAN, 1.0], 4.0),
            "gaussian: sigma must be finite and non-negative, got NaN in [NaN, 1.0]"
        );
        assert_eq!(err(&[1.0, 1.0], -1.0), "gaussian: truncate must be finite and non-negative, got -1");
        assert_eq!(
            err(&[1e7, 1.0], 4.0),
            "gaussian: sigma 10000000 with truncate 4 needs a kernel radius above 1000000"
        );
        let windowed = |window: &[Range<usize>]| gaussian_filter(&a, &[1.0, 1.0], 4.0, Some(window));
        assert_eq!(
            windowed(&[0..2, 1..4]).unwrap_err().to_string(),
            "gaussian: window [0..2, 1..4] does not lie within the block of shape [2, 3]"
        );
        assert_eq!(
            windowed(&[0..2, 0..3, 0..1]).unwrap_err().to_string(),
            "gaussian: window [0..2, 0..3, 0..1] does not lie within the block of shape [2, 3]"
        );
        assert_eq!(windowed(&[1..1, 0..3]).unwrap(), Chunk::F32(ArrayD::zeros(IxDyn(&[0, 3]))));
    }
}
