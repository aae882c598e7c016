//! Write Tessera tasks as plain Rust functions and build them into a WebAssembly
//! component for the `tessera:task` world (`core/wit/tessera.wit`).
//!
//! ```ignore
//! use tessera_guest::{ArrayD, task};
//!
//! #[derive(serde::Deserialize)]
//! struct Params { threshold: f64 }
//!
//! /// Pixels brighter than the threshold.
//! #[task]
//! fn mask(image: ArrayD<f32>, #[params] p: Params) -> ArrayD<bool> {
//!     image.mapv(|v| f64::from(v) > p.threshold)
//! }
//!
//! tessera_guest::export_tasks!(mask);
//! ```
//!
//! Arguments are the task's inputs in order, converted by [`FromValue`]: typed arrays
//! (`ArrayD<T>` or any `Array<T, D>` for the [`Element`] types, [`AnyArray`] for any
//! dtype, or [`ArrayBuf`] and [`AnyArrayBuf`], which keep the bytes as they arrived,
//! without a copy), `Vec<u8>` (bytes), [`Table`] (an Arrow IPC stream) and
//! `serde_json::Value`. One argument may be marked `#[params]` (deserialised with serde
//! from the caller's JSON parameters), one `#[rest]` (a `Vec` of all remaining inputs),
//! and one may be a [`Context`] (or `&Context`): the task key, block index and seed,
//! and under `map_overlap` the window of its block. A task returns anything
//! [`IntoValue`], or `Result` of it with an error that implements `Display`. A large
//! numeric result is best built in an [`ArrayBuf`], which is returned without a copy,
//! or, when it is computed a part at a time, written part by part to an
//! [`ArrayBuilder`], which the host assembles: then the whole array is never held in
//! the task's memory.
//!
//! Wrong inputs come back to the caller as messages that name the task and the
//! argument ("task `mask`: argument 1 `image`: expected an array of float32, got an
//! array of uint16"). Authors write no unsafe code: the bindings live in this crate.

#![deny(missing_docs)]

extern crate self as tessera_guest;

use std::fmt::Display;

mod array_buf;
mod array_builder;

pub use array_buf::ArrayBuf;
pub use array_builder::ArrayBuilder;
pub use ndarray;
pub use ndarray::{ArrayD, ArrayViewD};
pub use serde_json;
pub use tessera_guest_macros::task;

/// The bindings wit-bindgen generates for the `tessera:task` world.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../core/wit",
        world: "tessera:task/task",
        pub_export_macro: true,
        export_macro_name: "__export_task_world",
        default_bindings_module: "::tessera_guest::bindings",
        runtime_path: "::tessera_guest::__private::wit_bindgen_rt",
    });
}

use bindings::tessera::task::types::{Dtype, Ndarray};

/// A task argument or result as it crosses the component boundary.
pub use bindings::tessera::task::types::Value as WitValue;

/// Where a call sits in the computation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The key of the task being run, e.g. `smooth-3f2a(1,0,2)`.
    pub key: String,
    /// The block index of the task's output (empty for a scalar result).
    pub block_index: Vec<u64>,
    /// A seed derived from the key: the same task gets the same seed on every run.
    pub seed: u64,
    /// For a task mapped over blocks with a halo (`map_overlap`): per axis, where its
    /// block lies within the extended block it was given. The task may return just
    /// that part of its result (skipping the work on the halo), or the whole extended
    /// block, which the host then cuts. Empty for every other task.
    pub window: Vec<std::ops::Range<usize>>,
}

/// A table as an Arrow IPC stream (decode it with the `arrow-ipc` crate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table(pub Vec<u8>);

mod sealed {
    pub trait Sealed {}
}

