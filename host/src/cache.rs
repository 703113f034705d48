//! The on-disk cache: embedding chunks and evaluation results, content-addressed by sha256 keys,
//! written atomically and verified by checksum on every read.
//!
//! Layout under the cache root (`$COMMUTE_HOME`, default `~/.cache/commute`):
//! `embeddings/ab/abcdef….emb` and `results/ab/abcdef….json`. An embedding file is
//! `COMMUTE-EMB1`, rows (u64), dim (u64), rows × dim little-endian f32, then the sha256 of all
//! that; a frame-level encoder's chunk is `COMMUTE-EMB2`, rows (u64), dim (u64), the frame rate
//! (f64 bits), each row's frame count (u64), the frames' floats, then the sha256. A result file is one line `COMMUTE-RES1 <sha256 of the rest>` and then the JSON.
//!
//! Every file is written to a temporary name in its folder (`.<name>.<host>-<pid>-<token>-<n>.tmp`,
//! unique across machines, processes and threads) and renamed into place, so a process killed at
//! any point leaves either the whole entry or none (at worst a temporary file, which is never read
//! as an entry; [`Cache::verify`] lists them), and writers on several machines sharing the cache
//! folder (shards of one run) never see or make a partial entry. A file that fails its checksum is
//! reported with a warning, ignored and recomputed (then overwritten).

use crate::value_io::write_atomic;
use crate::HostError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const MAGIC: &[u8; 12] = b"COMMUTE-EMB1";
const FRAMES_MAGIC: &[u8; 12] = b"COMMUTE-EMB2";
const RESULT_MAGIC: &[u8; 13] = b"COMMUTE-RES1 ";

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

/// A matrix of embeddings: `rows` items of `dim` floats, row-major; or, for a frame-level
/// encoder, each item's frames of `dim` floats one after the other.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Items.
    pub rows: usize,
    /// Floats per item (per frame, with `frames`).
    pub dim: usize,
    /// `rows × dim` values (with `frames`, `frames.total() × dim`).
    pub data: Vec<f32>,
    /// Where each item's frames are, for a frame-level encoder.
    pub frames: Option<FrameIndex>,
}

impl Chunk {
    /// A chunk of one vector per item.
    pub fn pooled(rows: usize, dim: usize, data: Vec<f32>) -> Chunk {
        Chunk { rows, dim, data, frames: None }
    }
}

/// Where the items of a frame-level set keep their frames: item `i` is rows
/// `offsets[i] .. offsets[i + 1]` of the frame matrix. A skipped item has no frames.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameIndex {
    /// Frames per second.
    pub rate: f64,
    /// `items + 1` offsets, from 0 to the number of frames.
    pub offsets: Vec<usize>,
}

impl FrameIndex {
    /// An index from each item's frame count.
    pub fn from_counts(rate: f64, counts: impl IntoIterator<Item = usize>) -> FrameIndex {
        let mut offsets = vec![0];
        let mut total = 0;
        for c in counts {
            total += c;
            offsets.push(total);
        }
        FrameIndex { rate, offsets }
    }

    /// Items.
    pub fn items(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Frames of all items.
    pub fn total(&self) -> usize {
        *self.offsets.last().unwrap_or(&0)
    }

    /// Item `i`'s frame rows.
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }

