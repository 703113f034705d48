//! A run folder: one per run, never modified afterwards. It holds the experiment as written and
//! as resolved, the plugins loaded (with library hashes, and which ones the run used),
//! `metrics.json` (the source of truth), the Markdown report with its SVG plots, and the run's log.
//!
//! Every file is written atomically (temporary name, then rename), and `metrics.json` is written
//! last: a folder without it is a run that did not complete. `run.log` is appended to line by
//! line as the run goes, so the log of a killed run says how far it got; a run that stops on an
//! error (or a panic) ends its log with a `stopped before completion` line.

use crate::value_io::write_atomic;
use crate::HostError;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The log file in a run folder.
pub const LOG_FILE: &str = "run.log";

/// A new, empty run folder.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    /// `run.log`, open for appending; `None` once a write to it failed (reported once).
    log: Option<std::fs::File>,
    finished: bool,
}

/// `YYYY-MM-DDTHH:MM:SSZ` and `YYYYMMDD-HHMMSS` for a time since the epoch (UTC).
pub fn utc_stamps(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
        format!("{y:04}{mo:02}{d:02}-{h:02}{m:02}{s:02}"),
    )
}

/// Seconds since the epoch now.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl RunDir {
    /// Creates `<runs>/<name>/<timestamp>/` (with a suffix if that exists already).
    pub fn create(runs: &Path, name: &str) -> Result<RunDir, HostError> {
        let (_, stamp) = utc_stamps(now_secs());
        let parent = runs.join(name);
        std::fs::create_dir_all(&parent)
            .map_err(|e| HostError::write("create the runs folder", &parent, e))?;
        for attempt in 0..100 {
            let path =
                if attempt == 0 { parent.join(&stamp) } else { parent.join(format!("{stamp}-{attempt}")) };
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let log_path = path.join(LOG_FILE);
                    let log = std::fs::OpenOptions::new().create_new(true).append(true).open(&log_path);
                    return match log {
                        Ok(file) => Ok(RunDir { path, log: Some(file), finished: false }),
                        Err(e) => {
                            // Leave no empty run folder behind.
                            let _ = std::fs::remove_dir(&path);
                            Err(HostError::write("create the run log", log_path, e))
                        }
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(HostError::write("create the run folder", &path, e)),
            }
        }
        Err(HostError::Usage(format!("too many runs started this second in {}", parent.display())))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a file inside the run folder (atomically), creating subfolders.
    pub fn write(&self, relative: &str, bytes: &[u8]) -> Result<PathBuf, HostError> {
        let path = self.path.join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| HostError::write("create the folder", dir, e))?;
        }
        write_atomic(&path, bytes).map_err(|e| e.while_writing("write"))?;
        Ok(path)
    }

    /// Writes pretty JSON.
    pub fn write_json<T: serde::Serialize>(&self, relative: &str, value: &T) -> Result<PathBuf, HostError> {
        let json = serde_json::to_vec_pretty(value)
            .map_err(|e| HostError::format(self.path.join(relative), e.to_string()))?;
        self.write(relative, &json)
    }

    /// Appends a line to the run's log (at once, so a killed run's log says how far it got) and
    /// to the host's log. A failed write to the log is reported once, as a warning, and the run
    /// goes on: the results, not the log, decide whether it succeeds.
    pub fn log(&mut self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!("{line}");
        self.append(&line);
    }

    fn append(&mut self, line: &str) {
        let Some(file) = self.log.as_mut() else { return };
        let (stamp, _) = utc_stamps(now_secs());
        if let Err(e) = writeln!(file, "{stamp} {line}") {
            tracing::warn!(
                "cannot append to {}: {}; the run goes on without its log",
                self.path.join(LOG_FILE).display(),
                crate::error::io_reason(&e)
            );
            self.log = None;
        }
    }

    /// Marks the run complete and flushes `run.log` to disk.
    pub fn finish_log(&mut self) -> Result<(), HostError> {
        self.finished = true;
        match &self.log {
            Some(file) => file.sync_all().map_err(|e| HostError::write("write", self.path.join(LOG_FILE), e)),
            None => Ok(()),
        }
    }
}

impl Drop for RunDir {
    /// A run that stops before [`RunDir::finish_log`] (an error, a panic) says so in its log.
    fn drop(&mut self) {
        if !self.finished {
            self.append(
                "stopped before completion (see the error on stderr); this run folder has no metrics.json",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_match_known_dates() {
        assert_eq!(utc_stamps(0).0, "1970-01-01T00:00:00Z");
        assert_eq!(utc_stamps(951_782_400).0, "2000-02-29T00:00:00Z");
        assert_eq!(
            utc_stamps(1_795_822_245),
            ("2026-11-27T23:30:45Z".to_owned(), "20261127-233045".to_owned())
        );
    }

    #[test]
    fn run_folders_are_new_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let a = RunDir::create(dir.path(), "exp").unwrap();
        let b = RunDir::create(dir.path(), "exp").unwrap();
        assert_ne!(a.path(), b.path());
        let written = a.write("plots/x.svg", b"<svg/>").unwrap();
        assert_eq!(std::fs::read(written).unwrap(), b"<svg/>");
    }

    #[test]
    fn the_log_grows_as_the_run_goes_and_says_when_it_stopped_early() {
        let dir = tempfile::tempdir().unwrap();
        let mut done = RunDir::create(dir.path(), "exp").unwrap();
        let log = done.path().join(LOG_FILE);
        done.log("first");
        assert!(std::fs::read_to_string(&log).unwrap().ends_with(" first\n"), "written at once");
        done.log("done");
        done.finish_log().unwrap();
        drop(done);
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");

        let mut stopped = RunDir::create(dir.path(), "exp").unwrap();
        stopped.log("edge a → b");
        let log = stopped.path().join(LOG_FILE);
        drop(stopped);
        let text = std::fs::read_to_string(&log).unwrap();
        let last = text.lines().last().unwrap();
        assert!(last.contains("stopped before completion") && text.contains("edge a → b"), "{text}");
    }

    #[test]
    fn an_unwritable_runs_folder_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("runs"), b"a file, not a folder").unwrap();
        let err = RunDir::create(&dir.path().join("runs"), "exp").unwrap_err().to_string();
        assert!(err.starts_with("cannot create the runs folder ") && err.contains("runs/exp"), "{err}");
    }
}
