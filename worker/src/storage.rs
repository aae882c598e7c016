//! Storage: Zarr arrays in any `object_store` location, read and written by chunk.
//!
//! A store is named by a URL: a plain path or `file://` URL (a local directory),
//! `memory://NAME` (an in-process store shared by everything using that name), or
//! `s3://BUCKET/PREFIX` (credentials and endpoint from the usual `AWS_*` environment
//! variables, as `object_store` reads them). Inside a store an array lives at a Zarr
//! node path such as `/` or `/group/raw`.
//!
//! Arrays are read and written through `zarrs` (Zarr v3 written; v2 and v3 read).
//! Every chunk (or shard) is one object written with a single `put`, which
//! `object_store` makes atomic: readers see the old object or the new one, never a
//! half-written chunk.

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use tessera_core::{Chunk, DType, Error, Result, chunk_map};
use zarrs::array::{Array, ArrayBuilder, ArrayBytes, ArraySubset};
use zarrs::storage::ReadableWritableListableStorageTraits;
use zarrs::storage::storage_adapter::async_to_sync::{AsyncToSyncBlockOn, AsyncToSyncStorageAdapter};
use zarrs_object_store::AsyncObjectStore;

/// A synchronous zarrs store backed by an object store.
type Storage = Arc<dyn ReadableWritableListableStorageTraits>;

/// An opened Zarr array.
type StoredArray = Arc<Array<dyn ReadableWritableListableStorageTraits>>;

/// The runtime that drives object-store I/O for the synchronous zarrs API.
static IO_RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tessera-io")
        .enable_all()
        .build()
        .expect("the I/O runtime starts")
});

/// Opened stores and arrays, so metadata is read once per process.
static STORES: LazyLock<Mutex<HashMap<String, Storage>>> = LazyLock::new(Default::default);
static MEMORY_STORES: LazyLock<Mutex<HashMap<String, Arc<InMemory>>>> = LazyLock::new(Default::default);
static ARRAYS: LazyLock<Mutex<HashMap<(String, String), StoredArray>>> = LazyLock::new(Default::default);

/// Blocks on object-store futures from the worker's (non-async) task threads.
struct BlockOnIo;

impl AsyncToSyncBlockOn for BlockOnIo {
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        IO_RUNTIME.block_on(future)
    }
}

/// The compression of written chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Codec {
    /// No compression.
    None,
    /// Zstandard, level 3.
    #[default]
    Zstd,
    /// Blosc with LZ4 and byte shuffling.
    Blosc,
}

/// Shape, chunking and type of a stored array, read from its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayInfo {
    /// Array shape.
    pub shape: Vec<u64>,
    /// Regular chunk shape (for a sharded array, the shard shape).
    pub chunks: Vec<u64>,
    /// Element type.
    pub dtype: DType,
}

/// How to create a new array with [`create_array`].
#[derive(Clone, Debug, PartialEq)]
pub struct ArraySpec {
    /// Array shape.
    pub shape: Vec<u64>,
    /// Chunk shape (the unit each write task stores; the shard shape when sharded).
    pub chunks: Vec<u64>,
    /// Element type.
    pub dtype: DType,
    /// Compression.
    pub codec: Codec,
    /// Inner chunk shape when the array is sharded (`chunks` is then the shard shape).
    pub inner_chunks: Option<Vec<u64>>,
}

/// Opens (or returns the cached) store for `url`.
pub fn open_store(url: &str) -> Result<Storage> {
    if let Some(s) = STORES.lock().map_err(poisoned)?.get(url) {
        return Ok(s.clone());
    }
    let object_store: Arc<dyn ObjectStore> = if let Some(name) = url.strip_prefix("memory://") {
        MEMORY_STORES
            .lock()
            .map_err(poisoned)?
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(InMemory::new()))
            .clone()
    } else if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::storage(url, "an s3:// URL needs a bucket name"));
        }
        let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build().map_err(|e| Error::storage(url, e))?;
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) }
    } else if url.contains("://") && !url.starts_with("file://") {
        return Err(Error::storage(url, "unsupported URL scheme (use a path, file://, memory:// or s3://)"));
    } else {
        let path = url.strip_prefix("file://").unwrap_or(url);
        std::fs::create_dir_all(path).map_err(|e| Error::storage(url, format!("cannot create directory: {e}")))?;
        Arc::new(LocalFileSystem::new_with_prefix(path).map_err(|e| Error::storage(url, e))?)
    };
    let adapter = AsyncToSyncStorageAdapter::new(Arc::new(AsyncObjectStore::new(object_store)), BlockOnIo);
    let storage: Storage = Arc::new(adapter);
    STORES.lock().map_err(poisoned)?.insert(url.to_string(), storage.clone());
    Ok(storage)
}

fn poisoned<T>(_: T) -> Error {
    Error::Engine("a storage cache lock was poisoned by a panicking thread".into())
}

fn node_path(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    format!("/{trimmed}")
}

