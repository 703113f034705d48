//! The `loudness` encoder: a 10-dimensional descriptor of a score's dynamics and density.
//!
//! Levels are in dB relative to velocity 127 (`20 log10(velocity / 127)`, so velocity is treated
//! as amplitude, −42 dB at velocity 1), and each dimension is scaled to roughly unit range:
//!
//! | index | value |
//! |---|---|
//! | 0 | mean note level, weighted by duration, dB / 40 |
//! | 1 | standard deviation of note level (same weights), dB / 20 |
//! | 2 | quietest note level, dB / 40 |
//! | 3 | loudest note level, dB / 40 |
//! | 4 | note density: notes per second / 10 |
//! | 5 | onset density: distinct onset times (30 ms apart) per second / 10 |
//! | 6 | mean polyphony: summed note durations / span / 8 |
//! | 7 | accent contrast: mean absolute level change between successive onsets, dB / 20 |
//! | 8 | dynamic trend: least-squares slope of the onset level over the score (crescendo > 0), dB per score length / 40 |
//! | 9 | summed power level: `10 log10(Σ (velocity/127)² × duration / span)`, floored at −80 dB, / 40 |
//!
//! The span runs from the first onset to the last note end (at least 0.25 s). Rates and means
//! make scores of different lengths comparable; `louder` by g dB shifts dimensions 0, 2, 3 by
//! g / 40 and 9 by g / 40 (until velocities clamp). An empty score encodes as zeros.

use crate::score::{amplitude, extent, level_db, validate};
use commute_sdk::prelude::*;

/// Dimension of the descriptor.
pub const DIM: usize = 10;
/// Onsets closer than this are one onset (a chord), in seconds.
const ONSET_MERGE_S: f32 = 0.03;
/// Shortest span used for rates, in seconds.
const MIN_SPAN_S: f32 = 0.25;

/// The `loudness` encoder.
pub struct Loudness;

impl Function for Loudness {
    const DOC: &'static str =
        "10-dim dynamics descriptor: mean/std/min/max level in dB, note and onset density, polyphony, accents, trend, summed power.";
    type Params = NoParams;

    fn open(_: NoParams, _ctx: &Context) -> Result<Self> {
        Ok(Loudness)
    }
}

impl Encoder for Loudness {
    type Input<'a> = Score;

    fn dim(&self) -> usize {
        DIM
    }

