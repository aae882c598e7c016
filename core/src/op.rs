//! [`Op`]: what a task does with the values of its dependencies.
//!
//! Built-in operations are data ([`ArrayOp`]) and run as native kernels on workers.
//! [`NativeFn`] wraps a Rust closure: it exists only inside one process, so a graph
//! holding one runs on `Client::local()` and refuses to serialise.

use crate::dtype::{DType, Scalar};
use crate::error::Result;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The operation of one task. Its arguments are the values of the task's dependencies,
/// in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Op {
    /// A value embedded in the graph (no arguments).
    Literal(Arc<Value>),
    /// Argument 0 itself, shared rather than copied (a block reused under a new key).
    Alias,
    /// A built-in array kernel.
    Array(ArrayOp),
    /// A Rust closure (local engine only).
    Native(NativeFn),
    /// Several steps fused into one task.
    Fused(Fused),
    /// A task function of a WebAssembly component (user code, run sandboxed).
    Wasm(WasmTask),
    /// A value the engine already holds for the client (a future's or a persisted
    /// block's): never run, never fused, stripped by [`Graph::without_held`] before
    /// a graph is submitted.
    ///
    /// [`Graph::without_held`]: crate::Graph::without_held
    Held(Held),
}

impl Op {
    /// True when the op works block by block, so a producer with this task as its only
    /// consumer may be fused into it without losing parallelism.
    pub fn is_blockwise(&self) -> bool {
        match self {
            Op::Literal(_) => false,
            Op::Alias => true,
            Op::Native(f) => f.blockwise,
            Op::Fused(_) => true,
            Op::Array(a) => a.is_blockwise(),
            Op::Wasm(w) => w.blockwise,
            Op::Held(_) => false,
        }
    }

    /// True for a built-in kernel that makes a block from nothing but its parameters
    /// (full, arange, random): cheaper to recompute in each consumer than to hold in
    /// memory and read back.
    pub fn is_generator(&self) -> bool {
        matches!(self, Op::Array(ArrayOp::Full { .. } | ArrayOp::Arange { .. } | ArrayOp::Random { .. }))
    }

    /// Calls `f` on this op and, for a fused task, on every step's op, in order.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Op)) {
        f(self);
        if let Op::Fused(fused) = self {
            fused.steps.iter().for_each(|step| step.op.walk(f));
        }
    }

    /// A short human-readable name (used in DOT output, progress bars and dashboards).
    pub fn name(&self) -> String {
        match self {
            Op::Literal(_) => "literal".into(),
            Op::Alias => "alias".into(),
            Op::Array(a) => a.name().into(),
            Op::Native(f) => f.name.to_string(),
            Op::Fused(f) => f.steps.iter().map(|s| s.op.name()).collect::<Vec<_>>().join("+"),
            Op::Wasm(w) => w.task.clone(),
            Op::Held(_) => "held".into(),
        }
    }
}

/// A call of task `task` of the WebAssembly component whose bytes hash to `module`.
///
/// Only the hash travels in the graph; the component's bytes are registered with each
/// worker once. The arguments are the task's dependencies, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmTask {
    /// The sha256 of the component's bytes, in lowercase hex.
    pub module: String,
    /// The task function's name within the component.
    pub task: String,
    /// Its parameters as a JSON document (`null` when it takes none).
    pub params: String,
    /// True when it maps blocks one to one (so it may be fused with its inputs).
    pub blockwise: bool,
    /// The part of an array result kept, one index range per axis, all of it when
    /// `None`: a block with a halo is mapped and trimmed in one step. The task is told
    /// the window and may return just that part; otherwise the kept part is copied
    /// straight out of the whole result it returned.
    pub window: Option<Vec<std::ops::Range<usize>>>,
}

