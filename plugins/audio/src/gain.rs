//! The `gain` operator: multiplies every sample by `10^(db / 20)`.
//!
//! Results outside [−1, 1] are kept as they are (audio here is f32, so nothing is lost and a
//! later negative gain restores the original exactly up to rounding) unless `clip = true`, which
//! clamps them to [−1, 1] as a fixed-point converter would.

use crate::signal::{check_range, validate};
use commute_sdk::prelude::*;

/// Parameters of `gain`.
#[params]
#[derive(Debug, Clone)]
pub struct GainParams {
    /// Gain in dB (−120..=120; negative is quieter).
    pub db: f64,
    /// Clamp the result to [−1, 1]; by default samples beyond full scale are kept.
    #[serde(default)]
    pub clip: bool,
}

/// The `gain` operator.
pub struct Gain {
    factor: f32,
    clip: bool,
}

impl Function for Gain {
    const DOC: &'static str =
        "Multiplies samples by 10^(db/20); values beyond [-1, 1] are kept unless clip = true.";
    type Params = GainParams;

    fn open(p: GainParams, _ctx: &Context) -> Result<Self> {
        check_range("db", p.db, -120.0, 120.0)?;
        Ok(Gain { factor: 10f64.powf(p.db / 20.0) as f32, clip: p.clip })
    }
}

impl Operator for Gain {
    type Input<'a> = AudioRef<'a>;
    type Output = Audio;

    fn apply(&mut self, audio: AudioRef<'_>) -> Result<Audio> {
        validate(&audio)?;
        let samples = audio
            .samples
            .iter()
            .map(|&x| {
                let y = x * self.factor;
                if self.clip {
                    y.clamp(-1.0, 1.0)
                } else {
                    y
                }
            })
            .collect();
        Ok(Audio { sample_rate: audio.sample_rate, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gain(db: f64, clip: bool, samples: &[f32]) -> Vec<f32> {
        let mut g = Gain::open(GainParams { db, clip }, &Context::default()).expect("valid");
        g.apply(AudioRef { sample_rate: 8000, samples }).expect("applies").samples
    }

    #[test]
    fn gain_scales_and_clips_only_when_asked() {
        let x = [0.0, 0.25, -0.5, 0.8];
        let up = gain(6.0, false, &x);
        let factor = 10f32.powf(0.3);
        for (a, b) in x.iter().zip(&up) {
            assert!((a * factor - b).abs() < 1e-6);
        }
        assert!(up[3] > 1.5, "not clipped: {}", up[3]);
        assert_eq!(gain(6.0, true, &x)[3], 1.0);
        assert!((gain(6.0, true, &x)[2] + 0.5 * factor).abs() < 1e-6);
        let back = gain(-6.0, false, &up);
        assert!(back.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-6));
        assert_eq!(gain(0.0, false, &x), x);
        assert!(gain(-20.0, false, &[]).is_empty());
        for bad in [f64::NAN, 121.0, -200.0] {
            assert!(Gain::open(GainParams { db: bad, clip: false }, &Context::default()).is_err());
        }
    }
}
