//! `paraphrase-minilm-states` on the real model: the mean of its rows is `paraphrase-minilm` at
//! every layer, its rows are `minilm-states`' rows (the same tokenizer) up to the model's 128
//! tokens, a layer it does not have is refused, and it passes the SDK's conformance suite.

use commute_plugin_text::commute_plugin;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::{Context, Tensor, Value};

fn plugin() -> Harness {
    Harness::new(commute_plugin()).with_context(Context { threads: 2, ..Context::default() })
}

fn texts(items: &[&str]) -> Vec<Value> {
    items.iter().map(|t| Value::text(*t)).collect()
}

fn tensors(h: &Harness, function: &str, params: &str, items: &[&str]) -> Vec<Tensor> {
    let out = h.call(function, params, &texts(items)).unwrap_or_else(|e| panic!("{function} {params}: {e}"));
    out.into_iter().map(|v| v.as_tensor().expect("a tensor").clone()).collect()
}

/// The rows of a `[T, 384]` tensor, checked for that shape.
fn rows(t: &Tensor) -> usize {
    assert_eq!(t.shape.len(), 2, "{:?}", t.shape);
    assert_eq!(t.shape[1], 384, "{:?}", t.shape);
    assert_eq!(t.data.len(), t.shape[0] * 384);
    t.shape[0]
}

/// A text of 360 words, far over 128 (and 256) tokens.
fn long() -> String {
    "the quick brown fox jumps over the lazy dog ".repeat(40)
}

fn sentences() -> Vec<String> {
    [
        "A man is playing a guitar.",
        "Someone is strumming a guitar.",
        "",
        "The new movie is awesome, but the ending was rushed and nobody in the cinema liked it at all.",
        "Embeddings are vectors.",
        &long(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn the_mean_of_the_states_is_paraphrase_minilm_at_every_layer() {
    let sentences = sentences();
    let items: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let h = plugin();
    for layer in 0..=3 {
        let params = format!("layer = {layer}");
        let states = tensors(&h, "paraphrase-minilm-states", &params, &items);
        let pooled = tensors(&h, "paraphrase-minilm", &params, &items);
        assert_eq!(states.len(), items.len());
        for (i, (s, p)) in states.iter().zip(&pooled).enumerate() {
            let n = rows(s);
            let mut mean = vec![0.0f32; 384];
            for row in s.data.chunks_exact(384) {
                for (m, &x) in mean.iter_mut().zip(row) {
                    *m += x / n as f32;
                }
            }
            assert_eq!(p.data.len(), 384);
            let diff = mean.iter().zip(&p.data).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(
                diff < 1e-5,
                "layer {layer}, sentence {i}: mean of the states vs paraphrase-minilm {diff}"
            );
        }
    }
}

#[test]
fn the_states_have_minilm_states_rows_cut_at_128_tokens() {
    let sentences = sentences();
    let items: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let h = plugin();
    let minilm: Vec<usize> = tensors(&h, "minilm-states", "layer = 3", &items).iter().map(rows).collect();
    let mut seen: Option<Vec<usize>> = None;
    for layer in 0..=3 {
        let ours: Vec<usize> = tensors(&h, "paraphrase-minilm-states", &format!("layer = {layer}"), &items)
            .iter()
            .map(rows)
            .collect();
        // The same tokens at every layer.
        assert_eq!(*seen.get_or_insert_with(|| ours.clone()), ours, "layer {layer}");
    }
    let ours = seen.expect("layers read");
    let last = items.len() - 1;
    for i in 0..last {
        assert!(minilm[i] <= 128, "sentence {i} has {} tokens", minilm[i]);
        assert_eq!(ours[i], minilm[i], "sentence {i}: one row per token of MiniLM's tokenizer");
    }
    assert_eq!(ours[2], 2, "the empty text is [CLS] [SEP]");
    assert_eq!((ours[last], minilm[last]), (128, 256), "the long text: cut at 128 here, at 256 by MiniLM");

    // A batch's rows do not depend on its company: the long text alone, one per call.
    let alone = tensors(&h, "paraphrase-minilm-states", "layer = 1\nbatch-size = 1", &items);
    let together = tensors(&h, "paraphrase-minilm-states", "layer = 1", &items);
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a.shape, t.shape, "sentence {i}");
        let diff = a.data.iter().zip(&t.data).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "sentence {i}: padded vs alone {diff}");
    }
}

#[test]
fn a_layer_it_does_not_have_is_refused_at_open() {
    let h = plugin();
    match h.open("paraphrase-minilm-states", "layer = 4") {
        Ok(_) => panic!("layer 4 opened"),
        Err(e) => assert!(e.to_string().contains("layer must be in [0, 3], found 4"), "{e}"),
    }
    for params in ["", "layer = 3\nbatch-size = 0", "layer = 3\nbatch-size = 4097"] {
        assert!(h.open("paraphrase-minilm-states", params).is_err(), "{params:?} opened");
    }
    let message =
        h.open("paraphrase-minilm-states", "layer = 3\nbatch-size = 0").err().map(|e| e.to_string());
    assert!(message.as_deref().is_some_and(|m| m.contains("batch-size")), "{message:?}");
}

#[test]
fn paraphrase_minilm_states_conforms() {
    let inputs = texts(&["A man is playing a guitar.", "Someone is strumming a guitar.", ""]);
    Conformance::new(commute_plugin())
        .case("paraphrase-minilm-states", "layer = 0", inputs.clone())
        .case("paraphrase-minilm-states", "layer = 3\nbatch-size = 2", inputs)
        .run_covering(&["paraphrase-minilm-states"]);
}
