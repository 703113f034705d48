//! The `loudness` encoder: an 11-dimensional level descriptor in dB full scale (dBFS, where a
//! full-scale square wave is 0 dB and a full-scale sine −3 dB), without frequency weighting.
//!
//! The signal is cut into frames of `frame-s` (default 50 ms) every `hop-s` (25 ms); audio shorter
//! than a frame is one frame. Each frame's level is `20 log10(RMS)`; every level is floored at
//! −100 dBFS so that silence stays finite. Frames at or above `silence-db` (default −60 dBFS) are
//! *active*: dims 0–4 describe the active frames only (so pauses do not drag the level down), and
//! dim 10 counts the others.
//!
//! | index | value |
//! |---|---|
//! | 0 | mean level of the active frames, dBFS |
//! | 1 | standard deviation of the active frames' levels, dB |
//! | 2 | 10th percentile of the active frames' levels, dBFS |
//! | 3 | median level of the active frames, dBFS |
//! | 4 | 90th percentile of the active frames' levels, dBFS |
//! | 5 | peak level: `20 log10(max |x|)`, dBFS |
//! | 6 | overall level: `20 log10(RMS of the whole item)`, dBFS |
//! | 7 | crest factor: peak − overall level, dB |
//! | 8 | gated level (a loudness proxy in the manner of ITU-R BS.1770 gating, but unweighted): the power mean of the frames above −70 dBFS and no more than 10 dB below the power mean of those, dBFS |
//! | 9 | level range: 95th − 10th percentile of the frames that pass the gates of dim 8, dB |
//! | 10 | silence ratio: share of frames below `silence-db` (default −60 dBFS), 0–1 |
//!
//! A gain of g dB (with nothing clipped and no frame crossing `silence-db` or the gates) adds g
//! to dims 0, 2, 3, 4, 5, 6 and 8 and leaves 1, 7, 9 and 10 unchanged. Percentiles interpolate
//! linearly between sorted levels. Without active frames (silence, empty audio) dims 0–4 are
//! −100 and 0; empty audio gives −100 for every level, 0 for the differences and a silence ratio
//! of 1.

use crate::signal::{check_range, power_db, validate, FLOOR_DB};
use commute_sdk::prelude::*;

/// Dimension of the descriptor.
pub const DIM: usize = 11;
/// Absolute gate of dim 8, dBFS.
const ABSOLUTE_GATE_DB: f64 = -70.0;
/// Relative gate of dim 8, dB below the power mean of the frames above the absolute gate.
const RELATIVE_GATE_DB: f64 = -10.0;

/// Parameters of `loudness`.
#[params]
#[derive(Debug, Clone)]
pub struct LoudnessParams {
    /// Frame length in seconds (0.001–10).
    #[serde(default = "default_frame_s")]
    pub frame_s: f64,
    /// Hop between frames in seconds (0.001..=frame-s).
    #[serde(default = "default_hop_s")]
    pub hop_s: f64,
    /// Frames quieter than this (dBFS, −100..=0) count as silent in dim 10.
    #[serde(default = "default_silence_db")]
    pub silence_db: f64,
}

impl Default for LoudnessParams {
    fn default() -> Self {
        LoudnessParams {
            frame_s: default_frame_s(),
            hop_s: default_hop_s(),
            silence_db: default_silence_db(),
        }
    }
}

fn default_frame_s() -> f64 {
    0.05
}
fn default_hop_s() -> f64 {
    0.025
}
fn default_silence_db() -> f64 {
    -60.0
}

/// The `loudness` encoder.
pub struct Loudness(LoudnessParams);

impl Function for Loudness {
    const DOC: &'static str = "11-dim level descriptor in dBFS: frame level mean/std/p10/p50/p90, peak, overall RMS, crest factor, gated level, level range, silence ratio.";
    type Params = LoudnessParams;

    fn open(p: LoudnessParams, _ctx: &Context) -> Result<Self> {
        check_range("frame-s", p.frame_s, 0.001, 10.0)?;
        check_range("hop-s", p.hop_s, 0.001, p.frame_s)?;
        check_range("silence-db", p.silence_db, FLOOR_DB, 0.0)?;
        Ok(Loudness(p))
    }
}

