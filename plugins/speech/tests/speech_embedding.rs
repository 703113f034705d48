//! openWakeWord's speech embedding on real speech. Its known answer is one of openWakeWord's own
//! detectors, trained on exactly these features: fed the embeddings of "hey jarvis" spoken by the
//! `speak` render it fires, on news sentences it stays silent — features computed wrongly (another
//! scale, another mel transform, misplaced windows) would not fire it. Then the encoder through the
//! ABI: dimensions, pooling, determinism, rates, short audio, and bad input refused by name.

mod common;

use common::{call, cosine, samples, sentences, speech, tensor};
use commute_plugin_speech::speech_embedding::{SpeechEmbedding, SpeechEmbeddingParams, ASSETS, DIM};
use commute_sdk::asset::AssetStore;
use commute_sdk::onnx::ort::value::TensorRef;
use commute_sdk::prelude::Function;
use commute_sdk::{AssetSpec, Audio, AudioRef, Context, Value};

/// openWakeWord's "hey jarvis" detector, from the same wheel: 16 embeddings (1.28 s) → a score.
const HEY_JARVIS: AssetSpec = AssetSpec::pypi(
    "openwakeword-hey-jarvis",
    "openwakeword",
    "0.4.0",
    "openwakeword/resources/models/hey_jarvis_v0.1.onnx",
    "94a13cfe60075b132f6a472e7e462e8123ee70861bc3fb58434a73712ee0d2cb",
    1_271_370,
    "CC-BY-NC-SA-4.0",
);

/// Embeddings a detector reads at once.
const SPAN: usize = 16;

fn context() -> Context {
    let store = AssetStore::from_env();
    let mut ctx = Context { threads: 2, ..Context::default() };
    for spec in ASSETS.iter().chain([&HEY_JARVIS]) {
        let path = store.ensure(spec).unwrap_or_else(|e| panic!("asset {}: {e}", spec.name));
        ctx.assets.insert(spec.name.to_string(), path);
    }
    ctx
}

/// The speech of `text` at 16 kHz between 1 s of silence before and 0.5 s after, as a detector
/// listening to a stream would hear it.
fn spoken(text: &str) -> Audio {
    let audio = call("speak", "sample-rate = 16000", &[Value::text(text)]);
    let mut out = vec![0.0f32; 16_000];
    out.extend_from_slice(samples(&audio[0]));
    out.extend(std::iter::repeat_n(0.0, 8_000));
    Audio { sample_rate: 16_000, samples: out }
}

/// The detector's highest score over every run of 16 consecutive window embeddings.
fn detector_peak(ctx: &Context, windows: &[f32]) -> f32 {
    let mut session =
        commute_sdk::onnx::session(ctx, &ctx.assets[HEY_JARVIS.name.as_ref()]).expect("the detector");
    let n = windows.len() / DIM;
    assert!(n >= SPAN, "{n} windows, the detector reads {SPAN}");
    (0..=n - SPAN)
        .map(|start| {
            let input = &windows[start * DIM..(start + SPAN) * DIM];
            let tensor = TensorRef::from_array_view(([1usize, SPAN, DIM], input)).expect("a tensor");
            let out =
                session.run(commute_sdk::onnx::ort::inputs!["x.1" => tensor]).expect("the detector runs");
            let (_, score) = out[0].try_extract_tensor::<f32>().expect("f32 scores");
            score[0]
        })
        .fold(f32::NEG_INFINITY, f32::max)
}

#[test]
fn an_openwakeword_detector_fires_on_its_phrase_and_not_on_news() {
    let ctx = context();
    let mut model = SpeechEmbedding::open(SpeechEmbeddingParams::default(), &ctx).expect("the encoder opens");
    let phrase = spoken("hey jarvis");
    let windows = model.windows(phrase.as_ref()).expect("embeddings");
    // One window every 80 ms over 76 mel frames: ⌊(n − 512)/160⌋ + 1 frames.
    let frames = (phrase.samples.len() - 512) / 160 + 1;
    assert_eq!(windows.len() / DIM, (frames - 76) / 8 + 1);
    let fired = detector_peak(&ctx, &windows);
    eprintln!("hey jarvis: peak {fired:.4}");
    assert!(fired > 0.5, "the detector does not fire on its phrase: peak {fired}");
    for sentence in sentences(5) {
        let quiet = detector_peak(&ctx, &model.windows(spoken(&sentence).as_ref()).expect("embeddings"));
        eprintln!("{sentence}: peak {quiet:.4}");
        assert!(quiet < 0.1, "the detector fires on \"{sentence}\": peak {quiet}");
    }
}

