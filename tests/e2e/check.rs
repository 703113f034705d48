//! `commute check`: every bad file in `bad-experiments/` gives exactly the messages in its
//! `.stderr` snapshot (error messages are user interface). `UPDATE_SNAPSHOTS=1` rewrites them.
//! The corpus is checked from a copy, beside the two small `.npy` files its embeddings cases read,
//! written here rather than kept in the repository.

use crate::util::{commute, library, run};
use commute_sdk::npy;
use std::path::{Path, PathBuf};
use std::process::Command;

fn with_plugins() -> Command {
    let mut cmd = commute();
    cmd.arg("--no-default-plugins")
        .arg("--plugin")
        .arg(library("commute-plugin-music"))
        .arg("--plugin")
        .arg(library("commute-plugin-audio"));
    cmd
}

fn bad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/bad-experiments")
}

/// Copies the folder `from` into `to`, subfolders included.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder for the copy");
    for entry in std::fs::read_dir(from).expect("the folder to copy") {
        let path = entry.expect("a folder entry").path();
        let target = to.join(path.file_name().expect("an entry has a name"));
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy a file");
        }
    }
}

#[test]
fn bad_experiment_files_report_every_error_with_its_position() {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&bad_dir(), copy.path());
    // What `embeddings-content.toml` reads: a 1-D array and a 2 × 4 one.
    std::fs::write(copy.path().join("embeddings-flat.npy"), npy::encode_f32(&[3], &[0.0, 1.0, 2.0])).unwrap();
    std::fs::write(copy.path().join("embeddings-two-rows.npy"), npy::encode_f32(&[2, 4], &[1.0; 8])).unwrap();
    let dir = copy.path();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the bad-file corpus is there");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut mismatches = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let (code, out, err) = run(with_plugins().current_dir(dir).arg("check").arg(name));
        assert_eq!(code, 1, "{name}: a bad file fails the check\n{out}{err}");
        assert!(out.is_empty(), "{name}: nothing on stdout: {out}");
        assert!(err.contains(&format!("--> {name}:")), "{name}: errors name the file and position:\n{err}");
        let snapshot = bad_dir().join(name).with_extension("stderr");
        if update {
            std::fs::write(&snapshot, &err).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if expected != err {
            mismatches.push(format!("=== {name}: expected\n{expected}=== got\n{err}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "messages changed (rerun with UPDATE_SNAPSHOTS=1 if intended):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn the_quickstart_experiment_checks_clean() {
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/quickstart.toml");
    let (code, out, err) = run(with_plugins().arg("check").arg(&quickstart));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: experiment `quickstart`: 2 data sets, 5 nodes, 3 edges"), "{out}");
}

/// Every experiment the repository ships checks clean against the six real plugins: a plugin's
/// parameters or functions cannot drift away from the files that use them unnoticed.
#[test]
fn every_shipped_experiment_checks_clean_against_the_real_plugins() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("experiments/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let mut cmd = commute();
    cmd.arg("--no-default-plugins");
    for package in [
        "commute-plugin-music",
        "commute-plugin-audio",
        "commute-plugin-text",
        "commute-plugin-vision",
        "commute-plugin-colours",
        "commute-plugin-speech",
    ] {
        cmd.arg("--plugin").arg(library(package));
    }
    for file in files {
        let (code, out, err) = run(Command::new(cmd.get_program())
            .args(cmd.get_args())
            .env_remove("COMMUTE_PLUGIN_PATH")
            .arg("check")
            .arg(&file));
        assert_eq!(code, 0, "{}: {err}", file.display());
        assert!(out.starts_with("ok: experiment"), "{}: {out}", file.display());
    }
}

#[test]
fn a_missing_file_is_one_error_that_names_it_and_the_os_reason_once() {
    let (code, out, err) = run(commute().arg("--no-default-plugins").args(["check", "/nonexistent/x.toml"]));
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.starts_with("error: /nonexistent/x.toml: "), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(!err.contains("caused by"), "{err}");
}

#[test]
fn every_fixture_experiment_of_the_suite_parses_without_a_diagnostic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/experiments");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("experiments/").map(|e| e.expect("entry").path()).collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        // A line that is a lone `{placeholder}` is filled in by the test that uses the file.
        let text: String = text
            .lines()
            .filter(|l| !(l.starts_with('{') && l.ends_with('}') && !l.contains('=')))
            .map(|l| format!("{l}\n"))
            .collect();
        if let Err(diags) = commute_host::experiment::parse::parse_bytes(text.as_bytes()) {
            panic!("{}: {diags:?}", file.display());
        }
    }
}