/// The `q`-quantile (0–1) of sorted values, interpolating linearly; the floor when empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => FLOOR_DB,
        n => {
            let pos = q * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// Mean power of `x` (0 when empty).
fn mean_power(x: &[f32]) -> f64 {
    if x.is_empty() {
        0.0
    } else {
        x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64
    }
}

impl Encoder for Loudness {
    type Input<'a> = AudioRef<'a>;

    fn dim(&self) -> usize {
        DIM
    }

    fn encode(&mut self, audio: AudioRef<'_>) -> Result<Vec<f32>> {
        validate(&audio)?;
        let x = audio.samples;
        let rate = f64::from(audio.sample_rate);
        let frame = ((self.0.frame_s * rate).round() as usize).max(1);
        let hop = ((self.0.hop_s * rate).round() as usize).clamp(1, frame);

        // Frame powers: full frames from the start; one (shorter) frame when the item is short.
        let powers: Vec<f64> = if x.len() <= frame {
            vec![mean_power(x)]
        } else {
            (0..=(x.len() - frame) / hop).map(|i| mean_power(&x[i * hop..i * hop + frame])).collect()
        };
        let all = powers.len() as f64;
        let mut levels: Vec<f64> =
            powers.iter().map(|&p| power_db(p)).filter(|&l| l >= self.0.silence_db).collect();
        let silent = (all - levels.len() as f64) / all;
        let (mean, std) = if levels.is_empty() {
            (FLOOR_DB, 0.0)
        } else {
            let count = levels.len() as f64;
            let mean = levels.iter().sum::<f64>() / count;
            (mean, (levels.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / count).sqrt())
        };
        levels.sort_by(f64::total_cmp);

        let peak = x.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
        let peak_db = power_db(peak * peak);
        let overall_db = power_db(mean_power(x));

        // Gating: absolute, then relative to the power mean of what passed.
        let loud: Vec<f64> = powers.iter().copied().filter(|&p| power_db(p) > ABSOLUTE_GATE_DB).collect();
        let (gated_db, range_db) = if loud.is_empty() {
            (FLOOR_DB, 0.0)
        } else {
            let threshold = power_db(loud.iter().sum::<f64>() / loud.len() as f64) + RELATIVE_GATE_DB;
            let kept: Vec<f64> = loud.into_iter().filter(|&p| power_db(p) >= threshold).collect();
            let gated = power_db(kept.iter().sum::<f64>() / kept.len().max(1) as f64);
            let mut kept_db: Vec<f64> = kept.iter().map(|&p| power_db(p)).collect();
            kept_db.sort_by(f64::total_cmp);
            (gated, percentile(&kept_db, 0.95) - percentile(&kept_db, 0.10))
        };

        let out = [
            mean,
            std,
            percentile(&levels, 0.10),
            percentile(&levels, 0.50),
            percentile(&levels, 0.90),
            peak_db,
            overall_db,
            peak_db - overall_db,
            gated_db,
            range_db,
            silent,
        ];
        Ok(out.iter().map(|&v| v as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::tests::{chord, sine};

    fn encode(samples: &[f32], sample_rate: u32) -> Vec<f32> {
        let mut l = Loudness::open(LoudnessParams::default(), &Context::default()).expect("valid");
        l.encode(AudioRef { sample_rate, samples }).expect("encodes")
    }

    #[test]
    fn a_steady_sine_has_known_levels() {
        let d = encode(&sine(1000.0, 0.5, 16000, 1.0), 16000);
        let sine_db = 20.0 * (0.5f32 / 2f32.sqrt()).log10(); // −9.03 dBFS
        for i in [0, 2, 3, 4, 6, 8] {
            assert!((d[i] - sine_db).abs() < 0.05, "dim {i}: {} vs {sine_db}", d[i]);
        }
        assert!(d[1] < 0.05 && d[9] < 0.05 && d[10] == 0.0, "{d:?}");
        assert!((d[5] - 20.0 * 0.5f32.log10()).abs() < 0.01);
        assert!((d[7] - 3.01).abs() < 0.02, "crest {}", d[7]);
    }

    #[test]
    fn six_db_of_gain_shifts_the_level_dims_by_six() {
        // Notes with silence between them: the descriptor varies over time.
        let mut x = chord(&[60, 64, 67], 22050, 0.5);
        x.extend(vec![0.0; 5000]);
        x.extend(chord(&[62, 65], 22050, 0.7).iter().map(|v| v * 0.3));
        let g = 10f32.powf(6.0 / 20.0);
        let y: Vec<f32> = x.iter().map(|v| v * g).collect();
        let (a, b) = (encode(&x, 22050), encode(&y, 22050));
        for i in [0, 2, 3, 4, 5, 6, 8] {
            assert!((b[i] - a[i] - 6.0).abs() < 0.1, "dim {i}: {} -> {}", a[i], b[i]);
        }
        for i in [1, 7, 9, 10] {
            assert!((b[i] - a[i]).abs() < 0.1, "dim {i}: {} -> {}", a[i], b[i]);
        }
        assert!(a[10] > 0.1 && a[10] < 0.2, "silence ratio {}", a[10]);
        assert!(a[1] > 3.0, "std {}", a[1]);
    }

    #[test]
    fn pauses_count_as_silence_not_as_level() {
        let mut x = sine(440.0, 0.5, 8000, 1.0);
        let steady = encode(&x, 8000);
        x.extend(vec![0.0; 8000]);
        let paused = encode(&x, 8000);
        // Only the one frame straddling the end of the tone differs.
        for i in [0, 2, 3, 4] {
            assert!((paused[i] - steady[i]).abs() < 0.15, "dim {i}: {} vs {}", paused[i], steady[i]);
        }
        assert!(paused[1] < 1.0, "std {}", paused[1]);
        assert!((paused[10] - 0.5).abs() < 0.03, "silence {}", paused[10]);
    }

    #[test]
    fn gating_ignores_silence_and_quiet_passages() {
        let mut x = sine(440.0, 0.5, 8000, 1.0);
        x.extend(vec![0.0; 8000]);
        x.extend(sine(440.0, 0.005, 8000, 1.0)); // 40 dB down: below the relative gate
        let d = encode(&x, 8000);
        assert!((d[8] - (-9.03)).abs() < 0.1, "gated {}", d[8]);
        assert!(d[6] < d[8] - 4.0, "overall {}", d[6]);
        assert!((d[10] - 1.0 / 3.0).abs() < 0.03, "silence {}", d[10]);
    }

    #[test]
    fn empty_and_tiny_inputs_are_finite() {
        let empty = encode(&[], 22050);
        assert_eq!(empty, [-100.0, 0.0, -100.0, -100.0, -100.0, -100.0, -100.0, 0.0, -100.0, 0.0, 1.0]);
        let one = encode(&[0.5], 22050);
        assert!(one.iter().all(|v| v.is_finite()));
        assert!((one[5] - one[6]).abs() < 1e-6);
        assert!(encode(&[0.0; 4000], 8000).iter().all(|v| v.is_finite()));
        let bad = LoudnessParams { hop_s: 0.1, ..LoudnessParams::default() };
        assert!(Loudness::open(bad, &Context::default()).is_err());
    }
}
