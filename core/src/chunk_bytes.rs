//! Chunks as little-endian bytes in C order, one byte (0 or 1) per boolean: how arrays
//! cross the WASM boundary and the network, and how [`Chunk`] serialises.
//!
//! Serialised, a chunk is the tuple `(dtype, shape, bytes)`; binary formats carry the
//! bytes as one block (no per-element encoding), so moving a chunk costs a copy.

use crate::chunk::Chunk;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::layout::to_standard;
use crate::{chunk_map, with_dtype};
use ndarray::ArrayD;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

#[cfg(target_endian = "big")]
compile_error!("Tessera's array byte layout is little endian and assumes a little-endian host");

/// Element types whose in-memory bytes are their little-endian encoding.
trait RawElement: Element + bytemuck::NoUninit {
    /// Appends the elements encoded in `bytes` (whose length is a multiple of the
    /// size) to `out`.
    fn extend_le(out: &mut Vec<Self>, bytes: &[u8]);

    /// The elements encoded in `bytes`.
    fn collect(bytes: &[u8]) -> Vec<Self> {
        let mut out = Vec::with_capacity(bytes.len() / std::mem::size_of::<Self>());
        Self::extend_le(&mut out, bytes);
        out
    }
}

macro_rules! raw_numeric {
    ($($t:ty),*) => {$(
        impl RawElement for $t {
            fn extend_le(out: &mut Vec<Self>, bytes: &[u8]) {
                // Aligned bytes (any allocation from the heap) are one copy; otherwise
                // element by element into the capacity, still half the time of
                // zero-filling and copying over it (`pod_collect_to_vec`).
                match bytemuck::try_cast_slice(bytes) {
                    Ok(values) => out.extend_from_slice(values),
                    Err(_) => out.extend(bytes.chunks_exact(std::mem::size_of::<$t>()).map(bytemuck::pod_read_unaligned::<$t>)),
                }
            }
        }
    )*};
}
raw_numeric!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl RawElement for bool {
    fn extend_le(out: &mut Vec<Self>, bytes: &[u8]) {
        out.extend(bytes.iter().map(|&b| b != 0));
    }
}

/// The elements of a [`ChunkBuilder`] so far, whatever their type.
trait ElementSink: Send {
    /// Elements written.
    fn written(&self) -> usize;
    /// Makes room for `n` more elements.
    fn reserve(&mut self, n: usize);
    /// Appends the elements `bytes` encodes (whole elements).
    fn append(&mut self, bytes: &[u8]);
    /// The chunk of `shape` the elements make (all of them written).
    fn finish(self: Box<Self>, shape: Vec<usize>) -> Result<Chunk>;
}

impl<T: RawElement + Send> ElementSink for Vec<T> {
    fn written(&self) -> usize {
        self.len()
    }

    fn reserve(&mut self, n: usize) {
        self.reserve_exact(n);
    }

    fn append(&mut self, bytes: &[u8]) {
        T::extend_le(self, bytes);
    }

    fn finish(self: Box<Self>, shape: Vec<usize>) -> Result<Chunk> {
        ArrayD::from_shape_vec(shape, *self)
            .map(Chunk::from_array)
            .map_err(|e| Error::invalid("chunk", format!("cannot shape the data: {e}")))
    }
}

/// A chunk filled in C order from its little-endian bytes, a part at a time (as a
/// WASM task writes a result the host assembles): each part is copied once, straight
/// into the chunk's elements.
pub struct ChunkBuilder {
    dtype: DType,
    shape: Vec<usize>,
    len: usize,
    elements: Box<dyn ElementSink>,
}

impl ChunkBuilder {
    /// An empty chunk of `dtype` and `shape` (its memory is reserved by the first
    /// part, so [`ChunkBuilder::nbytes`] can be checked against a budget before); an
    /// error when its size overflows.
    pub fn new(dtype: DType, shape: Vec<usize>) -> Result<ChunkBuilder> {
        let Some(nbytes) = nbytes_of(dtype, &shape) else {
            return Err(Error::invalid("chunk", format!("an array of {dtype} with shape {shape:?} is too large")));
        };
        let len = nbytes / dtype.size();
        let elements = with_dtype!(dtype, T => Box::new(Vec::<T>::new()) as Box<dyn ElementSink>);
        Ok(ChunkBuilder { dtype, shape, len, elements })
    }

