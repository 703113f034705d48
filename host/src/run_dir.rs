//! A run folder: one per run, never modified afterwards. It holds the experiment as written and
//! as resolved, the plugins used (with library hashes), `metrics.json` (the source of truth), the
//! Markdown report with its SVG plots, and the run's log.

use crate::value_io::write_atomic;
use crate::HostError;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A new, empty run folder.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    log: Vec<String>,
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
        std::fs::create_dir_all(&parent).map_err(|e| HostError::io(&parent, e))?;
        for attempt in 0..100 {
            let path =
                if attempt == 0 { parent.join(&stamp) } else { parent.join(format!("{stamp}-{attempt}")) };
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(RunDir { path, log: Vec::new() }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(HostError::io(&path, e)),
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
            std::fs::create_dir_all(dir).map_err(|e| HostError::io(dir, e))?;
        }
        write_atomic(&path, bytes)?;
        Ok(path)
    }

    /// Writes pretty JSON.
    pub fn write_json<T: serde::Serialize>(&self, relative: &str, value: &T) -> Result<PathBuf, HostError> {
        let json = serde_json::to_vec_pretty(value)
            .map_err(|e| HostError::format(self.path.join(relative), e.to_string()))?;
        self.write(relative, &json)
    }

    /// Adds a line to the run's log (written by [`RunDir::finish_log`]) and to the host's log.
    pub fn log(&mut self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!("{line}");
        let (stamp, _) = utc_stamps(now_secs());
        self.log.push(format!("{stamp} {line}"));
    }

    /// Writes `run.log`.
    pub fn finish_log(&self) -> Result<(), HostError> {
        let mut text = self.log.join("\n");
        text.push('\n');
        self.write("run.log", text.as_bytes()).map(|_| ())
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
}
