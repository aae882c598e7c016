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
    /// The elements encoded in `bytes` (whose length is a multiple of the size).
    fn collect(bytes: &[u8]) -> Vec<Self>;
}

macro_rules! raw_numeric {
    ($($t:ty),*) => {$(
        impl RawElement for $t {
            fn collect(bytes: &[u8]) -> Vec<Self> {
                // Aligned bytes (any allocation from the heap) are one copy; otherwise
                // element by element into fresh capacity, still half the time of
                // zero-filling a vector and copying over it (`pod_collect_to_vec`).
                match bytemuck::try_cast_slice(bytes) {
                    Ok(values) => <[$t]>::to_vec(values),
                    Err(_) => bytes.chunks_exact(std::mem::size_of::<$t>()).map(bytemuck::pod_read_unaligned).collect(),
                }
            }
        }
    )*};
}
raw_numeric!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl RawElement for bool {
    fn collect(bytes: &[u8]) -> Vec<Self> {
        bytes.iter().map(|&b| b != 0).collect()
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

/// An error unless `data` holds exactly an array of `dtype` and `shape`.
fn check_fits(dtype: DType, shape: &[usize], data: &[u8]) -> Result<()> {
    let expected = shape.iter().try_fold(dtype.size(), |acc, &n| acc.checked_mul(n));
    if expected != Some(data.len()) {
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
    fn data_that_does_not_fit_the_shape_is_refused() {
        let err = Chunk::from_le_bytes(DType::U16, vec![2, 2], &[0; 7]).unwrap_err();
        assert!(err.to_string().contains("7 bytes of data do not fit an array of uint16 with shape [2, 2]"), "{err}");
        let wire = postcard::to_allocvec(&(DType::F64, vec![2usize], RawBytes(&[0; 8]))).unwrap();
        assert!(postcard::from_bytes::<Chunk>(&wire).is_err());
    }
}
