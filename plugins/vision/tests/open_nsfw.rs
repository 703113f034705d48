//! `open-nsfw` on the real model: 1024 features per image, the same as the generic `onnx` encoder
//! given the package's preprocessing, and features that tell colours apart — the property the
//! colour experiment reads images through it for (PP-OCR's features do not have it).

mod common;

use common::{cosine, vector, vision};
use commute_plugin_vision::open_nsfw::{FEATURES, MODEL};
use commute_sdk::{Image, Value};

/// A 64 × 48 patch of one colour with seeded ±`noise` per pixel and channel (a linear
/// congruential generator: deterministic, no dependency).
fn patch(rgb: [u8; 3], noise: i32, seed: u32) -> Value {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut next = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        ((state >> 8) % (2 * noise as u32 + 1)) as i32 - noise
    };
    let pixels =
        (0..64 * 48).flat_map(|_| rgb).map(|c| (i32::from(c) + next()).clamp(0, 255) as u8).collect();
    Value::Image(Image { width: 64, height: 48, channels: 3, pixels })
}

/// Twelve colours: six hues, each light and dark.
const COLOURS: [[u8; 3]; 12] = [
    [230, 40, 40],
    [120, 10, 10],
    [240, 160, 40],
    [130, 80, 10],
    [230, 230, 50],
    [110, 110, 20],
    [60, 200, 60],
    [20, 90, 20],
    [60, 120, 230],
    [15, 40, 110],
    [180, 70, 200],
    [80, 20, 90],
];

#[test]
fn features_tell_colours_and_shades_apart() {
    let h = vision();
    let first: Vec<Value> = COLOURS.iter().enumerate().map(|(i, &c)| patch(c, 12, i as u32)).collect();
    let second: Vec<Value> = COLOURS.iter().enumerate().map(|(i, &c)| patch(c, 12, 100 + i as u32)).collect();
    let a = h.call("open-nsfw", "", &first).expect("open-nsfw");
    let b = h.call("open-nsfw", "", &second).expect("open-nsfw");
    for v in a.iter().chain(&b) {
        assert_eq!(vector(v).len(), 1024);
        assert!(vector(v).iter().all(|x| x.is_finite()));
    }
    // Centred (every image shares a large common component, as alignment's centring removes):
    // each patch's nearest patch of the other noise draw is its own colour, hue and shade (a light
    // and a dark red are told apart as well as red from blue).
    let mean: Vec<f32> = (0..1024)
        .map(|k| a.iter().chain(&b).map(|v| vector(v)[k]).sum::<f32>() / (a.len() + b.len()) as f32)
        .collect();
    let centred = |v: &Value| -> Vec<f32> { vector(v).iter().zip(&mean).map(|(x, m)| x - m).collect() };
    let (a, b): (Vec<Vec<f32>>, Vec<Vec<f32>>) =
        (a.iter().map(centred).collect(), b.iter().map(centred).collect());
    for (i, query) in b.iter().enumerate() {
        let sims: Vec<f32> = a.iter().map(|g| cosine(query, g)).collect();
        let best = (0..sims.len()).max_by(|&x, &y| sims[x].total_cmp(&sims[y])).expect("a gallery");
        assert_eq!(best, i, "colour {:?}: nearest is {:?} ({sims:?})", COLOURS[i], COLOURS[best]);
    }
    // Deterministic: the same image twice gives the same vector.
    let once = h.call("open-nsfw", "", &first[..1]).expect("once");
    let again = h.call("open-nsfw", "", &first[..1]).expect("again");
    assert_eq!(vector(&again[0]), vector(&once[0]));
}

#[test]
fn it_is_the_generic_encoder_with_the_packages_preprocessing() {
    let model = commute_sdk::asset::AssetStore::from_env().ensure(&MODEL).expect("the open_nsfw model");
    let generic = format!(
        "model = {:?}\noutput = {FEATURES:?}\nsize = [224, 224]\nlayout = \"nhwc\"\nchannels = \"bgr\"\n\
         scale = 1.0\nmean = [104.0, 117.0, 123.0]\nstd = [1.0, 1.0, 1.0]\npooling = \"none\"\nnormalize = true",
        model.display().to_string()
    );
    let images = vec![patch([200, 30, 90], 20, 7), patch([10, 10, 10], 0, 0)];
    let h = vision();
    let ours = h.call("open-nsfw", "normalize = true", &images).expect("open-nsfw");
    let theirs = h.call("onnx", &generic, &images).expect("onnx");
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(vector(a), vector(b));
        let norm: f32 = vector(a).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit length: {norm}");
    }
}
