//! End-to-end tests of transpose, slicing, concatenate / stack and rechunk: graphs are
//! built with odd chunkings, run on the local engine and compared with the same
//! operation done directly with `ndarray`.

use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;
use std::sync::OnceLock;
use tessera::array::{self, Array, ChunkSize, SliceArg, concatenate, stack};
use tessera::{Client, DType};
use tessera_core::Op;

fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| Client::local_with(2, None).expect("local engine").with_progress(false))
}

/// `0, 1, 2, …` laid out in `shape`.
fn data(shape: &[usize]) -> ArrayD<i64> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n as i64).collect()).expect("shape matches")
}

fn lazy(a: &ArrayD<i64>, chunks: &[u64]) -> Array {
    array::from_ndarray(a.clone(), chunks).expect("from_ndarray")
}

fn compute(a: &Array) -> ArrayD<i64> {
    a.compute_with(client()).expect("compute").into_typed::<i64>().expect("int64 result")
}

/// The indices NumPy's `slice.indices` walks for `arg` over an axis of length `len`
/// (written independently of the library: clamp, then step one at a time), and
/// whether the axis is dropped.
fn numpy_indices(len: usize, arg: SliceArg) -> (Vec<usize>, bool) {
    let n = len as i64;
    match arg {
        SliceArg::Full => ((0..len).collect(), false),
        SliceArg::Index(i) => (vec![if i < 0 { i + n } else { i } as usize], true),
        SliceArg::Range { start, stop, step } => {
            let clamp = |v: i64, lo: i64, hi: i64| {
                let v = if v < 0 { v + n } else { v };
                v.clamp(lo, hi)
            };
            let (start, stop) = if step > 0 {
                (start.map_or(0, |s| clamp(s, 0, n)), stop.map_or(n, |s| clamp(s, 0, n)))
            } else {
                (start.map_or(n - 1, |s| clamp(s, -1, n - 1)), stop.map_or(-1, |s| clamp(s, -1, n - 1)))
            };
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i < stop) || (step < 0 && i > stop) {
                out.push(i as usize);
                i += step;
            }
            (out, false)
        }
    }
}

/// `a[args]` computed with `ndarray` from the NumPy index lists.
fn reference_slice(a: &ArrayD<i64>, args: &[SliceArg]) -> ArrayD<i64> {
    let mut out = a.clone();
    let mut dropped = Vec::new();
    for (axis, &arg) in args.iter().enumerate() {
        let (idx, drop) = numpy_indices(a.shape()[axis], arg);
        out = out.select(Axis(axis), &idx);
        if drop {
            dropped.push(axis);
        }
    }
    for &axis in dropped.iter().rev() {
        out = out.index_axis_move(Axis(axis), 0);
    }
    out
}

/// The op of the task computing block `index` of `a`.
fn op_of(a: &Array, index: &[usize]) -> Op {
    a.graph().get(&a.key(index)).expect("block has a task").op.clone()
}