    fn encode(&mut self, score: Score) -> Result<Vec<f32>> {
        validate(&score)?;
        let mut out = vec![0.0f32; DIM];
        if score.notes.is_empty() {
            return Ok(out);
        }
        let (start, end) = extent(&score);
        let span = f64::from((end - start).max(MIN_SPAN_S));
        let levels: Vec<f64> = score.notes.iter().map(|n| f64::from(level_db(n.velocity))).collect();
        let weights: Vec<f64> = score.notes.iter().map(|n| f64::from(n.duration_s.max(1e-3))).collect();
        let w_sum: f64 = weights.iter().sum();
        let mean = levels.iter().zip(&weights).map(|(l, w)| l * w).sum::<f64>() / w_sum;
        let var = levels.iter().zip(&weights).map(|(l, w)| w * (l - mean).powi(2)).sum::<f64>() / w_sum;
        out[0] = (mean / 40.0) as f32;
        out[1] = (var.sqrt() / 20.0) as f32;
        out[2] = (levels.iter().copied().fold(f64::INFINITY, f64::min) / 40.0) as f32;
        out[3] = (levels.iter().copied().fold(f64::NEG_INFINITY, f64::max) / 40.0) as f32;
        out[4] = (score.notes.len() as f64 / span / 10.0) as f32;

        // Onset groups: (time, loudest level in the group).
        let mut order: Vec<usize> = (0..score.notes.len()).collect();
        order.sort_by(|&a, &b| score.notes[a].onset_s.total_cmp(&score.notes[b].onset_s));
        let mut groups: Vec<(f64, f64)> = Vec::new();
        let mut group_start = f32::NEG_INFINITY;
        for &i in &order {
            let t = score.notes[i].onset_s;
            match groups.last_mut() {
                Some(g) if t - group_start < ONSET_MERGE_S => g.1 = g.1.max(levels[i]),
                _ => {
                    group_start = t;
                    groups.push((f64::from(t - start), levels[i]));
                }
            }
        }
        out[5] = (groups.len() as f64 / span / 10.0) as f32;
        out[6] = (score.notes.iter().map(|n| f64::from(n.duration_s)).sum::<f64>() / span / 8.0) as f32;
        if groups.len() > 1 {
            let contrast =
                groups.windows(2).map(|w| (w[1].1 - w[0].1).abs()).sum::<f64>() / (groups.len() - 1) as f64;
            out[7] = (contrast / 20.0) as f32;
            let n = groups.len() as f64;
            let mt = groups.iter().map(|g| g.0 / span).sum::<f64>() / n;
            let ml = groups.iter().map(|g| g.1).sum::<f64>() / n;
            let cov = groups.iter().map(|g| (g.0 / span - mt) * (g.1 - ml)).sum::<f64>();
            let var_t = groups.iter().map(|g| (g.0 / span - mt).powi(2)).sum::<f64>();
            if var_t > 1e-12 {
                out[8] = (cov / var_t / 40.0) as f32;
            }
        }
        let power = score
            .notes
            .iter()
            .map(|n| f64::from(amplitude(n.velocity)).powi(2) * f64::from(n.duration_s))
            .sum::<f64>()
            / span;
        out[9] = ((10.0 * power.max(1e-8).log10()).max(-80.0) / 40.0) as f32;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tests::note;

    fn encode(s: Score) -> Vec<f32> {
        Loudness.encode(s).expect("encodes")
    }

    #[test]
    fn known_values_for_a_steady_line() {
        // Four quarter notes at velocity 127, 0.5 s apart, 0.5 s long: 2 s span.
        let s = Score { notes: (0..4).map(|i| note(60 + i, i as f32 * 0.5, 0.5, 127, 0)).collect() };
        let v = encode(s);
        assert_eq!(&v[..4], &[0.0, 0.0, 0.0, 0.0]);
        assert!((v[4] - 0.2).abs() < 1e-6 && (v[5] - 0.2).abs() < 1e-6);
        assert!((v[6] - 1.0 / 8.0).abs() < 1e-6);
        assert_eq!(v[7], 0.0);
        assert_eq!(v[8], 0.0);
        assert!(v[9].abs() < 1e-6);
    }

    #[test]
    fn louder_shifts_levels_and_crescendo_has_positive_trend() {
        let quiet =
            Score { notes: (0..8).map(|i| note(60, i as f32 * 0.25, 0.25, 20 + 6 * i as u8, 0)).collect() };
        let loud =
            Score { notes: quiet.notes.iter().map(|n| Note { velocity: n.velocity * 2, ..*n }).collect() };
        let (a, b) = (encode(quiet), encode(loud));
        assert!(a[8] > 0.0, "crescendo trend {}", a[8]);
        for i in [0, 2, 3, 9] {
            assert!(((b[i] - a[i]) * 40.0 - 6.02).abs() < 0.05, "dim {i}: {} vs {}", a[i], b[i]);
        }
        assert!((a[1] - b[1]).abs() < 1e-5 && (a[8] - b[8]).abs() < 1e-5);
    }

    #[test]
    fn chords_are_one_onset_and_empty_is_zero() {
        let chord = Score { notes: [60, 64, 67].iter().map(|&p| note(p, 0.0, 1.0, 100, 0)).collect() };
        let v = encode(chord);
        assert!((v[4] - 0.3).abs() < 1e-6 && (v[5] - 0.1).abs() < 1e-6);
        assert!((v[6] - 3.0 / 8.0).abs() < 1e-6);
        assert_eq!(encode(Score::default()), vec![0.0; DIM]);
        assert!(encode(Score { notes: vec![note(60, 0.0, 0.0, 1, 0)] }).iter().all(|x| x.is_finite()));
    }
}
