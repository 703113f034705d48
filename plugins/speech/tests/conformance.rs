//! The SDK's conformance suite with one case per function of the speech plugin, on real speech.

mod common;

use common::call;
use commute_plugin_speech::commute_plugin;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::Value;

#[test]
fn speech_plugin_conforms() {
    let texts = vec![Value::text("Two of those flared overnight."), Value::text("No charges were filed.")];
    let audio = call("speak", "sample-rate = 16000", &texts);
    Conformance::new(commute_plugin())
        .case("speak", "rate = 200\npitch-variation = 10\nseed = 1", texts)
        .case("recognise", "max-tokens = 40", audio.clone())
        .case("whisper", "", audio.clone())
        .case("speech-embedding", "pooling = \"mean-max\"", audio)
        .run();
}

#[test]
fn manifest_lists_every_function_with_its_assets() {
    let h = Harness::new(commute_plugin());
    let m = h.manifest();
    assert_eq!((m.name.as_str(), m.modality.as_str()), ("speech", "speech"));
    let names: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["speak", "recognise", "whisper", "speech-embedding"]);
    let assets = |i: usize| m.functions[i].assets.iter().map(|a| a.name.to_string()).collect::<Vec<_>>();
    assert_eq!(assets(0).len(), 8, "eSpeak's library and 7 data files");
    assert_eq!(assets(1), ["whisper-tiny-en-ct2", "whisper-tiny-en-vocabulary", "whisper-tiny-en-config"]);
    assert_eq!(assets(1), assets(2));
    assert_eq!(assets(3), ["onnxruntime", "openwakeword-melspectrogram", "openwakeword-speech-embedding"]);
    let licences: Vec<String> = m.functions[3].assets.iter().map(|a| a.licence.to_string()).collect();
    assert_eq!(&licences[1..], ["CC-BY-NC-SA-4.0"; 2], "openWakeWord's models are non-commercial");
}
