//! The SDK's conformance suite with one case per function of the vision plugin, and its manifest.

mod common;

use common::{render, texts, vision};
use commute_plugin_vision::commute_plugin;
use commute_sdk::testing::Conformance;
use commute_sdk::{Image, Value};

#[test]
fn vision_plugin_conforms() {
    let mut images = render("noise = 6.0\nseed = 1", &["commute", "Line of text"]);
    images.push(Value::Image(Image { width: 3, height: 2, channels: 4, pixels: vec![128; 24] }));
    // The generic encoder on a hand-written identity model: what it sees is the prepared image.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let model = dir.path().join("identity.onnx");
    std::fs::write(&model, commute_sdk::onnx_graph::identity_model("pixels", "out", &[1, 3, 4, 4]))
        .expect("write the model");
    let onnx = format!("model = {:?}\nsize = [4, 4]\nnormalize = true", model.display().to_string());
    Conformance::new(commute_plugin())
        .case(
            "text-image",
            "font = \"serif\"\nnoise = 10.0\nrotation = 3.0\nseed = 2",
            texts(&["hello", "", "x y"]),
        )
        .case("text-image", "mode = \"rgb\"\nbold = true\nblur = 1.0\nheight = 40", texts(&["RGB"]))
        .case("ppocr", "", images.clone())
        .case("ppocr", "pooling = \"mean-max\"\nmin-width = 64", images.clone())
        .case("onnx", &onnx, images.clone())
        .case("open-nsfw", "normalize = true", images.clone())
        .case("read", "batch-size = 4", images)
        .run();
}

#[test]
fn manifest_lists_every_function_with_its_assets() {
    let h = vision();
    let m = h.manifest();
    assert_eq!((m.name.as_str(), m.modality.as_str()), ("vision", "vision"));
    let names: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["text-image", "ppocr", "onnx", "open-nsfw", "read"]);
    let assets = |f: &str| -> Vec<String> {
        m.function(f).expect("declared").assets.iter().map(|a| a.name.to_string()).collect()
    };
    assert_eq!(assets("ppocr"), ["onnxruntime", "ppocr-v4-rec-onnx"]);
    assert_eq!(assets("read"), assets("ppocr"));
    assert_eq!(assets("onnx"), ["onnxruntime"], "the model is a parameter, not a declared asset");
    assert_eq!(assets("open-nsfw"), ["onnxruntime", "open-nsfw"]);
    assert_eq!(assets("text-image").len(), 6);
}
