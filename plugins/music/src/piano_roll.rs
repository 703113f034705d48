//! The `piano-roll` encoder: a time-pooled piano roll — how much each pitch sounds, weighted by
//! velocity — followed by pooled texture and register statistics.
//!
//! # Layout (dimension = number of pitches + 8)
//!
//! The score is cut into frames of `frame-s` seconds from its first onset to its last note end.
//! A note's activation in a frame is `velocity / 127 × the share of the frame it covers`;
//! overlapping notes of one pitch combine by maximum.
//!
//! | index | value |
//! |---|---|
//! | `0 .. P` | mean activation of pitch `lowest-pitch + i` over all frames (0–1) |
//! | `P + 0` | mean polyphony: sounding pitches per frame / 8 |
//! | `P + 1` | maximum polyphony / 16 |
//! | `P + 2` | share of frames where nothing sounds |
//! | `P + 3` | share of frames with three or more sounding pitches (chordal texture) |
//! | `P + 4` | mean pitch / 127, weighted by duration × velocity |
//! | `P + 5` | pitch standard deviation / 48, same weights |
//! | `P + 6` | lowest pitch / 127 |
//! | `P + 7` | highest pitch / 127 |
//!
//! Every value is a mean over frames or a ratio, so scores of different lengths are comparable
//! (and `tempo` leaves the vector unchanged up to frame rounding). Statistics cover all notes;
//! the per-pitch block covers `lowest-pitch ..= highest-pitch`. An empty score encodes as zeros.
//!
//! # Frames (`pooling = "none"`)
//!
//! The roll itself, one frame of `highest-pitch - lowest-pitch + 1` activations every `frame-s`
//! seconds, frame 0 starting at the score's time 0 (not its first onset), so that frame `t` is
//! the same instant as frame `t · rate / 1/frame-s` of audio rendered from the score. A score is
//! `⌈end / frame-s⌉` frames long (one silent frame when empty).

use crate::score::{amplitude, extent, validate};
use commute_sdk::prelude::*;

/// Parameters of `piano-roll`.
#[params]
#[derive(Debug, Clone)]
pub struct PianoRollParams {
    /// Frame length in seconds (0.001–10).
    #[serde(default = "default_frame_s")]
    pub frame_s: f64,
    /// Lowest pitch with its own dimension (0–127).
    #[serde(default)]
    #[schemars(range(max = 127))]
    pub lowest_pitch: u8,
    /// Highest pitch with its own dimension (0–127, at least `lowest-pitch`).
    #[serde(default = "default_highest_pitch")]
    #[schemars(range(max = 127))]
    pub highest_pitch: u8,
    /// `mean`: one vector, the mean roll and its statistics; `none`: the roll's frames.
    #[serde(default)]
    pub pooling: RollPooling,
}

/// How `piano-roll` pools its frames.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RollPooling {
    /// The mean activation per pitch and 8 statistics.
    #[default]
    Mean,
    /// Every frame, kept on the time axis.
    None,
}

fn default_frame_s() -> f64 {
    0.05
}
fn default_highest_pitch() -> u8 {
    127
}

/// Number of pooled statistics after the per-pitch block.
pub const STATS: usize = 8;
/// The most frames one score may span (at the default 50 ms frames, about 14 hours).
const MAX_FRAMES: usize = 1 << 20;

/// The `piano-roll` encoder.
pub struct PianoRoll(PianoRollParams);

impl Function for PianoRoll {
    const DOC: &'static str =
        "Time-pooled piano roll: velocity-weighted sounding share per pitch plus 8 polyphony and register statistics.";
    type Params = PianoRollParams;

    fn open(p: PianoRollParams, _ctx: &Context) -> Result<Self> {
        ensure!(
            (0.001..=10.0).contains(&p.frame_s),
            "frame-s must be within 0.001..=10 s, got {}",
            p.frame_s
        );
        ensure!(p.highest_pitch <= 127, "highest-pitch must be at most 127, got {}", p.highest_pitch);
        ensure!(
            p.lowest_pitch <= p.highest_pitch,
            "lowest-pitch ({}) must not be above highest-pitch ({})",
            p.lowest_pitch,
            p.highest_pitch
        );
        Ok(PianoRoll(p))
    }
}