/// Element types an array can hold on the wire (C order, little endian).
pub trait Element: sealed::Sealed + Copy + 'static {
    /// The NumPy name of the type (`"float32"`, `"uint16"`, …).
    const NAME: &'static str;
    #[doc(hidden)]
    const DTYPE: Dtype;
    #[doc(hidden)]
    const SIZE: usize;
    /// The elements whose little-endian bytes `bytes` holds (a multiple of `SIZE`).
    #[doc(hidden)]
    fn from_le_bytes(bytes: &[u8]) -> Vec<Self>;
    /// The elements' little-endian bytes (borrowed where they are the elements).
    #[doc(hidden)]
    fn le_bytes(values: &[Self]) -> std::borrow::Cow<'_, [u8]>;
}

// WebAssembly is little endian, so a numeric slice's bytes are its wire encoding and
// crossing is one copy; bytes the host placed unaligned are read element by element.
macro_rules! numeric_element {
    ($($t:ty => $dtype:ident, $name:literal;)*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const NAME: &'static str = $name;
            const DTYPE: Dtype = Dtype::$dtype;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le_bytes(bytes: &[u8]) -> Vec<Self> {
                match bytemuck::try_cast_slice(bytes) {
                    Ok(values) => <[$t]>::to_vec(values),
                    Err(_) => bytes.chunks_exact(Self::SIZE).map(bytemuck::pod_read_unaligned).collect(),
                }
            }
            fn le_bytes(values: &[Self]) -> std::borrow::Cow<'_, [u8]> {
                std::borrow::Cow::Borrowed(bytemuck::cast_slice(values))
            }
        }
        impl Number for $t {
            fn cast(bytes: &[u8]) -> Option<&[Self]> {
                if bytes.is_empty() { Some(&[]) } else { bytemuck::try_cast_slice(bytes).ok() }
            }
            fn cast_mut(bytes: &mut [u8]) -> Option<&mut [Self]> {
                if bytes.is_empty() { Some(&mut []) } else { bytemuck::try_cast_slice_mut(bytes).ok() }
            }
        }
    )*};
}

/// The numeric element types (every [`Element`] but `bool`): any bytes of the right
/// length are valid values, so an array of them can live in its wire bytes
/// ([`ArrayBuf`]).
pub trait Number: Element {
    /// The elements `bytes` holds, or `None` when `bytes` is not aligned for them.
    #[doc(hidden)]
    fn cast(bytes: &[u8]) -> Option<&[Self]>;
    /// The elements `bytes` holds, to change, or `None` when `bytes` is not aligned
    /// for them.
    #[doc(hidden)]
    fn cast_mut(bytes: &mut [u8]) -> Option<&mut [Self]>;
}

#[cfg(target_endian = "big")]
compile_error!("Tessera's array byte layout is little endian");

numeric_element! {
    i8 => I8, "int8";
    i16 => I16, "int16";
    i32 => I32, "int32";
    i64 => I64, "int64";
    u8 => U8, "uint8";
    u16 => U16, "uint16";
    u32 => U32, "uint32";
    u64 => U64, "uint64";
    f32 => F32, "float32";
    f64 => F64, "float64";
}

impl sealed::Sealed for bool {}
impl Element for bool {
    const NAME: &'static str = "bool";
    const DTYPE: Dtype = Dtype::Bool;
    const SIZE: usize = 1;
    fn from_le_bytes(bytes: &[u8]) -> Vec<Self> {
        bytes.iter().map(|&b| b != 0).collect()
    }
    fn le_bytes(values: &[Self]) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Owned(values.iter().map(|&v| u8::from(v)).collect())
    }
}

/// The NumPy name of a wire dtype.
fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::Bool => "bool",
        Dtype::I8 => "int8",
        Dtype::I16 => "int16",
        Dtype::I32 => "int32",
        Dtype::I64 => "int64",
        Dtype::U8 => "uint8",
        Dtype::U16 => "uint16",
        Dtype::U32 => "uint32",
        Dtype::U64 => "uint64",
        Dtype::F32 => "float32",
        Dtype::F64 => "float64",
    }
}

