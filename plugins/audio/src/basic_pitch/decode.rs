//! The `basic-pitch-notes` render: Basic Pitch's frames (a sequence, as `basic-pitch` with
//! `pool = "none"` gives them, or frames mapped into that space) decoded into a score by the same
//! note creation as `transcribe` ([`notes`](super::notes)).
//!
//! A frame is the note (88), onset (88) and contour (264) activations side by side; only the first
//! two are read. With `rescaled` (the default, as the encoder writes them) each activation `r` is
//! first taken back to the model's range, `0.1 + 0.8 r`, where the thresholds are set. The frames
//! must be at Basic Pitch's own rate (22 050 / 256 a second): note lengths and times are counted
//! in its frames. `transcribe` on audio and `basic-pitch-notes` on that audio's frames give the
//! same notes.

use super::embedding::FRAME_RATE;
use super::notes::NoteCreation;
use super::posteriorgram::{Posteriorgrams, CONTOUR_BINS, KEYS};
use super::transcribe::{
    default_frame_threshold, default_minimum_note_length_ms, default_onset_threshold, default_true, score,
    TranscribeParams,
};
use commute_sdk::prelude::*;

/// Parameters of `basic-pitch-notes`: `transcribe`'s note creation (its defaults), and how the
/// frames were written.
#[params]
#[derive(Debug, Clone)]
pub struct DecodeParams {
    /// Smallest onset activation that starts a note (0–1, in the model's range).
    #[serde(default = "default_onset_threshold")]
    pub onset_threshold: f32,
    /// Smallest note activation that keeps a note sounding (0–1, in the model's range).
    #[serde(default = "default_frame_threshold")]
    pub frame_threshold: f32,
    /// Shortest note kept, in milliseconds (0–10000; rounded to frames of 11.6 ms).
    #[serde(default = "default_minimum_note_length_ms")]
    pub minimum_note_length_ms: f64,
    /// General MIDI program given to every note (0–127).
    #[serde(default)]
    #[schemars(range(max = 127))]
    pub program: u8,
    /// Whether the frames were rescaled by the encoder (its `rescale`, on by default).
    #[serde(default = "default_true")]
    pub rescaled: bool,
}

/// The `basic-pitch-notes` render.
pub struct DecodeFrames {
    settings: NoteCreation,
    program: u8,
    rescaled: bool,
}

impl Function for DecodeFrames {
    const DOC: &'static str = "Basic Pitch's frames (a sequence of note, onset and contour activations) decoded into a score, as transcribe decodes them.";
    type Params = DecodeParams;

    fn open(p: DecodeParams, _ctx: &Context) -> Result<Self> {
        let transcribe = TranscribeParams {
            onset_threshold: p.onset_threshold,
            frame_threshold: p.frame_threshold,
            minimum_note_length_ms: p.minimum_note_length_ms,
            program: p.program,
            ..TranscribeParams::default()
        };
        Ok(DecodeFrames { settings: transcribe.note_creation()?, program: p.program, rescaled: p.rescaled })
    }
}

impl Render for DecodeFrames {
    type Input<'a> = SequenceRef<'a>;
    type Output = Score;

    fn render(&mut self, frames: SequenceRef<'_>) -> Result<Score> {
        ensure!(
            (frames.frame_rate - FRAME_RATE).abs() < 1e-6,
            "frames at {} a second; basic-pitch-notes reads Basic Pitch's own {FRAME_RATE} (its note lengths are in those frames)",
            frames.frame_rate
        );
        ensure!(
            frames.dim >= 2 * KEYS,
            "frames of {} values; basic-pitch-notes reads the note and onset activations (88 + 88) at their start",
            frames.dim
        );
        let n = frames.frames();
        let back = |r: f32| if self.rescaled { 0.1 + 0.8 * r } else { r };
        let mut p = Posteriorgrams::zeros(n);
        for t in 0..n {
            let f = &frames.data[t * frames.dim..(t + 1) * frames.dim];
            for k in 0..KEYS {
                p.note[t * KEYS + k] = back(f[k]);
                p.onset[t * KEYS + k] = back(f[KEYS + k]);
            }
            if frames.dim >= 2 * KEYS + CONTOUR_BINS {
                for b in 0..CONTOUR_BINS {
                    p.contour[t * CONTOUR_BINS + b] = back(f[2 * KEYS + b]);
                }
            }
        }
        Ok(score(&p, &self.settings, self.program))
    }
}
