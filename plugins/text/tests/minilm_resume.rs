//! `minilm-states` and `minilm-resume` on the real fp32 weights: the model cut at every layer and
//! resumed from there is the whole model, states have one row per token, bad states are item
//! errors, and both functions pass the SDK's conformance suite.

use commute_plugin_text::commute_plugin;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::{Context, Tensor, Value};

fn plugin() -> Harness {
    Harness::new(commute_plugin()).with_context(Context { threads: 2, ..Context::default() })
}

fn texts(items: &[&str]) -> Vec<Value> {
    items.iter().map(|t| Value::text(*t)).collect()
}

fn tensors(out: Vec<Value>) -> Vec<Tensor> {
    out.into_iter().map(|v| v.as_tensor().expect("a tensor").clone()).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn sentences() -> Vec<String> {
    let long = "the quick brown fox jumps over the lazy dog ".repeat(40);
    [
        "A man is playing a guitar.",
        "Someone is strumming a guitar.",
        "",
        "Stocks fell sharply on Monday.",
        &long,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn the_model_cut_at_any_layer_and_resumed_there_is_the_whole_model() {
    let sentences = sentences();
    let items: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let h = plugin();
    let whole = tensors(h.call("minilm", "backend = \"candle\"", &texts(&items)).expect("minilm"));
    let mut tokens: Option<Vec<usize>> = None;
    for layer in 0..=6 {
        let states = h.call("minilm-states", &format!("layer = {layer}"), &texts(&items)).expect("states");
        let shapes: Vec<usize> = tensors(states.clone())
            .iter()
            .map(|t| {
                assert_eq!(t.shape.len(), 2);
                assert_eq!(t.shape[1], 384);
                t.shape[0]
            })
            .collect();
        // One row per token, the same tokens at every layer: [CLS] [SEP] for the empty text, the
        // long text cut at 256.
        assert_eq!(shapes[2], 2, "the empty text is [CLS] [SEP]");
        assert_eq!(shapes[4], 256, "the long text is cut at 256 tokens");
        assert_eq!(*tokens.get_or_insert_with(|| shapes.clone()), shapes, "layer {layer}");
        let resumed = tensors(h.call("minilm-resume", &format!("layer = {layer}"), &states).expect("resume"));
        for (i, (r, w)) in resumed.iter().zip(&whole).enumerate() {
            let diff = max_abs_diff(&r.data, &w.data);
            assert!(diff < 1e-5, "layer {layer}, sentence {i}: resumed vs whole model differ by {diff}");
        }
    }
    // Resuming from another layer than the cut is another model: the check above can fail.
    let states = h.call("minilm-states", "layer = 2", &texts(&items)).expect("states");
    let wrong = tensors(h.call("minilm-resume", "layer = 4", &states).expect("resume"));
    assert!(max_abs_diff(&wrong[0].data, &whole[0].data) > 1e-2);
}

#[test]
fn the_plain_mean_of_the_states_is_minilm_unnormalised_at_every_layer() {
    let sentences = sentences();
    let items: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let h = plugin();
    for layer in 0..=6 {
        let states =
            tensors(h.call("minilm-states", &format!("layer = {layer}"), &texts(&items)).expect("states"));
        let params = format!("backend = \"candle\"\nlayer = {layer}\nnormalize = false");
        let pooled = tensors(h.call("minilm", &params, &texts(&items)).expect("minilm"));
        for (i, (s, p)) in states.iter().zip(&pooled).enumerate() {
            let rows = s.shape[0];
            let mean: Vec<f32> =
                (0..384).map(|j| (0..rows).map(|t| s.data[t * 384 + j]).sum::<f32>() / rows as f32).collect();
            let diff = max_abs_diff(&mean, &p.data);
            assert!(
                diff < 1e-4,
                "layer {layer}, sentence {i}: mean of the states vs minilm differ by {diff}"
            );
            // Not unit length: the plain mean, which the default scales.
            let norm = p.data.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() > 1e-2, "layer {layer}, sentence {i}: norm {norm}");
        }
    }
}

#[test]
fn states_of_the_wrong_shape_are_item_errors_and_the_rest_of_the_batch_goes_on() {
    let h = plugin();
    let good = h.call("minilm-states", "layer = 3", &texts(&["A man is playing a guitar."])).expect("states");
    let batch = vec![
        Value::Tensor(Tensor::vector(vec![0.0; 384])),
        good[0].clone(),
        Value::Tensor(Tensor { shape: vec![2, 300], data: vec![0.0; 600] }),
        Value::Tensor(Tensor { shape: vec![0, 384], data: vec![] }),
    ];
    let items = h.call_items("minilm-resume", "layer = 3", &batch).expect("a batch result");
    assert!(items[1].is_ok(), "{:?}", items[1]);
    for (i, shape) in [(0, "[384]"), (2, "[2, 300]"), (3, "[0, 384]")] {
        let message = items[i].as_ref().err().cloned().unwrap_or_default();
        assert!(message.contains(shape) && message.contains("[tokens ≥ 1, 384]"), "item {i}: {message}");
    }
    for params in ["layer = 7", "", "layer = 3\nbatch-size = 0"] {
        assert!(h.open("minilm-resume", params).is_err(), "{params}");
        assert!(h.open("minilm-states", params).is_err(), "{params}");
    }
}

#[test]
fn states_and_resume_conform() {
    let inputs = texts(&["A man is playing a guitar.", "Someone is strumming a guitar.", ""]);
    let states = plugin().call("minilm-states", "layer = 4", &inputs).expect("states");
    Conformance::new(commute_plugin())
        .case("minilm-states", "layer = 4\nbatch-size = 2", inputs)
        .case("minilm-resume", "layer = 4", states)
        .run_covering(&["minilm-states", "minilm-resume"]);
}
