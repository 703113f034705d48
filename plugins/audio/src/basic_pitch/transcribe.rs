//! The `transcribe` render: audio → score, Basic Pitch's posteriorgrams decoded into notes
//! ([`notes`](super::notes)) with the package's default thresholds.
//!
//! A note's onset is the time of its first frame, its duration reaches the time of its end frame
//! ([`frame_time_s`]), its velocity is `round(127 × amplitude)`
//! (at least 1), and every note gets the program `program`. Notes come sorted by onset, then
//! pitch. Audio without notes (silence, or shorter than the shortest note) gives an empty score.

use super::model::{BasicPitch, ASSETS, DEFAULT_BATCH_WINDOWS};
use super::notes::{note_events, NoteCreation};
use super::posteriorgram::{Posteriorgrams, LOWEST_PITCH};
use super::windows::{frame_time_s, FFT_HOP, SAMPLE_RATE};
use crate::signal::check_range;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// Parameters of `transcribe`.
#[params]
#[derive(Debug, Clone)]
pub struct TranscribeParams {
    /// Smallest onset activation that starts a note (0–1).
    #[serde(default = "default_onset_threshold")]
    pub onset_threshold: f32,
    /// Smallest note activation that keeps a note sounding (0–1).
    #[serde(default = "default_frame_threshold")]
    pub frame_threshold: f32,
    /// Shortest note kept, in milliseconds (0–10000; rounded to frames of 11.6 ms).
    #[serde(default = "default_minimum_note_length_ms")]
    pub minimum_note_length_ms: f64,
    /// Frames (11.6 ms each) below frame-threshold tolerated inside a note before it ends (1–1000).
    #[serde(default = "default_energy_tolerance")]
    pub energy_tolerance: usize,
    /// Lowest note frequency kept, in Hz (none: from A0).
    #[serde(default)]
    pub minimum_frequency: Option<f64>,
    /// Highest note frequency kept, in Hz (none: up to C8).
    #[serde(default)]
    pub maximum_frequency: Option<f64>,
    /// Add onsets where a key's activation rises sharply (for repeated notes the model misses).
    #[serde(default = "default_true")]
    pub infer_onsets: bool,
    /// Also read notes from strong activation that no onset claimed ("melodia trick").
    #[serde(default = "default_true")]
    pub melodia_trick: bool,
    /// General MIDI program given to every note (0–127).
    #[serde(default)]
    #[schemars(range(max = 127))]
    pub program: u8,
    /// Two-second windows per ONNX Runtime call (1–256).
    #[serde(default = "default_batch_windows")]
    pub batch_windows: usize,
}

impl Default for TranscribeParams {
    fn default() -> Self {
        TranscribeParams {
            onset_threshold: default_onset_threshold(),
            frame_threshold: default_frame_threshold(),
            minimum_note_length_ms: default_minimum_note_length_ms(),
            energy_tolerance: default_energy_tolerance(),
            minimum_frequency: None,
            maximum_frequency: None,
            infer_onsets: true,
            melodia_trick: true,
            program: 0,
            batch_windows: default_batch_windows(),
        }
    }
}

pub(super) fn default_onset_threshold() -> f32 {
    0.5
}
pub(super) fn default_frame_threshold() -> f32 {
    0.3
}
pub(super) fn default_minimum_note_length_ms() -> f64 {
    127.7
}
fn default_energy_tolerance() -> usize {
    11
}
pub(super) fn default_true() -> bool {
    true
}
fn default_batch_windows() -> usize {
    DEFAULT_BATCH_WINDOWS
}

impl TranscribeParams {
    /// Checks the parameters and converts them to note-creation settings.
    pub fn note_creation(&self) -> Result<NoteCreation> {
        check_range("onset-threshold", f64::from(self.onset_threshold), 0.0, 1.0)?;
        check_range("frame-threshold", f64::from(self.frame_threshold), 0.0, 1.0)?;
        check_range("minimum-note-length-ms", self.minimum_note_length_ms, 0.0, 10_000.0)?;
        ensure!(
            (1..=1000).contains(&self.energy_tolerance),
            "energy-tolerance must be within 1..=1000 frames, got {}",
            self.energy_tolerance
        );
        ensure!(self.program <= 127, "program must be within 0..=127, got {}", self.program);
        let frames_per_s = f64::from(SAMPLE_RATE) / FFT_HOP as f64;
        let key = |hz: f64| 69.0 + 12.0 * (hz / 440.0).log2() - f64::from(LOWEST_PITCH);
        let mut lowest_key = 0;
        let mut end_key = super::posteriorgram::KEYS;
        if let Some(hz) = self.minimum_frequency {
            check_range("minimum-frequency", hz, 1.0, 20_000.0)?;
            lowest_key = key(hz).round().clamp(0.0, end_key as f64) as usize;
        }
        if let Some(hz) = self.maximum_frequency {
            check_range("maximum-frequency", hz, 1.0, 20_000.0)?;
            end_key = key(hz).round().clamp(0.0, end_key as f64) as usize;
        }
        ensure!(
            lowest_key < end_key,
            "minimum-frequency and maximum-frequency leave no piano key between them"
        );
        Ok(NoteCreation {
            onset_threshold: self.onset_threshold,
            frame_threshold: self.frame_threshold,
            min_frames: (self.minimum_note_length_ms / 1000.0 * frames_per_s).round() as usize,
            energy_tolerance: self.energy_tolerance,
            lowest_key,
            end_key,
            infer_onsets: self.infer_onsets,
            melodia_trick: self.melodia_trick,
        })
    }
}

