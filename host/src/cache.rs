//! The on-disk cache: embedding chunks and evaluation results, content-addressed by sha256 keys,
//! written atomically and verified by checksum on every read.
//!
//! Layout under the cache root (`$COMMUTE_HOME`, default `~/.cache/commute`):
//! `embeddings/ab/abcdef….emb` and `results/ab/abcdef….json`. An embedding file is
//! `COMMUTE-EMB 1`, rows (u64), dim (u64), rows × dim little-endian f32, then the sha256 of all
//! that. A file that fails its checksum is reported, ignored and recomputed.

use crate::value_io::write_atomic;
use crate::HostError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const MAGIC: &[u8; 12] = b"COMMUTE-EMB1";

/// A sha256 content key, hex.
pub type Key = String;

/// The sha256 of the running executable: evaluated points are keyed by it, so a rebuilt host
/// (another fitting or scoring code) never serves results of the previous one. Embeddings are
/// keyed by the plugins' library hashes instead and survive host rebuilds.
pub fn code_key() -> &'static str {
    static KEY: std::sync::OnceLock<Key> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = KeyBuilder::new("host-code");
        match std::env::current_exe().and_then(std::fs::read) {
            Ok(bytes) => k.push(&bytes),
            // Without the executable, the version is the best identity there is.
            Err(_) => k.text(env!("CARGO_PKG_VERSION")),
        };
        k.finish()
    })
}

/// Incremental sha256 over tagged fields (each field length-prefixed, so fields never run together).
#[derive(Clone, Default)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    /// A builder for keys of one kind (`kind` keeps kinds apart).
    pub fn new(kind: &str) -> KeyBuilder {
        let mut b = KeyBuilder(Sha256::new());
        b.push(kind.as_bytes());
        b
    }

    /// Adds one field.
    pub fn push(&mut self, bytes: &[u8]) -> &mut KeyBuilder {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds one text field.
    pub fn text(&mut self, s: &str) -> &mut KeyBuilder {
        self.push(s.as_bytes())
    }

    /// The key.
    pub fn finish(&self) -> Key {
        hex(&self.0.clone().finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How the cache was used during a run.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Entries found and valid.
    pub hits: AtomicUsize,
    /// Entries missing (computed).
    pub misses: AtomicUsize,
    /// Entries found but corrupt (recomputed).
    pub corrupt: AtomicUsize,
    /// Entries written.
    pub writes: AtomicUsize,
}

impl CacheStats {
    /// (hits, misses, corrupt, writes).
    pub fn snapshot(&self) -> (usize, usize, usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.corrupt.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

/// A cache rooted at a folder.
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    /// Usage counters.
    pub stats: CacheStats,
}

/// The default cache root: `$COMMUTE_HOME`, else `$XDG_CACHE_HOME/commute`, else `~/.cache/commute`
/// (the same root the SDK's asset store uses).
pub fn default_root() -> PathBuf {
    commute_sdk::asset::default_cache_root()
}

/// A matrix of embeddings: `rows` items of `dim` floats, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Items.
    pub rows: usize,
    /// Floats per item.
    pub dim: usize,
    /// `rows × dim` values.
    pub data: Vec<f32>,
}

impl Cache {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into(), stats: CacheStats::default() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, kind: &str, key: &str, ext: &str) -> PathBuf {
        let prefix = key.get(..2).unwrap_or("00");
        self.root.join(kind).join(prefix).join(format!("{key}.{ext}"))
    }

    fn ensure_dir(path: &Path) -> Result<(), HostError> {
        match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir).map_err(|e| HostError::io(dir, e)),
            None => Ok(()),
        }
    }

    /// The embedding chunk stored under `key`, if present and intact.
    pub fn get_embeddings(&self, key: &str) -> Option<Chunk> {
        let path = self.path("embeddings", key, "emb");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        match decode(&bytes) {
            Ok(chunk) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(chunk)
            }
            Err(why) => {
                tracing::warn!(path = %path.display(), "corrupt cache entry ({why}); recomputing it");
                self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Stores an embedding chunk under `key` (atomically).
    pub fn put_embeddings(&self, key: &str, chunk: &Chunk) -> Result<(), HostError> {
        let path = self.path("embeddings", key, "emb");
        Self::ensure_dir(&path)?;
        write_atomic(&path, &encode(chunk))?;
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The JSON result stored under `key`, if present and readable.
    pub fn get_result<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let path = self.path("results", key, "json");
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(v)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "unreadable cached result ({e}); recomputing it");
                self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Stores a JSON result under `key` (atomically).
    pub fn put_result<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), HostError> {
        let path = self.path("results", key, "json");
        Self::ensure_dir(&path)?;
        let json = serde_json::to_vec(value).map_err(|e| HostError::format(&path, e.to_string()))?;
        write_atomic(&path, &json)?;
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn encode(chunk: &Chunk) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + 16 + chunk.data.len() * 4 + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(chunk.rows as u64).to_le_bytes());
    out.extend_from_slice(&(chunk.dim as u64).to_le_bytes());
    for x in &chunk.data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

fn decode(bytes: &[u8]) -> Result<Chunk, String> {
    if bytes.len() < 12 + 16 + 32 || &bytes[..12] != MAGIC {
        return Err("not a commute embedding file".to_owned());
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        return Err("checksum mismatch".to_owned());
    }
    let word = |i: usize| -> usize {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[12 + 8 * i..20 + 8 * i]);
        u64::from_le_bytes(b) as usize
    };
    let (rows, dim) = (word(0), word(1));
    let floats = &body[28..];
    if rows.checked_mul(dim).and_then(|n| n.checked_mul(4)) != Some(floats.len()) {
        return Err(format!("{rows}×{dim} does not match {} bytes of data", floats.len()));
    }
    let data = floats.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(Chunk { rows, dim, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_and_count_hits_and_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let chunk = Chunk { rows: 2, dim: 3, data: vec![1.0, 2.0, 3.0, -4.0, 0.5, f32::MIN_POSITIVE] };
        assert_eq!(cache.get_embeddings("aa11"), None);
        cache.put_embeddings("aa11", &chunk).unwrap();
        assert_eq!(cache.get_embeddings("aa11"), Some(chunk));
        assert_eq!(cache.stats.snapshot(), (1, 1, 0, 1));
    }

    #[test]
    fn a_corrupt_entry_is_detected_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let chunk = Chunk { rows: 1, dim: 2, data: vec![1.0, 2.0] };
        cache.put_embeddings("bb22", &chunk).unwrap();
        let path = cache.path("embeddings", "bb22", "emb");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.get_embeddings("bb22"), None);
        std::fs::write(&path, &bytes[..20]).unwrap();
        assert_eq!(cache.get_embeddings("bb22"), None);
        assert_eq!(cache.stats.corrupt.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn keys_separate_fields() {
        let a = KeyBuilder::new("t").text("ab").text("c").finish();
        let b = KeyBuilder::new("t").text("a").text("bc").finish();
        assert_ne!(a, b);
        assert_eq!(a, KeyBuilder::new("t").text("ab").text("c").finish());
        assert_eq!(a.len(), 64);
    }
}
