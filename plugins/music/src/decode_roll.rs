//! The `decode-roll` renderer: piano-roll frames (a sequence, as `piano-roll` with
//! `pooling = "none"` gives them, or frames mapped into that space) back to a score.
//!
//! Frame `t` spans `[t / rate, (t + 1) / rate)`; column `k` is pitch `lowest-pitch + k`. A note
//! sounds over every run of consecutive frames whose activation reaches `threshold`: it starts
//! at the run's first frame and lasts its frames; runs shorter than `min-duration-s` are dropped.
//! Velocity is the run's peak activation × 127 (the roll's activation is velocity / 127 where
//! a frame is covered), at least 1. A roll of silence decodes to an empty score.

use commute_sdk::prelude::*;

/// Parameters of `decode-roll`.
#[params]
#[derive(Debug, Clone)]
pub struct DecodeRollParams {
    /// The pitch of the frames' first column (the roll's `lowest-pitch`, 0–127).
    #[serde(default)]
    #[schemars(range(max = 127))]
    pub lowest_pitch: u8,
    /// Activation at which a frame sounds (0–1).
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Shortest note kept, in seconds (0–10).
    #[serde(default = "default_min_duration_s")]
    pub min_duration_s: f64,
    /// General MIDI program of the notes (0–127).
    #[serde(default)]
    #[schemars(range(max = 127))]
    pub program: u8,
}

fn default_threshold() -> f32 {
    0.15
}
fn default_min_duration_s() -> f64 {
    0.05
}

/// The `decode-roll` renderer.
pub struct DecodeRoll(DecodeRollParams);

impl Function for DecodeRoll {
    const DOC: &'static str = "Piano-roll frames (a sequence) back to a score: runs of frames at or above a threshold become notes.";
    type Params = DecodeRollParams;

    fn open(p: DecodeRollParams, _ctx: &Context) -> Result<Self> {
        ensure!(p.lowest_pitch <= 127 && p.program <= 127, "lowest-pitch and program must be at most 127");
        ensure!((0.0..=1.0).contains(&p.threshold), "threshold must be within 0..=1, got {}", p.threshold);
        ensure!(
            (0.0..=10.0).contains(&p.min_duration_s),
            "min-duration-s must be within 0..=10 s, got {}",
            p.min_duration_s
        );
        Ok(DecodeRoll(p))
    }
}

impl Render for DecodeRoll {
    type Input<'a> = SequenceRef<'a>;
    type Output = Score;

    fn render(&mut self, roll: SequenceRef<'_>) -> Result<Score> {
        let (d, rate) = (roll.dim, roll.frame_rate);
        ensure!(
            usize::from(self.0.lowest_pitch) + d <= 128,
            "the frames have {d} pitches from {}: beyond MIDI pitch 127 (is lowest-pitch the roll's?)",
            self.0.lowest_pitch
        );
        let frames = roll.frames();
        let mut notes = Vec::new();
        for k in 0..d {
            let mut t = 0;
            while t < frames {
                if roll.data[t * d + k] < self.0.threshold {
                    t += 1;
                    continue;
                }
                let start = t;
                let mut peak = 0.0f32;
                while t < frames && roll.data[t * d + k] >= self.0.threshold {
                    peak = peak.max(roll.data[t * d + k]);
                    t += 1;
                }
                let duration = (t - start) as f64 / rate;
                if duration + 1e-9 >= self.0.min_duration_s {
                    notes.push(Note {
                        pitch: self.0.lowest_pitch + k as u8,
                        onset_s: (start as f64 / rate) as f32,
                        duration_s: duration as f32,
                        velocity: (peak.min(1.0) * 127.0).round().max(1.0) as u8,
                        program: self.0.program,
                    });
                }
            }
        }
        notes.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s).then(a.pitch.cmp(&b.pitch)));
        Ok(Score { notes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piano_roll::{PianoRoll, PianoRollParams, RollPooling};
    use crate::score::tests::note;

    #[test]
    fn a_roll_decodes_back_to_its_notes() {
        let params = PianoRollParams {
            frame_s: 0.05,
            lowest_pitch: 21,
            highest_pitch: 108,
            pooling: RollPooling::None,
        };
        let mut roll = PianoRoll::open(params, &Context::default()).expect("opens");
        // Onsets and ends on the frame grid, a chord, and a note of one frame (dropped at 0.1 s).
        let score = Score {
            notes: vec![
                note(60, 0.0, 0.5, 100, 0),
                note(64, 0.0, 0.5, 80, 0),
                note(67, 0.5, 0.25, 127, 0),
                note(72, 1.0, 0.05, 90, 0),
            ],
        };
        let frames = roll.encode(score.clone()).expect("encodes");
        let seq = SequenceRef { frame_rate: 20.0, dim: 88, data: &frames };
        let mut decode = DecodeRoll::open(
            DecodeRollParams { lowest_pitch: 21, threshold: 0.15, min_duration_s: 0.1, program: 0 },
            &Context::default(),
        )
        .expect("opens");
        let got = decode.render(seq).expect("decodes");
        assert_eq!(got.notes.len(), 3, "{got:?}");
        for (g, w) in got.notes.iter().zip(&score.notes) {
            assert_eq!((g.pitch, g.velocity), (w.pitch, w.velocity));
            assert!(
                (g.onset_s - w.onset_s).abs() < 1e-6 && (g.duration_s - w.duration_s).abs() < 1e-6,
                "{g:?}"
            );
        }
        // With the one-frame note kept.
        decode.0.min_duration_s = 0.05;
        assert_eq!(decode.render(seq).expect("decodes").notes.len(), 4);
        // Below the threshold: silence; too many columns for the lowest pitch: an error.
        decode.0.threshold = 0.9;
        assert_eq!(decode.render(seq).expect("decodes").notes.len(), 1, "only the velocity-127 note");
        decode.0.lowest_pitch = 60;
        assert!(decode.render(seq).unwrap_err().to_string().contains("beyond MIDI pitch 127"));
    }
}