impl PianoRoll {
    fn pitches(&self) -> usize {
        usize::from(self.0.highest_pitch - self.0.lowest_pitch) + 1
    }
}

impl PianoRoll {
    /// The roll's frames from time 0, `pitches()` activations each.
    fn frames(&self, score: &Score) -> Result<Vec<f32>> {
        let frame = self.0.frame_s;
        let end = f64::from(score.duration_s());
        let frames_f = (end / frame).ceil().max(1.0);
        ensure!(
            frames_f <= MAX_FRAMES as f64,
            "the score lasts {end:.1} s, more than {MAX_FRAMES} frames of {frame} s; raise frame-s"
        );
        let (frames, p) = (frames_f as usize, self.pitches());
        let lowest = self.0.lowest_pitch;
        let mut out = vec![0.0f32; frames * p];
        for n in score.notes.iter().filter(|n| (lowest..=self.0.highest_pitch).contains(&n.pitch)) {
            let (a, b) = (f64::from(n.onset_s) / frame, f64::from(n.end_s()) / frame);
            let (first, last) = ((a.floor() as usize).min(frames), (b.ceil() as usize).min(frames));
            let amp = amplitude(n.velocity);
            let k = usize::from(n.pitch - lowest);
            for t in first..last {
                let covered = (b.min(t as f64 + 1.0) - a.max(t as f64)).max(0.0) as f32;
                let cell = &mut out[t * p + k];
                *cell = cell.max(covered * amp);
            }
        }
        Ok(out)
    }
}

impl Encoder for PianoRoll {
    type Input<'a> = Score;

    fn dim(&self) -> usize {
        match self.0.pooling {
            RollPooling::Mean => self.pitches() + STATS,
            RollPooling::None => self.pitches(),
        }
    }

    fn frame_rate(&self) -> Option<f64> {
        (self.0.pooling == RollPooling::None).then(|| 1.0 / self.0.frame_s)
    }

