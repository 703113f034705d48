//! The `ppocr` encoder: dimensions, agreement with a Python reference, determinism, batches
//! equal to one-by-one runs, and that the same word in two fonts is closer than two words.

mod common;

use common::{cosine, image, render, vector, vision, WORDS};
use commute_sdk::{Image, Value};

/// Encodes images; every item must succeed.
fn encode(params: &str, images: &[Value]) -> Vec<Vec<f32>> {
    let out = vision().call("ppocr", params, images).unwrap_or_else(|e| panic!("ppocr: {e}"));
    out.iter().map(|v| vector(v).to_vec()).collect()
}

fn max_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn dimensions_follow_the_pooling() {
    let h = vision();
    let dim = |params: &str| h.open("ppocr", params).expect("opens").dim();
    assert_eq!(dim(""), Some(480));
    assert_eq!(dim("pooling = \"mean\""), Some(120));
    assert_eq!(dim("pooling = \"mean-max\""), Some(240));
    assert_eq!(dim("pooling = \"segments\"\nsegments = 8"), Some(960));
    let err = h.open("ppocr", "segments = 0").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("segments"), "{err}");
}

/// The pattern of `fixtures/ppocr_reference.py`: RGB `(7x + 13y + 50c) mod 256`.
fn pattern(width: u32, height: u32) -> Value {
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            for c in 0..3 {
                pixels.push(((x * 7 + y * 13 + c * 50) % 256) as u8);
            }
        }
    }
    Value::Image(Image { width, height, channels: 3, pixels })
}

#[test]
fn matches_a_python_reference() {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/ppocr_reference.json")).expect("the fixture parses");
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array().expect("a list").iter().map(|x| x.as_f64().expect("a number") as f32).collect()
    };
    let images = [pattern(100, 48), pattern(200, 96)];
    for (params, key) in [("pooling = \"mean\"", "mean"), ("", "segments-4")] {
        let ours = encode(params, &images);
        for (name, got) in ["pattern", "pattern-2x"].iter().zip(&ours) {
            let expected = floats(&json[name][key]);
            assert_eq!(got.len(), expected.len());
            let scale = expected.iter().map(|x| x.abs()).fold(0.0, f32::max);
            let worst = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            println!(
                "{name} {key}: largest difference from the reference {worst:.2e} (values up to {scale})"
            );
            assert!(worst < 1e-4 * scale.max(1.0), "{name} {key}: differs by {worst} (values up to {scale})");
        }
    }
}

#[test]
fn batches_equal_one_by_one_runs_and_results_repeat() {
    // Short words (padded to 320 px), longer lines (other widths) and a grey and an RGB image.
    let mut images = render("", &["a", "word", "the quick brown fox jumps over", "lazy"]);
    images.extend(render("mode = \"rgb\"\nfont = \"serif\"", &["Monday", "a much longer line of text here"]));
    let batched = encode("batch-size = 16", &images);
    let single: Vec<Vec<f32>> = images.iter().flat_map(|img| encode("", std::slice::from_ref(img))).collect();
    let difference = max_difference(&batched, &single);
    println!("batched vs one-by-one: largest difference {difference:.2e}");
    assert!(difference < 1e-4, "batched and one-by-one differ by {difference}");
    assert_eq!(encode("", &images), encode("", &images), "two instances agree exactly");
    // The images differ, and so do their embeddings.
    assert!(cosine(&single[0], &single[1]) < 0.95);
}

