//! Whisper tiny.en on real speech: news sentences spoken by eSpeak NG and transcribed back with
//! the word error rate the docs state, a plain sentence word for word, silence as no words; the
//! `whisper` encoder's states; and bad audio refused by name while the rest of the batch goes on.

mod common;

use common::{call, cosine, samples, sentences, speech, tensor, word_errors, words};
use commute_sdk::{Audio, Value};

fn text(v: &Value) -> &str {
    v.as_text().unwrap_or_else(|| panic!("expected text, got {v:?}"))
}

/// The word error rate of Whisper tiny.en on the first 50 news sentences of 4–12 words, spoken by
/// eSpeak NG's default voice at 16 kHz, as docs/speech.md states it (171 errors in 489 words). The
/// margin, 0.02 (10 words), allows for float differences between machines and builds.
const STATED_WER: f64 = 0.350;

#[test]
fn spoken_news_sentences_are_transcribed_with_the_stated_word_error_rate() {
    let sentences = sentences(50);
    let batch: Vec<Value> = sentences.iter().map(|s| Value::text(s.clone())).collect();
    let audio = call("speak", "sample-rate = 16000", &batch);
    let heard = call("recognise", "", &audio);
    let (mut errors, mut total) = (0, 0);
    for (said, got) in sentences.iter().zip(&heard) {
        let (r, h) = (words(said), words(text(got)));
        errors += word_errors(&r, &h);
        total += r.len();
    }
    let wer = errors as f64 / total as f64;
    eprintln!("WER {wer:.4} ({errors} of {total} words)");
    assert!((wer - STATED_WER).abs() <= 0.02, "WER {wer:.4}, stated {STATED_WER}");
}

#[test]
fn the_encoder_states_depend_on_the_speech_not_its_sample_rate() {
    let texts = [Value::text("The fires are still burning."), Value::text("India ruled out any talks.")];
    let audio = call("speak", "", &texts);
    let at16 = call("speak", "sample-rate = 16000", &texts);
    let e = call("whisper", "", &[audio[0].clone(), audio[1].clone(), audio[0].clone(), at16[0].clone()]);
    assert!(e.iter().all(|v| tensor(v).len() == 384));
    assert_eq!(tensor(&e[0]), tensor(&e[2]), "deterministic");
    // The same speech at 22.05 and 16 kHz: nearly the same states.
    let same = cosine(tensor(&e[0]), tensor(&e[3]));
    let other = cosine(tensor(&e[0]), tensor(&e[1]));
    assert!(same > 0.999, "same speech, two rates: cosine {same}");
    assert!(other < same - 0.01, "two sentences: cosine {other}, same sentence {same}");
    // Louder speech (×2) is the same speech: the log-mel input is normalised to its maximum.
    let louder: Vec<f32> = samples(&audio[0]).iter().map(|s| 2.0 * s).collect();
    let l = call("whisper", "", &[Value::Audio(Audio { sample_rate: 22_050, samples: louder })]);
    let gain = cosine(tensor(&e[0]), tensor(&l[0]));
    assert!(gain > 0.999, "6 dB louder: cosine {gain}");
}

#[test]
fn bad_audio_is_an_item_error_that_names_the_problem() {
    let speech_audio = call("speak", "", &[Value::text("Open the door and turn on the light, please.")]);
    let audio = |sample_rate: u32, samples: Vec<f32>| Value::Audio(Audio { sample_rate, samples });
    let batch = [
        audio(16_000, vec![]),
        audio(16_000, vec![0.1; 100]),
        audio(16_000, vec![0.0; 16_000 * 31]),
        audio(16_000, vec![0.0, f32::NAN, 0.0]),
        audio(500, vec![0.0; 4000]),
        speech_audio[0].clone(),
        audio(16_000, vec![0.0; 16_000]),
    ];
    for function in ["recognise", "whisper"] {
        let items = speech().call_items(function, "", &batch).expect("the batch runs");
        let errors: Vec<String> =
            items[..5].iter().map(|r| r.as_ref().expect_err("refused").clone()).collect();
        for (e, needle) in errors.iter().zip(["empty", "too short", "30 s", "sample 1", "500 Hz"]) {
            assert!(e.contains(needle), "{function}: {e:?} should say {needle:?}");
        }
        assert!(items[5].is_ok() && items[6].is_ok(), "{function}: speech and silence are read");
    }
    let heard = call("recognise", "", &batch[5..]);
    // A plain sentence comes back word for word.
    assert_eq!(words(text(&heard[0])), words("open the door and turn on the light please"), "{heard:?}");
    // Silence: the model hears no words.
    assert!(words(text(&heard[1])).len() <= 1, "silence heard as {:?}", text(&heard[1]));
    assert!(speech().open("recognise", "max-tokens = 0").is_err());
}