/// A short description of a wire value, for error messages.
fn describe(v: &WitValue) -> String {
    match v {
        WitValue::Array(a) => format!("an array of {} with shape {:?}", dtype_name(a.dtype), a.shape),
        WitValue::Table(_) => "a table".into(),
        WitValue::Bytes(_) => "bytes".into(),
        WitValue::Json(_) => "JSON".into(),
        WitValue::Built(_) => "an array builder".into(),
    }
}

/// Types a task can take as an input argument.
pub trait FromValue: Sized {
    /// Converts the wire value, or says what was expected instead.
    fn from_value(v: WitValue) -> Result<Self, String>;
}

/// The shape and bytes of an array argument of `T`, checked to hold the whole shape.
fn array_parts<T: Element>(v: WitValue) -> Result<(Vec<usize>, Vec<u8>), String> {
    let WitValue::Array(a) = v else {
        return Err(format!("expected an array of {}, got {}", T::NAME, describe(&v)));
    };
    if a.dtype != T::DTYPE {
        return Err(format!("expected an array of {}, got {}", T::NAME, describe(&WitValue::Array(a))));
    }
    let shape = a.shape.iter().map(|&n| usize::try_from(n)).collect::<Result<Vec<_>, _>>();
    let shape = shape.map_err(|_| format!("shape {:?} does not fit in memory", a.shape))?;
    let len = shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
    if len.and_then(|n| n.checked_mul(T::SIZE)) != Some(a.data.len()) {
        return Err(format!("{} bytes of data do not fit shape {:?} of {}", a.data.len(), a.shape, T::NAME));
    }
    Ok((shape, a.data))
}

impl<T: Element, D: ndarray::Dimension> FromValue for ndarray::Array<T, D> {
    fn from_value(v: WitValue) -> Result<Self, String> {
        let (shape, data) = array_parts::<T>(v)?;
        let elements = T::from_le_bytes(&data);
        let dynamic = ArrayD::from_shape_vec(shape, elements).map_err(|e| e.to_string())?;
        let ndim = dynamic.ndim();
        let shape = dynamic.shape().to_vec();
        dynamic.into_dimensionality::<D>().map_err(|_| match D::NDIM {
            Some(n) => format!("expected a {n}-d array of {}, got a {ndim}-d one with shape {shape:?}", T::NAME),
            None => format!("unexpected shape {shape:?}"),
        })
    }
}

impl<T: Number> FromValue for ArrayBuf<T> {
    fn from_value(v: WitValue) -> Result<Self, String> {
        let (shape, data) = array_parts::<T>(v)?;
        Ok(ArrayBuf::from_bytes(shape, data))
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: WitValue) -> Result<Self, String> {
        match v {
            WitValue::Bytes(b) => Ok(b),
            other => Err(format!("expected bytes, got {}", describe(&other))),
        }
    }
}

impl FromValue for Table {
    fn from_value(v: WitValue) -> Result<Self, String> {
        match v {
            WitValue::Table(b) => Ok(Table(b)),
            other => Err(format!("expected a table, got {}", describe(&other))),
        }
    }
}

impl FromValue for serde_json::Value {
    fn from_value(v: WitValue) -> Result<Self, String> {
        match v {
            WitValue::Json(s) => serde_json::from_str(&s).map_err(|e| format!("invalid JSON: {e}")),
            other => Err(format!("expected JSON, got {}", describe(&other))),
        }
    }
}

