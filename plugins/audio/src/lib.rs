//! commute plugin for audio: Basic Pitch (a note-transcription network run with ONNX Runtime)
//! as an encoder and a transcriber, and a DSP part in pure Rust — log-mel, chroma and loudness
//! encoders, gain, pitch-shift and time-stretch operators and a WAV-file source.
//!
//! | kind | function | what |
//! |---|---|---|
//! | source | `wav-files` | every `.wav` file of a folder, mono, at its own rate ([`wav_files`]) |
//! | encoder | `log-mel` | 2 × n-mels dims (128 by default): per-band mean and std of a dB mel spectrogram, or its frames ([`log_mel`]) |
//! | encoder | `chroma` | 12 dims: tuning-corrected pitch-class profile of the STFT ([`chroma`]) |
//! | encoder | `loudness` | 11 dims: frame-level statistics, peak, RMS, crest factor, gated level, range, silence ([`loudness`]) |
//! | operator | `gain` | multiply by 10^(db/20), optional clipping ([`gain`]) |
//! | operator | `pitch-shift` | shift pitch by semitones keeping the duration: resampling + phase vocoder or WSOLA ([`pitch_shift`]) |
//! | operator | `time-stretch` | play faster or slower by a rate keeping the pitch: WSOLA or phase vocoder ([`time_stretch`]) |
//! | encoder | `basic-pitch` | 300 dims by default: Basic Pitch's note, onset and contour posteriorgrams pooled over time, or any `layer` of the network on the way to them ([`basic_pitch::embedding`]) |
//! | render | `transcribe` | audio → score: Basic Pitch's posteriorgrams decoded into notes ([`basic_pitch::transcribe`]) |
//! | render | `basic-pitch-notes` | Basic Pitch's frames → score, the same decoding ([`basic_pitch::decode`]) |
//! | encoder | `onnx` | any ONNX audio model on the waveform: its windows, any tensors of its graph, pooled over frames ([`onnx_encoder`]) |
//!
//! Basic Pitch's frame-level posteriorgrams are public too ([`basic_pitch::BasicPitch`]); its two
//! functions declare their assets (ONNX Runtime and the model), which the host fetches before
//! opening them. The DSP functions need nothing.
//!
//! The building blocks — [`resample`] (windowed-sinc), [`stft`], [`mel`] filterbanks and
//! time stretching ([`vocoder`], [`wsola`]) — are public so that other crates and tests can use them directly.

pub mod basic_pitch;
pub mod chroma;
pub mod gain;
pub mod log_mel;
pub mod loudness;
pub mod mel;
pub mod onnx_encoder;
pub mod pitch_shift;
/// Band-limited resampling, shared with other plugins through the SDK.
pub use commute_sdk::resample;
pub mod signal;
pub mod stft;
pub mod time_stretch;
pub mod vocoder;
pub mod wav_files;
pub mod windowing;
pub mod wsola;

commute_sdk::export_plugin! {
    name: "audio",
    modality: "audio",
    doc: "Audio: Basic Pitch (ONNX) encoder and transcriber, any ONNX audio model as an encoder; log-mel/chroma/loudness encoders, gain, pitch-shift and time-stretch operators, and a WAV-file source.",
    functions: {
        source "wav-files" => wav_files::WavFiles,
        encoder "log-mel" => log_mel::LogMel,
        encoder "chroma" => chroma::Chroma,
        encoder "loudness" => loudness::Loudness,
        operator "gain" => gain::Gain,
        operator "pitch-shift" => pitch_shift::PitchShift,
        operator "time-stretch" => time_stretch::TimeStretch,
        encoder "basic-pitch" => basic_pitch::BasicPitchEncoder,
        render "transcribe" => basic_pitch::Transcribe,
        render "basic-pitch-notes" => basic_pitch::decode::DecodeFrames,
        encoder "onnx" => onnx_encoder::OnnxAudio,
    },
}
