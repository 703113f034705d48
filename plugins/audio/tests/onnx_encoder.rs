//! The generic audio `onnx` encoder: known answers on hand-written identity models (what the
//! model receives is the audio cut exactly as the windowing parameters say, and what is pooled
//! is the stitched timeline), clear refusals, and — configured in parameters only — Basic
//! Pitch's own posteriorgrams pooled as the `basic-pitch` encoder pools them.
//!
//! The music plugin renders the test scores; it is loaded as the dynamic library cargo builds for
//! the dev-dependency (see `tests/common`).

mod common;

use common::music_call;
use commute_plugin_audio::basic_pitch::model::NMP;
use commute_plugin_audio::commute_plugin;
use commute_sdk::asset::AssetStore;
use commute_sdk::onnx_graph::identity_model;
use commute_sdk::testing::Harness;
use commute_sdk::{Audio, CallError, Context, Value};

fn plugin() -> Harness {
    Harness::new(commute_plugin()).with_context(Context { threads: 1, ..Context::default() })
}

/// An identity model of the given input shape, written to a temporary file.
fn model(shape: &[i64]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("identity.onnx");
    std::fs::write(&path, identity_model("samples", "out", shape)).expect("write the model");
    let path = path.display().to_string();
    (dir, path)
}

fn audio(samples: &[f32]) -> Value {
    Value::Audio(Audio { sample_rate: 16_000, samples: samples.to_vec() })
}

fn encode(params: &str, items: &[Value]) -> Vec<Vec<f32>> {
    let out = plugin().call("onnx", params, items).unwrap_or_else(|e| panic!("{params}: {e}"));
    out.iter().map(|v| v.as_tensor().expect("a tensor").data.clone()).collect()
}

#[test]
fn windows_are_cut_trimmed_and_stitched_as_the_parameters_say() {
    // [batch, 4, 1] in, the same out: every window gives 4 frames of one feature, its samples.
    let (_d, frames) = model(&[-1, 4, 1]);
    let samples = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    // Windows of 4 every 2 samples after 1 zero: [0 1 2 3] [2 3 4 5] [4 5 6 0] [6 0 0 0]; one frame
    // trimmed at each end keeps 1 2 | 3 4 | 5 6 | 0 0, and the timeline stops after the audio's
    // ⌈6 · 4 / 4⌉ = 6 frames.
    let cut = format!("model = {frames:?}\nhop = 2\nlead = 1\ntrim = 1\npooling = \"mean-max\"");
    assert_eq!(encode(&cut, &[audio(&samples)]), [[3.5, 6.0]]);
    // frame-rate 8000 at 16 kHz: ⌊6 · 8000 / 16000⌋ = 3 frames, 1 2 3.
    let slow = format!("{cut}\nframe-rate = 8000.0");
    assert_eq!(encode(&slow, &[audio(&samples)]), [[2.0, 3.0]]);
    // Windows of several items share calls; no result depends on the batch or its size.
    let items = [audio(&samples), audio(&[]), audio(&[-1.0, 5.0]), audio(&samples)];
    for batch in [1, 3, 8] {
        let got = encode(&format!("{cut}\nbatch-windows = {batch}"), &items);
        assert_eq!(got, [[3.5, 6.0], [0.0, 0.0], [2.0, 5.0], [3.5, 6.0]], "batch-windows = {batch}");
    }
}

#[test]
fn one_vector_a_window_and_whole_items() {
    // [batch, 3] → [batch, 3]: one frame of three features a window.
    let (_d, vectors) = model(&[-1, 3]);
    let samples = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    // Windows 1 2 3 | 4 5 6: the timeline has ⌈6 · 1 / 3⌉ = 2 frames.
    assert_eq!(encode(&format!("model = {vectors:?}"), &[audio(&samples)]), [[2.5, 3.5, 4.5]]);
    // A model of free length takes each item whole, after the lead: [0 0 1 … 6 7]; trim 2 drops
    // the two frames at each end and leaves 1 … 5.
    let (_d2, free) = model(&[1, -1, 1]);
    let whole = format!("model = {free:?}\nlead = 2\ntrim = 2\npooling = \"mean-max\"");
    let seven = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
    assert_eq!(encode(&whole, &[audio(&seven), audio(&[])]), [[3.0, 5.0], [0.0, 0.0]]);
    // With a window, a free-length model is windowed too; unit length on request.
    let windowed = format!("model = {free:?}\nwindow = 2\nnormalize = true\npooling = \"max\"");
    assert_eq!(encode(&windowed, &[audio(&[-3.0, -4.0])]), [[-1.0]]);
}

#[test]
fn items_are_resampled_to_the_models_rate() {
    let (_d, vectors) = model(&[-1, 4]);
    // A constant at 48 kHz is the same constant at 16 kHz (away from the edges).
    let long = Value::Audio(Audio { sample_rate: 48_000, samples: vec![0.5; 48_000] });
    let got = &encode(&format!("model = {vectors:?}"), &[long])[0];
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|v| (v - 0.5).abs() < 0.005), "{got:?}");
}

