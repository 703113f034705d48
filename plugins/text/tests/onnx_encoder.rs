//! The generic `onnx` encoder on the real MiniLM files: configured as MiniLM it gives `minilm`'s
//! vectors, an inner tensor (a layer's states) is a space of its own, and a model it cannot feed
//! or a tensor it cannot find is refused with the model's real inputs and outputs.
//!
//! The model and tokenizer are the `minilm` assets, fetched and verified through the SDK's asset
//! store on first use.

use commute_plugin_text::commute_plugin;
use commute_plugin_text::minilm::{onnx::MODEL_INT8, tokenize::TOKENIZER};
use commute_sdk::asset::AssetStore;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::{Context, Value};
use std::path::PathBuf;

fn plugin() -> Harness {
    Harness::new(commute_plugin()).with_context(Context { threads: 2, ..Context::default() })
}

/// The MiniLM model and tokenizer files.
fn files() -> (PathBuf, PathBuf) {
    let store = AssetStore::from_env();
    (store.ensure(&MODEL_INT8).expect("the MiniLM model"), store.ensure(&TOKENIZER).expect("its tokenizer"))
}

fn params(extra: &str) -> String {
    let (model, tokenizer) = files();
    format!(
        "model = {:?}\ntokenizer = {:?}\n{extra}",
        model.display().to_string(),
        tokenizer.display().to_string()
    )
}

fn embed(function: &str, params: &str, texts: &[&str]) -> Vec<Vec<f32>> {
    let values: Vec<Value> = texts.iter().map(|t| Value::text(*t)).collect();
    let out = plugin().call(function, params, &values).unwrap_or_else(|e| panic!("{function} {params}: {e}"));
    out.iter().map(|v| v.as_tensor().expect("a tensor").data.clone()).collect()
}

/// Why `onnx` refuses to open with these parameters.
fn refused(params: &str) -> String {
    match plugin().open("onnx", params) {
        Ok(_) => panic!("opened with {params}"),
        Err(e) => e.to_string(),
    }
}

fn texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "",
        "cat",
        "A man is playing a guitar on stage.",
        "The new movie is awesome, but the ending was rushed and nobody in the cinema liked it.",
        "Embeddings are vectors.",
    ]
    .iter()
    .map(|t| (*t).to_owned())
    .collect();
    // Longer than 256 tokens: cut at the same place by both.
    texts.push("word ".repeat(400));
    texts
}

#[test]
fn configured_as_minilm_it_gives_minilms_vectors() {
    let texts = texts();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let generic = embed(
        "onnx",
        &params("max-tokens = 256\npooling = \"mean\"\nnormalize = true\nbatch-size = 4"),
        &texts,
    );
    let minilm = embed("minilm", "backend = \"onnx\"", &texts);
    for (i, (g, m)) in generic.iter().zip(&minilm).enumerate() {
        assert_eq!(g.len(), 384);
        let diff = g.iter().zip(m).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "text {i}: max difference {diff}");
    }
    // The default pooling of a [batch, tokens, dim] tensor is the mean; without `normalize` the
    // vectors keep their length.
    let raw = embed("onnx", &params("max-tokens = 256"), &texts[2..3]);
    let norm = raw[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 0.01, "not unit length: {norm}");
    let scaled: Vec<f32> = raw[0].iter().map(|x| x / norm).collect();
    let diff = scaled.iter().zip(&minilm[2]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "mean pooling by default: {diff}");
}

#[test]
fn an_inner_tensor_is_a_space_of_its_own() {
    let texts = ["A man is playing a guitar.", "A woman is slicing onions.", "cat"];
    // `layer_norm_2` is the output of MiniLM's first transformer block.
    let first_block = embed("onnx", &params("output = \"layer_norm_2\"\nnormalize = true"), &texts);
    let last = embed("onnx", &params("output = \"last_hidden_state\"\nnormalize = true"), &texts);
    let default = embed("onnx", &params("normalize = true"), &texts);
    assert_eq!(last, default, "the first graph output is the default");
    for (a, b) in first_block.iter().zip(&last) {
        assert_eq!(a.len(), 384);
        let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(cos < 0.99, "another layer, other vectors (cosine {cos})");
    }
    let first_token = embed("onnx", &params("output = \"layer_norm_2\"\npooling = \"first\""), &texts);
    let max = embed("onnx", &params("output = \"layer_norm_2\"\npooling = \"max\""), &texts);
    assert_ne!(first_token, max);
    // Both tensors in one run: each pooled and scaled as alone, side by side in the order given.
    let both = embed(
        "onnx",
        &params("outputs = [\"last_hidden_state\", \"layer_norm_2\"]\nnormalize = true"),
        &texts,
    );
    for ((row, a), b) in both.iter().zip(&last).zip(&first_block) {
        assert_eq!((&row[..384], &row[384..]), (a.as_slice(), b.as_slice()));
    }
    let e = refused(&params("output = \"layer_norm_2\"\noutputs = [\"layer_norm_4\"]"));
    assert!(e.contains("give `output` or `outputs`, not both"), "{e}");
}

