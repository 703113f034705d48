//! Finding and loading plugin libraries, and every way a library can fail to be a plugin.

use crate::util::{abort_library, commute, library, plugin_dir, plugin_file_name, run};

#[test]
fn plugins_lists_every_plugin_in_a_folder_with_its_hash() {
    let dir = plugin_dir(&[
        ("music", &library("commute-plugin-music")),
        ("echo", &library("commute-fixture-echo")),
    ]);
    let (code, out, err) =
        run(commute().arg("--no-default-plugins").arg("--plugin-dir").arg(dir.path()).arg("plugins"));
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    let names: Vec<&str> = out.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["echo", "music"], "{out}");

    let (code, json, _) = run(commute()
        .arg("--no-default-plugins")
        .arg("--plugin-dir")
        .arg(dir.path())
        .args(["plugins", "--json"]));
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let echo = &json["plugins"][0];
    assert_eq!(echo["name"], "echo");
    let bytes = std::fs::read(dir.path().join(plugin_file_name("echo"))).unwrap();
    let expected: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert_eq!(echo["sha256"], expected.as_str());
    assert_eq!(echo["manifest"]["functions"].as_array().unwrap().len(), 4);
}

#[test]
fn the_plugin_path_variable_and_the_executable_folder_are_searched() {
    let dir = plugin_dir(&[("echo", &library("commute-fixture-echo"))]);
    let (code, out, err) = run(commute().env("COMMUTE_PLUGIN_PATH", dir.path()).arg("plugins"));
    assert!(out.contains("echo"), "{out}");
    // The executable's folder (the build folder) holds the music plugin.
    assert!(out.lines().any(|l| l.starts_with("music")), "{out}");
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_library_that_is_not_a_plugin_is_reported_and_the_others_still_load() {
    let dir = plugin_dir(&[
        ("echo", &library("commute-fixture-echo")),
        ("plain", &library("commute-fixture-not-a-plugin")),
    ]);
    std::fs::write(dir.path().join(plugin_file_name("text")), "just text").unwrap();
    let (code, out, err) =
        run(commute().arg("--no-default-plugins").arg("--plugin-dir").arg(dir.path()).arg("plugins"));
    assert_eq!(code, 1, "a failed library is a failed check: {err}");
    assert!(out.contains("echo"), "{out}");
    assert!(err.contains(&plugin_file_name("plain")) && err.contains("not a commute plugin"), "{err}");
    assert!(
        err.contains(&plugin_file_name("text")) && err.contains("not a loadable dynamic library"),
        "{err}"
    );
}

#[test]
fn a_plugin_built_for_another_abi_names_both_versions_and_what_to_do() {
    let (code, _, err) = run(commute()
        .arg("--no-default-plugins")
        .arg("--plugin")
        .arg(library("commute-fixture-old-abi"))
        .arg("plugins"));
    assert_eq!(code, 1);
    assert!(err.contains("ABI 0.3"), "{err}");
    assert!(err.contains("commute-sdk 0.0.9"), "{err}");
    assert!(
        err.contains(&format!("ABI {}.{}", commute_sdk::abi::ABI_MAJOR, commute_sdk::abi::ABI_MINOR)),
        "{err}"
    );
    assert!(err.contains("Rebuild the plugin"), "{err}");
}

#[test]
fn a_plugin_built_with_panic_abort_is_refused_with_an_explanation() {
    let (code, out, err) =
        run(commute().arg("--no-default-plugins").arg("--plugin").arg(abort_library()).arg("plugins"));
    assert_eq!(code, 1);
    assert!(!out.contains("abort "), "{out}");
    assert!(err.contains("panic = \"abort\"") && err.contains("panic = \"unwind\""), "{err}");
}

#[test]
fn two_plugins_with_one_name_keep_the_first_and_report_the_second() {
    let first = plugin_dir(&[("echo", &library("commute-fixture-echo"))]);
    let second = plugin_dir(&[("echo-copy", &library("commute-fixture-echo"))]);
    let (code, out, err) = run(commute()
        .arg("--no-default-plugins")
        .arg("--plugin-dir")
        .arg(first.path())
        .arg("--plugin-dir")
        .arg(second.path())
        .arg("plugins"));
    assert_eq!(code, 1);
    assert_eq!(out.lines().filter(|l| l.starts_with("echo")).count(), 1, "{out}");
    assert!(out.contains(&first.path().display().to_string()), "{out}");
    assert!(err.contains("a second plugin named `echo`"), "{err}");
    assert!(err.contains(&second.path().display().to_string()), "{err}");
}

#[test]
fn describe_shows_kinds_signatures_and_parameters() {
    let (code, out, err) = run(commute()
        .arg("--no-default-plugins")
        .arg("--plugin")
        .arg(library("commute-fixture-echo"))
        .args(["describe", "echo"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("numbers [source] () → tensor"), "{out}");
    assert!(out.contains("peek [encoder] tensor → tensor"), "{out}");
    assert!(out.contains("    count: integer ≥ 0 = 3\n"), "{out}");
    assert!(out.contains("How many numbers to produce."), "{out}");

    let (code, _, err) = run(commute().arg("--no-default-plugins").args(["describe", "nothing"]));
    assert_eq!(code, 2);
    assert!(err.contains("no plugin named `nothing`"), "{err}");
}

#[test]
fn plugin_logs_reach_the_host_log_on_stderr() {
    let (code, out, err) = run(commute()
        .arg("--no-default-plugins")
        .arg("-v")
        .arg("--threads")
        .arg("3")
        .arg("--plugin")
        .arg(library("commute-fixture-echo"))
        .args(["call", "echo", "echo", "--text", "hello"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hello\n");
    assert!(err.contains("echo opened threads=3"), "the plugin's log line carries the thread budget: {err}");
}