#[test]
fn bad_models_and_parameters_are_refused_with_what_the_model_takes() {
    let h = plugin();
    let bad = |params: String| match h.open("onnx", &params) {
        Ok(_) => panic!("opened with {params}"),
        Err(e) => e,
    };
    let (_d, image) = model(&[1, 3, 4, 4]);
    let e = bad(format!("model = {image:?}")).to_string();
    assert!(e.contains("the model's inputs: samples Tensor<f32>(1, 3, 4, 4)"), "{e}");
    let (_d2, frames) = model(&[-1, 4, 1]);
    let e = bad(format!("model = {frames:?}\nwindow = 8")).to_string();
    assert!(e.contains("window = 8, but the model's input `samples` takes 4 samples"), "{e}");
    let e = bad(format!("model = {frames:?}\ntrim = 2")).to_string();
    assert!(e.contains("4 frames a window, and trim = 2 drops 4"), "{e}");
    let e = bad(format!("model = {frames:?}\noutputs = [\"note\"]")).to_string();
    assert!(e.contains("has no tensor `note`"), "{e}");
    let e = bad(format!("model = {frames:?}\noutputs = [\"out\", \"out\"]")).to_string();
    assert!(e.contains("names `out` twice"), "{e}");
    let (_d3, free) = model(&[1, -1]);
    let e = bad(format!("model = {free:?}\nhop = 100")).to_string();
    assert!(e.contains("give `window` too"), "{e}");
    assert!(matches!(bad(format!("model = {frames:?}\nbatch-windows = 0")), CallError::BadParams { .. }));
    assert!(matches!(bad(format!("model = {frames:?}\nframe-rate = -1.0")), CallError::BadParams { .. }));
    let e = bad("model = \"no-such-model.onnx\"".to_owned()).to_string();
    assert!(e.contains("cannot read the model no-such-model.onnx"), "{e}");
}

/// Basic Pitch's tensors and windowing, written as parameters.
fn as_basic_pitch(model: &str) -> String {
    format!(
        "model = {model:?}\n\
         outputs = [\"StatefulPartitionedCall:1\", \"StatefulPartitionedCall:2\", \"StatefulPartitionedCall:0\"]\n\
         sample-rate = 22050\nhop = 36164\nlead = 3840\ntrim = 15\nframe-rate = 86.0"
    )
}

#[test]
fn configured_as_basic_pitch_it_gives_basic_pitchs_vectors() {
    let model = AssetStore::from_env().ensure(&NMP).expect("the Basic Pitch model");
    let generic = as_basic_pitch(&model.display().to_string());
    // Seeded scores of up to 5 s (three windows) rendered at two rates, a clip shorter than one
    // frame and an empty one.
    let scores = music_call("random-scores", "count = 3\nseed = 11\nmax-duration-s = 5.0", &[]);
    let mut items = music_call("synth", "sample-rate = 22050", &scores[..2]);
    items.extend(music_call("synth", "sample-rate = 44100", &scores[2..]));
    items.push(Value::Audio(Audio { sample_rate: 22_050, samples: vec![0.1; 100] }));
    items.push(Value::Audio(Audio { sample_rate: 22_050, samples: vec![] }));
    let h = plugin();
    for (ours, theirs) in [("mean", "mean"), ("mean-max", "mean-max")] {
        let a = h
            .call("onnx", &format!("{generic}\npooling = {ours:?}\nbatch-windows = 3"), &items)
            .expect("onnx");
        let b = h
            .call("basic-pitch", &format!("pool = {theirs:?}\nrescale = false"), &items)
            .expect("basic-pitch");
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            let (a, b) = (&a.as_tensor().expect("a tensor").data, &b.as_tensor().expect("a tensor").data);
            assert_eq!(a.len(), b.len(), "{ours}");
            let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(diff < 1e-6, "{ours}, item {i}: max difference {diff}");
        }
    }
    assert_eq!(h.open("onnx", &generic).expect("opens").dim(), Some(440));
}

#[test]
fn a_feature_map_inside_the_graph_is_read_frame_by_frame() {
    let model = AssetStore::from_env().ensure(&NMP).expect("the Basic Pitch model");
    let windows = "sample-rate = 22050\nhop = 36164\nlead = 3840\ntrim = 15\nframe-rate = 86.0";
    let base = format!("model = {:?}\n{windows}", model.display().to_string());
    // The note posteriorgram is the reshape of a [batch, 1, frames, keys] map inside the graph:
    // read there with frame-axis = 2, it gives the same vectors as the declared output.
    let map = "model_1/conv2d_3/Sigmoid;model_1/conv2d_3/Sigmoid";
    let scores = music_call("random-scores", "count = 2\nseed = 5\nmax-duration-s = 3.0", &[]);
    let items = music_call("synth", "sample-rate = 22050", &scores);
    let inner =
        encode(&format!("{base}\noutputs = [{map:?}]\nframe-axis = 2\npooling = \"mean-max\""), &items);
    let output =
        encode(&format!("{base}\noutputs = [\"StatefulPartitionedCall:1\"]\npooling = \"mean-max\""), &items);
    assert_eq!(inner, output);
    assert_eq!(inner[0].len(), 2 * 88);
    // A map of 32 channels × 88 keys a frame, from a layer further in.
    let channels = encode(&format!("{base}\noutputs = [\"Relu__42:0\"]\nframe-axis = 2"), &items[..1]);
    assert_eq!(channels[0].len(), 32 * 88);
    let e = plugin().open("onnx", &format!("{base}\noutputs = [{map:?}]")).err().map(|e| e.to_string());
    assert!(
        e.as_deref().is_some_and(|e| e.contains("say which of axes 1, 2 and 3 runs over frames")),
        "{e:?}"
    );
}
