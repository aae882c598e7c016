//! Reading and writing Zarr arrays in object storage.
//!
//! `from_zarr` reads the array's metadata when called (so a missing or corrupt array is
//! an error at once) and adds one read task per block. `to_zarr` writes the metadata,
//! then one task per block writes that block as one chunk (or shard) object; an object
//! store `put` is atomic, so a failed computation leaves no half-written chunk.

use super::{Array, block_indices, chunks::normalize};
use crate::Client;
use tessera_core::op::ArrayOp;
use tessera_core::{Error, Key, Op, Result, Task};
use tessera_worker::storage::{self, ArraySpec};

pub use tessera_worker::storage::Codec;

/// How [`Array::to_zarr`] lays out the stored array.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZarrOptions {
    /// Compression of every chunk (zstd by default).
    pub codec: Codec,
    /// When set, chunks are grouped into shards of this shape (in elements; a multiple
    /// of the array's chunk shape) and each write task writes one shard.
    pub shards: Option<Vec<u64>>,
}

/// Opens the Zarr array at node `path` (e.g. `/` or `/raw`) of the store at `url` (a
/// path, `file://`, `memory://` or `s3://` URL), with the stored chunking.
pub fn from_zarr(url: &str, path: &str) -> Result<Array> {
    let info = storage::array_info(url, path)?;
    read(url, path, info, None)
}

/// Like [`from_zarr`], with blocks of `chunks` instead of the stored chunking.
pub fn from_zarr_with_chunks(url: &str, path: &str, chunks: &[u64]) -> Result<Array> {
    let info = storage::array_info(url, path)?;
    read(url, path, info, Some(chunks))
}

fn read(url: &str, path: &str, info: storage::ArrayInfo, chunks: Option<&[u64]>) -> Result<Array> {
    let chunks = normalize("from_zarr", &info.shape, chunks.unwrap_or(&info.chunks))?;
    let array = Array::blockwise_new("from-zarr", &[], info.shape.clone(), chunks.clone(), info.dtype, |ix| {
        let offset = ix.iter().zip(&chunks).map(|(&i, c)| c[..i].iter().sum()).collect();
        let shape = ix.iter().zip(&chunks).map(|(&i, c)| c[i] as usize).collect();
        let op = ArrayOp::ZarrRead { store: url.to_string(), path: path.to_string(), offset, shape };
        Ok(Task::new(Op::Array(op), vec![]))
    })?;
    Ok(array)
}

impl Array {
    /// Writes the array to a new Zarr v3 array at node `path` of the store at `url`,
    /// computing it on [`Client::current`].
    #[cfg(feature = "local")]
    pub fn to_zarr(&self, url: &str, path: &str, options: &ZarrOptions) -> Result<()> {
        self.to_zarr_with(&Client::current(), url, path, options)
    }

    /// Like [`Array::to_zarr`] on `client`.
    pub fn to_zarr_with(&self, client: &Client, url: &str, path: &str, options: &ZarrOptions) -> Result<()> {
        let write = self.to_zarr_graph(url, path, options)?;
        let keys = write.keys();
        client.compute_keys(&write.graph(), &keys)?;
        Ok(())
    }

    /// Creates the stored array's metadata and returns a lazy boolean array over the
    /// chunk grid whose tasks write the chunks (or shards), to compute later or
    /// together with other work.
    pub fn to_zarr_graph(&self, url: &str, path: &str, options: &ZarrOptions) -> Result<Array> {
        // Zarr needs a regular grid: every block but the last of each axis the same.
        let chunk_shape: Vec<u64> = self.chunks.iter().map(|c| c[0].max(1)).collect();
        let (source, write_shape) = match &options.shards {
            None => (self.regular(&chunk_shape)?, chunk_shape.clone()),
            Some(shards) => {
                if shards.len() != chunk_shape.len()
                    || shards.iter().zip(&chunk_shape).any(|(s, c)| *s == 0 || s % c != 0)
                {
                    return Err(Error::invalid(
                        "to_zarr",
                        format!(
                            "shard shape {shards:?} must be a multiple of the chunk shape {chunk_shape:?} of array {}",
                            self.name()
                        ),
                    ));
                }
                (self.regular(shards)?, shards.clone())
            }
        };
        let spec = ArraySpec {
            shape: self.shape.clone(),
            chunks: write_shape,
            dtype: self.dtype,
            codec: options.codec,
            inner_chunks: options.shards.as_ref().map(|_| chunk_shape),
        };
        storage::create_array(url, path, &spec)?;
        let name = super::layer_name("to-zarr");
        let tasks = block_indices(&source.numblocks())
            .map(|ix| {
                let chunk: Vec<u64> = ix.iter().map(|&i| i as u64).collect();
                let op = ArrayOp::ZarrWrite { store: url.to_string(), path: path.to_string(), chunk: chunk.clone() };
                (Key::new(name.clone(), chunk), Task::new(Op::Array(op), vec![source.key(&ix)]))
            })
            .collect();
        // The write array has one element (`true` once written) per chunk.
        let grid: Vec<u64> = source.chunks.iter().map(|c| c.len() as u64).collect();
        let grid_chunks = grid.iter().map(|&n| vec![1; n as usize]).collect();
        Ok(Array::from_tasks(name, &[&source], tasks, grid, grid_chunks, tessera_core::DType::Bool))
    }

    /// The array rechunked to regular blocks of `block` (unchanged if already so).
    fn regular(&self, block: &[u64]) -> Result<Array> {
        let target = normalize("to_zarr", &self.shape, block)?;
        if target == self.chunks { Ok(self.clone()) } else { self.rechunk_to(target) }
    }
}
