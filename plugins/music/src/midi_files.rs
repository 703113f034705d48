//! The `midi-files` source: every `.mid` / `.midi` file of a folder (optionally its subfolders),
//! read with the SDK's MIDI reader, in file-name order.

use commute_sdk::midi::{read_smf, MAX_FILE_BYTES};
use commute_sdk::prelude::*;
use std::path::{Path, PathBuf};

/// Parameters of `midi-files`.
#[params]
#[derive(Debug, Clone)]
pub struct MidiFilesParams {
    /// Folder to read (a relative path is relative to the host's working directory).
    pub dir: String,
    /// Also read subfolders (files are then ordered by their path relative to `dir`).
    #[serde(default)]
    pub recursive: bool,
    /// Skip files that fail to parse (with a logged warning) instead of failing the source.
    #[serde(default)]
    pub skip_invalid: bool,
    /// Read at most this many files (the first ones in order); all when absent.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The `midi-files` source.
pub struct MidiFiles(MidiFilesParams);

impl Function for MidiFiles {
    const DOC: &'static str =
        "Reads every .mid/.midi file of a folder as a score, in file-name order (percussion channel skipped, tempo map honoured).";
    type Params = MidiFilesParams;

    fn open(params: MidiFilesParams, _ctx: &Context) -> Result<Self> {
        let dir = Path::new(&params.dir);
        ensure!(dir.is_dir(), "dir `{}` is not a folder (or cannot be read)", dir.display());
        Ok(MidiFiles(params))
    }
}

impl Source for MidiFiles {
    type Output = Score;

    fn items(&mut self) -> Result<Vec<Score>> {
        let root = PathBuf::from(&self.0.dir);
        let mut files = Vec::new();
        collect(&root, &root, self.0.recursive, 0, &mut files)?;
        ensure!(!files.is_empty(), "no .mid or .midi files in `{}`", root.display());
        files.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(limit) = self.0.limit {
            files.truncate(limit);
        }
        let mut scores = Vec::with_capacity(files.len());
        for (_, path) in files {
            match read_file(&path) {
                Ok(score) => scores.push(score),
                Err(e) if self.0.skip_invalid => {
                    tracing::warn!("skipping {}: {e:#}", path.display())
                }
                Err(e) => return Err(e),
            }
        }
        Ok(scores)
    }
}

/// Deepest folder nesting followed when `recursive` (guards against link cycles).
const MAX_DEPTH: usize = 32;

/// Adds `(path relative to root, path)` of every MIDI file in `dir` to `out`.
fn collect(
    root: &Path,
    dir: &Path,
    recursive: bool,
    depth: usize,
    out: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list `{}`", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            if recursive && depth < MAX_DEPTH {
                collect(root, &path, recursive, depth + 1, out)?;
            }
        } else if is_midi(&path) {
            let relative = path.strip_prefix(root).map_or_else(|_| path.clone(), Path::to_path_buf);
            out.push((relative, path));
        }
    }
    Ok(())
}

fn is_midi(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"))
}

fn read_file(path: &Path) -> Result<Score> {
    let size = std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?.len();
    ensure!(
        size <= MAX_FILE_BYTES as u64,
        "`{}` is {size} bytes, larger than the {MAX_FILE_BYTES}-byte limit for a MIDI file",
        path.display()
    );
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    read_smf(&bytes).with_context(|| format!("cannot parse MIDI file `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tests::note;
    use commute_sdk::midi::write_smf;

    fn params(dir: &Path) -> MidiFilesParams {
        MidiFilesParams { dir: dir.display().to_string(), recursive: false, skip_invalid: false, limit: None }
    }

    fn items(p: MidiFilesParams) -> Result<Vec<Score>> {
        MidiFiles::open(p, &Context::default())?.items()
    }

    #[test]
    fn reads_written_files_in_name_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = Score { notes: vec![note(64, 0.5, 0.25, 70, 48)] };
        let a = Score { notes: vec![note(60, 0.0, 1.0, 100, 0), note(67, 1.0, 0.5, 90, 0)] };
        std::fs::write(dir.path().join("b.mid"), write_smf(&b)).expect("write");
        std::fs::write(dir.path().join("a.MIDI"), write_smf(&a)).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "not midi").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/c.mid"), write_smf(&a)).expect("write");

        let got = items(params(dir.path())).expect("reads");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].notes.len(), 2);
        assert_eq!((got[0].notes[1].pitch, got[0].notes[1].velocity), (67, 90));
        assert!((got[0].notes[1].onset_s - 1.0).abs() < 2e-3);
        assert_eq!((got[1].notes[0].pitch, got[1].notes[0].program), (64, 48));

        let all = items(MidiFilesParams { recursive: true, ..params(dir.path()) }).expect("reads");
        assert_eq!(all.len(), 3);
        let one = items(MidiFilesParams { limit: Some(1), ..params(dir.path()) }).expect("reads");
        assert_eq!(one, got[..1]);
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it_unless_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("good.mid"),
            write_smf(&Score { notes: vec![note(60, 0.0, 1.0, 80, 0)] }),
        )
        .expect("write");
        std::fs::write(dir.path().join("broken.mid"), b"MThd garbage").expect("write");
        let msg = format!("{:#}", items(params(dir.path())).expect_err("broken file"));
        assert!(msg.contains("broken.mid"), "{msg}");
        let got = items(MidiFilesParams { skip_invalid: true, ..params(dir.path()) }).expect("skips");
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn missing_or_empty_folders_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(items(params(dir.path())).is_err());
        assert!(MidiFiles::open(params(&dir.path().join("nope")), &Context::default()).is_err());
    }
}