/// A built-in kernel. Arguments come from the task's dependencies, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ArrayOp {
    /// A block filled with one value (no arguments).
    Full {
        /// The block's shape.
        shape: Vec<usize>,
        /// The value of every element.
        value: Scalar,
        /// The element type.
        dtype: DType,
    },
    /// A 1-D block of `start + (offset + i) * step` for `i < len` (no arguments).
    Arange {
        /// The whole range's first value.
        start: f64,
        /// The distance between values.
        step: f64,
        /// The block's first position in the whole range.
        offset: u64,
        /// The block's length.
        len: usize,
        /// The element type.
        dtype: DType,
    },
    /// A block of a seeded random array (no arguments). Each element depends only on
    /// the seed and its global index, so values do not depend on the chunking.
    Random {
        /// The distribution drawn from.
        dist: Distribution,
        /// The whole array's seed.
        seed: u64,
        /// The whole array's shape.
        array_shape: Vec<u64>,
        /// The block's position in the array.
        offset: Vec<u64>,
        /// The block's shape.
        shape: Vec<usize>,
        /// The element type.
        dtype: DType,
    },
    /// Reads the region `offset .. offset + shape` of a Zarr array (no arguments).
    ZarrRead {
        /// The store's URL (`file://`, `memory://`, `s3://`…).
        store: String,
        /// The array's path within the store.
        path: String,
        /// Where the region starts.
        offset: Vec<u64>,
        /// The region's shape.
        shape: Vec<usize>,
    },
    /// Writes argument 0 as chunk (or shard) `chunk` of a Zarr array; returns a boolean
    /// block of ones-shape holding `true`.
    ZarrWrite {
        /// The store's URL.
        store: String,
        /// The array's path within the store.
        path: String,
        /// The chunk's (or shard's) grid index.
        chunk: Vec<u64>,
    },
    /// One-argument element-wise function.
    Unary(UnaryOp),
    /// Two-argument element-wise function with NumPy broadcasting.
    Binary(BinaryOp),
    /// Element-wise function of argument 0 and a scalar (`x op s`, or `s op x` when
    /// `scalar_first`).
    BinaryScalar {
        /// The function.
        op: BinaryOp,
        /// The scalar operand.
        scalar: Scalar,
        /// True when the scalar is the left operand.
        scalar_first: bool,
    },
    /// `where(cond, x, y)` over three broadcast arguments.
    Where,
    /// Permutes the axes of argument 0.
    Transpose {
        /// The input axis each output axis comes from.
        axes: Vec<usize>,
    },
    /// Slices argument 0 (one [`AxisSlice`] per axis), then removes `drop_axes`
    /// (integer indexing).
    Slice {
        /// One slice per axis.
        slices: Vec<AxisSlice>,
        /// Axes removed after slicing (each sliced to length one).
        drop_axes: Vec<usize>,
    },
    /// Cuts `pieces[i]` (one range per axis) out of argument `i` and lays the pieces out
    /// on a grid of `grid` pieces per axis (row-major): rechunk, concatenate, halos.
    Assemble {
        /// Pieces per axis of the output.
        grid: Vec<usize>,
        /// For each argument, the `(start, stop)` range cut out of it on each axis.
        pieces: Vec<Vec<(usize, usize)>>,
    },
    /// Pads argument 0 by `(before, after)` elements per axis.
    Pad {
        /// Elements added `(before, after)` on each axis.
        widths: Vec<(usize, usize)>,
        /// What the new elements hold.
        mode: PadMode,
    },
    /// Inserts a new axis of length one at `axis`.
    ExpandDims {
        /// Where the new axis goes.
        axis: usize,
    },
    /// First step of a tree reduction: one block to a partial result (reduced axes kept
    /// with length one). `offset` is the block's global position and `array_shape` the
    /// whole array's shape (needed by argmin / argmax).
    ReduceChunk {
        /// The reduction.
        kind: ReduceKind,
        /// The axes reduced.
        axes: Vec<usize>,
        /// The block's position in the array.
        offset: Vec<u64>,
        /// The whole array's shape.
        array_shape: Vec<u64>,
    },
    /// Merges any number of partial results of the same shape.
    ReduceCombine {
        /// The reduction.
        kind: ReduceKind,
    },
    /// Turns a partial result into the final block; drops the reduced axes unless
    /// `keepdims`.
    ReduceFinalize {
        /// The reduction.
        kind: ReduceKind,
        /// The axes reduced.
        axes: Vec<usize>,
        /// Keep the reduced axes with length one.
        keepdims: bool,
    },
    /// Counts of argument 0's values in `bins` equal bins over `range` (u64, 1-D).
    Histogram {
        /// How many bins.
        bins: usize,
        /// The `(low, high)` range the bins split.
        range: (f64, f64),
    },
    /// Element-wise sum of all arguments (same shape), e.g. to merge histograms.
    AddN,
    /// Otsu's threshold from a histogram over `range`, as a 0-d float64 block.
    OtsuThreshold {
        /// The `(low, high)` range of the histogram's bins.
        range: (f64, f64),
    },
    /// Separable gaussian filter with one sigma per axis (`truncate` sigmas wide),
    /// the block's borders reflected; integer input gives float32 output. Only the
    /// `window` of the result (one index range per axis) is kept, all of it when `None`:
    /// a block with a halo is filtered and trimmed in one step.
    GaussianFilter {
        /// One standard deviation per axis (0 leaves an axis alone).
        sigma: Vec<f64>,
        /// The kernel's half-width in standard deviations.
        truncate: f64,
        /// The part of the result kept, one index range per axis.
        window: Option<Vec<std::ops::Range<usize>>>,
    },
}