/// An array whose element type is known only at run time, for tasks that accept any
/// dtype.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum AnyArray {
    Bool(ArrayD<bool>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

/// Runs `$body` with `$a` bound to the typed array of every numeric variant of `$any`
/// ([`AnyArray`] or [`AnyArrayBuf`]), and `$bool` for the boolean one.
macro_rules! any_array_map {
    ($any:ident, $x:expr, $a:ident => $body:expr, bool => $bool:expr) => {
        match $x {
            $any::Bool($a) => $bool,
            $any::I8($a) => $body,
            $any::I16($a) => $body,
            $any::I32($a) => $body,
            $any::I64($a) => $body,
            $any::U8($a) => $body,
            $any::U16($a) => $body,
            $any::U32($a) => $body,
            $any::U64($a) => $body,
            $any::F32($a) => $body,
            $any::F64($a) => $body,
        }
    };
}

impl AnyArray {
    /// The NumPy name of the element type.
    pub fn dtype(&self) -> &'static str {
        fn name<T: Element>(_: &ArrayD<T>) -> &'static str {
            T::NAME
        }
        any_array_map!(AnyArray, self, a => name(a), bool => name(a))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        any_array_map!(AnyArray, self, a => a.shape(), bool => a.shape())
    }

    /// The values converted to float32 with `as` (booleans become 0 or 1).
    pub fn to_f32(&self) -> ArrayD<f32> {
        any_array_map!(AnyArray, self, a => a.mapv(|v| v as f32), bool => a.mapv(|v| f32::from(u8::from(v))))
    }

    /// The values converted to float64 with `as` (booleans become 0 or 1).
    pub fn to_f64(&self) -> ArrayD<f64> {
        any_array_map!(AnyArray, self, a => a.mapv(|v| v as f64), bool => a.mapv(|v| f64::from(u8::from(v))))
    }
}

/// Converts an array argument into the variant of `$any` for its dtype.
macro_rules! any_from_value {
    ($any:ident, $v:expr) => {{
        let v = $v;
        let WitValue::Array(a) = &v else {
            return Err(format!("expected an array, got {}", describe(&v)));
        };
        Ok(match a.dtype {
            Dtype::Bool => $any::Bool(FromValue::from_value(v)?),
            Dtype::I8 => $any::I8(FromValue::from_value(v)?),
            Dtype::I16 => $any::I16(FromValue::from_value(v)?),
            Dtype::I32 => $any::I32(FromValue::from_value(v)?),
            Dtype::I64 => $any::I64(FromValue::from_value(v)?),
            Dtype::U8 => $any::U8(FromValue::from_value(v)?),
            Dtype::U16 => $any::U16(FromValue::from_value(v)?),
            Dtype::U32 => $any::U32(FromValue::from_value(v)?),
            Dtype::U64 => $any::U64(FromValue::from_value(v)?),
            Dtype::F32 => $any::F32(FromValue::from_value(v)?),
            Dtype::F64 => $any::F64(FromValue::from_value(v)?),
        })
    }};
}

impl FromValue for AnyArray {
    fn from_value(v: WitValue) -> Result<Self, String> {
        any_from_value!(AnyArray, v)
    }
}

/// An array argument whose element type is known only at run time, kept in the bytes
/// it arrived in ([`ArrayBuf`]) so taking it copies nothing; booleans, for which not
/// every byte is a valid value, arrive as an ndarray.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum AnyArrayBuf {
    Bool(ArrayD<bool>),
    I8(ArrayBuf<i8>),
    I16(ArrayBuf<i16>),
    I32(ArrayBuf<i32>),
    I64(ArrayBuf<i64>),
    U8(ArrayBuf<u8>),
    U16(ArrayBuf<u16>),
    U32(ArrayBuf<u32>),
    U64(ArrayBuf<u64>),
    F32(ArrayBuf<f32>),
    F64(ArrayBuf<f64>),
}

impl AnyArrayBuf {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        any_array_map!(AnyArrayBuf, self, a => a.shape(), bool => a.shape())
    }
}

impl FromValue for AnyArrayBuf {
    fn from_value(v: WitValue) -> Result<Self, String> {
        any_from_value!(AnyArrayBuf, v)
    }
}

impl IntoValue for AnyArrayBuf {
    fn into_value(self) -> WitValue {
        any_array_map!(AnyArrayBuf, self, a => a.into_value(), bool => a.into_value())
    }
}

