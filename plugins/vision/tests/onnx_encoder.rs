//! The generic image `onnx` encoder, known answers on a hand-written identity model: what the
//! model receives is the image resized and normalised exactly as the parameters say — pixel values,
//! channel order, layout, scale, mean and std, bilinear resizing — and the pooling of its output;
//! and, configured as PP-OCR's recognizer input, it reproduces `ppocr`'s features.

mod common;

use commute_plugin_vision::commute_plugin;
use commute_plugin_vision::recognizer::{FEATURES, REC_MODEL};
use commute_sdk::onnx_graph::identity_model;
use commute_sdk::testing::Harness;
use commute_sdk::{CallError, Context, Image, Value};

fn plugin() -> Harness {
    Harness::new(commute_plugin()).with_context(Context { threads: 1, ..Context::default() })
}

/// An identity model of the given input shape, written to a temporary file.
fn model(shape: &[i64]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("identity.onnx");
    std::fs::write(&path, identity_model("pixels", "out", shape)).expect("write the model");
    let path = path.display().to_string();
    (dir, path)
}

fn encode(params: &str, image: Image) -> Vec<f32> {
    let out =
        plugin().call("onnx", params, &[Value::Image(image)]).unwrap_or_else(|e| panic!("{params}: {e}"));
    out[0].as_tensor().expect("a tensor").data.clone()
}

/// 2 × 2 RGB: (10, 20, 30) (40, 50, 60) / (70, 80, 90) (100, 110, 120).
fn small() -> Image {
    Image { width: 2, height: 2, channels: 3, pixels: (1..=12).map(|v| v * 10).collect() }
}

#[test]
fn the_model_receives_the_pixels_in_the_asked_layout_order_and_scale() {
    let (_d, nchw) = model(&[1, 3, 2, 2]);
    let raw = "size = [2, 2]\nscale = 1.0\nmean = [0.0, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]\npooling = \"none\"";
    let planes = encode(&format!("model = {nchw:?}\n{raw}"), small());
    assert_eq!(planes, [10.0, 40.0, 70.0, 100.0, 20.0, 50.0, 80.0, 110.0, 30.0, 60.0, 90.0, 120.0]);
    let bgr = encode(&format!("model = {nchw:?}\n{raw}\nchannels = \"bgr\""), small());
    assert_eq!(&bgr[..4], [30.0, 60.0, 90.0, 120.0], "blue plane first");

    let (_d2, nhwc) = model(&[1, 2, 2, 3]);
    let interleaved = encode(&format!("model = {nhwc:?}\n{raw}\nlayout = \"nhwc\""), small());
    assert_eq!(interleaved, (1..=12).map(|v| v as f32 * 10.0).collect::<Vec<_>>());

    // The defaults: value / 255, ImageNet's mean and std per channel.
    let imagenet = encode(&format!("model = {nchw:?}\nsize = [2, 2]\npooling = \"none\""), small());
    let expected = (10.0 / 255.0 - 0.485) / 0.229;
    assert!((imagenet[0] - expected).abs() < 1e-6, "{} vs {expected}", imagenet[0]);
}

#[test]
fn images_are_resized_between_pixel_centres_and_maps_pooled_by_channel() {
    let (_d, nchw) = model(&[1, 3, 2, 2]);
    // 4 × 4 grey, value 16·y + 4·x: halving each side averages 2 × 2 blocks.
    let pixels: Vec<u8> = (0..4u8).flat_map(|y| (0..4u8).map(move |x| 16 * y + 4 * x)).collect();
    let grey = Image { width: 4, height: 4, channels: 1, pixels };
    let raw = "size = [2, 2]\nscale = 1.0\nmean = [0.0, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]";
    let planes = encode(&format!("model = {nchw:?}\n{raw}\npooling = \"none\""), grey.clone());
    assert_eq!(&planes[..4], [10.0, 18.0, 42.0, 50.0]);
    assert_eq!(&planes[4..8], &planes[..4], "grey in every channel");
    let pooled = encode(&format!("model = {nchw:?}\n{raw}"), grey.clone());
    assert_eq!(pooled, [30.0, 30.0, 30.0], "the mean over each channel's positions");
    let max = encode(&format!("model = {nchw:?}\n{raw}\npooling = \"max\""), grey);
    assert_eq!(max, [50.0, 50.0, 50.0]);
    // A transparent pixel is white.
    let clear = Image { width: 1, height: 1, channels: 4, pixels: vec![0, 0, 0, 0] };
    assert_eq!(encode(&format!("model = {nchw:?}\n{raw}"), clear), [255.0, 255.0, 255.0]);
}

#[test]
fn bad_parameters_and_shapes_are_refused() {
    let (_d, nchw) = model(&[1, 3, 2, 2]);
    let h = plugin();
    let bad = |params: String| match h.open("onnx", &params) {
        Ok(_) => panic!("opened with {params}"),
        Err(e) => e,
    };
    assert!(matches!(bad(format!("model = {nchw:?}\nstd = [1.0, 0.0, 1.0]")), CallError::BadParams { .. }));
    // The identity model only takes 2 × 2 images: a probe at 3 × 3 fails with its real input.
    let e = bad(format!("model = {nchw:?}\nsize = [3, 3]")).to_string();
    assert!(e.contains("the model's inputs: pixels Tensor<f32>(1, 3, 2, 2)"), "{e}");
    let e = bad(format!("model = {nchw:?}\nsize = [2, 2]\noutput = \"features\"")).to_string();
    assert!(e.contains("has no tensor `features`"), "{e}");
}

#[test]
fn configured_as_pp_ocr_it_gives_ppocrs_features() {
    let model = commute_sdk::asset::AssetStore::from_env().ensure(&REC_MODEL).expect("the PP-OCR model");
    let generic = format!(
        "model = {:?}\noutput = {FEATURES:?}\nsize = [48, 320]\nresize = \"keep-aspect\"\nwidth-multiple = 32\n\
         channels = \"bgr\"\nscale = {}\nmean = [1.0, 1.0, 1.0]\nstd = [1.0, 1.0, 1.0]\npooling = \"mean\"",
        model.display().to_string(),
        1.0 / 127.5
    );
    // Lines of every width class: narrower than 320 px (padded), and wider.
    let mut images = common::render(
        "noise = 4.0\nseed = 3",
        &["a", "commute", "a line of text, longer than the model's 320 pixels"],
    );
    images.push(Value::Image(Image { width: 30, height: 20, channels: 4, pixels: vec![90; 2400] }));
    let h = plugin();
    let ours = h.call("onnx", &generic, &images).expect("the generic encoder");
    let theirs = h.call("ppocr", "pooling = \"mean\"", &images).expect("ppocr");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let (a, b) = (common::vector(a), common::vector(b));
        assert_eq!(a.len(), 120);
        let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "image {i}: max difference {diff}");
    }
}
