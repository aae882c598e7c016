//! Creation kernels: arange and seeded random blocks.
//!
//! Random blocks use a counter-based generator: every element's value is a pure
//! function of the seed and the element's flat C-order index in the whole array, so an
//! array holds the same numbers however it is chunked. The counter is mixed with the
//! splitmix64 finaliser; normal values come from the Box–Muller transform of two
//! uniforms drawn for each pair of consecutive flat indices (the even index takes the
//! cosine branch, the odd one the sine branch).

use ndarray::{Array1, ArrayD, IxDyn};
use tessera_core::op::Distribution;
use tessera_core::{Chunk, DType, Element, Error, Result, with_dtype};

/// A 1-D block of `start + (offset + i) * step`, `i < len`, as `dtype`.
pub fn arange(start: f64, step: f64, offset: u64, len: usize, dtype: DType) -> Chunk {
    with_dtype!(dtype, T => {
        let values = Array1::from_iter((0..len as u64).map(|i| T::from_f64(start + offset.wrapping_add(i) as f64 * step)));
        T::into_chunk(values.into_dyn())
    })
}

/// A block of shape `shape` at global `offset` of a random array of `array_shape`.
///
/// Values depend only on `seed` and each element's flat index in `array_shape`, so
/// any chunking of the same array yields the same numbers. `dtype` must be float32
/// or float64 (float32 values are float64 draws rounded).
pub fn random(
    dist: Distribution,
    seed: u64,
    array_shape: &[u64],
    offset: &[u64],
    shape: &[usize],
    dtype: DType,
) -> Result<Chunk> {
    let identity: Vec<usize> = (0..shape.len()).collect();
    random_permuted(dist, seed, array_shape, offset, shape, dtype, &identity)
}

/// The block of [`random`] with its axes permuted: output axis `i` is block axis
/// `axes[i]` (the transpose of a random block, generated directly in C order).
pub fn random_permuted(
    dist: Distribution,
    seed: u64,
    array_shape: &[u64],
    offset: &[u64],
    shape: &[usize],
    dtype: DType,
    axes: &[usize],
) -> Result<Chunk> {
    let rows = Rows::new(array_shape, offset, shape, axes)?;
    let elements = shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
    if elements.is_none_or(|n| n > isize::MAX as usize / dtype.size()) {
        return Err(Error::invalid("random", format!("block shape {shape:?} is too large")));
    }
    if let Distribution::Normal { std, .. } = dist
        && (std.is_nan() || std < 0.0)
    {
        return Err(Error::invalid("random", format!("normal standard deviation must be >= 0, got {std}")));
    }
    let out_shape: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
    match dtype {
        DType::F32 => Ok(Chunk::F32(fill::<f32>(dist, seed, &rows, &out_shape)?)),
        DType::F64 => Ok(Chunk::F64(fill::<f64>(dist, seed, &rows, &out_shape)?)),
        other => Err(Error::invalid("random", format!("dtype {other} is not supported; use float32 or float64"))),
    }
}

/// The runs of flat indices ("rows" along the last output axis) covered by a block,
/// in the output's C order.
struct Rows {
    /// Global flat index of the block's first element.
    first: u64,
    /// Global flat stride of each leading output axis (all but the last).
    strides: Vec<u64>,
    /// Block length of each leading output axis.
    lens: Vec<usize>,
    /// Length of one row (the last output axis; 1 for a 0-d block).
    row_len: usize,
    /// Global flat stride along a row (1 unless the axes are permuted).
    row_step: u64,
}

