//! Test helpers shared by the speech plugin's test binaries: the plugin through its ABI (its
//! assets fetched into the asset store and verified on first use), the text plugin's sentences
//! (the text plugin loaded from the library cargo builds for the dev-dependency), and word error
//! rate.

#![allow(dead_code)]

use commute_plugin_speech::commute_plugin;
use commute_sdk::abi::client::Plugin;
use commute_sdk::testing::{sibling_plugin, Harness};
use commute_sdk::{Context, Value};
use std::sync::OnceLock;

/// The speech plugin through its ABI (the SDK's client fetches the assets a function asks for).
pub fn speech() -> Harness {
    Harness::new(commute_plugin()).with_context(Context { threads: 2, ..Context::default() })
}

/// Calls a speech function; every item must succeed.
pub fn call(function: &str, params: &str, batch: &[Value]) -> Vec<Value> {
    speech().call(function, params, batch).unwrap_or_else(|e| panic!("{function}: {e}"))
}

/// The text plugin's library, from this test binary's folder (`target/<profile>/deps`).
fn text_plugin() -> &'static Plugin {
    static TEXT: OnceLock<Plugin> = OnceLock::new();
    TEXT.get_or_init(|| sibling_plugin("commute_plugin_text"))
}

/// The first `count` news sentences of the text plugin's `sentences` (4–12 words).
pub fn sentences(count: usize) -> Vec<String> {
    let mut source = text_plugin()
        .open("sentences", &format!("count = {count}\nmax-words = 12"), &Context::default())
        .unwrap_or_else(|e| panic!("sentences: {e}"));
    let items = source.call(&[]).unwrap_or_else(|e| panic!("sentences: {e}"));
    items
        .into_iter()
        .map(|item| {
            let item = item.unwrap_or_else(|e| panic!("sentences: {e}"));
            item.as_text().unwrap_or_else(|| panic!("sentences gave {item:?}")).to_owned()
        })
        .collect()
}

/// The numbers of a tensor value.
pub fn tensor(v: &Value) -> &[f32] {
    &v.as_tensor().unwrap_or_else(|| panic!("expected a tensor, got {v:?}")).data
}

/// The cosine of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The samples of an audio value.
pub fn samples(v: &Value) -> &[f32] {
    &v.as_audio().unwrap_or_else(|| panic!("expected audio, got {v:?}")).samples
}

/// Words for scoring: lower case, letters, digits and apostrophes only.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word-level edit distance between a reference and a hypothesis.
pub fn word_errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let next = (diagonal + usize::from(r != h)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[hypothesis.len()]
}