fn open_array(url: &str, path: &str) -> Result<StoredArray> {
    let cache_key = (url.to_string(), node_path(path));
    if let Some(a) = ARRAYS.lock().map_err(poisoned)?.get(&cache_key) {
        return Ok(a.clone());
    }
    let storage = open_store(url)?;
    let array = Array::open(storage, &cache_key.1)
        .map_err(|e| Error::storage(format!("{url} {}", cache_key.1), format!("cannot open Zarr array: {e}")))?;
    let array = Arc::new(array);
    ARRAYS.lock().map_err(poisoned)?.insert(cache_key, array.clone());
    Ok(array)
}

fn array_dtype(url: &str, path: &str, array: &Array<dyn ReadableWritableListableStorageTraits>) -> Result<DType> {
    DType::ALL.into_iter().find(|d| zarr_data_type(*d) == *array.data_type()).ok_or_else(|| {
        Error::storage(format!("{url} {path}"), format!("unsupported Zarr data type {}", array.data_type()))
    })
}

/// Reads the shape, chunk shape and element type of the array at `path` in `url`.
pub fn array_info(url: &str, path: &str) -> Result<ArrayInfo> {
    let array = open_array(url, path)?;
    let dtype = array_dtype(url, path, &array)?;
    let zeros = vec![0; array.dimensionality()];
    let chunks = array
        .chunk_shape(&zeros)
        .map_err(|e| Error::storage(format!("{url} {path}"), format!("irregular chunk grid: {e}")))?
        .iter()
        .map(|c| c.get())
        .collect();
    Ok(ArrayInfo { shape: array.shape().to_vec(), chunks, dtype })
}

/// Creates (or overwrites the metadata of) an array; chunks are written separately.
pub fn create_array(url: &str, path: &str, spec: &ArraySpec) -> Result<()> {
    let storage = open_store(url)?;
    let node = node_path(path);
    let label = format!("{url} {node}");
    if spec.shape.len() != spec.chunks.len() || spec.chunks.contains(&0) {
        return Err(Error::invalid(
            "to_zarr",
            format!("chunk shape {:?} does not fit array shape {:?}", spec.chunks, spec.shape),
        ));
    }
    let data_type = zarr_data_type(spec.dtype);
    let fill = zarrs::array::FillValue::new(vec![0u8; spec.dtype.size()]);
    let mut builder = ArrayBuilder::new(spec.shape.clone(), spec.chunks.clone(), data_type, fill);
    let codecs: Vec<Arc<dyn zarrs::array::BytesToBytesCodecTraits>> = match spec.codec {
        Codec::None => vec![],
        Codec::Zstd => vec![Arc::new(zarrs::array::codec::ZstdCodec::new(3, false))],
        Codec::Blosc => vec![Arc::new(
            zarrs::array::codec::BloscCodec::new(
                zarrs::array::codec::bytes_to_bytes::blosc::BloscCompressor::LZ4,
                5.try_into().map_err(|_| Error::invalid("to_zarr", "invalid blosc level"))?,
                None,
                zarrs::array::codec::bytes_to_bytes::blosc::BloscShuffleMode::Shuffle,
                Some(spec.dtype.size()),
            )
            .map_err(|e| Error::storage(&label, e))?,
        )],
    };
    builder.bytes_to_bytes_codecs(codecs);
    if let Some(inner) = &spec.inner_chunks {
        if inner.len() != spec.chunks.len() || inner.iter().zip(&spec.chunks).any(|(i, c)| *i == 0 || c % i != 0) {
            return Err(Error::invalid(
                "to_zarr",
                format!("inner chunk shape {inner:?} must divide the shard shape {:?}", spec.chunks),
            ));
        }
        builder.subchunk_shape(inner.clone());
    }
    let array = builder.build(storage, &node).map_err(|e| Error::storage(&label, e))?;
    array.store_metadata().map_err(|e| Error::storage(&label, e))?;
    let array: StoredArray = Arc::new(array);
    ARRAYS.lock().map_err(poisoned)?.insert((url.to_string(), node), array);
    Ok(())
}

fn zarr_data_type(dtype: DType) -> zarrs::array::DataType {
    use zarrs::array::data_type as dt;
    match dtype {
        DType::Bool => dt::bool(),
        DType::I8 => dt::int8(),
        DType::I16 => dt::int16(),
        DType::I32 => dt::int32(),
        DType::I64 => dt::int64(),
        DType::U8 => dt::uint8(),
        DType::U16 => dt::uint16(),
        DType::U32 => dt::uint32(),
        DType::U64 => dt::uint64(),
        DType::F32 => dt::float32(),
        DType::F64 => dt::float64(),
    }
}