    /// Appends another index's items after this one's.
    pub fn extend(&mut self, other: &FrameIndex) {
        let base = self.total();
        self.offsets.extend(other.offsets[1..].iter().map(|o| o + base));
    }
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
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| HostError::write("create cache folder", dir, e))
            }
            None => Ok(()),
        }
    }

    /// Checks that entries can be written under the root (creating it), by writing and removing a
    /// probe file: a read-only or full cache is reported before a run starts, naming the folder.
    pub fn ensure_writable(&self) -> Result<(), HostError> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| HostError::write("create the cache folder", &self.root, e))?;
        // A name of its own, as other machines may probe the same shared folder at once.
        let probe = self.root.join(commute_sdk::atomic::temp_name("write-probe"));
        let result = (|| {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&probe)?;
            file.write_all(&[0u8; 4096])?;
            file.sync_all()
        })();
        let _ = std::fs::remove_file(&probe);
        result.map_err(|e| HostError::write("write to the cache folder", &self.root, e))
    }

    /// Reads an entry's bytes; `None` (counted as a miss) when absent or unreadable.
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), "unreadable cache entry ({e}); recomputing it");
                }
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn corrupt(&self, path: &Path, why: &str) {
        tracing::warn!(path = %path.display(), "corrupt cache entry ({why}); recomputing it");
        self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
    }

    /// The embedding chunk stored under `key`, if present and intact.
    pub fn get_embeddings(&self, key: &str) -> Option<Chunk> {
        let path = self.path("embeddings", key, "emb");
        let bytes = self.read(&path)?;
        match decode(&bytes) {
            Ok(chunk) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(chunk)
            }
            Err(why) => {
                self.corrupt(&path, &why);
                None
            }
        }
    }

    /// Whether an embedding chunk is stored under `key`, without reading it (so without checking
    /// its checksum, which every read does).
    pub fn has_embeddings(&self, key: &str) -> bool {
        self.path("embeddings", key, "emb").is_file()
    }

    /// Stores an embedding chunk under `key` (atomically).
    pub fn put_embeddings(&self, key: &str, chunk: &Chunk) -> Result<(), HostError> {
        let path = self.path("embeddings", key, "emb");
        Self::ensure_dir(&path)?;
        write_atomic(&path, &encode(chunk)).map_err(|e| e.while_writing("write cache entry"))?;
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The JSON result stored under `key`, if present, intact and readable as a `T`. A NaN that
    /// [`Self::put_result`] wrote as `null` reads back as NaN (an operator with one test item
    /// has no transfer P@1), so such a result is a hit rather than recomputed on every run.
    pub fn get_result<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let path = self.path("results", key, "json");
        let bytes = self.read(&path)?;
        match decode_result(&bytes).and_then(|json| {
            serde_json::from_slice(json)
                .and_then(crate::lenient_json::from_value)
                .map_err(|e| format!("not the expected JSON: {e}"))
        }) {
            Ok(v) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(v)
            }
            Err(why) => {
                self.corrupt(&path, &why);
                None
            }
        }
    }

    /// Stores a JSON result under `key` (atomically, with its checksum).
    pub fn put_result<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), HostError> {
        let path = self.path("results", key, "json");
        Self::ensure_dir(&path)?;
        let json = serde_json::to_vec(value).map_err(|e| HostError::format(&path, e.to_string()))?;
        write_atomic(&path, &encode_result(&json)).map_err(|e| e.while_writing("write cache entry"))?;
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Checks every entry under the root against its checksum (reading them all), without
    /// changing anything. Folders other than `embeddings/` and `results/` (the asset store) are
    /// not looked at.
    pub fn verify(&self) -> Result<Verification, HostError> {
        let mut out = Verification::default();
        for (kind, ext) in [("embeddings", "emb"), ("results", "json")] {
            let top = self.root.join(kind);
            for prefix in list(&top)? {
                if !prefix.is_dir() {
                    out.unexpected.push(prefix);
                    continue;
                }
                for path in list(&prefix)? {
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.starts_with('.') && name.ends_with(".tmp") {
                        out.temporary.push(path);
                        continue;
                    }
                    if !name.ends_with(&format!(".{ext}")) || !path.is_file() {
                        out.unexpected.push(path);
                        continue;
                    }
                    let bytes = std::fs::read(&path).map_err(|e| HostError::io(&path, e))?;
                    let check = if kind == "embeddings" {
                        decode(&bytes).map(|_| ())
                    } else {
                        decode_result(&bytes).map(|_| ())
                    };
                    match check {
                        Ok(()) => out.intact += 1,
                        Err(why) => out.corrupt.push((path, why)),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// What [`Cache::verify`] found.
#[derive(Debug, Default)]
pub struct Verification {
    /// Entries whose checksum holds.
    pub intact: usize,
    /// Entries that fail their checksum, with the reason.
    pub corrupt: Vec<(PathBuf, String)>,
    /// Temporary files of writes that never finished (a killed process); never read as entries.
    pub temporary: Vec<PathBuf>,
    /// Anything else found where entries live.
    pub unexpected: Vec<PathBuf>,
}

/// The entries of a folder, sorted; none when it does not exist.
fn list(dir: &Path) -> Result<Vec<PathBuf>, HostError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(HostError::io(dir, e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| HostError::io(dir, e))?.path());
    }
    paths.sort();
    Ok(paths)
}

fn encode_result(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RESULT_MAGIC.len() + 65 + json.len());
    out.extend_from_slice(RESULT_MAGIC);
    out.extend_from_slice(hex(&Sha256::digest(json)).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(json);
    out
}

/// The JSON of a result file whose checksum holds.
fn decode_result(bytes: &[u8]) -> Result<&[u8], String> {
    let header = RESULT_MAGIC.len() + 65;
    if bytes.len() < header || !bytes.starts_with(RESULT_MAGIC) || bytes[header - 1] != b'\n' {
        return Err("not a commute result file".to_owned());
    }
    let (digest, json) = (&bytes[RESULT_MAGIC.len()..header - 1], &bytes[header..]);
    if hex(&Sha256::digest(json)).as_bytes() != digest {
        return Err("checksum mismatch".to_owned());
    }
    Ok(json)
}

fn encode(chunk: &Chunk) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + 24 + 8 * chunk.rows + chunk.data.len() * 4 + 32);
    out.extend_from_slice(if chunk.frames.is_some() { FRAMES_MAGIC } else { MAGIC });
    out.extend_from_slice(&(chunk.rows as u64).to_le_bytes());
    out.extend_from_slice(&(chunk.dim as u64).to_le_bytes());
    if let Some(frames) = &chunk.frames {
        out.extend_from_slice(&frames.rate.to_bits().to_le_bytes());
        for i in 0..frames.items() {
            out.extend_from_slice(&(frames.range(i).len() as u64).to_le_bytes());
        }
    }
    for x in &chunk.data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

fn decode(bytes: &[u8]) -> Result<Chunk, String> {
    let framed = bytes.get(..12) == Some(FRAMES_MAGIC);
    if bytes.len() < 12 + 16 + 32 || !(framed || &bytes[..12] == MAGIC) {
        return Err("not a commute embedding file".to_owned());
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        return Err("checksum mismatch".to_owned());
    }
    let word = |i: usize| -> Result<u64, String> {
        let b = body.get(12 + 8 * i..20 + 8 * i).ok_or("the header is cut short")?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| "the header is cut short")?))
    };
    let (rows, dim) = (word(0)? as usize, word(1)? as usize);
    let (frames, header) = if framed {
        let rate = f64::from_bits(word(2)?);
        if rows > body.len() / 8 {
            return Err(format!("{rows} rows cannot fit in {} bytes", body.len()));
        }
        let counts = (0..rows).map(|i| word(3 + i).map(|c| c as usize)).collect::<Result<Vec<_>, _>>()?;
        (Some(FrameIndex::from_counts(rate, counts)), 12 + 24 + 8 * rows)
    } else {
        (None, 28)
    };
    let vectors = frames.as_ref().map_or(rows, FrameIndex::total);
    let floats = &body[header.min(body.len())..];
    if vectors.checked_mul(dim).and_then(|n| n.checked_mul(4)) != Some(floats.len()) {
        return Err(format!("{vectors}×{dim} does not match {} bytes of data", floats.len()));
    }
    let data = floats.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(Chunk { rows, dim, data, frames })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_and_count_hits_and_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let chunk = Chunk::pooled(2, 3, vec![1.0, 2.0, 3.0, -4.0, 0.5, f32::MIN_POSITIVE]);
        assert_eq!(cache.get_embeddings("aa11"), None);
        cache.put_embeddings("aa11", &chunk).unwrap();
        assert_eq!(cache.get_embeddings("aa11"), Some(chunk));
        assert_eq!(cache.stats.snapshot(), (1, 1, 0, 1));
    }

    #[test]
    fn frame_chunks_round_trip_with_their_index_and_a_lying_index_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        // Three items of 2, 0 (skipped) and 1 frames of width 2.
        let frames = FrameIndex::from_counts(86.1328125, [2, 0, 1]);
        assert_eq!((frames.items(), frames.total(), frames.range(2)), (3, 3, 2..3));
        let chunk = Chunk { rows: 3, dim: 2, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], frames: Some(frames) };
        cache.put_embeddings("cc33", &chunk).unwrap();
        assert_eq!(cache.get_embeddings("cc33"), Some(chunk.clone()));
        // A pooled chunk of the same floats is another entry, never read as frames.
        cache.put_embeddings("cc34", &Chunk::pooled(3, 2, chunk.data.clone())).unwrap();
        assert_eq!(cache.get_embeddings("cc34").unwrap().frames, None);
        // Counts that do not add up to the floats stored: refused even with a valid checksum.
        let mut lying = chunk;
        lying.frames = Some(FrameIndex::from_counts(86.1328125, [2, 1, 1]));
        assert!(decode(&encode(&lying)).unwrap_err().contains("does not match"));
        let mut a = FrameIndex::from_counts(10.0, [1, 2]);
        a.extend(&FrameIndex::from_counts(10.0, [0, 3]));
        assert_eq!(a.offsets, vec![0, 1, 3, 3, 6]);
    }

    #[test]
    fn a_corrupt_entry_is_detected_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let chunk = Chunk::pooled(1, 2, vec![1.0, 2.0]);
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
    fn a_nan_in_a_result_reads_back_as_nan_and_counts_as_a_hit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        cache.put_result("dd44", &vec![0.25f64, f64::NAN]).unwrap();
        let back = cache.get_result::<Vec<f64>>("dd44").expect("a hit, not a corrupt entry");
        assert_eq!(back[0], 0.25);
        assert!(back[1].is_nan());
        assert_eq!(cache.stats.corrupt.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn results_carry_a_checksum_and_a_changed_digit_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        cache.put_result("cc33", &vec![0.125f64, 0.5]).unwrap();
        assert_eq!(cache.get_result::<Vec<f64>>("cc33"), Some(vec![0.125, 0.5]));
        let path = cache.path("results", "cc33", "json");
        let good = std::fs::read(&path).unwrap();
        assert!(good.starts_with(b"COMMUTE-RES1 "));
        // 0.125 → 0.135: still valid JSON of the right type, so only the checksum can catch it.
        let text = String::from_utf8(good.clone()).unwrap().replacen("0.125", "0.135", 1);
        std::fs::write(&path, text).unwrap();
        assert_eq!(cache.get_result::<Vec<f64>>("cc33"), None);
        // Truncated, and an old-style bare JSON file: both corrupt.
        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert_eq!(cache.get_result::<Vec<f64>>("cc33"), None);
        std::fs::write(&path, b"[0.125,0.5]").unwrap();
        assert_eq!(cache.get_result::<Vec<f64>>("cc33"), None);
        // Intact but of another type: not served either.
        std::fs::write(&path, &good).unwrap();
        assert_eq!(cache.get_result::<String>("cc33"), None);
        assert_eq!(cache.stats.snapshot(), (1, 0, 4, 1));
        // A rewrite repairs it.
        cache.put_result("cc33", &vec![0.125f64, 0.5]).unwrap();
        assert_eq!(cache.get_result::<Vec<f64>>("cc33"), Some(vec![0.125, 0.5]));
    }

    #[test]
    fn verify_reports_intact_corrupt_and_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert_eq!(cache.verify().unwrap().intact, 0, "an empty cache verifies");
        let chunk = Chunk::pooled(1, 1, vec![3.0]);
        cache.put_embeddings("dd44", &chunk).unwrap();
        cache.put_embeddings("dd55", &chunk).unwrap();
        cache.put_result("ee66", &"ok").unwrap();
        let bad = cache.path("embeddings", "dd55", "emb");
        let mut bytes = std::fs::read(&bad).unwrap();
        bytes[28] ^= 1;
        std::fs::write(&bad, bytes).unwrap();
        let tmp = bad.with_file_name(".dd66.emb.123.tmp");
        std::fs::write(&tmp, b"half").unwrap();
        let v = cache.verify().unwrap();
        assert_eq!(v.intact, 2);
        assert_eq!(v.corrupt.len(), 1);
        assert_eq!((v.corrupt[0].0.as_path(), v.corrupt[0].1.as_str()), (bad.as_path(), "checksum mismatch"));
        assert_eq!(v.temporary, vec![tmp]);
        assert!(v.unexpected.is_empty());
        // Writing leaves no temporary file behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("results/ee")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_writable_cache_passes_the_probe_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new/cache");
        let cache = Cache::new(&root);
        cache.ensure_writable().unwrap();
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        let blocked = Cache::new(dir.path().join("file/cache"));
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let err = blocked.ensure_writable().unwrap_err().to_string();
        assert!(err.starts_with("cannot create the cache folder ") && err.contains("file/cache"), "{err}");
    }

    #[test]
    fn concurrent_writers_with_their_own_caches_leave_every_entry_intact() {
        // Eight writers, each with its own Cache on the same folder (as processes on several
        // machines would have), write the same 16 shared keys and 16 keys of their own, 3 times
        // each, while reading the shared ones back: every read is whole, never a partial entry.
        let dir = tempfile::tempdir().unwrap();
        let chunk = |seed: usize| {
            let data: Vec<f32> = (0..4096).map(|i| (i * 31 + seed) as f32 * 0.5).collect();
            Chunk::pooled(64, 64, data)
        };
        let shared: Vec<String> = (0..16).map(|i| format!("{i:02x}{}", "a".repeat(62))).collect();
        std::thread::scope(|scope| {
            for writer in 0..8 {
                let (root, shared) = (dir.path(), &shared);
                scope.spawn(move || {
                    let cache = Cache::new(root);
                    for round in 0..3 {
                        for (i, key) in shared.iter().enumerate() {
                            cache.put_embeddings(key, &chunk(i)).unwrap();
                            let own = format!("{writer:02x}{i:02x}{}", "b".repeat(60));
                            cache.put_embeddings(&own, &chunk(1000 * writer + i)).unwrap();
                            let j = (i + round + writer) % shared.len();
                            if let Some(read) = cache.get_embeddings(&shared[j]) {
                                assert_eq!(read, chunk(j), "a shared entry read back changed");
                            }
                        }
                    }
                    assert_eq!(
                        cache.stats.corrupt.load(Ordering::Relaxed),
                        0,
                        "a reader saw a partial entry"
                    );
                });
            }
        });
        let cache = Cache::new(dir.path());
        for (i, key) in shared.iter().enumerate() {
            assert_eq!(cache.get_embeddings(key), Some(chunk(i)));
        }
        for writer in 0..8 {
            for i in 0..16 {
                let own = format!("{writer:02x}{i:02x}{}", "b".repeat(60));
                assert_eq!(cache.get_embeddings(&own), Some(chunk(1000 * writer + i)));
            }
        }
        let v = cache.verify().unwrap();
        assert_eq!((v.intact, v.corrupt.len(), v.temporary.len()), (16 + 8 * 16, 0, 0));
        assert!(v.unexpected.is_empty(), "{:?}", v.unexpected);
    }

    #[test]
    fn has_embeddings_looks_for_the_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert!(!cache.has_embeddings("ff00"));
        cache.put_embeddings("ff00", &Chunk::pooled(1, 1, vec![1.0])).unwrap();
        assert!(cache.has_embeddings("ff00"));
        assert_eq!(cache.stats.snapshot(), (0, 0, 0, 1), "nothing read, nothing counted");
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
