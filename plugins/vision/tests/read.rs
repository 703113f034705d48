//! `read` reads back what `text-image` draws: word accuracy over 152 common English words,
//! clean and with mild noise, rotation and blur, and lines of several words.

mod common;

use common::{render, vision, WORDS};
use commute_sdk::Value;

/// Reads images; every item must succeed.
fn read(params: &str, images: &[Value]) -> Vec<String> {
    let out = vision().call("read", params, images).unwrap_or_else(|e| panic!("read: {e}"));
    out.iter().map(|v| v.as_text().expect("text").to_owned()).collect()
}

/// Renders every word with `params`, reads it back, and returns the share read exactly.
fn word_accuracy(params: &str) -> f64 {
    let texts = read("", &render(params, WORDS));
    let wrong: Vec<String> = WORDS
        .iter()
        .zip(&texts)
        .filter(|(w, t)| **w != t.as_str())
        .map(|(w, t)| format!("{w} → {t}"))
        .collect();
    let accuracy = 1.0 - wrong.len() as f64 / WORDS.len() as f64;
    println!("{params:?}: {:.3} word accuracy; misread: {wrong:?}", accuracy);
    accuracy
}

#[test]
fn clean_sans_words_read_back() {
    // Measured: 151 of 152 (0.993); "so" reads as "SO" (the glyphs are alike at this size).
    let accuracy = word_accuracy("");
    assert!(accuracy >= 0.95, "word accuracy {accuracy}");
}

#[test]
fn noisy_tilted_blurred_serif_words_read_back() {
    // Measured: 151 of 152 (0.993).
    let accuracy = word_accuracy("font = \"serif\"\nnoise = 16.0\nrotation = 2.0\nblur = 0.7\nseed = 3");
    assert!(accuracy >= 0.9, "word accuracy {accuracy}");
}

#[test]
fn lines_of_words_colour_and_blank_images() {
    let lines = ["the quick brown fox", "Hello World 2026", "January 15, 1999"];
    let mut images = render("font = \"mono\"", &lines);
    images.extend(render("mode = \"rgb\"\nink = [180, 0, 0]\npaper = [250, 240, 200]", &["colour"]));
    images.extend(render("", &[""]));
    let texts = read("", &images);
    assert_eq!(texts[..3], lines);
    assert_eq!(texts[3], "colour");
    assert_eq!(texts[4], "", "paper alone reads as nothing");
}

#[test]
fn narrow_padding_and_batches_read_the_same_words() {
    let words = &WORDS[..24];
    let images = render("size = 24.0\nnoise = 8.0", words);
    let default = read("", &images);
    let batched = read("batch-size = 8", &images);
    assert_eq!(batched, default, "batching never changes what is read");
    let narrow = read("min-width = 64", &images);
    let same = default.iter().zip(&narrow).filter(|(a, b)| a == b).count();
    assert!(same >= 22, "{same} of 24 read the same with min-width = 64: {narrow:?}");
    let err = vision().open("read", "min-width = 8").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("min-width"), "{err}");
}
