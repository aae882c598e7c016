//! The on-disk cache of compiled components.
//!
//! Compiling a component takes from milliseconds to seconds; a worker does it once per
//! component and keeps the native code here, keyed by the sha256 of the component's
//! bytes and a sha256 of the engine's compatibility hash (wasmtime version and every
//! setting that affects code generation). Deserialising native code is only safe for
//! bytes wasmtime itself produced, so this cache reads only files it wrote: the
//! directory is created private to the worker's user (and refused if others may
//! write to it), every entry carries the sha256 of its contents in a side file checked
//! before loading, and nothing else in Tessera ever accepts precompiled code.

use sha2::{Digest, Sha256};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tessera_core::{Error, Result};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Hex digits of a sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `Hash` output into a sha256, so the engine's hash is stable across Rust
/// versions (std's default hasher makes no such promise).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("a sha256 has 32 bytes"))
    }
}

/// A cache directory for one engine configuration.
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// Opens (creating if needed, mode 0700) the cache at `dir` for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CompileCache> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::storage(dir.display().to_string(), format!("cannot create the WASM cache: {e}")))?;
        let meta = fs::metadata(dir).map_err(|e| Error::storage(dir.display().to_string(), e))?;
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(Error::storage(
                dir.display().to_string(),
                "the WASM cache directory is writable by other users; make it private (chmod 700) or choose another",
            ));
        }
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex(&hasher.0.finalize()[..8]);
        let cache = CompileCache { dir: dir.to_path_buf(), engine_key };
        cache.check_owner(meta.uid())?;
        Ok(cache)
    }

    /// Refuses a directory owned by another user (compared with a file this process
    /// creates, so no libc call is needed).
    fn check_owner(&self, dir_uid: u32) -> Result<()> {
        let probe = self.dir.join(format!(".owner-{}", std::process::id()));
        let file = fs::File::create(&probe).map_err(|e| Error::storage(probe.display().to_string(), e))?;
        let uid = file.metadata().map(|m| m.uid());
        let _ = fs::remove_file(&probe);
        match uid {
            Ok(uid) if uid == dir_uid => Ok(()),
            Ok(_) => Err(Error::storage(self.dir.display().to_string(), "the WASM cache belongs to another user")),
            Err(e) => Err(Error::storage(probe.display().to_string(), e)),
        }
    }

    fn paths(&self, component_sha: &str) -> (PathBuf, PathBuf) {
        let stem = format!("{component_sha}-{}", self.engine_key);
        (self.dir.join(format!("{stem}.cwasm")), self.dir.join(format!("{stem}.sha256")))
    }

    /// The compiled form of the component whose bytes hash to `component_sha`, if this
    /// cache holds an intact one.
    pub fn load(&self, engine: &Engine, component_sha: &str) -> Option<Component> {
        let (code, digest) = self.paths(component_sha);
        let expected = fs::read_to_string(&digest).ok()?;
        let bytes = fs::read(&code).ok()?;
        if sha256_hex(&bytes) != expected.trim() {
            return None;
        }
        // SAFETY: `bytes` is exactly what `store` wrote from `Component::serialize` for
        // this engine configuration (checked against the digest written alongside, in
        // a directory only this user can write); user-supplied bytes never reach here.
        unsafe { Component::deserialize(engine, &bytes) }.ok()
    }

    /// Keeps `component`'s compiled form (written atomically; a failure only costs a
    /// later recompilation, so it is returned for logging, not fatal).
    pub fn store(&self, component_sha: &str, component: &Component) -> Result<()> {
        let (code, digest) = self.paths(component_sha);
        let bytes = component.serialize().map_err(|e| Error::Engine(format!("cannot serialise a component: {e:#}")))?;
        write_atomic(&code, &bytes)?;
        write_atomic(&digest, sha256_hex(&bytes).as_bytes())
    }
}

/// Writes `bytes` to a private temporary file next to `path`, then renames it.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let err = |e: std::io::Error| Error::storage(path.display().to_string(), e);
    let mut file =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(err)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}
