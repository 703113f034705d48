//! What the vision plugin's tests share: the harness, a list of common English words and small
//! helpers for images and vectors.

#![allow(dead_code)]

use commute_plugin_vision::commute_plugin;
use commute_sdk::testing::Harness;
use commute_sdk::{Image, Value};

/// 152 common English words of 2–10 letters, lower case and a few capitalised.
pub const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "he",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "over",
    "new",
    "sound",
    "take",
    "only",
    "little",
    "work",
    "know",
    "place",
    "year",
    "live",
    "back",
    "give",
    "most",
    "very",
    "after",
    "thing",
    "our",
    "just",
    "name",
    "good",
    "sentence",
    "man",
    "think",
    "say",
    "great",
    "where",
    "help",
    "through",
    "much",
    "before",
    "line",
    "right",
    "too",
    "mean",
    "old",
    "any",
    "same",
    "tell",
    "boy",
    "follow",
    "came",
    "want",
    "show",
    "also",
    "around",
    "form",
    "three",
    "small",
    "London",
    "Monday",
    "January",
    "government",
    "question",
    "different",
];

/// The plugin, called in-process through its ABI.
pub fn vision() -> Harness {
    Harness::new(commute_plugin())
}

/// Texts as values.
pub fn texts(words: &[&str]) -> Vec<Value> {
    words.iter().map(|w| Value::text(*w)).collect()
}

/// Renders texts; every item must succeed.
pub fn render(params: &str, words: &[&str]) -> Vec<Value> {
    vision().call("text-image", params, &texts(words)).unwrap_or_else(|e| panic!("text-image: {e}"))
}

/// The image of a value.
pub fn image(v: &Value) -> &Image {
    v.as_image().expect("an image")
}

/// The embedding of a value.
pub fn vector(v: &Value) -> &[f32] {
    &v.as_tensor().expect("a tensor").data
}

/// Cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}