/// Reads the region `offset .. offset + shape` of an array.
pub fn read_region(url: &str, path: &str, offset: &[u64], shape: &[usize]) -> Result<Chunk> {
    let array = open_array(url, path)?;
    let dtype = array_dtype(url, path, &array)?;
    let label = format!("{url} {}", node_path(path));
    let subset = ArraySubset::new_with_start_shape(offset.to_vec(), shape.iter().map(|&s| s as u64).collect())
        .map_err(|e| Error::storage(&label, e))?;
    let reading = |e: &dyn std::fmt::Display| {
        Error::storage(&label, format!("reading region at {offset:?} of shape {shape:?}: {e}"))
    };
    // The decoded bytes become the chunk's elements with one copy (zarrs' typed
    // retrieval zero-fills a vector before copying into it).
    let bytes = array.retrieve_array_subset::<ArrayBytes<'static>>(&subset).map_err(|e| reading(&e))?;
    let bytes = bytes.into_fixed().map_err(|e| reading(&e))?;
    Chunk::from_le_bytes(dtype, shape.to_vec(), &bytes)
}

/// Writes `data` as chunk (or shard) `chunk_index`, converting to the array's type.
pub fn write_chunk(url: &str, path: &str, chunk_index: &[u64], data: &Chunk) -> Result<()> {
    let array = open_array(url, path)?;
    let dtype = array_dtype(url, path, &array)?;
    let label = format!("{url} {}", node_path(path));
    let converted;
    let data = if data.dtype() == dtype {
        data
    } else {
        converted = data.cast(dtype);
        &converted
    };
    let chunk_shape = array
        .chunk_shape_usize(chunk_index)
        .map_err(|e| Error::storage(&label, format!("chunk {chunk_index:?}: {e}")))?;
    chunk_map!(data, a: T => {
        if a.ndim() != chunk_shape.len() || a.shape().iter().zip(&chunk_shape).any(|(d, c)| d > c) {
            return Err(Error::invalid(
                "to_zarr",
                format!("block of shape {:?} does not fit chunk {chunk_index:?} of shape {chunk_shape:?} in {label}", a.shape()),
            ));
        }
        // Edge chunks are stored at full size, padded with the fill value.
        let padded;
        let a = if a.shape() == chunk_shape.as_slice() {
            a
        } else {
            let mut full = ndarray::ArrayD::<T>::default(ndarray::IxDyn(&chunk_shape));
            full.slice_each_axis_mut(|ax| ndarray::Slice::from(0..a.shape()[ax.axis.index()])).assign(a);
            padded = full;
            &padded
        };
        array
            .store_chunk(chunk_index, a)
            .map_err(|e| Error::storage(&label, format!("writing chunk {chunk_index:?}: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    fn sample() -> Chunk {
        Chunk::from_array(ArrayD::from_shape_fn(ndarray::IxDyn(&[5, 7]), |ix| (ix[0] * 10 + ix[1]) as u16))
    }

    fn round_trip(url: &str, codec: Codec, inner: Option<Vec<u64>>) {
        let spec = ArraySpec { shape: vec![5, 7], chunks: vec![4, 4], dtype: DType::U16, codec, inner_chunks: inner };
        create_array(url, "/grp/a", &spec).unwrap();
        let full = sample();
        let a = full.typed::<u16>().unwrap();
        for (ci, cj) in [(0u64, 0u64), (0, 1), (1, 0), (1, 1)] {
            let (r0, c0) = (ci as usize * 4, cj as usize * 4);
            let block = a.slice(ndarray::s![r0..(r0 + 4).min(5), c0..(c0 + 4).min(7)]).to_owned().into_dyn();
            write_chunk(url, "grp/a", &[ci, cj], &Chunk::from_array(block)).unwrap();
        }
        let info = array_info(url, "/grp/a").unwrap();
        assert_eq!(info, ArrayInfo { shape: vec![5, 7], chunks: vec![4, 4], dtype: DType::U16 });
        assert_eq!(read_region(url, "/grp/a", &[0, 0], &[5, 7]).unwrap(), full);
        let part = read_region(url, "/grp/a", &[3, 2], &[2, 4]).unwrap();
        assert_eq!(part.typed::<u16>().unwrap(), &a.slice(ndarray::s![3..5, 2..6]).to_owned().into_dyn());
    }

    #[test]
    fn memory_store_round_trips_every_codec() {
        round_trip("memory://storage-test-none", Codec::None, None);
        round_trip("memory://storage-test-zstd", Codec::Zstd, None);
        round_trip("memory://storage-test-blosc", Codec::Blosc, None);
        round_trip("memory://storage-test-shard", Codec::Zstd, Some(vec![2, 2]));
    }

    #[test]
    fn file_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        round_trip(dir.path().join("x.zarr").to_str().unwrap(), Codec::Zstd, None);
        assert!(dir.path().join("x.zarr/grp/a/zarr.json").exists());
    }

    #[test]
    fn missing_arrays_and_bad_urls_are_named() {
        let err = array_info("memory://storage-test-empty", "/nothing").unwrap_err().to_string();
        assert!(err.contains("memory://storage-test-empty /nothing"), "{err}");
        let err = open_store("ftp://x").err().unwrap().to_string();
        assert!(err.contains("unsupported URL scheme"), "{err}");
    }
}