impl Rows {
    /// Validates the block against the array and `axes` (a permutation of the block's
    /// axes giving the output's order) and precomputes global strides.
    fn new(array_shape: &[u64], offset: &[u64], shape: &[usize], axes: &[usize]) -> Result<Rows> {
        if array_shape.len() != shape.len() || offset.len() != shape.len() {
            return Err(Error::invalid(
                "random",
                format!(
                    "array shape {array_shape:?}, block offset {offset:?} and block shape {shape:?} must have the same number of axes"
                ),
            ));
        }
        if !super::structure::is_permutation(axes, shape.len()) {
            return Err(Error::invalid("random", format!("axes {axes:?} are not a permutation of 0..{}", shape.len())));
        }
        for (axis, ((&total, &start), &len)) in array_shape.iter().zip(offset).zip(shape).enumerate() {
            if start.checked_add(len as u64).is_none_or(|end| end > total) {
                return Err(Error::invalid(
                    "random",
                    format!(
                        "axis {axis}: block {start}..{start}+{len} lies outside the array length {total} (array shape {array_shape:?})"
                    ),
                ));
            }
        }
        // Every element's flat index must fit u64.
        let ndim = shape.len();
        let mut array_strides = vec![1u64; ndim];
        let mut acc = 1u64;
        for d in (0..ndim).rev() {
            array_strides[d] = acc;
            acc = acc.checked_mul(array_shape[d]).ok_or_else(|| {
                Error::invalid("random", format!("array shape {array_shape:?} has more than 2^64 elements"))
            })?;
        }
        let first = offset.iter().zip(&array_strides).fold(0u64, |acc, (&o, &s)| acc.wrapping_add(o.wrapping_mul(s)));
        let mut strides: Vec<u64> = axes.iter().map(|&a| array_strides[a]).collect();
        let mut lens: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
        let row_step = strides.pop().unwrap_or(1);
        let row_len = lens.pop().unwrap_or(1);
        Ok(Rows { first, strides, lens, row_len, row_step })
    }

    /// Calls `f(flat_start)` for every row of the block in C order.
    fn for_each(&self, mut f: impl FnMut(u64)) {
        if self.row_len == 0 || self.lens.contains(&0) {
            return;
        }
        let mut index = vec![0usize; self.lens.len()];
        let mut start = self.first;
        loop {
            f(start);
            // Odometer over the leading axes, updating the flat start incrementally.
            let mut d = self.lens.len();
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                index[d] += 1;
                start += self.strides[d];
                if index[d] < self.lens[d] {
                    break;
                }
                start -= self.strides[d] * self.lens[d] as u64;
                index[d] = 0;
            }
        }
    }
}

/// The golden-ratio increment of splitmix64.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 output function: a bijective 64-bit mixer.
#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in `[0, 1)` with 52 random bits for `counter` of the stream `key`.
///
/// The bits become the mantissa of a float in `[1, 2)`, minus one: no integer to
/// float conversion, so the loops that call this vectorise.
#[inline(always)]
pub(crate) fn uniform01(key: u64, counter: u64) -> f64 {
    const ONE: u64 = 0x3FF0_0000_0000_0000;
    f64::from_bits(ONE | (mix64(key.wrapping_add(counter.wrapping_mul(GOLDEN))) >> 12)) - 1.0
}

/// The two standard normal values `(cos branch, sin branch)` of pair `pair`.
fn normal_pair(key: u64, pair: u64) -> (f64, f64) {
    let u1 = uniform01(key, 2 * pair);
    let u2 = uniform01(key, 2 * pair + 1);
    // 1 - u1 lies in (0, 1], so the logarithm is finite.
    let radius = (-2.0 * (1.0 - u1).ln()).sqrt();
    let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
    (radius * cos, radius * sin)
}

/// Appends the uniform draws `start, start + step, …` (`n` of them) of stream `key`,
/// scaled to `[low, low + width)`.
///
/// The hash multiplies 64-bit lanes, which AVX-512DQ does in one instruction (AVX2
/// needs three), so CPUs that have it run a copy of the loop compiled for it.
fn push_uniform<T: Element>(out: &mut Vec<T>, key: u64, (start, step, n): (u64, u64, u64), low: f64, width: f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the CPU was just checked for the features the function is compiled with.
        unsafe { push_uniform_avx512(out, key, (start, step, n), low, width) };
        return;
    }
    push_uniform_any(out, key, (start, step, n), low, width);
}

/// [`push_uniform`] compiled for AVX-512 (foundation and doubleword/quadword).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn push_uniform_avx512<T: Element>(out: &mut Vec<T>, key: u64, run: (u64, u64, u64), low: f64, width: f64) {
    push_uniform_any(out, key, run, low, width);
}

/// [`push_uniform`] for any CPU; inlined into each compiled copy.
#[inline(always)]
fn push_uniform_any<T: Element>(out: &mut Vec<T>, key: u64, (start, step, n): (u64, u64, u64), low: f64, width: f64) {
    out.extend((0..n).map(|k| T::from_f64(low + uniform01(key, start.wrapping_add(k * step)) * width)));
}

