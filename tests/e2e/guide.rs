//! The plugin guide (`docs/plugin-guide.md`) tells the truth: its colour plugin is the fixture
//! `tests/fixtures/colour` block for block, its experiment checks and runs, its commands print
//! what it says, and a parameter outside its declared range is refused by `commute check`.

use crate::util::{commute_in, run, run_folders};
use std::path::Path;

fn guide() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugin-guide.md"))
        .expect("docs/plugin-guide.md")
}

/// The fenced blocks of `lang` between the headings `from` and `to`.
fn blocks(text: &str, lang: &str, from: &str, to: &str) -> Vec<String> {
    let start = text.find(from).unwrap_or_else(|| panic!("the guide has `{from}`"));
    let end = start + text[start..].find(to).unwrap_or_else(|| panic!("the guide has `{to}`"));
    let fence = format!("```{lang}\n");
    text[start..end]
        .split(&fence)
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_guides_colour_plugin_is_the_fixture_block_for_block() {
    let text = guide();
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/colour/src/lib.rs"),
    )
    .expect("fixture source");
    let code = blocks(&text, "rust", "## A worked plugin with every kind", "## Trying it by hand");
    assert!(code.len() >= 6, "source, encoders, operator, render, export and the helpers: {}", code.len());
    for block in code {
        assert!(fixture.contains(block.trim()), "the fixture lacks this block of the guide:\n{block}");
    }
}

fn experiment(dir: &Path, toml: &str) {
    std::fs::write(dir.join("colour.toml"), toml).expect("write colour.toml");
}

#[test]
fn the_guides_experiment_checks_and_runs_and_an_out_of_range_amount_is_refused_by_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = guide();
    let toml = blocks(&text, "toml", "## Using it in an experiment", "## The context").remove(0);
    let colour = ["commute-fixture-colour"];

    let bad = toml.replace("amount = 0.3", "amount = 3.0");
    assert_ne!(bad, toml, "the guide's experiment sets `amount = 0.3`");
    experiment(dir.path(), &bad);
    let (code, _, err) = run(commute_in(dir.path(), &colour).args(["check", "colour.toml"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("parameter `amount` of `lighten` must be in [0, 1], found 3"), "{err}");
    assert!(
        text.contains("parameter `amount` of `lighten` must be in [0, 1], found 3"),
        "the guide shows it"
    );

    experiment(dir.path(), &toml);
    let (code, _, err) = run(commute_in(dir.path(), &colour).args(["check", "colour.toml"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(commute_in(dir.path(), &colour).args(["run", "colour.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = run_folders(&dir.path().join("runs"), "colour").pop().expect("a run folder");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("metrics.json")).expect("metrics.json"))
            .expect("JSON");
    let points = metrics["edges"][0]["points"].as_array().expect("points");
    assert!(!points.is_empty() && points.iter().all(|p| p["error"].is_null()), "{points:?}");
}

#[test]
fn the_guides_calls_print_what_it_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let colour = ["commute-fixture-colour"];
    let (code, out, err) = run(commute_in(dir.path(), &colour).args([
        "call",
        "colour",
        "lighten",
        "--params",
        "amount = 0.5",
        "--value",
        r#"{"kind":"tensor","shape":[3],"data":[0.2,0.4,0.6]}"#,
    ]));
    assert_eq!(code, 0, "{err}");
    let numbers: Vec<f32> = out.split_whitespace().map(|x| x.parse().expect("a number")).collect();
    assert_eq!(numbers.len(), 3, "{out}");
    for (x, expected) in numbers.iter().zip([0.6, 0.7, 0.8]) {
        assert!((x - expected).abs() < 1e-6, "{out}");
    }
    let (code, out, err) = run(commute_in(dir.path(), &colour).args(["describe", "colour"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("amount: float in [0, 1] = 0.25"), "{out}");
}
