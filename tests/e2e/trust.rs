//! Trust: the run manifest (`plugins.json`) records every plugin library loaded with its path,
//! sha256, name and version, and which ones the experiment used; plugin folders and libraries
//! that other users can write are refused, naming the path and the flag that allows them.

use crate::util::{commute, library, plugin_dir, run};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

const TINY: &str = include_str!("experiments/tiny.toml");

fn sha256(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).expect("read library")).iter().map(|b| format!("{b:02x}")).collect()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn the_run_manifest_records_every_loaded_library_and_which_were_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("tiny.toml"), TINY).expect("write experiment");
    let (music, echo) = (library("commute-plugin-music"), library("commute-fixture-echo"));
    let (code, stdout, stderr) = run(commute()
        .current_dir(dir.path())
        .args(["--no-default-plugins", "--threads", "1", "--plugin"])
        .arg(&music)
        .arg("--plugin")
        .arg(&echo)
        .args(["run", "tiny.toml", "--cache", "cache", "--runs", "runs"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let folder =
        dir.path().join(stdout.lines().find_map(|l| l.strip_prefix("run folder: ")).expect("run folder"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("plugins.json")).expect("plugins.json"))
            .expect("json");
    let entries = manifest.as_array().expect("a list");
    assert_eq!(entries.len(), 2, "{manifest:#}");
    for (entry, file, name, used) in
        [(&entries[0], &music, "music", true), (&entries[1], &echo, "echo", false)]
    {
        assert_eq!(entry["name"], name);
        assert_eq!(entry["used"], used, "{name}");
        assert_eq!(entry["path"].as_str(), file.to_str());
        assert_eq!(entry["sha256"].as_str(), Some(sha256(file).as_str()), "{name}: the sha256 of the file");
        assert_eq!(entry["version"], entry["manifest"]["version"]);
        assert!(entry["version"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(entry["insecure"].is_null());
    }
    // The report lists only the plugins used.
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report.md");
    assert!(report.contains("- `music`") && !report.contains("- `echo`"), "{report}");
}

#[test]
fn a_plugin_folder_writable_by_others_is_refused_unless_allowed() {
    let dir = plugin_dir(&[("music", &library("commute-plugin-music"))]);
    let plugins = dir.path();
    let listed = |extra: &[&str]| {
        run(commute().args(["--no-default-plugins", "--plugin-dir"]).arg(plugins).args(extra).arg("plugins"))
    };
    let (code, stdout, stderr) = listed(&[]);
    assert_eq!(code, 0, "a 0700 temporary folder is fine: {stderr}");
    assert!(stdout.contains("music"), "{stdout}");

    chmod(plugins, 0o777);
    let (code, stdout, stderr) = listed(&[]);
    assert_eq!(code, 1, "a refused library is a failed check\n{stdout}\n{stderr}");
    assert!(!stdout.contains("music"), "{stdout}");
    let error =
        stderr.lines().find(|l| l.starts_with("error: refusing")).unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(
        error,
        format!(
            "error: refusing plugin folder {p}: {p} is writable by other users (mode 0777), so anyone who can \
             write there can add or replace a library that commute would load. Fix it with `chmod go-w {p}`, \
             or pass --allow-insecure-plugin-dirs to load it anyway",
            p = plugins.display()
        )
    );

    // A run that needs the plugin says why it is missing.
    std::fs::write(plugins.join("tiny.toml"), TINY).expect("write experiment");
    let (code, _, stderr) = run(commute()
        .current_dir(plugins)
        .args(["--no-default-plugins", "--plugin-dir"])
        .arg(plugins)
        .args(["run", "tiny.toml", "--cache", "cache", "--runs", "runs"]));
    assert_eq!(code, 2, "{stderr}");
    let warning = stderr.lines().next().unwrap_or_default();
    assert!(
        warning.starts_with(" WARN")
            && warning.contains("refusing plugin folder")
            && warning.contains("--allow-insecure-plugin-dirs"),
        "the refusal comes first: {stderr}"
    );
    assert!(stderr.contains("unknown plugin `music`"), "{stderr}");

    let (code, stdout, stderr) = listed(&["--allow-insecure-plugin-dirs"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("music"), "{stdout}");
    let lib = plugins.join(crate::util::plugin_file_name("music"));
    let reason = format!("{} is writable by other users (mode 0777)", plugins.display());
    assert!(
        stderr.contains(&format!(
            " WARN commute_host::registry: loading {} although {reason} (--allow-insecure-plugin-dirs)",
            lib.display()
        )),
        "{stderr}"
    );
    // The run manifest records why the library would have been refused.
    let (code, stdout, stderr) = run(commute()
        .current_dir(plugins)
        .args(["--no-default-plugins", "--allow-insecure-plugin-dirs", "--plugin-dir"])
        .arg(plugins)
        .args(["run", "tiny.toml", "--cache", "cache", "--runs", "runs"]));
    assert_eq!(code, 0, "{stderr}");
    let folder =
        plugins.join(stdout.lines().find_map(|l| l.strip_prefix("run folder: ")).expect("run folder"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("plugins.json")).expect("plugins.json"))
            .expect("json");
    assert_eq!(manifest[0]["insecure"].as_str(), Some(reason.as_str()), "{manifest:#}");

    // A group-writable library in a safe folder is refused too.
    chmod(plugins, 0o755);
    chmod(&lib, 0o775);
    let (code, _, stderr) = listed(&[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("refusing plugin library {}", lib.display()))
            && stderr.contains("group-writable"),
        "{stderr}"
    );
    chmod(&lib, 0o755);

    // Owned by another user (only root can give a file away).
    if std::os::unix::fs::chown(plugins, Some(4242), None).is_err() {
        eprintln!("skipped: cannot chown a folder to another user (not root)");
        return;
    }
    let (code, _, stderr) = listed(&[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is owned by uid 4242, neither you nor root"), "{stderr}");
}
