//! Atomic file writes for the whole workspace: a temporary file in the target's folder, under a
//! name no other writer uses, then a rename, so that a reader never sees a partial file.
//!
//! The temporary name is `.<name>.<host>-<pid>-<token>-<n>.tmp`: unique across the machines that
//! share a folder (the host name; a random token per process, for machines that share a host name
//! or pid as containers do) and across the threads of one process (a counter), so that concurrent
//! writers of the same file never write into one temporary file. The last rename wins, and every
//! writer renames a whole file. Leftover temporary files (a writer killed mid-write) start with `.`
//! and end with `.tmp`.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

/// A temporary path beside `path` that no other writer uses.
pub fn temp_path(path: &Path) -> PathBuf {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("output");
    dir.join(temp_name(name))
}

/// A temporary file name for `name` that no other writer uses (see the module docs).
pub fn temp_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let writer = WRITER.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        let mut host: String = host
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(64)
            .collect();
        if host.is_empty() {
            host.push_str("host");
        }
        // The standard library seeds each `RandomState` from the operating system's randomness.
        let token = {
            use std::hash::{BuildHasher as _, Hasher as _};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default(),
            );
            h.finish() as u32
        };
        format!("{host}-{}-{token:08x}", std::process::id())
    });
    format!(".{name}.{writer}-{}.tmp", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Writes `path` atomically with `write`, which fills a buffered temporary file; the file is
/// synced before the rename. On any error the temporary file is removed and `path` is untouched.
pub fn write_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(&tmp)?);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` atomically (see [`write_with`]).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |out| out.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_hidden_unique_and_name_host_and_pid() {
        let names: Vec<String> = (0..3).map(|_| temp_name("ab.emb")).collect();
        for n in &names {
            assert!(n.starts_with(".ab.emb.") && n.ends_with(".tmp"), "{n}");
            assert!(n.contains(&format!("-{}-", std::process::id())), "{n}");
        }
        let mut all: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| temp_name("ab.emb"))).collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        all.extend(names);
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "every writer gets its own temporary file");
    }

    #[test]
    fn a_failed_write_leaves_neither_the_target_nor_a_temporary_file() {
        let dir = std::env::temp_dir().join(format!("commute-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        write(&path, b"old").unwrap();
        let err = write_with(&path, |out| {
            out.write_all(b"new, partial")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
        assert_eq!(left.len(), 1, "only the target remains");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