#[test]
fn the_encoder_pools_windows_and_hears_speech_not_its_rate() {
    let texts: Vec<Value> = sentences(2).into_iter().map(Value::text).collect();
    let at22 = call("speak", "", &texts);
    let at16 = call("speak", "sample-rate = 16000", &texts);
    let batch = [at22[0].clone(), at22[1].clone(), at22[0].clone(), at16[0].clone()];
    let e = call("speech-embedding", "", &batch);
    assert!(e.iter().all(|v| tensor(v).len() == DIM && tensor(v).iter().all(|x| x.is_finite())));
    assert_eq!(tensor(&e[0]), tensor(&e[2]), "deterministic");
    let alone = call("speech-embedding", "", &[at22[0].clone()]);
    assert_eq!(tensor(&alone[0]), tensor(&e[0]), "the same alone as in a batch");
    let same = cosine(tensor(&e[0]), tensor(&e[3]));
    let other = cosine(tensor(&e[0]), tensor(&e[1]));
    eprintln!("same speech at two rates: {same:.5}; two sentences: {other:.5}");
    assert!(same > 0.995, "same speech at 22.05 and 16 kHz: cosine {same}");
    assert!(other < same - 0.01, "two sentences: cosine {other}, same sentence {same}");
    // mean-max: the means, then the maxima.
    let both = call("speech-embedding", "pooling = \"mean-max\"", &[at22[0].clone()]);
    assert_eq!(tensor(&both[0]).len(), 2 * DIM);
    assert_eq!(&tensor(&both[0])[..DIM], tensor(&e[0]));
    assert!(tensor(&both[0])[DIM..].iter().zip(tensor(&e[0])).all(|(max, mean)| max >= mean));
}

#[test]
fn short_audio_is_padded_and_bad_audio_is_refused_by_name() {
    let blip = Value::Audio(Audio { sample_rate: 16_000, samples: vec![0.1; 1600] });
    let short = call("speech-embedding", "", &[blip]);
    assert_eq!(tensor(&short[0]).len(), DIM, "0.1 s is padded to one window");
    let bad = [
        Value::Audio(Audio { sample_rate: 16_000, samples: vec![] }),
        Value::Audio(Audio { sample_rate: 16_000, samples: vec![0.0, f32::NAN, 0.0] }),
        Value::Audio(Audio { sample_rate: 100, samples: vec![0.0; 400] }),
        Value::Audio(Audio { sample_rate: 16_000, samples: vec![0.0; 16_000] }),
    ];
    let out = speech().call_items("speech-embedding", "", &bad).expect("the batch runs");
    let message = |i: usize| match &out[i] {
        Err(e) => e.clone(),
        Ok(v) => panic!("item {i} gave {v:?}"),
    };
    assert!(message(0).contains("empty"), "{}", message(0));
    assert!(message(1).contains("sample 1"), "{}", message(1));
    assert!(message(2).contains("sample rate"), "{}", message(2));
    assert_eq!(out[3].as_ref().map(|v| tensor(v).len()).ok(), Some(DIM), "silence still encodes");
}

#[test]
fn windows_of_a_clip_do_not_depend_on_the_batch() {
    let ctx = context();
    let mut model = SpeechEmbedding::open(SpeechEmbeddingParams::default(), &ctx).expect("the encoder opens");
    let mut small =
        SpeechEmbedding::open(SpeechEmbeddingParams { batch_windows: 3, ..Default::default() }, &ctx)
            .expect("the encoder opens");
    let audio = spoken("The fires are still burning.");
    let a = model.windows(audio.as_ref()).expect("embeddings");
    let b = small.windows(AudioRef { sample_rate: 16_000, samples: &audio.samples }).expect("embeddings");
    assert_eq!(a.len(), b.len());
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "windows differ by {worst} between batch sizes");
}