impl IntoValue for AnyArray {
    fn into_value(self) -> WitValue {
        any_array_map!(AnyArray, self, a => a.into_value(), bool => a.into_value())
    }
}

/// Types a task can return.
pub trait IntoValue {
    /// Converts to the wire value.
    fn into_value(self) -> WitValue;
}

impl<T: Element, D: ndarray::Dimension> IntoValue for ndarray::Array<T, D> {
    fn into_value(self) -> WitValue {
        let shape = self.shape().iter().map(|&n| n as u64).collect();
        let data = match self.as_slice() {
            Some(values) => T::le_bytes(values).into_owned(),
            None => T::le_bytes(&self.iter().copied().collect::<Vec<T>>()).into_owned(),
        };
        WitValue::Array(Ndarray { dtype: T::DTYPE, shape, data })
    }
}

macro_rules! scalar_into_value {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            /// A zero-dimensional array.
            fn into_value(self) -> WitValue {
                ndarray::arr0(self).into_value()
            }
        }
    )*};
}
scalar_into_value!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl IntoValue for Vec<u8> {
    fn into_value(self) -> WitValue {
        WitValue::Bytes(self)
    }
}

impl IntoValue for Table {
    fn into_value(self) -> WitValue {
        WitValue::Table(self.0)
    }
}

impl IntoValue for serde_json::Value {
    fn into_value(self) -> WitValue {
        WitValue::Json(self.to_string())
    }
}

/// A wire value as it is, for a task that builds its result itself.
impl IntoValue for WitValue {
    fn into_value(self) -> WitValue {
        self
    }
}

/// What a task function may return: a value, or `Result` of one with a displayable
/// error (whose text reaches the caller).
pub trait TaskOutput {
    /// The wire value, or the error's message.
    fn into_output(self) -> Result<WitValue, String>;
}

impl<R: IntoValue> TaskOutput for R {
    fn into_output(self) -> Result<WitValue, String> {
        Ok(self.into_value())
    }
}

impl<R: IntoValue, E: Display> TaskOutput for Result<R, E> {
    fn into_output(self) -> Result<WitValue, String> {
        self.map(IntoValue::into_value).map_err(|e| e.to_string())
    }
}

/// What `#[task]` and [`export_tasks!`] expand to; not for direct use.
#[doc(hidden)]
pub mod __private {
    use super::*;
    use crate::bindings::tessera::task::types::{Context as WitContext, TaskInfo};

    pub use wit_bindgen::rt as wit_bindgen_rt;

    /// The signature of the wrapper `#[task]` generates.
    pub type CallFn = fn(Vec<WitValue>, &str, &Context) -> Result<WitValue, String>;

    /// One task function of a component.
    pub struct Task {
        /// Its name (the Rust function's name).
        pub name: &'static str,
        /// The first paragraph of its doc comment.
        pub doc: &'static str,
        /// Its arguments and result as declared.
        pub signature: &'static str,
        /// The wrapper that converts arguments and result.
        pub call: CallFn,
    }

    /// The inputs of one call, handed out to the arguments in order.
    pub struct Args {
        task: &'static str,
        values: std::vec::IntoIter<WitValue>,
        position: usize,
    }

    impl Args {
        /// Checks the number of inputs: exactly `fixed.len()`, or at least that many
        /// when the task has a `#[rest]` argument.
        pub fn new(task: &'static str, values: Vec<WitValue>, fixed: &[&str], rest: bool) -> Result<Args, String> {
            let n = values.len();
            let ok = if rest { n >= fixed.len() } else { n == fixed.len() };
            if !ok {
                let expected = match (rest, fixed.len()) {
                    (true, k) => format!("at least {k}"),
                    (false, 1) => "1 argument".into(),
                    (false, k) => format!("{k} arguments"),
                };
                return Err(format!("task `{task}` takes {expected} ({}), got {n}", fixed.join(", ")));
            }
            Ok(Args { task, values: values.into_iter(), position: 0 })
        }

