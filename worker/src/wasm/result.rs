//! A task's result as it is lifted out of the task's memory: an array's elements are
//! copied once, from the guest's memory straight into a chunk of their type.
//!
//! The generated bindings would lift an `ndarray`'s `data: list<u8>` into a `Vec<u8>`,
//! which the chunk then copies again into elements of its type: two copies of what is
//! often the largest buffer a task makes. [`TaskValue`] has the WIT type of the
//! contract's `value`, and its array case, [`TaskArray`], lifts the `ndarray` record
//! itself: it reads `dtype` and `shape`, then copies `data` from the guest's memory
//! into the chunk. It must happen during the lift: once the call returns, the guest
//! has freed the buffer.
//!
//! [`TaskArray`]'s component-type glue is what wasmtime's derive macros write for a
//! record, from the same `__internal` items (wasmtime is pinned to one version). Its
//! WIT type is checked against the component's when the call is looked up, so a
//! contract it does not match fails every call, and the tests, at once.

use super::bindings::tessera::task::types::Dtype;
use super::builder::ArrayBuilder;
use super::convert::from_wit_dtype;
use tessera_core::{Chunk, Error, Result};
use wasmtime::ValRaw;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext, bad_type_info, typecheck_record,
};
use wasmtime::component::{ComponentType, Lift, Resource, WasmList};

/// A task's result (the contract's `value`), its array already a chunk.
#[derive(ComponentType, Lift)]
#[component(variant)]
pub enum TaskValue {
    /// One block of an array.
    #[component(name = "array")]
    Array(TaskArray),
    /// An array the task wrote through an `array-builder`, still in the task's store.
    #[component(name = "built")]
    Built(Resource<ArrayBuilder>),
    /// A table as an Arrow IPC stream.
    #[component(name = "table")]
    Table(Vec<u8>),
    /// Opaque bytes.
    #[component(name = "bytes")]
    Bytes(Vec<u8>),
    /// A JSON document.
    #[component(name = "json")]
    Json(String),
}

/// A task's `ndarray`: its shape as the task gave it, and the chunk its data makes
/// (or why the data does not make one).
pub struct TaskArray {
    /// The shape the task returned.
    pub shape: Vec<u64>,
    /// The array, or a message saying why `dtype`, `shape` and `data` disagree.
    pub chunk: Result<Chunk>,
}

/// The flat form of an `ndarray` (each field's own flat form, in order), as wasmtime's
/// derive macro lays out a record's.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct TaskArrayFlat {
    dtype: <Dtype as ComponentType>::Lower,
    shape: <Vec<u64> as ComponentType>::Lower,
    data: <WasmList<u8> as ComponentType>::Lower,
    _align: [ValRaw; 0],
}

// SAFETY: `Lower` is the flat form of `record { dtype, shape: list<u64>, data:
// list<u8> }`, `ABI` that record's layout, and `typecheck` accepts only that record.
unsafe impl ComponentType for TaskArray {
    type Lower = TaskArrayFlat;

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::record_static(&[
        <Dtype as ComponentType>::ABI,
        <Vec<u64> as ComponentType>::ABI,
        <WasmList<u8> as ComponentType>::ABI,
    ]);

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        typecheck_record(
            ty,
            types,
            &[
                ("dtype", <Dtype as ComponentType>::typecheck),
                ("shape", <Vec<u64> as ComponentType>::typecheck),
                ("data", <WasmList<u8> as ComponentType>::typecheck),
            ],
        )
    }
}

// SAFETY: both lifts read the fields at the places `ABI` and `Lower` give them, and
// `data` only through the bounds-checked view of the guest's memory.
unsafe impl Lift for TaskArray {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> wasmtime::Result<Self> {
        let fields = record_fields(cx, ty);
        let dtype = Dtype::linear_lift_from_flat(cx, fields[0], &src.dtype)?;
        let shape = <Vec<u64>>::linear_lift_from_flat(cx, fields[1], &src.shape)?;
        let (ptr, len) = (src.data[0].get_u32(), src.data[1].get_u32());
        Ok(TaskArray::copied(cx, dtype, shape, ptr, len))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        let fields = record_fields(cx, ty);
        let mut offset = 0;
        let mut field = |abi: CanonicalAbiInfo| {
            let start = abi.next_field32_size(&mut offset);
            &bytes[start..][..abi.size32 as usize]
        };
        let (dtype_bytes, shape_bytes) = (field(Dtype::ABI), field(<Vec<u64>>::ABI));
        let data_bytes = field(<WasmList<u8>>::ABI);
        let dtype = Dtype::linear_lift_from_memory(cx, fields[0], dtype_bytes)?;
        let shape = <Vec<u64>>::linear_lift_from_memory(cx, fields[1], shape_bytes)?;
        let word = |at: usize| u32::from_le_bytes(data_bytes[at..at + 4].try_into().expect("4 bytes"));
        Ok(TaskArray::copied(cx, dtype, shape, word(0), word(4)))
    }
}

impl TaskArray {
    /// The array whose `len` bytes of data start at `ptr` in the guest's memory.
    fn copied(cx: &LiftContext<'_>, dtype: Dtype, shape: Vec<u64>, ptr: u32, len: u32) -> TaskArray {
        let memory = cx.memory();
        let data = memory.get(ptr as usize..).and_then(|m| m.get(..len as usize)).ok_or_else(|| {
            Error::invalid(
                "wasm",
                format!(
                    "the task's array data ({len} bytes at {ptr}) lies outside its memory of {} bytes",
                    memory.len()
                ),
            )
        });
        let dims = shape.iter().map(|&n| usize::try_from(n)).collect::<std::result::Result<Vec<_>, _>>();
        let dims = dims.map_err(|_| Error::invalid("wasm", format!("array shape {shape:?} is too large")));
        let chunk = data.and_then(|data| Chunk::from_le_bytes(from_wit_dtype(dtype), dims?, data));
        TaskArray { shape, chunk }
    }
}

/// The types of the three fields of the record `ty` (an `ndarray`, as typechecked).
fn record_fields(cx: &LiftContext<'_>, ty: InterfaceType) -> [InterfaceType; 3] {
    match ty {
        InterfaceType::Record(i) => {
            let fields = &cx.types[i].fields;
            [fields[0].ty, fields[1].ty, fields[2].ty]
        }
        _ => bad_type_info(),
    }
}