    /// The shape of the whole chunk.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The bytes of the whole chunk.
    pub fn nbytes(&self) -> usize {
        self.len * self.dtype.size()
    }

    /// Appends the elements whose little-endian bytes `data` holds after those written
    /// so far; an error, appending nothing, when `data` is not whole elements or runs
    /// past the chunk's end.
    pub fn append_le_bytes(&mut self, data: &[u8]) -> Result<()> {
        let size = self.dtype.size();
        let written = self.elements.written();
        if !data.len().is_multiple_of(size) {
            return Err(Error::invalid(
                "chunk",
                format!("{} bytes are not whole elements of {} ({size} bytes each)", data.len(), self.dtype),
            ));
        }
        if data.len() / size > self.len - written {
            return Err(Error::invalid(
                "chunk",
                format!(
                    "{} more elements of {} run past the end of an array of shape {:?} ({written} of {} written)",
                    data.len() / size,
                    self.dtype,
                    self.shape,
                    self.len
                ),
            ));
        }
        if written == 0 {
            self.elements.reserve(self.len);
        }
        self.elements.append(data);
        Ok(())
    }

    /// The chunk; an error unless every element was written.
    pub fn finish(self) -> Result<Chunk> {
        let written = self.elements.written();
        if written != self.len {
            return Err(Error::invalid(
                "chunk",
                format!(
                    "only {written} of the {} elements of an array of {} with shape {:?} were written",
                    self.len, self.dtype, self.shape
                ),
            ));
        }
        self.elements.finish(self.shape)
    }
}

impl Chunk {
    /// The elements as little-endian bytes in C order.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.le_bytes().into_owned()
    }

    /// The elements as little-endian bytes in C order, borrowed when the array is
    /// contiguous in C order (then at no cost), copied otherwise.
    pub fn le_bytes(&self) -> Cow<'_, [u8]> {
        fn typed<T: RawElement>(a: &ArrayD<T>) -> Cow<'_, [u8]> {
            match a.as_slice() {
                Some(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
                None => Cow::Owned(bytemuck::cast_slice(to_standard(a.view()).as_slice().expect("C order")).to_vec()),
            }
        }
        chunk_map!(self, a: T => typed(a))
    }

    /// The chunk of `dtype` and `shape` whose elements `data` holds (as
    /// [`Chunk::to_le_bytes`] writes them); an error when the sizes do not match.
    pub fn from_le_bytes(dtype: DType, shape: Vec<usize>, data: &[u8]) -> Result<Chunk> {
        check_fits(dtype, &shape, data)?;
        fn build<T: RawElement>(shape: Vec<usize>, data: &[u8]) -> Result<Chunk> {
            ArrayD::from_shape_vec(shape, T::collect(data))
                .map(Chunk::from_array)
                .map_err(|e| Error::invalid("chunk", format!("cannot shape the data: {e}")))
        }
        with_dtype!(dtype, T => build::<T>(shape, data))
    }
}

/// The bytes of an array of `dtype` and `shape`, if it could be held in memory.
fn nbytes_of(dtype: DType, shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(dtype.size(), |acc, &n| acc.checked_mul(n)).filter(|&b| b <= isize::MAX as usize)
}

/// An error unless `data` holds exactly an array of `dtype` and `shape`.
fn check_fits(dtype: DType, shape: &[usize], data: &[u8]) -> Result<()> {
    if nbytes_of(dtype, shape) != Some(data.len()) {
        return Err(Error::invalid(
            "chunk",
            format!("{} bytes of data do not fit an array of {dtype} with shape {shape:?}", data.len()),
        ));
    }
    Ok(())
}

/// Bytes serialised as one block.
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl Serialize for Chunk {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&self.dtype())?;
        t.serialize_element(self.shape())?;
        t.serialize_element(&RawBytes(&self.le_bytes()))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Chunk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Chunk, D::Error> {
        d.deserialize_tuple(3, ChunkVisitor)
    }
}

struct ChunkVisitor;

impl<'de> Visitor<'de> for ChunkVisitor {
    type Value = Chunk;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array chunk as (dtype, shape, bytes)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Chunk, A::Error> {
        let dtype: DType = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let shape: Vec<usize> = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
        seq.next_element_seed(ChunkData { dtype, shape })?.ok_or_else(|| de::Error::invalid_length(2, &self))
    }
}

