//! Assets end to end: `commute assets` lists what the real text plugin declares, `commute fetch`
//! gets a file with the registry client into an empty store, verifies it and a function uses it;
//! a corrupted file is detected and fetched again. These tests use the network (the package
//! registry); without it they fail with the fetch error, which names the command to run by hand.

use crate::util::{commute, library, run};
use std::path::Path;
use std::process::Command;

fn text_in(store: &Path, cache: &Path) -> Command {
    let mut cmd = commute();
    cmd.env("COMMUTE_ASSETS", store)
        .env("COMMUTE_HOME", cache)
        .args(["--no-default-plugins", "--threads", "1", "--plugin"])
        .arg(library("commute-plugin-text"));
    cmd
}

#[test]
fn assets_are_listed_fetched_verified_used_and_refetched_when_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, cache) = (dir.path().join("store"), dir.path().join("cache"));

    let (code, stdout, stderr) = run(text_in(&store, &cache).args(["assets", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let vader = listed["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .find(|a| a["name"] == "vader-lexicon")
        .expect("the text plugin declares vader-lexicon")
        .clone();
    assert_eq!(vader["status"], "missing");
    assert_eq!(vader["spec"]["licence"], "MIT");
    assert!(vader["used-by"].as_array().expect("users").iter().any(|u| u == "text/valence"), "{vader}");

    let (code, stdout, stderr) =
        run(text_in(&store, &cache).args(["fetch", "vader-lexicon", "vader-emoji-lexicon"]));
    assert_eq!(code, 0, "fetch failed (is the package registry reachable?):\n{stderr}");
    let path = store.join("vader-lexicon/vader_lexicon.txt");
    assert!(stdout.contains(&path.display().to_string()), "{stdout}");
    assert_eq!(std::fs::metadata(&path).expect("fetched file").len(), 434_304);

    // The function reads it: VADER's published score for this sentence is 0.871.
    let (code, stdout, stderr) = run(text_in(&store, &cache).args([
        "call",
        "text",
        "valence",
        "--text",
        "I love this wonderful day!",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let compound: f64 = stdout.split_whitespace().next().and_then(|x| x.parse().ok()).expect("a number");
    assert!((compound - 0.871).abs() < 5e-4, "compound {compound}");

    // Damage the file (new content, later modification time): `assets` says so, and the next use
    // fetches it again (from the package kept in downloads/, no client needed).
    std::fs::write(&path, "happy\t9.9\n").expect("corrupt the file");
    let (_, stdout, _) = run(text_in(&store, &cache).args(["assets"]));
    let line = stdout.lines().find(|l| l.starts_with("vader-lexicon ")).expect("listed");
    assert!(line.contains("corrupt"), "{line}");
    let (code, stdout, stderr) = run(text_in(&store, &cache).args([
        "call",
        "text",
        "valence",
        "--text",
        "I love this wonderful day!",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("0.87"), "{stdout}");
    assert_eq!(std::fs::metadata(&path).expect("fetched again").len(), 434_304);
}

#[test]
fn an_unknown_asset_name_is_an_error_that_lists_the_declared_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) =
        run(text_in(&dir.path().join("s"), &dir.path().join("c")).args(["fetch", "no-such-asset"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("`no-such-asset`") && stderr.contains("vader-lexicon"), "{stderr}");
}
