//! The `midi-files` source: every `.mid` / `.midi` file of a folder (optionally its subfolders),
//! read with the SDK's MIDI reader, in file-name order.

use commute_sdk::folder::FolderParams;
use commute_sdk::midi::{read_smf, MAX_FILE_BYTES};
use commute_sdk::prelude::*;
use std::path::Path;

/// The `midi-files` source.
pub struct MidiFiles(FolderParams);

impl Function for MidiFiles {
    const DOC: &'static str =
        "Reads every .mid/.midi file of a folder as a score, in file-name order (percussion channel skipped, tempo map honoured).";
    type Params = FolderParams;

    fn open(params: FolderParams, _ctx: &Context) -> Result<Self> {
        params.check()?;
        Ok(MidiFiles(params))
    }
}

impl Source for MidiFiles {
    type Output = Score;

    fn items(&mut self) -> Result<Vec<Score>> {
        self.0.read_all(&["mid", "midi"], read_file)
    }
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

    fn params(dir: &Path) -> FolderParams {
        FolderParams::new(dir.display().to_string())
    }

    fn items(p: FolderParams) -> Result<Vec<Score>> {
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

        let all = items(FolderParams { recursive: true, ..params(dir.path()) }).expect("reads");
        assert_eq!(all.len(), 3);
        let one = items(FolderParams { limit: Some(1), ..params(dir.path()) }).expect("reads");
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
        let got = items(FolderParams { skip_invalid: true, ..params(dir.path()) }).expect("skips");
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn missing_or_empty_folders_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(items(params(dir.path())).is_err());
        assert!(MidiFiles::open(params(&dir.path().join("nope")), &Context::default()).is_err());
    }
}