/// The third part of a serialised chunk, decoded straight into the typed array.
struct ChunkData {
    dtype: DType,
    shape: Vec<usize>,
}

impl<'de> DeserializeSeed<'de> for ChunkData {
    type Value = Chunk;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Chunk, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for ChunkData {
    type Value = Chunk;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the bytes of an array chunk")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> std::result::Result<Chunk, E> {
        Chunk::from_le_bytes(self.dtype, self.shape, bytes).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Chunk, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        self.visit_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    #[test]
    fn bytes_round_trip_every_dtype_and_layout() {
        let f = Array2::from_shape_fn((3, 4).f(), |(i, j)| (i * 10 + j) as f64).into_dyn();
        for dtype in DType::ALL {
            let chunk = Chunk::from_array(f.clone()).cast(dtype);
            let bytes = chunk.to_le_bytes();
            assert_eq!(bytes.len(), chunk.nbytes());
            assert_eq!(Chunk::from_le_bytes(dtype, vec![3, 4], &bytes).unwrap(), chunk);
            // Bytes at an odd address take the element-by-element path.
            let shifted = [&[0xAB][..], &bytes].concat();
            assert_eq!(Chunk::from_le_bytes(dtype, vec![3, 4], &shifted[1..]).unwrap(), chunk, "{dtype} unaligned");
            let wire = postcard::to_allocvec(&chunk).unwrap();
            assert!(wire.len() < chunk.nbytes() + 16, "{dtype}: {} bytes on the wire", wire.len());
            assert_eq!(postcard::from_bytes::<Chunk>(&wire).unwrap(), chunk);
            let json = serde_json::to_string(&chunk).unwrap();
            assert_eq!(serde_json::from_str::<Chunk>(&json).unwrap(), chunk);
        }
    }

    #[test]
    fn a_builder_assembles_parts_into_the_chunk() {
        let f = Array2::from_shape_fn((3, 4), |(i, j)| (i * 10 + j) as f64).into_dyn();
        for dtype in DType::ALL {
            let chunk = Chunk::from_array(f.clone()).cast(dtype);
            let bytes = chunk.to_le_bytes();
            let mut builder = ChunkBuilder::new(dtype, vec![3, 4]).unwrap();
            assert_eq!(builder.nbytes(), bytes.len());
            let (first, rest) = bytes.split_at(5 * dtype.size());
            builder.append_le_bytes(first).unwrap();
            // A part at an odd address takes the element-by-element path.
            let shifted = [&[0xAB][..], rest].concat();
            builder.append_le_bytes(&shifted[1..]).unwrap();
            assert_eq!(builder.finish().unwrap(), chunk, "{dtype}");
        }
    }

    #[test]
    fn a_builder_refuses_partial_elements_overruns_and_missing_elements() {
        let mut builder = ChunkBuilder::new(DType::U16, vec![2, 2]).unwrap();
        let err = builder.append_le_bytes(&[0; 3]).unwrap_err();
        assert!(err.to_string().contains("3 bytes are not whole elements of uint16 (2 bytes each)"), "{err}");
        builder.append_le_bytes(&[1, 0, 2, 0]).unwrap();
        let err = builder.append_le_bytes(&[0; 6]).unwrap_err();
        assert!(
            err.to_string()
                .contains("3 more elements of uint16 run past the end of an array of shape [2, 2] (2 of 4 written)"),
            "{err}"
        );
        let err = builder.finish().unwrap_err();
        assert!(
            err.to_string().contains("only 2 of the 4 elements of an array of uint16 with shape [2, 2] were written"),
            "{err}"
        );
        let err = ChunkBuilder::new(DType::F64, vec![1 << 40, 1 << 30]).err().unwrap();
        assert!(err.to_string().contains("is too large"), "{err}");
    }

    #[test]
    fn data_that_does_not_fit_the_shape_is_refused() {
        let err = Chunk::from_le_bytes(DType::U16, vec![2, 2], &[0; 7]).unwrap_err();
        assert!(err.to_string().contains("7 bytes of data do not fit an array of uint16 with shape [2, 2]"), "{err}");
        let wire = postcard::to_allocvec(&(DType::F64, vec![2usize], RawBytes(&[0; 8]))).unwrap();
        assert!(postcard::from_bytes::<Chunk>(&wire).is_err());
    }
}
