//! commute plugin for symbolic music: random and MIDI-file score sources, piano-roll, chroma and
//! loudness encoders, transpose / louder / tempo operators and a wavetable synthesizer.
//!
//! | kind | function | what |
//! |---|---|---|
//! | source | `random-scores` | seeded melodies, chord progressions and melodies over chords ([`generate`]) |
//! | source | `midi-files` | every `.mid`/`.midi` file of a folder ([`midi_files`]) |
//! | encoder | `piano-roll` | 128 + 8 dims: pooled velocity-weighted piano roll and statistics, or its frames ([`piano_roll`]) |
//! | encoder | `chroma` | 12 dims: pitch-class profile ([`chroma`]) |
//! | encoder | `loudness` | 10 dims: dynamics and density ([`loudness`]) |
//! | operator | `transpose` | shift pitches by semitones ([`transpose`]) |
//! | operator | `louder` | velocity gain in dB ([`louder`]) |
//! | operator | `tempo` | faster or slower ([`tempo`]) |
//! | render | `synth` | score → mono audio ([`synth`]) |
//! | render | `decode-roll` | piano-roll frames → score ([`decode_roll`]) |
//!
//! The modules are public so that other crates (and tests) can call the functions directly.

pub mod chroma;
pub mod decode_roll;
pub mod envelope;
pub mod generate;
pub mod louder;
pub mod loudness;
pub mod midi_files;
pub mod piano_roll;
pub mod score;
pub mod synth;
pub mod tempo;
pub mod transpose;
pub mod voice;

commute_sdk::export_plugin! {
    name: "music",
    modality: "music",
    doc: "Symbolic music: score generators, MIDI files, piano-roll/chroma/loudness encoders, transpose/louder/tempo operators and a synthesizer.",
    functions: {
        source "random-scores" => generate::RandomScores,
        source "midi-files" => midi_files::MidiFiles,
        encoder "piano-roll" => piano_roll::PianoRoll,
        encoder "chroma" => chroma::Chroma,
        encoder "loudness" => loudness::Loudness,
        operator "transpose" => transpose::Transpose,
        operator "louder" => louder::Louder,
        operator "tempo" => tempo::Tempo,
        render "synth" => synth::Synth,
        render "decode-roll" => decode_roll::DecodeRoll,
    },
}