/// Decodes posteriorgrams into a score with `settings`, every note on `program`.
pub fn score(p: &Posteriorgrams, settings: &NoteCreation, program: u8) -> Score {
    let notes = note_events(p, settings)
        .into_iter()
        .map(|e| {
            let onset = frame_time_s(e.start);
            Note {
                pitch: e.pitch,
                onset_s: onset as f32,
                duration_s: (frame_time_s(e.end) - onset) as f32,
                velocity: (127.0 * e.amplitude).round().clamp(1.0, 127.0) as u8,
                program,
            }
        })
        .collect();
    Score { notes }
}

/// The `transcribe` render.
pub struct Transcribe {
    model: BasicPitch,
    settings: NoteCreation,
    program: u8,
}

impl Function for Transcribe {
    const DOC: &'static str = "Transcribes audio to notes with Basic Pitch (ONNX): note and onset posteriorgrams decoded with the package's thresholds; velocity from activation.";
    type Params = TranscribeParams;
    const ASSETS: &'static [AssetSpec] = ASSETS;
    // ONNX Runtime's CUDA execution provider (with the `cuda` feature).
    const CUDA: bool = true;

    fn open(params: TranscribeParams, ctx: &Context) -> Result<Self> {
        let settings = params.note_creation()?;
        let model = BasicPitch::open(ctx, params.batch_windows)?;
        Ok(Transcribe { model, settings, program: params.program })
    }
}

impl Render for Transcribe {
    type Input<'a> = AudioRef<'a>;
    type Output = Score;

    fn render(&mut self, audio: AudioRef<'_>) -> Result<Score> {
        self.render_batch(vec![audio]).pop().unwrap_or_else(|| Err(anyhow!("no result for the item")))
    }

    fn render_batch(&mut self, items: Vec<AudioRef<'_>>) -> Vec<Result<Score>> {
        self.model
            .posteriorgrams(&items)
            .into_iter()
            .map(|p| p.map(|p| score(&p, &self.settings, self.program)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_packages() {
        let s = TranscribeParams::default().note_creation().expect("valid");
        assert_eq!(s, NoteCreation::default());
    }

    #[test]
    fn frequencies_select_keys_and_bad_values_are_refused() {
        let p = TranscribeParams {
            minimum_frequency: Some(261.63),
            maximum_frequency: Some(1000.0),
            ..TranscribeParams::default()
        };
        let s = p.note_creation().expect("valid");
        // C4 = key 39; 1000 Hz ≈ MIDI 83.2 → keys below 62.
        assert_eq!((s.lowest_key, s.end_key), (39, 62));
        for bad in [
            TranscribeParams { onset_threshold: 1.5, ..TranscribeParams::default() },
            TranscribeParams { frame_threshold: f32::NAN, ..TranscribeParams::default() },
            TranscribeParams { energy_tolerance: 0, ..TranscribeParams::default() },
            TranscribeParams { program: 128, ..TranscribeParams::default() },
            TranscribeParams {
                minimum_frequency: Some(2000.0),
                maximum_frequency: Some(1000.0),
                ..TranscribeParams::default()
            },
        ] {
            assert!(bad.note_creation().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn notes_get_times_velocities_and_the_program() {
        let mut p = Posteriorgrams::zeros(300);
        for t in 150..250 {
            p.note[t * super::super::posteriorgram::KEYS + 48] = 0.5;
        }
        p.onset[150 * super::super::posteriorgram::KEYS + 48] = 0.9;
        let s = score(&p, &NoteCreation::default(), 40);
        assert_eq!(s.notes.len(), 1, "{s:?}");
        let n = s.notes[0];
        assert_eq!((n.pitch, n.velocity, n.program), (69, 64, 40));
        assert!((f64::from(n.onset_s) - frame_time_s(150)).abs() < 1e-6);
        assert!((f64::from(n.end_s()) - frame_time_s(250)).abs() < 1e-5);
    }
}