#[test]
fn the_same_word_in_two_fonts_is_closer_than_two_words() {
    let words = &WORDS[..80];
    let sans = encode("", &render("", words));
    let serif = encode("", &render("font = \"serif\"\nnoise = 8.0", words));
    let n = words.len();
    let (mut same, mut other, mut top1) = (0.0, 0.0, 0);
    for i in 0..n {
        let similarities: Vec<f32> = (0..n).map(|j| cosine(&sans[i], &serif[j])).collect();
        same += similarities[i];
        other += similarities.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s).sum::<f32>();
        let best = similarities
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (j, &s)| if s > b.1 { (j, s) } else { b });
        top1 += usize::from(best.0 == i);
    }
    let (same, other) = (same / n as f32, other / (n * (n - 1)) as f32);
    println!("same word {same:.4}, different words {other:.4}, retrieval {top1}/{n}");
    // Measured: 0.968 against 0.740, and every word finds itself in the other font (80/80).
    assert!(same > other + 0.15, "same word {same}, different words {other}");
    assert!(top1 as f32 >= 0.95 * n as f32, "retrieval {top1}/{n}");
}

#[test]
fn every_layer_is_a_sequence_of_the_same_steps() {
    use commute_plugin_vision::recognizer::{Head, Options, Recognizer, REC_MODEL};
    use commute_sdk::asset::AssetStore;
    use commute_sdk::{Context, ImageRef};

    let h = vision();
    let dim = |params: &str| h.open("ppocr", params).expect("opens").dim();
    assert_eq!(dim("layer = 0\npooling = \"mean\""), Some(480), "the backbone's 480 channels");
    for layer in 1..=4 {
        assert_eq!(dim(&format!("layer = {layer}\npooling = \"mean\"")), Some(120));
    }
    let err = h.open("ppocr", "layer = 5").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("layer"), "{err}");
    assert_eq!(dim("layers = [0, 4]\npooling = \"mean\""), Some(600), "480 + 120");
    let err = h.open("ppocr", "layer = 2\nlayers = [1]").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("not both"), "{err}");

    let images = render("", &["sun", "stone", "a longer line of text"]);
    let output = encode("", &images);
    assert_eq!(encode("layer = 4", &images), output, "layer 4 is the encoder's output");
    // Several layers in one run: each part is that layer alone, bit for bit, in the order asked.
    let joined = encode("layers = [4, 0, 2]\npooling = \"mean-max\"", &images);
    let alone: Vec<Vec<Vec<f32>>> =
        [4, 0, 2].iter().map(|l| encode(&format!("layer = {l}\npooling = \"mean-max\""), &images)).collect();
    for (i, row) in joined.iter().enumerate() {
        let parts: Vec<f32> = alone.iter().flat_map(|layer| layer[i].iter().copied()).collect();
        assert_eq!(row, &parts, "image {i}");
    }
    let mut previous: Option<Vec<Vec<f32>>> = None;
    for layer in 0..4 {
        let here = encode(&format!("layer = {layer}\npooling = \"mean\""), &images);
        assert!(here.iter().flatten().all(|x| x.is_finite()));
        if let Some(previous) = previous.filter(|p| p[0].len() == here[0].len()) {
            assert!(cosine(&previous[0], &here[0]) < 0.999, "layer {layer} repeats the one before");
        }
        previous = Some(here);
    }

    // Layer 1 is a `[N, C, 1, T]` map read step by step; the graph flattens and transposes the
    // same values to `[N, T, C]` (`transpose_43.tmp_0`) before its transformer: equal, step for step.
    let model = AssetStore::from_env().ensure(&REC_MODEL).expect("the recognizer model");
    let ctx = Context {
        threads: 1,
        assets: [(REC_MODEL.name.to_string(), model)].into_iter().collect(),
        ..Context::default()
    };
    let options = Options::new(&ctx, None, 320).expect("options");
    let lines: Vec<ImageRef<'_>> = images.iter().map(|v| image(v).as_ref()).collect();
    let mut map = Recognizer::open(&ctx, Head::Layer(1), options).expect("layer 1");
    let mut flat =
        Recognizer::open(&ctx, Head::Tensor("transpose_43.tmp_0"), options).expect("the transpose");
    for (a, b) in map.run(&lines).into_iter().zip(flat.run(&lines)) {
        let (a, b) = (a.expect("layer 1"), b.expect("the transpose"));
        assert_eq!((a.steps, a.channels), (b.steps, b.channels));
        assert_eq!(a.values, b.values);
    }
}
