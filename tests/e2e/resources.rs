//! Resources: a read-only cache or runs folder, and a full disk under either, give a clear error
//! (the operation, the path, the system's reason; exit code 2) and leave nothing half-written:
//! no temporary files, no partial `metrics.json`, every cache entry intact.
//!
//! Root ignores permission bits, so read-only and full folders are small tmpfs mounts (`mount`
//! needs root, or `CAP_SYS_ADMIN`); without root a read-only folder is a `chmod 0555` folder.
//! Where neither is possible a test prints `skipped: …` on stderr and returns.

use crate::interrupt::{experiment_dir, run_command};
use crate::util::run;
use commute_host::cache::Cache;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount (or a mode change) undone when dropped.
enum Guard {
    Mount(PathBuf),
    Mode(PathBuf),
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::Mount(path) => {
                let _ = Command::new("umount").arg("-l").arg(&*path).status();
            }
            Guard::Mode(path) => {
                use std::os::unix::fs::PermissionsExt as _;
                let _ = std::fs::set_permissions(&*path, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let probe = tempfile::tempfile().expect("temp file");
    probe.metadata().expect("metadata").uid() == 0
}

/// Mounts a tmpfs with `options` on `path` (created), or says why not.
fn mount_tmpfs(path: &Path, options: &str) -> Result<Guard, String> {
    std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
    let output = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "commute-test"])
        .arg(path)
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if output.status.success() {
        Ok(Guard::Mount(path.to_path_buf()))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// A read-only folder at `path`: a read-only tmpfs, else (not root) a 0555 folder. The reason
/// the error should give comes with it.
fn read_only_dir(path: &Path) -> Option<(Guard, &'static str)> {
    match mount_tmpfs(path, "ro,size=64k") {
        Ok(guard) => Some((guard, "read-only file system")),
        Err(why) if is_root() => {
            eprintln!("skipped: cannot mount a tmpfs: {why} (and root ignores permission bits)");
            None
        }
        Err(_) => {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555)).expect("chmod 0555");
            Some((Guard::Mode(path.to_path_buf()), "permission denied"))
        }
    }
}

/// A folder at `path` on a tmpfs of `size` (e.g. `256k`), or `None` (skipped, with a message).
fn small_dir(path: &Path, size: &str) -> Option<Guard> {
    match mount_tmpfs(path, &format!("size={size}")) {
        Ok(guard) => Some(guard),
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs: {why}");
            None
        }
    }
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// No temporary file anywhere under `dir`, and every JSON file parses.
fn assert_nothing_half_written(dir: &Path) {
    for file in files(dir) {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(!name.ends_with(".tmp") && !name.contains(".tmp-"), "left behind: {}", file.display());
        if name.ends_with(".json") && !file.starts_with(dir.join("results")) {
            let bytes = std::fs::read(&file).expect("read");
            assert!(
                serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                "partial: {}",
                file.display()
            );
        }
    }
}

/// The single line of stderr that starts with `error:`.
fn error_line(stderr: &str) -> &str {
    stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("no error line:\n{stderr}"))
}

#[test]
fn a_read_only_cache_is_refused_before_anything_is_written() {
    let dir = experiment_dir();
    let (cache, runs) = (dir.path().join("cache"), dir.path().join("runs"));
    let Some((_guard, reason)) = read_only_dir(&cache) else { return };
    let (code, stdout, stderr) = run(&mut run_command(dir.path(), &cache, &runs));
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let error = error_line(&stderr);
    assert_eq!(
        error,
        format!(
            "error: cannot write to the cache folder {}: {reason} (os error {})",
            cache.display(),
            if reason == "read-only file system" { 30 } else { 13 }
        )
    );
    assert!(!runs.exists(), "no run folder for a run that could not start");
    assert!(files(&cache).is_empty(), "{:?}", files(&cache));
}

#[test]
fn a_read_only_runs_folder_is_named_in_the_error() {
    let dir = experiment_dir();
    let (cache, runs) = (dir.path().join("cache"), dir.path().join("runs"));
    let Some((_guard, reason)) = read_only_dir(&runs) else { return };
    let (code, stdout, stderr) = run(&mut run_command(dir.path(), &cache, &runs));
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let error = error_line(&stderr);
    let expected =
        format!("error: cannot create the runs folder {}: {reason}", runs.join("interrupt").display());
    assert!(error.starts_with(&expected), "{error}\nexpected: {expected}");
    assert!(files(&runs).is_empty());
    assert!(files(&cache).is_empty(), "the write probe is removed: {:?}", files(&cache));
}

#[test]
fn a_full_cache_disk_stops_the_run_with_the_entry_named_and_nothing_half_written() {
    let dir = experiment_dir();
    let (cache, runs) = (dir.path().join("cache"), dir.path().join("runs"));
    // The run writes about 1.8 MB of entries.
    let Some(_guard) = small_dir(&cache, "256k") else { return };
    let (code, stdout, stderr) = run(&mut run_command(dir.path(), &cache, &runs));
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let error = error_line(&stderr);
    assert!(
        error.starts_with(&format!("error: cannot write cache entry {}/", cache.display()))
            && error.ends_with(": no space left on device (os error 28)"),
        "{error}"
    );
    assert_nothing_half_written(&cache);
    let verification = Cache::new(&cache).verify().expect("verify");
    assert!(verification.intact > 0, "some entries fitted");
    assert!(verification.corrupt.is_empty() && verification.temporary.is_empty(), "{verification:?}");
    // The run folder says the run did not complete.
    let folder = std::fs::read_dir(runs.join("interrupt"))
        .expect("run folders")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    assert!(!folder.join("metrics.json").exists());
    let log = std::fs::read_to_string(folder.join("run.log")).expect("run.log");
    assert!(log.lines().last().is_some_and(|l| l.contains("stopped before completion")), "{log}");
}

#[test]
fn a_full_runs_disk_stops_the_run_without_a_partial_metrics_file() {
    let dir = experiment_dir();
    let (cache, runs) = (dir.path().join("cache"), dir.path().join("runs"));
    // A run folder takes about 130 kB, metrics.json (written last) 54 kB of it.
    let Some(_guard) = small_dir(&runs, "96k") else { return };
    let (code, stdout, stderr) = run(&mut run_command(dir.path(), &cache, &runs));
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let error = error_line(&stderr);
    assert!(
        error.starts_with(&format!("error: cannot write {}/interrupt/", runs.display()))
            && error.ends_with(": no space left on device (os error 28)"),
        "{error}"
    );
    assert_nothing_half_written(&runs);
    let folder = std::fs::read_dir(runs.join("interrupt"))
        .expect("run folders")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    assert!(!folder.join("metrics.json").exists(), "no metrics.json in a run that failed");
    assert!(Cache::new(&cache).verify().expect("verify").corrupt.is_empty());
}