/// Generates the block's values row by row into one buffer.
fn fill<T: Element>(dist: Distribution, seed: u64, rows: &Rows, shape: &[usize]) -> Result<ArrayD<T>> {
    let key = mix64(seed ^ 0x5445_5353_4552_4121);
    let mut out: Vec<T> = Vec::with_capacity(shape.iter().product());
    let n = rows.row_len as u64;
    match dist {
        Distribution::Uniform { low, high } => {
            let width = high - low;
            rows.for_each(|start| push_uniform(&mut out, key, (start, rows.row_step, n), low, width));
        }
        Distribution::Normal { mean, std } => {
            let value = |z: f64| T::from_f64(mean + std * z);
            rows.for_each(|start| {
                if rows.row_step != 1 {
                    // A permuted row: each draw is half of a different pair.
                    for i in (0..n).map(|k| start.wrapping_add(k * rows.row_step)) {
                        let (c, s) = normal_pair(key, i / 2);
                        out.push(value(if i % 2 == 0 { c } else { s }));
                    }
                    return;
                }
                let end = start + n;
                let mut i = start;
                if i % 2 == 1 {
                    out.push(value(normal_pair(key, i / 2).1));
                    i += 1;
                }
                while i + 1 < end {
                    let (c, s) = normal_pair(key, i / 2);
                    out.push(value(c));
                    out.push(value(s));
                    i += 2;
                }
                if i < end {
                    out.push(value(normal_pair(key, i / 2).0));
                }
            });
        }
    }
    ArrayD::from_shape_vec(IxDyn(shape), out)
        .map_err(|e| Error::invalid("random", format!("block shape {shape:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Axis, Slice};
    use proptest::prelude::*;

    fn uniform(low: f64, high: f64) -> Distribution {
        Distribution::Uniform { low, high }
    }

    fn whole(dist: Distribution, seed: u64, shape: &[usize]) -> ArrayD<f64> {
        let array_shape: Vec<u64> = shape.iter().map(|&n| n as u64).collect();
        random(dist, seed, &array_shape, &vec![0; shape.len()], shape, DType::F64).unwrap().into_typed().unwrap()
    }

    #[test]
    fn arange_values_and_dtypes() {
        let c = arange(1.0, 0.5, 2, 4, DType::F64);
        assert_eq!(c.typed::<f64>().unwrap().as_slice().unwrap(), &[2.0, 2.5, 3.0, 3.5]);
        let c = arange(10.0, -3.0, 1, 4, DType::I32);
        assert_eq!(c.typed::<i32>().unwrap().as_slice().unwrap(), &[7, 4, 1, -2]);
        let c = arange(0.0, 0.4, 0, 4, DType::U8);
        assert_eq!(c.typed::<u8>().unwrap().as_slice().unwrap(), &[0, 0, 0, 1]);
        let c = arange(0.0, 1.0, 0, 3, DType::Bool);
        assert_eq!(c.typed::<bool>().unwrap().as_slice().unwrap(), &[false, true, true]);
        let c = arange(0.0, 1.0, 5, 0, DType::F32);
        assert_eq!(c.shape(), &[0]);
        assert_eq!(c.dtype(), DType::F32);
    }

    #[test]
    fn random_uniform_range_and_moments() {
        let a = whole(uniform(-2.0, 3.0), 7, &[300, 200]);
        assert!(a.iter().all(|&v| (-2.0..3.0).contains(&v)));
        let mean = a.mean().unwrap();
        assert!((mean - 0.5).abs() < 0.05, "mean {mean}");
        let var = a.mapv(|v| (v - mean) * (v - mean)).mean().unwrap();
        assert!((var - 25.0 / 12.0).abs() < 0.05, "var {var}");
    }

    #[test]
    fn random_normal_moments() {
        let a = whole(Distribution::Normal { mean: 3.0, std: 2.0 }, 11, &[301, 199]);
        let mean = a.mean().unwrap();
        let var = a.mapv(|v| (v - mean) * (v - mean)).mean().unwrap();
        assert!((mean - 3.0).abs() < 0.03, "mean {mean}");
        assert!((var - 4.0).abs() < 0.08, "var {var}");
        // Even and odd positions (cosine and sine branches) are each standard normal.
        for parity in 0..2 {
            let part: Vec<f64> = a.iter().skip(parity).step_by(2).map(|v| (v - 3.0) / 2.0).collect();
            let m = part.iter().sum::<f64>() / part.len() as f64;
            let v = part.iter().map(|x| x * x).sum::<f64>() / part.len() as f64;
            assert!(m.abs() < 0.03 && (v - 1.0).abs() < 0.04, "parity {parity}: mean {m}, var {v}");
        }
    }

    #[test]
    fn random_depends_on_seed_and_float32_rounds() {
        let a = whole(uniform(0.0, 1.0), 1, &[50]);
        let b = whole(uniform(0.0, 1.0), 2, &[50]);
        assert_ne!(a, b);
        let f = random(uniform(0.0, 1.0), 1, &[50], &[0], &[50], DType::F32).unwrap();
        assert_eq!(f.typed::<f32>().unwrap(), &a.mapv(|v| v as f32));
    }

    #[test]
    fn random_zero_d_and_empty_blocks() {
        let c = random(uniform(0.0, 1.0), 3, &[], &[], &[], DType::F64).unwrap();
        assert_eq!(c.shape(), &[] as &[usize]);
        let c = random(Distribution::Normal { mean: 0.0, std: 1.0 }, 3, &[4, 0], &[1, 0], &[2, 0], DType::F64).unwrap();
        assert_eq!(c.shape(), &[2, 0]);
    }

    #[test]
    fn random_errors_name_values() {
        let err = random(uniform(0.0, 1.0), 0, &[10, 10], &[5, 0], &[6, 10], DType::F64).unwrap_err().to_string();
        assert!(err.contains("axis 0") && err.contains("10"), "{err}");
        let err = random(uniform(0.0, 1.0), 0, &[10], &[0, 0], &[10], DType::F64).unwrap_err().to_string();
        assert!(err.contains("same number of axes"), "{err}");
        let err = random(uniform(0.0, 1.0), 0, &[10], &[0], &[10], DType::I32).unwrap_err().to_string();
        assert!(err.contains("int32"), "{err}");
        let err = random(Distribution::Normal { mean: 0.0, std: -1.0 }, 0, &[1], &[0], &[1], DType::F64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("-1"), "{err}");
        let big = u64::MAX / 2;
        let err = random(uniform(0.0, 1.0), 0, &[big, 4], &[0, 0], &[1, 1], DType::F64).unwrap_err().to_string();
        assert!(err.contains("2^64"), "{err}");
        let err =
            random(uniform(0.0, 1.0), 0, &[big, 1], &[0, 0], &[big as usize, 1], DType::F64).unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_blocks_match_whole_array(
            shape in prop::collection::vec(1usize..7, 0..4),
            cuts in prop::collection::vec(0usize..7, 4),
            seed in any::<u64>(),
            normal in any::<bool>(),
        ) {
            let dist = if normal { Distribution::Normal { mean: 1.0, std: 2.0 } } else { uniform(-1.0, 1.0) };
            let full = whole(dist, seed, &shape);
            let array_shape: Vec<u64> = shape.iter().map(|&n| n as u64).collect();
            // Split every axis in two at `cut` and check the 2^ndim blocks.
            let cut: Vec<usize> = shape.iter().zip(&cuts).map(|(&n, &c)| c % (n + 1)).collect();
            for corner in 0..1usize << shape.len() {
                let ranges: Vec<(usize, usize)> = (0..shape.len())
                    .map(|d| if corner >> d & 1 == 0 { (0, cut[d]) } else { (cut[d], shape[d]) })
                    .collect();
                let offset: Vec<u64> = ranges.iter().map(|r| r.0 as u64).collect();
                let block_shape: Vec<usize> = ranges.iter().map(|r| r.1 - r.0).collect();
                let block = random(dist, seed, &array_shape, &offset, &block_shape, DType::F64).unwrap();
                let mut expected = full.view();
                for (d, r) in ranges.iter().enumerate() {
                    expected.slice_axis_inplace(Axis(d), Slice::from(r.0..r.1));
                }
                prop_assert_eq!(block.typed::<f64>().unwrap(), &expected.to_owned());
                // The same block generated in any axis order is its permutation.
                let axes: Vec<usize> = (0..shape.len()).rev().collect();
                let permuted =
                    random_permuted(dist, seed, &array_shape, &offset, &block_shape, DType::F64, &axes).unwrap();
                prop_assert_eq!(permuted.typed::<f64>().unwrap(), &expected.to_owned().permuted_axes(axes));
            }
        }
    }
}
