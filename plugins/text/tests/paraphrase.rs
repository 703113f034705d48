//! `paraphrase-minilm` on the real model: its pooled last layer is the model's own sentence
//! embedding (the graph's mean pooling), every layer is a space of its own, paraphrases sit
//! closer than unrelated sentences, and a layer it does not have is refused.

use commute_plugin_text::commute_plugin;
use commute_plugin_text::minilm::tokenize::TOKENIZER;
use commute_plugin_text::paraphrase::{layer_tensor, MODEL, SENTENCE};
use commute_sdk::asset::AssetStore;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::{Context, Value};

fn plugin() -> Harness {
    Harness::new(commute_plugin()).with_context(Context { threads: 2, ..Context::default() })
}

fn embed(function: &str, params: &str, texts: &[&str]) -> Vec<Vec<f32>> {
    let values: Vec<Value> = texts.iter().map(|t| Value::text(*t)).collect();
    let out = plugin().call(function, params, &values).unwrap_or_else(|e| panic!("{function} {params}: {e}"));
    out.iter().map(|v| v.as_tensor().expect("a tensor").data.clone()).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

const TEXTS: [&str; 5] = [
    "A man is playing a guitar.",
    "Someone is strumming a guitar.",
    "The stock market fell sharply on Monday.",
    "",
    "The new movie is awesome, but the ending was rushed and nobody in the cinema liked it at all.",
];

#[test]
fn the_pooled_last_layer_is_the_models_own_sentence_embedding() {
    let store = AssetStore::from_env();
    let model = store.ensure(&MODEL).expect("the model");
    let tokenizer = store.ensure(&TOKENIZER).expect("MiniLM's tokenizer");
    // The graph's own pooled output, read through the generic encoder with the same tokens.
    let own = format!(
        "model = {:?}\ntokenizer = {:?}\noutput = {SENTENCE:?}\npooling = \"none\"\nmax-tokens = 128",
        model.display().to_string(),
        tokenizer.display().to_string()
    );
    let theirs = embed("onnx", &own, &TEXTS);
    let ours = embed("paraphrase-minilm", "", &TEXTS);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a.len(), 384);
        let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "text {i}: max difference {diff}");
    }
    // Paraphrases sit closer than unrelated sentences.
    let (para, unrelated) = (cosine(&ours[0], &ours[1]), cosine(&ours[0], &ours[2]));
    assert!(para > 0.6 && unrelated < 0.3, "paraphrase {para}, unrelated {unrelated}");
}

#[test]
fn every_layer_is_a_space_of_its_own_and_a_missing_one_is_refused() {
    let layers: Vec<Vec<Vec<f32>>> =
        (0..=3).map(|l| embed("paraphrase-minilm", &format!("layer = {l}"), &TEXTS[..3])).collect();
    assert_eq!(layers[3], embed("paraphrase-minilm", "", &TEXTS[..3]), "layer 3 is the default");
    for l in 0..3 {
        assert!(layers[l].iter().flatten().all(|x| x.is_finite()));
        let c = cosine(&layers[l][0], &layers[l + 1][0]);
        assert!(c < 0.999, "layers {l} and {} differ: {c}", l + 1);
    }
    assert_eq!(layer_tensor(3), "onnx::Shape_422");
    let normalised = embed("paraphrase-minilm", "normalize = true", &TEXTS[..1]);
    let norm: f32 = normalised[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    match plugin().open("paraphrase-minilm", "layer = 4") {
        Ok(_) => panic!("layer 4 opened"),
        Err(e) => assert!(e.to_string().contains("layer"), "{e}"),
    }

    // Several layers in one pass: each part is that layer alone, bit for bit, in the order asked.
    let joined = embed("paraphrase-minilm", "layers = [3, 0, 2]", &TEXTS[..3]);
    for (text, row) in joined.iter().enumerate() {
        assert_eq!(row.len(), 3 * 384);
        for (part, layer) in [3, 0, 2].into_iter().enumerate() {
            assert_eq!(&row[part * 384..(part + 1) * 384], layers[layer][text].as_slice(), "layer {layer}");
        }
    }
    for (params, says) in [
        ("layers = []", "at least one"),
        ("layers = [4]", "layers must be in [0, 3], found 4"),
        ("layer = 1\nlayers = [2]", "not both"),
    ] {
        let err = plugin().open("paraphrase-minilm", params).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(says), "{params}: {err}");
    }
}

#[test]
fn paraphrase_minilm_conforms() {
    let inputs: Vec<Value> = TEXTS.iter().map(|t| Value::text(*t)).collect();
    Conformance::new(commute_plugin())
        .case("paraphrase-minilm", "", inputs.clone())
        .case("paraphrase-minilm", "layer = 1\nbatch-size = 2", inputs)
        .run_covering(&["paraphrase-minilm"]);
}