impl ArrayOp {
    /// See [`Op::is_blockwise`].
    pub fn is_blockwise(&self) -> bool {
        !matches!(
            self,
            ArrayOp::Assemble { .. } | ArrayOp::ReduceCombine { .. } | ArrayOp::AddN | ArrayOp::OtsuThreshold { .. }
        )
    }

    /// A short name of the kernel.
    pub fn name(&self) -> &'static str {
        match self {
            ArrayOp::Full { .. } => "full",
            ArrayOp::Arange { .. } => "arange",
            ArrayOp::Random { .. } => "random",
            ArrayOp::ZarrRead { .. } => "read-zarr",
            ArrayOp::ZarrWrite { .. } => "write-zarr",
            ArrayOp::Unary(u) => u.name(),
            ArrayOp::Binary(b) | ArrayOp::BinaryScalar { op: b, .. } => b.name(),
            ArrayOp::Where => "where",
            ArrayOp::Transpose { .. } => "transpose",
            ArrayOp::Slice { .. } => "getitem",
            ArrayOp::Assemble { .. } => "assemble",
            ArrayOp::Pad { .. } => "pad",
            ArrayOp::ExpandDims { .. } => "expand-dims",
            ArrayOp::ReduceChunk { kind, .. } => kind.name(),
            ArrayOp::ReduceCombine { .. } => "combine",
            ArrayOp::ReduceFinalize { .. } => "aggregate",
            ArrayOp::Histogram { .. } => "histogram",
            ArrayOp::AddN => "add-n",
            ArrayOp::OtsuThreshold { .. } => "otsu",
            ArrayOp::GaussianFilter { .. } => "gaussian",
        }
    }
}

/// The distribution of [`ArrayOp::Random`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Distribution {
    /// Uniform on `[low, high)`.
    Uniform {
        /// The lowest value (included).
        low: f64,
        /// The highest value (excluded).
        high: f64,
    },
    /// Normal with mean `mean` and standard deviation `std`.
    Normal {
        /// The mean.
        mean: f64,
        /// The standard deviation.
        std: f64,
    },
}

/// One axis of a slice: elements `start, start + step, …` before `stop` for a positive
/// step; for a negative step, the elements of `start..stop` taken from the end every
/// `-step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxisSlice {
    /// First index (inclusive).
    pub start: usize,
    /// End index (exclusive).
    pub stop: usize,
    /// Stride, never zero.
    pub step: isize,
}

/// How [`ArrayOp::Pad`] fills the border.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum PadMode {
    /// Mirror including the edge element (`d c b a | a b c d`), as scipy's "reflect".
    Reflect,
    /// Repeat the edge element (`a a a a | a b c d`).
    Nearest,
    /// A constant value.
    Constant(Scalar),
}

/// Element-wise functions of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// Square root (float result).
    Sqrt,
    /// `e^x` (float result).
    Exp,
    /// Natural logarithm (float result).
    Log,
    /// Logical not (boolean input).
    Not,
    /// Converts to another element type.
    AsType(DType),
    /// Clamps to `[min, max]` (either bound optional).
    Clip {
        /// The lower bound, if any.
        min: Option<Scalar>,
        /// The upper bound, if any.
        max: Option<Scalar>,
    },
}

impl UnaryOp {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Not => "invert",
            UnaryOp::AsType(_) => "astype",
            UnaryOp::Clip { .. } => "clip",
        }
    }
}

/// Element-wise functions of two arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// True division (float result).
    Div,
    /// `a ** b`.
    Pow,
    /// Element-wise maximum.
    Maximum,
    /// Element-wise minimum.
    Minimum,
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
    /// Logical and.
    And,
    /// Logical or.
    Or,
}

impl BinaryOp {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "truediv",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
        }
    }

    /// True for comparisons and logical operations, whose result is boolean.
    pub fn is_predicate(&self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::And
                | BinaryOp::Or
        )
    }

    /// The result type for operands of type `a` and `b` (after promotion).
    pub fn result_dtype(&self, promoted: DType) -> DType {
        match self {
            _ if self.is_predicate() => DType::Bool,
            BinaryOp::Div if !promoted.is_float() => DType::F64,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Pow if promoted == DType::Bool => DType::I64,
            _ => promoted,
        }
    }
}