    fn encode(&mut self, score: Score) -> Result<Vec<f32>> {
        validate(&score)?;
        if self.0.pooling == RollPooling::None {
            return self.frames(&score);
        }
        let mut out = vec![0.0f32; self.dim()];
        if score.notes.is_empty() {
            return Ok(out);
        }
        let frame = self.0.frame_s as f32;
        let (start, end) = extent(&score);
        let frames_f = ((end - start) / frame).ceil().max(1.0);
        ensure!(
            frames_f <= MAX_FRAMES as f32,
            "the score spans {:.1} s, more than {MAX_FRAMES} frames of {frame} s; raise frame-s",
            end - start
        );
        let frames = frames_f as usize;

        // Notes grouped by pitch.
        let mut by_pitch: Vec<Vec<&Note>> = vec![Vec::new(); 128];
        for n in &score.notes {
            by_pitch[usize::from(n.pitch)].push(n);
        }
        let mut activation = vec![0.0f32; frames];
        let mut polyphony = vec![0u8; frames];
        for (pitch, notes) in by_pitch.iter().enumerate() {
            if notes.is_empty() {
                continue;
            }
            let (mut lo, mut hi) = (frames, 0usize);
            for n in notes {
                let a = (n.onset_s - start) / frame;
                let b = (n.end_s() - start) / frame;
                let first = (a.floor() as usize).min(frames);
                let last = (b.ceil() as usize).min(frames);
                let amp = amplitude(n.velocity);
                for (t, act) in activation.iter_mut().enumerate().take(last).skip(first) {
                    let covered = (b.min(t as f32 + 1.0) - a.max(t as f32)).max(0.0);
                    *act = act.max(covered * amp);
                }
                lo = lo.min(first);
                hi = hi.max(last);
            }
            let mut sum = 0.0f64;
            for (act, poly) in activation[lo..hi].iter_mut().zip(&mut polyphony[lo..hi]) {
                if *act > 0.0 {
                    sum += f64::from(*act);
                    *poly = poly.saturating_add(1);
                    *act = 0.0;
                }
            }
            if (usize::from(self.0.lowest_pitch)..=usize::from(self.0.highest_pitch)).contains(&pitch) {
                out[pitch - usize::from(self.0.lowest_pitch)] = (sum / frames as f64) as f32;
            }
        }

        let p = self.pitches();
        let n = frames as f32;
        out[p] = polyphony.iter().map(|&k| f32::from(k)).sum::<f32>() / n / 8.0;
        out[p + 1] = f32::from(polyphony.iter().copied().max().unwrap_or(0)) / 16.0;
        out[p + 2] = polyphony.iter().filter(|&&k| k == 0).count() as f32 / n;
        out[p + 3] = polyphony.iter().filter(|&&k| k >= 3).count() as f32 / n;
        let (mut w_sum, mut mean) = (0.0f64, 0.0f64);
        for note in &score.notes {
            let w = f64::from(note.duration_s.max(1e-3) * amplitude(note.velocity.max(1)));
            w_sum += w;
            mean += w * f64::from(note.pitch);
        }
        mean /= w_sum;
        let var = score
            .notes
            .iter()
            .map(|note| {
                let w = f64::from(note.duration_s.max(1e-3) * amplitude(note.velocity.max(1)));
                w * (f64::from(note.pitch) - mean).powi(2)
            })
            .sum::<f64>()
            / w_sum;
        out[p + 4] = (mean / 127.0) as f32;
        out[p + 5] = (var.sqrt() / 48.0) as f32;
        out[p + 6] = f32::from(score.notes.iter().map(|n| n.pitch).min().unwrap_or(0)) / 127.0;
        out[p + 7] = f32::from(score.notes.iter().map(|n| n.pitch).max().unwrap_or(0)) / 127.0;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tests::note;

    fn encoder(frame_s: f64, lowest_pitch: u8, highest_pitch: u8) -> PianoRoll {
        PianoRoll::open(
            PianoRollParams { frame_s, lowest_pitch, highest_pitch, pooling: RollPooling::Mean },
            &Context::default(),
        )
        .expect("valid")
    }

    #[test]
    fn one_note_fills_its_pitch() {
        let mut e = encoder(0.05, 0, 127);
        assert_eq!(e.dim(), 136);
        let v = e.encode(Score { notes: vec![note(60, 1.0, 2.0, 127, 0)] }).expect("encodes");
        assert!((v[60] - 1.0).abs() < 1e-5);
        assert_eq!(v.iter().take(128).filter(|&&x| x > 0.0).count(), 1);
        assert!((v[128] - 1.0 / 8.0).abs() < 1e-5);
        assert_eq!(v[130], 0.0);
        assert!((v[132] - 60.0 / 127.0).abs() < 1e-5 && v[133].abs() < 1e-6);
    }

    #[test]
    fn velocity_and_time_share_weight_the_pitches() {
        let mut e = encoder(0.1, 0, 127);
        // C4 at velocity 127 for the whole second, E4 at half velocity for its first half.
        let v = e
            .encode(Score { notes: vec![note(60, 0.0, 1.0, 127, 0), note(64, 0.0, 0.5, 127 / 2, 0)] })
            .expect("encodes");
        assert!((v[60] - 1.0).abs() < 1e-5);
        assert!((v[64] - 0.25).abs() < 0.01, "{}", v[64]);
        assert!((v[128] - 1.5 / 8.0).abs() < 1e-5);
    }

    #[test]
    fn length_invariant_and_transposition_shifts() {
        let mut e = encoder(0.05, 0, 127);
        let s = Score { notes: vec![note(60, 0.0, 0.5, 90, 0), note(67, 0.5, 0.5, 70, 0)] };
        let slow = Score {
            notes: s
                .notes
                .iter()
                .map(|n| Note { onset_s: n.onset_s * 2.0, duration_s: n.duration_s * 2.0, ..*n })
                .collect(),
        };
        let a = e.encode(s.clone()).expect("encodes");
        let b = e.encode(slow).expect("encodes");
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
        let up = Score { notes: s.notes.iter().map(|n| Note { pitch: n.pitch + 2, ..*n }).collect() };
        let c = e.encode(up).expect("encodes");
        assert!((a[60] - c[62]).abs() < 1e-6 && (a[67] - c[69]).abs() < 1e-6);
    }

    #[test]
    fn pitch_range_and_edge_cases() {
        let mut e = encoder(0.05, 21, 108);
        assert_eq!(e.dim(), 88 + STATS);
        let v = e
            .encode(Score { notes: vec![note(21, 0.0, 1.0, 127, 0), note(120, 0.0, 1.0, 127, 0)] })
            .expect("ok");
        assert!((v[0] - 1.0).abs() < 1e-5);
        assert!((v[88 + 7] - 120.0 / 127.0).abs() < 1e-6);
        assert!(e.encode(Score::default()).expect("ok").iter().all(|&x| x == 0.0));
        let zero = e.encode(Score { notes: vec![note(60, 1.0, 0.0, 80, 0)] }).expect("ok");
        assert!(zero.iter().all(|x| x.is_finite()));
        assert!(e.encode(Score { notes: vec![note(60, 0.0, 1e9, 80, 0)] }).is_err());
        assert!(PianoRoll::open(
            PianoRollParams {
                frame_s: 0.05,
                lowest_pitch: 90,
                highest_pitch: 80,
                pooling: RollPooling::Mean
            },
            &Context::default()
        )
        .is_err());
    }

    #[test]
    fn frames_start_at_time_zero_and_weigh_each_frame_by_its_covered_share() {
        let mut e = PianoRoll::open(
            PianoRollParams { frame_s: 0.1, lowest_pitch: 60, highest_pitch: 71, pooling: RollPooling::None },
            &Context::default(),
        )
        .expect("opens");
        assert_eq!((e.dim(), e.frame_rate()), (12, Some(10.0)));
        // C4 (full velocity) from 0.25 s to 0.5 s; G4 (half) from 0.3 s to 0.35 s; C2 out of range.
        let score = Score {
            notes: vec![
                note(60, 0.25, 0.25, 127, 0),
                note(67, 0.3, 0.05, 127 / 2, 0),
                note(36, 0.0, 0.2, 127, 0),
            ],
        };
        let f = e.encode(score).expect("encodes");
        assert_eq!(f.len(), 5 * 12, "⌈0.5 / 0.1⌉ frames from time 0");
        let at = |t: usize, pitch: usize| f[t * 12 + pitch - 60];
        assert_eq!((at(0, 60), at(1, 60)), (0.0, 0.0));
        assert!((at(2, 60) - 0.5).abs() < 1e-5, "half of frame 2 sounds: {}", at(2, 60));
        assert!((at(3, 60) - 1.0).abs() < 1e-5 && (at(4, 60) - 1.0).abs() < 1e-5);
        let half = amplitude(127 / 2);
        assert!((at(3, 67) - 0.5 * half).abs() < 1e-5, "{}", at(3, 67));
        assert_eq!(f.iter().filter(|&&x| x > 0.0).count(), 4);
        // The mean of the frames is the pooled encoder's per-pitch block.
        let pooled =
            encoder(0.1, 60, 71).encode(Score { notes: vec![note(60, 0.0, 0.5, 127, 0)] }).expect("ok");
        let frames = e.encode(Score { notes: vec![note(60, 0.0, 0.5, 127, 0)] }).expect("ok");
        let mean = frames.chunks(12).map(|fr| fr[0]).sum::<f32>() / 5.0;
        assert!((mean - pooled[0]).abs() < 1e-5);
        // An empty score is one silent frame; transposition moves activations by the interval.
        assert_eq!(e.encode(Score::default()).expect("ok"), vec![0.0; 12]);
        let up = e.encode(Score { notes: vec![note(62, 0.0, 0.5, 127, 0)] }).expect("ok");
        assert!(up.chunks(12).zip(frames.chunks(12)).all(|(u, f)| u[2] == f[0]));
    }
}