        /// Converts the next input for argument `name`.
        pub fn next<T: FromValue>(&mut self, name: &str) -> Result<T, String> {
            self.position += 1;
            let value =
                self.values.next().ok_or_else(|| format!("task `{}`: argument `{name}` is missing", self.task))?;
            T::from_value(value).map_err(|e| format!("task `{}`: argument {} `{name}`: {e}", self.task, self.position))
        }

        /// Converts every remaining input for the `#[rest]` argument `name`.
        pub fn rest<T: FromValue>(&mut self, name: &str) -> Result<Vec<T>, String> {
            let mut out = Vec::with_capacity(self.values.len());
            while self.values.len() > 0 {
                out.push(self.next(name)?);
            }
            Ok(out)
        }
    }

    /// Deserialises the `#[params]` argument of `task` from the caller's JSON (an empty
    /// string counts as `null`).
    pub fn params<P: serde::de::DeserializeOwned>(task: &str, json: &str) -> Result<P, String> {
        let json = if json.trim().is_empty() { "null" } else { json };
        serde_json::from_str(json).map_err(|e| format!("task `{task}`: params {json}: {e}"))
    }

    /// Converts a task's return value, naming the task in an error.
    pub fn output<R: TaskOutput>(task: &str, r: R) -> Result<WitValue, String> {
        r.into_output().map_err(|e| format!("task `{task}`: {e}"))
    }

    /// Runs the task called `name` among `tasks`.
    pub fn dispatch(
        tasks: &[&Task],
        name: String,
        args: Vec<WitValue>,
        params: String,
        ctx: WitContext,
    ) -> Result<WitValue, String> {
        let Some(task) = tasks.iter().find(|t| t.name == name) else {
            let known: Vec<&str> = tasks.iter().map(|t| t.name).collect();
            return Err(format!("no task `{name}` in this component (it has: {})", known.join(", ")));
        };
        // A span past wasm32's address space cannot be indexed anyway: it saturates.
        let index = |i: u64| usize::try_from(i).unwrap_or(usize::MAX);
        let window = ctx.window.iter().map(|s| index(s.start)..index(s.end)).collect();
        let ctx = Context { key: ctx.key, block_index: ctx.block_index, seed: ctx.seed, window };
        let result = (task.call)(args, &params, &ctx);
        // The instance ends with the call: what is still buffered (a last line with no
        // newline) must reach the host's capture now. A failed flush loses only output.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        result
    }

    /// The `tasks` export: what `tasks` holds, for people.
    pub fn list(tasks: &[&Task]) -> Vec<TaskInfo> {
        tasks
            .iter()
            .map(|t| TaskInfo { name: t.name.into(), doc: t.doc.into(), signature: t.signature.into() })
            .collect()
    }
}

/// Exports the listed `#[task]` functions as this crate's component.
///
/// Call it once, at the crate root, with every task the component provides:
/// `tessera_guest::export_tasks!(gaussian, probes::spin);`.
#[macro_export]
macro_rules! export_tasks {
    ($($($task:ident)::+),+ $(,)?) => {
        #[allow(unsafe_code)]
        const _: () = {
            const TASKS: &[&$crate::__private::Task] = &[$(&$($task)::+::TASK),+];

            struct Component;

            impl $crate::bindings::Guest for Component {
                fn call(
                    name: ::std::string::String,
                    args: ::std::vec::Vec<$crate::WitValue>,
                    params: ::std::string::String,
                    ctx: $crate::bindings::tessera::task::types::Context,
                ) -> ::std::result::Result<$crate::WitValue, ::std::string::String> {
                    $crate::__private::dispatch(TASKS, name, args, params, ctx)
                }

                fn tasks() -> ::std::vec::Vec<$crate::bindings::tessera::task::types::TaskInfo> {
                    $crate::__private::list(TASKS)
                }
            }

            $crate::bindings::__export_task_world!(Component with_types_in $crate::bindings);
        };
    };
}