fn err(r: tessera::Result<Array>) -> String {
    match r {
        Ok(a) => panic!("expected an error, got {a:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn transpose_permutes_axes_blocks_and_chunks() {
    let a = data(&[4, 5, 6]);
    let x = lazy(&a, &[3, 2, 4]);
    let y = x.transpose(Some(&[1, 2, 0])).unwrap();
    assert_eq!(y.shape(), &[5, 6, 4]);
    assert_eq!(y.chunks(), &[vec![2, 2, 1], vec![4, 2], vec![3, 1]]);
    assert_eq!(compute(&y), a.clone().permuted_axes(IxDyn(&[1, 2, 0])));
    let t = x.t().unwrap();
    assert_eq!(t.chunks(), &[vec![4, 2], vec![2, 2, 1], vec![3, 1]]);
    assert_eq!(compute(&t), a.clone().reversed_axes());
    // Transposing back restores the original; the identity permutation adds no layer.
    assert_eq!(compute(&t.t().unwrap()), a);
    assert_eq!(x.transpose(Some(&[0, 1, 2])).unwrap().name(), x.name());
}

#[test]
fn transpose_rejects_non_permutations() {
    let x = lazy(&data(&[2, 3]), &[1, 2]);
    for axes in [&[0, 0][..], &[0][..], &[0, 2][..], &[1, 0, 2][..]] {
        let msg = err(x.transpose(Some(axes)));
        assert!(msg.contains("transpose") && msg.contains(x.name()) && msg.contains(&format!("{axes:?}")), "{msg}");
    }
}

#[test]
fn slices_match_numpy_on_odd_chunkings() {
    let a = data(&[10, 7]);
    let cases: Vec<Vec<SliceArg>> = vec![
        vec![(2..9).into(), SliceArg::range(1, -1)],
        vec![SliceArg::step(None, None, -1)],
        vec![SliceArg::Full, SliceArg::step(None, None, -2)],
        vec![SliceArg::step(8, 0, -3), SliceArg::step(1, None, 3)],
        vec![SliceArg::step(-1, -10, -4), SliceArg::index(-1)],
        vec![3.into()],
        vec![SliceArg::index(-10), SliceArg::index(6)],
        vec![(..4).into(), (5..).into()],
        vec![SliceArg::step(None, None, 100), SliceArg::step(None, None, -100)],
        vec![SliceArg::step(10, None, -1), SliceArg::step(-7, 7, 2)],
    ];
    for chunks in [[4, 3], [1, 1], [10, 7], [3, 5]] {
        let x = lazy(&a, &chunks);
        for args in &cases {
            let y = x.slice(args).unwrap();
            let expected = reference_slice(&a, args);
            let got = compute(&y);
            assert_eq!(got, expected, "chunks {chunks:?}, slice {args:?}");
            let shape: Vec<u64> = expected.shape().iter().map(|&s| s as u64).collect();
            assert_eq!(y.shape(), shape.as_slice());
        }
    }
}

#[test]
fn negative_steps_reverse_the_blocks() {
    let a = data(&[10]);
    let x = lazy(&a, &[4]);
    let y = x.slice(&[SliceArg::step(None, None, -1)]).unwrap();
    assert_eq!(y.chunks(), &[vec![2, 4, 4]]);
    assert_eq!(compute(&y).into_raw_vec_and_offset().0, (0..10).rev().collect::<Vec<i64>>());
    let y = x.slice(&[SliceArg::step(None, None, -3)]).unwrap();
    // 9 | 6 | 3, 0 from blocks 2, 1, 0.
    assert_eq!(y.chunks(), &[vec![1, 1, 2]]);
    assert_eq!(compute(&y).into_raw_vec_and_offset().0, vec![9, 6, 3, 0]);
}

#[test]
fn integer_indices_drop_axes() {
    let a = data(&[3, 4, 5]);
    let x = lazy(&a, &[2, 3, 2]);
    let y = x.slice(&[SliceArg::index(1), SliceArg::Full, SliceArg::index(-2)]).unwrap();
    assert_eq!(y.shape(), &[4]);
    assert_eq!(y.chunks(), &[vec![3, 1]]);
    assert_eq!(compute(&y), a.index_axis(Axis(0), 1).index_axis(Axis(1), 3).to_owned());
    // Every index selected: a zero-dimensional result.
    let z = x.slice(&[2.into(), 3.into(), 4.into()]).unwrap();
    assert_eq!(z.shape(), &[] as &[u64]);
    assert_eq!(compute(&z).into_raw_vec_and_offset().0, vec![59]);
}

#[test]
fn empty_selections_give_one_empty_block() {
    let a = data(&[10, 7]);
    let x = lazy(&a, &[4, 3]);
    for arg in [SliceArg::range(5, 5), SliceArg::range(7, 2), SliceArg::step(2, 7, -1), SliceArg::range(-1, -1)] {
        let y = x.slice(&[arg]).unwrap();
        assert_eq!(y.shape(), &[0, 7]);
        assert_eq!(y.chunks(), &[vec![0], vec![3, 3, 1]]);
        assert_eq!(compute(&y).shape(), &[0, 7]);
    }
    // Slicing an empty array, and slicing further along an empty axis.
    let e = x.slice(&[SliceArg::range(5, 5)]).unwrap();
    let y = e.slice(&[SliceArg::step(None, None, -1), (1..3).into()]).unwrap();
    assert_eq!(y.shape(), &[0, 2]);
    assert_eq!(compute(&y).shape(), &[0, 2]);
    assert!(e.slice(&[SliceArg::index(0)]).is_err());
}

#[test]
fn whole_blocks_are_aliased_and_full_slices_are_free() {
    let x = lazy(&data(&[12, 6]), &[4, 3]);
    assert_eq!(x.slice(&[]).unwrap().name(), x.name());
    assert_eq!(x.slice(&[SliceArg::Full, (..).into()]).unwrap().name(), x.name());
    assert_eq!(x.slice(&[(0..12).into(), SliceArg::step(-6, 6, 1)]).unwrap().name(), x.name());
    let y = x.slice(&[(4..12).into(), (1..6).into()]).unwrap();
    assert_eq!(y.chunks(), &[vec![4, 4], vec![2, 3]]);
    assert!(matches!(op_of(&y, &[0, 1]), Op::Alias));
    assert!(matches!(op_of(&y, &[1, 1]), Op::Alias));
    assert!(matches!(op_of(&y, &[0, 0]), Op::Array(_)));
    assert_eq!(compute(&y), reference_slice(&data(&[12, 6]), &[(4..12).into(), (1..6).into()]));
}

#[test]
fn slice_errors_name_the_array_axis_value_and_length() {
    let x = lazy(&data(&[10, 7]), &[4, 3]);
    let msg = err(x.slice(&[SliceArg::Full, SliceArg::index(7)]));
    for part in ["slice", x.name(), "index 7", "axis 1", "length 7"] {
        assert!(msg.contains(part), "{part:?} missing from {msg}");
    }
    let msg = err(x.slice(&[SliceArg::index(-11)]));
    assert!(msg.contains("index -11") && msg.contains("axis 0") && msg.contains("length 10"), "{msg}");
    let msg = err(x.slice(&[SliceArg::range(0, 11)]));
    assert!(msg.contains("bound 11") && msg.contains("axis 0") && msg.contains("length 10"), "{msg}");
    let msg = err(x.slice(&[SliceArg::Full, SliceArg::step(-8, None, 1)]));
    assert!(msg.contains("bound -8") && msg.contains("axis 1") && msg.contains("length 7"), "{msg}");
    let msg = err(x.slice(&[SliceArg::step(None, None, 0)]));
    assert!(msg.contains("step 0") && msg.contains("axis 0") && msg.contains(x.name()), "{msg}");
    let msg = err(x.slice(&[SliceArg::Full, SliceArg::Full, SliceArg::Full]));
    assert!(msg.contains("3 indices") && msg.contains("2 axes") && msg.contains(x.name()), "{msg}");
}

#[test]
fn concatenate_unifies_chunks_and_reuses_blocks() {
    let a = data(&[5, 6]);
    let b = data(&[3, 6]).mapv(|v| v + 100);
    let c = data(&[4, 6]).mapv(|v| -v);
    let (xa, xb, xc) = (lazy(&a, &[2, 4]), lazy(&b, &[3, 1]), lazy(&c, &[4, 6]));
    let y = concatenate(&[&xa, &xb, &xc], 0).unwrap();
    assert_eq!(y.shape(), &[12, 6]);
    assert_eq!(y.chunks()[0], vec![2, 2, 1, 3, 4]);
    // Columns: the common refinement of [4, 2], [1; 6] and [6].
    assert_eq!(y.chunks()[1], vec![1; 6]);
    assert!(y.keys().iter().all(|k| matches!(y.graph().get(k).map(|t| &t.op), Some(Op::Alias))));
    let expected = ndarray::concatenate(Axis(0), &[a.view(), b.view(), c.view()]).unwrap();
    assert_eq!(compute(&y), expected);

    // Along the last axis, with a ragged chunking.
    let d = data(&[5, 3]);
    let y = concatenate(&[&xa, &lazy(&d, &[3, 2])], 1).unwrap();
    assert_eq!(y.chunks(), &[vec![2, 1, 1, 1], vec![4, 2, 2, 1]]);
    assert_eq!(compute(&y), ndarray::concatenate(Axis(1), &[a.view(), d.view()]).unwrap());

    // Empty inputs contribute nothing; a single input comes back as is.
    let empty = lazy(&ArrayD::zeros(IxDyn(&[0, 6])), &[2, 2]);
    let y = concatenate(&[&empty, &xa, &empty], 0).unwrap();
    assert_eq!(y.name(), xa.name());
    let y = concatenate(&[&empty, &empty], 0).unwrap();
    assert_eq!((y.shape(), y.chunks()), (&[0, 6][..], &[vec![0], vec![2, 2, 2]][..]));
    assert_eq!(compute(&y).shape(), &[0, 6]);
}

#[test]
fn concatenate_promotes_dtypes() {
    let ints = lazy(&data(&[2, 3]), &[1, 2]);
    let floats = array::from_ndarray(ArrayD::from_elem(IxDyn(&[1, 3]), 0.5f64), &[1, 3]).unwrap();
    let y = concatenate(&[&ints, &floats], 0).unwrap();
    assert_eq!(y.dtype(), DType::F64);
    let got = y.compute_with(client()).unwrap().into_typed::<f64>().unwrap();
    assert_eq!(got.into_raw_vec_and_offset().0, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 0.5, 0.5, 0.5]);
}

#[test]
fn concatenate_errors() {
    let x = lazy(&data(&[2, 3]), &[1, 2]);
    let y = lazy(&data(&[2, 4]), &[1, 2]);
    let z = lazy(&data(&[2]), &[1]);
    assert!(err(concatenate(&[], 0)).contains("at least one array"));
    let msg = err(concatenate(&[&x, &y], 0));
    assert!(
        msg.contains("concatenate") && msg.contains(y.name()) && msg.contains("[2, 4]") && msg.contains("axis 1"),
        "{msg}"
    );
    let msg = err(concatenate(&[&x, &z], 0));
    assert!(msg.contains(z.name()) && msg.contains("1 axes"), "{msg}");
    let msg = err(concatenate(&[&x, &x], 2));
    assert!(msg.contains("axis 2") && msg.contains(x.name()), "{msg}");
}

#[test]
fn stack_adds_an_axis_of_one_element_blocks() {
    let a = data(&[4, 3]);
    let b = a.mapv(|v| v * 10);
    let (xa, xb) = (lazy(&a, &[3, 3]), lazy(&b, &[2, 1]));
    for axis in 0..=2 {
        let y = stack(&[&xa, &xb, &xa], axis).unwrap();
        let mut shape = vec![4, 3];
        shape.insert(axis, 3);
        assert_eq!(y.shape(), shape.as_slice());
        assert_eq!(y.chunks()[axis], vec![1, 1, 1]);
        assert_eq!(compute(&y), ndarray::stack(Axis(axis), &[a.view(), b.view(), a.view()]).unwrap());
    }
    let y = stack(&[&xa, &xb], 0).unwrap();
    assert_eq!(y.chunks(), &[vec![1, 1], vec![2, 1, 1], vec![1, 1, 1]]);
    let msg = err(stack(&[&xa, &lazy(&data(&[3, 4]), &[2, 2])], 0));
    assert!(msg.contains("stack") && msg.contains("[3, 4]") && msg.contains("[4, 3]"), "{msg}");
    assert!(err(stack(&[&xa], 3)).contains("axis 3"));
    assert!(err(stack(&[], 0)).contains("at least one array"));
}

#[test]
fn rechunk_between_arbitrary_chunkings() {
    let a = data(&[10, 7]);
    let x = lazy(&a, &[4, 3]);
    for target in [
        vec![vec![10], vec![7]],
        vec![vec![1; 10], vec![2, 5]],
        vec![vec![3, 3, 4], vec![1, 6]],
        vec![vec![4, 4, 2], vec![7]],
    ] {
        let y = x.rechunk_to(target.clone()).unwrap();
        assert_eq!(y.chunks(), target.as_slice());
        assert_eq!(compute(&y), a);
    }
    // Whole-axis and sized chunks; identical chunks add no layer.
    let y = x.rechunk(&[ChunkSize::Whole, ChunkSize::Size(2)]).unwrap();
    assert_eq!(y.chunks(), &[vec![10], vec![2, 2, 2, 1]]);
    assert_eq!(compute(&y), a);
    assert_eq!(x.rechunk(&[4.into(), 3.into()]).unwrap().name(), x.name());
    // Auto: a small array fits in one block.
    let y = x.rechunk(&[ChunkSize::Auto, ChunkSize::Auto]).unwrap();
    assert_eq!(y.chunks(), &[vec![10], vec![7]]);
    assert_eq!(compute(&y), a);
    // A block inside one input block is a slice; an unchanged block an alias.
    let y = x.rechunk_to(vec![vec![4, 1, 3, 2], vec![3, 3, 1]]).unwrap();
    assert!(matches!(op_of(&y, &[0, 0]), Op::Alias));
    assert!(matches!(op_of(&y, &[1, 0]), Op::Array(_)));
    assert_eq!(compute(&y), a);
}

#[test]
fn rechunk_rows_to_columns_keeps_fan_in_bounded() {
    let a = data(&[200, 150]);
    let rows = lazy(&a, &[1, 150]);
    let cols = rows.rechunk(&[ChunkSize::Whole, ChunkSize::Size(1)]).unwrap();
    assert_eq!(cols.chunks(), &[vec![200], vec![1; 150]]);
    let graph = cols.graph();
    let widest = graph.iter().map(|(_, t)| t.deps.len()).max().unwrap();
    assert!(widest <= 64, "a task reads {widest} blocks");
    assert_eq!(compute(&cols), a);
    // And back.
    let back = cols.rechunk_to(vec![vec![1; 200], vec![150]]).unwrap();
    assert!(back.graph().iter().all(|(_, t)| t.deps.len() <= 64));
    assert_eq!(compute(&back), a);
}

#[test]
fn rechunk_errors_are_explicit() {
    let x = lazy(&data(&[10]), &[5]);
    let msg = err(x.rechunk_to(vec![vec![4, 4]]));
    let expected = format!(
        "cannot rechunk array {} of shape [10] to chunks [[4, 4]]: they cover 8 elements along axis 0",
        x.name()
    );
    assert!(msg.contains(&expected), "{msg}");
    let msg = err(x.rechunk_to(vec![vec![5, 0, 5]]));
    assert!(msg.contains("axis 0") && msg.contains("at least one element"), "{msg}");
    let msg = err(x.rechunk_to(vec![vec![10], vec![1]]));
    assert!(msg.contains("2 chunk lists") && msg.contains("1 axes"), "{msg}");
    let msg = err(x.rechunk(&[ChunkSize::Size(0)]));
    assert!(msg.contains("rechunk") && msg.contains(x.name()) && msg.contains("chunk size 0"), "{msg}");
    let msg = err(x.rechunk(&[ChunkSize::Whole, ChunkSize::Whole]));
    assert!(msg.contains(x.name()) && msg.contains("2 chunk sizes"), "{msg}");
}

#[test]
fn operations_compose() {
    let a = data(&[9, 8, 3]);
    let x = lazy(&a, &[2, 3, 2]);
    let y = x
        .slice(&[SliceArg::step(None, None, -2), SliceArg::range(1, 7), SliceArg::index(1)])
        .unwrap()
        .rechunk_to(vec![vec![5], vec![4, 2]])
        .unwrap()
        .t()
        .unwrap();
    let expected = reference_slice(&a, &[SliceArg::step(None, None, -2), SliceArg::range(1, 7), SliceArg::index(1)])
        .reversed_axes();
    assert_eq!(compute(&y), expected);
}

/// Per-axis chunk lengths from a list of "cut after this element" flags.
fn cuts_to_chunks(len: usize, cuts: &[bool]) -> Vec<u64> {
    if len == 0 {
        return vec![0];
    }
    let mut out = vec![];
    let mut run = 0;
    for (i, &cut) in cuts.iter().enumerate().take(len) {
        run += 1;
        if i + 1 == len || cut {
            out.push(run);
            run = 0;
        }
    }
    out
}

fn slice_arg(len: usize) -> BoxedStrategy<SliceArg> {
    let n = len as i64;
    let bound = proptest::option::of(-n..=n);
    let step = prop_oneof![-4i64..=-1, 1i64..=4];
    let range = (bound.clone(), bound, step).prop_map(|(start, stop, step)| SliceArg::Range { start, stop, step });
    if n == 0 {
        prop_oneof![Just(SliceArg::Full), range].boxed()
    } else {
        prop_oneof![Just(SliceArg::Full), range, (-n..n).prop_map(SliceArg::Index)].boxed()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn slice_equals_numpy(
        (shape, chunks, args, used) in proptest::collection::vec(0usize..9, 1..=3).prop_flat_map(|shape| {
            let chunks: Vec<_> = shape.iter().map(|&n| 1u64..=(n.max(1) as u64)).collect();
            let args: Vec<_> = shape.iter().map(|&n| slice_arg(n)).collect();
            let ndim = shape.len();
            (Just(shape), chunks, args, 0..=ndim)
        })
    ) {
        let a = data(&shape);
        let args = &args[..used];
        let y = lazy(&a, &chunks).slice(args).unwrap();
        prop_assert_eq!(compute(&y), reference_slice(&a, args));
    }

    #[test]
    fn rechunk_preserves_values(
        (shape, chunks, cuts) in proptest::collection::vec(0usize..12, 1..=3).prop_flat_map(|shape| {
            let chunks: Vec<_> = shape.iter().map(|&n| 1u64..=(n.max(1) as u64)).collect();
            let cuts: Vec<_> = shape.iter().map(|&n| proptest::collection::vec(any::<bool>(), n)).collect();
            (Just(shape), chunks, cuts)
        })
    ) {
        let a = data(&shape);
        let target: Vec<Vec<u64>> = shape.iter().zip(&cuts).map(|(&n, c)| cuts_to_chunks(n, c)).collect();
        let y = lazy(&a, &chunks).rechunk_to(target.clone()).unwrap();
        prop_assert_eq!(y.chunks(), target.as_slice());
        prop_assert_eq!(compute(&y), a);
    }

    #[test]
    fn slice_of_irregular_chunks_equals_numpy(
        (shape, cuts, args) in proptest::collection::vec(1usize..10, 1..=2).prop_flat_map(|shape| {
            let cuts: Vec<_> = shape.iter().map(|&n| proptest::collection::vec(any::<bool>(), n)).collect();
            let args: Vec<_> = shape.iter().map(|&n| slice_arg(n)).collect();
            (Just(shape), cuts, args)
        })
    ) {
        let a = data(&shape);
        let target: Vec<Vec<u64>> = shape.iter().zip(&cuts).map(|(&n, c)| cuts_to_chunks(n, c)).collect();
        let y = lazy(&a, &shape.iter().map(|&n| n as u64).collect::<Vec<_>>()).rechunk_to(target).unwrap();
        prop_assert_eq!(compute(&y.slice(&args).unwrap()), reference_slice(&a, &args));
    }
}