/// The reductions of [`ArrayOp::ReduceChunk`] and friends.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReduceKind {
    /// Sum (integers accumulate in 64 bits).
    Sum,
    /// Arithmetic mean (float64).
    Mean,
    /// Variance with `ddof` delta degrees of freedom (float64).
    Var {
        /// Delta degrees of freedom: the sum of squares is divided by `n - ddof`.
        ddof: f64,
    },
    /// Standard deviation with `ddof` delta degrees of freedom (float64).
    Std {
        /// Delta degrees of freedom: the sum of squares is divided by `n - ddof`.
        ddof: f64,
    },
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Index of the minimum (along one axis, or flat over all axes).
    ArgMin,
    /// Index of the maximum (along one axis, or flat over all axes).
    ArgMax,
    /// True if any element is non-zero.
    Any,
    /// True if every element is non-zero.
    All,
}

impl ReduceKind {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            ReduceKind::Sum => "sum",
            ReduceKind::Mean => "mean",
            ReduceKind::Var { .. } => "var",
            ReduceKind::Std { .. } => "std",
            ReduceKind::Min => "min",
            ReduceKind::Max => "max",
            ReduceKind::ArgMin => "argmin",
            ReduceKind::ArgMax => "argmax",
            ReduceKind::Any => "any",
            ReduceKind::All => "all",
        }
    }

    /// The element type of the final result for input of type `input`.
    pub fn result_dtype(&self, input: DType) -> DType {
        match self {
            ReduceKind::Sum => input.sum_type(),
            ReduceKind::Mean | ReduceKind::Var { .. } | ReduceKind::Std { .. } => {
                if input == DType::F32 {
                    DType::F32
                } else {
                    DType::F64
                }
            }
            ReduceKind::Min | ReduceKind::Max => input,
            ReduceKind::ArgMin | ReduceKind::ArgMax => DType::I64,
            ReduceKind::Any | ReduceKind::All => DType::Bool,
        }
    }
}

/// Steps run one after another inside a single task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fused {
    /// The steps in execution order; the last one's value is the task's result.
    pub steps: Vec<FusedStep>,
}

/// One step of a [`Fused`] task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FusedStep {
    /// What the step does.
    pub op: Op,
    /// Where its arguments come from.
    pub args: Vec<FusedArg>,
}

/// An argument of a [`FusedStep`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FusedArg {
    /// The fused task's `n`th dependency.
    Input(usize),
    /// The result of an earlier step.
    Step(usize),
}

/// The signature of a native task function.
pub type NativeFnBody = dyn Fn(&[&Value]) -> Result<Value> + Send + Sync;

/// A Rust closure used as a task (local engine only; it cannot leave the process).
#[derive(Clone)]
pub struct NativeFn {
    /// The name shown in graphs and errors.
    pub name: Arc<str>,
    /// True when it maps blocks one to one (so it may be fused with its inputs).
    pub blockwise: bool,
    /// The function.
    pub body: Arc<NativeFnBody>,
}

impl NativeFn {
    /// Wraps a closure taking the task's argument values.
    pub fn new(
        name: impl Into<Arc<str>>,
        blockwise: bool,
        body: impl Fn(&[&Value]) -> Result<Value> + Send + Sync + 'static,
    ) -> Self {
        NativeFn { name: name.into(), blockwise, body: Arc::new(body) }
    }
}

impl fmt::Debug for NativeFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NativeFn({})", self.name)
    }
}

impl Serialize for NativeFn {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(format!(
            "task function `{}` is a native Rust closure: it runs only on Client::local(); \
             use a WASM task to run it on a remote cluster",
            self.name
        )))
    }
}

impl<'de> Deserialize<'de> for NativeFn {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("a native Rust closure cannot be deserialised"))
    }
}

/// Keeps a value alive on the engine while any graph refers to it: the guard is
/// whatever the client uses to say "I still want this key" (its submission), dropped
/// with the last graph or future that names the key. It lives only in the client's
/// process and refuses to serialise.
#[derive(Clone)]
pub struct Held(pub Arc<dyn std::any::Any + Send + Sync>);

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Held")
    }
}

impl Serialize for Held {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("a held value is already on the engine; strip it with Graph::without_held"))
    }
}

impl<'de> Deserialize<'de> for Held {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("a held value cannot be deserialised"))
    }
}