#[test]
fn a_tensor_it_cannot_find_or_a_model_it_cannot_feed_is_refused_with_what_the_model_has() {
    let e = refused(&params("output = \"layer_norm_99\""));
    assert!(e.contains("has no tensor `layer_norm_99`"), "{e}");
    assert!(e.contains("its outputs are [\"last_hidden_state\"]") && e.contains("layer_norm_2"), "{e}");

    let e = refused(&params("output = \"last_hidden_state\"\npooling = \"none\""));
    assert!(e.contains("a vector per token: pool it"), "{e}");

    let dir = std::env::temp_dir().join(format!("commute-onnx-encoder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image_model = dir.join("identity.onnx");
    std::fs::write(&image_model, commute_sdk::onnx_graph::identity_model("pixels", "out", &[1, 3])).unwrap();
    let (_, tokenizer) = files();
    let p = format!(
        "model = {:?}\ntokenizer = {:?}",
        image_model.display().to_string(),
        tokenizer.display().to_string()
    );
    let e = refused(&p);
    assert!(e.contains("cannot fill input `pixels`"), "{e}");
    assert!(
        e.contains("the model's inputs: pixels Tensor<f32>(1, 3); its outputs: out Tensor<f32>(1, 3)"),
        "{e}"
    );
}

#[test]
fn onnx_conforms() {
    let inputs: Vec<Value> = ["A man is playing a guitar.", "Someone is strumming a guitar.", ""]
        .iter()
        .map(|t| Value::text(*t))
        .collect();
    Conformance::new(commute_plugin())
        .case(
            "onnx",
            &params(
                "normalize = true
batch-size = 2",
            ),
            inputs.clone(),
        )
        .case("onnx", &params("output = \"layer_norm_2\"\npooling = \"max\""), inputs)
        .run_covering(&["onnx"]);
}

#[test]
fn pairs_are_joined_by_the_tokenizers_template_and_their_second_text_is_type_1() {
    use commute_plugin_text::minilm::tokenize::Tokenizer;
    use commute_sdk::onnx_graph::{one_node_model, FLOAT, INT64};
    let (_, tokenizer) = files();
    // BERT's ids: the = 1996, cat = 4937, sat = 2938; [CLS] = 101, [SEP] = 102.
    let pair =
        Tokenizer::open(&tokenizer).expect("the tokenizer").pair_ids("the cat", "sat").expect("a pair");
    assert_eq!((pair.ids.as_slice(), pair.second), (&[101, 1996, 4937, 102, 2938, 102][..], 4));

    // A model that hands the token type ids back as floats: [batch, tokens] read as one vector
    // per text of the probe's 3 tokens, so texts of 3 tokens: "a" ([CLS] a [SEP]) and the empty
    // pair "\t" ([CLS] [SEP] [SEP]).
    let dir = tempfile::tempdir().expect("a temporary folder");
    let model = dir.path().join("types.onnx");
    let any = &[-1i64, -1][..];
    let bytes = one_node_model(
        "Cast",
        &[("token_type_ids", INT64, any), ("input_ids", INT64, any)],
        ("types", FLOAT, any),
        &[("to", FLOAT as i64)],
    );
    std::fs::write(&model, bytes).expect("write the model");
    let types = format!(
        "model = {:?}\ntokenizer = {:?}\npair-separator = \"\\t\"",
        model.display().to_string(),
        tokenizer.display().to_string()
    );
    assert_eq!(embed("onnx", &types, &["a", "\t", "a"]), [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]);
    assert!(refused(&format!("{types}\npair-separator = \"\"")).contains("pair-separator"));

    // On MiniLM itself a pair is not the same text read as one sequence.
    let joined = embed(
        "onnx",
        &params("pair-separator = \" | \"\nnormalize = true"),
        &["the cat | sat", "the cat sat"],
    );
    let cosine: f32 = joined[0].iter().zip(&joined[1]).map(|(a, b)| a * b).sum();
    assert!(cosine < 0.99, "cosine {cosine}");
}
