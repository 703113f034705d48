//! The `time-stretch` operator: plays audio faster or slower and keeps its pitch — a speaking
//! rate for speech, a tempo for music.
//!
//! With `rate` r the output lasts `round(n / r)` samples at the same sample rate (r = 1.25 is 25 %
//! faster, 0.8 slower), stretched by WSOLA (default: clean on single voices and speech; frames of
//! 46 ms, 50 % overlap, alignment search ±¼ frame; [`crate::wsola`]) or the phase vocoder (chords
//! and mixtures; frames of 93 ms; [`crate::vocoder`]), the algorithms `pitch-shift` uses to
//! restore a duration. Frequencies stay where they are; samples are not clipped.

use crate::pitch_shift::Method;
use crate::signal::{check_range, validate};
use commute_sdk::prelude::*;

/// Parameters of `time-stretch`.
#[params]
#[derive(Debug, Clone)]
pub struct TimeStretchParams {
    /// Speed factor (0.25–4): above 1 faster and shorter, below 1 slower and longer.
    pub rate: f64,
    /// `wsola` (speech, single voices; the default) or `phase-vocoder` (chords, mixtures).
    #[serde(default = "default_method")]
    pub method: Method,
    /// Frame length in seconds (0.01–0.5); 0.046 for WSOLA and 0.093 for the phase vocoder when
    /// absent.
    #[serde(default)]
    pub frame_s: Option<f64>,
}

fn default_method() -> Method {
    Method::Wsola
}

/// The `time-stretch` operator.
pub struct TimeStretch(TimeStretchParams);

impl Function for TimeStretch {
    const DOC: &'static str =
        "Plays audio faster or slower by a rate, keeping its pitch: WSOLA (speech) or a phase vocoder (chords).";
    type Params = TimeStretchParams;

    fn open(p: TimeStretchParams, _ctx: &Context) -> Result<Self> {
        check_range("rate", p.rate, 0.25, 4.0)?;
        if let Some(frame_s) = p.frame_s {
            check_range("frame-s", frame_s, 0.01, 0.5)?;
        }
        Ok(TimeStretch(p))
    }
}

impl Operator for TimeStretch {
    type Input<'a> = AudioRef<'a>;
    type Output = Audio;

    fn apply(&mut self, audio: AudioRef<'_>) -> Result<Audio> {
        validate(&audio)?;
        if self.0.rate == 1.0 || audio.samples.is_empty() {
            return Ok(audio.to_owned());
        }
        let target = ((audio.samples.len() as f64 / self.0.rate).round() as usize).max(1);
        let samples = self.0.method.stretch(audio.samples, target, audio.sample_rate, self.0.frame_s);
        Ok(Audio { sample_rate: audio.sample_rate, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::tests::{dominant_hz, rms, sine};

    fn stretch(method: Method, rate: f64, samples: &[f32], sample_rate: u32) -> Vec<f32> {
        let p = TimeStretchParams { rate, method, frame_s: None };
        let mut op = TimeStretch::open(p, &Context::default()).expect("valid");
        op.apply(AudioRef { sample_rate, samples }).expect("applies").samples
    }

    #[test]
    fn the_duration_changes_and_the_pitch_stays() {
        for (rate, sample_rate) in [(1.25, 22050), (0.8, 16000), (2.0, 22050), (0.5, 44100)] {
            for method in [Method::Wsola, Method::PhaseVocoder] {
                let x = sine(440.0, 0.5, sample_rate, 1.0);
                let y = stretch(method, rate, &x, sample_rate);
                assert_eq!(y.len(), (x.len() as f64 / rate).round() as usize, "{method:?} at rate {rate}");
                let hz = dominant_hz(&y, sample_rate);
                assert!((hz / 440.0 - 1.0).abs() < 0.005, "{method:?} at rate {rate}: {hz} Hz");
                let level = 20.0 * (rms(&y) / rms(&x)).log10();
                assert!(level.abs() < 1.0, "{method:?} at rate {rate}: level changed by {level} dB");
            }
        }
    }

    #[test]
    fn edge_cases() {
        let x = sine(100.0, 0.3, 8000, 0.2);
        assert_eq!(stretch(Method::Wsola, 1.0, &x, 8000), x);
        assert!(stretch(Method::Wsola, 2.0, &[], 8000).is_empty());
        assert_eq!(stretch(Method::Wsola, 2.0, &[0.0; 4000], 8000), vec![0.0; 2000]);
        for bad in [0.1, 5.0, f64::NAN] {
            let p = TimeStretchParams { rate: bad, method: Method::Wsola, frame_s: None };
            assert!(TimeStretch::open(p, &Context::default()).is_err(), "rate {bad}");
        }
    }
}
