//! The `pitch-shift` operator: raises or lowers pitch by a number of semitones and keeps the
//! duration (exactly: the output has as many samples as the input, at the same rate).
//!
//! # Method
//!
//! With `r = 2^(semitones / 12)`:
//! 1. Resample by `1 / r` with the windowed-sinc [`resample`](crate::resample): played at the
//!    original rate, every frequency is multiplied by `r` and the duration divided by `r`. For
//!    upward shifts the resampler's low-pass first removes what would land above 0.94 × Nyquist.
//! 2. Time-stretch back to the original length, keeping the new pitch, with
//!    - `method = "phase-vocoder"` (default; [`crate::vocoder`]): phase vocoder with
//!      identity phase locking, frames of `frame-s` = 93 ms (2048 samples at 22.05 kHz), 75 %
//!      overlap. Keeps every partial of chords and mixtures at its level; smears transients over
//!      about one frame and adds a little "phasiness" (a diffuse, slightly reverberant quality).
//!    - `method = "wsola"` ([`crate::wsola`]): waveform-similarity overlap-add, frames of
//!      `frame-s` = 46 ms, 50 % overlap, alignment search ±¼ frame. Clean and sharp on single
//!      voices, speech and steady tones; on chords no single alignment fits every partial, so
//!      some partials are attenuated and the sound gets rough at the frame rate.
//!
//! Both keep formants moving with the pitch (no formant correction: voices sound smaller or
//! larger). Samples are not clipped: the level stays about the same but peaks can exceed the
//! input's.

use crate::resample::resample;
use crate::signal::{check_range, validate};
use crate::{vocoder, wsola};
use commute_sdk::prelude::*;

/// The time-stretch algorithm that restores the duration.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Phase vocoder with identity phase locking: best for chords and mixtures.
    PhaseVocoder,
    /// Waveform-similarity overlap-add: best for single voices, speech and transients.
    Wsola,
}

/// Parameters of `pitch-shift`.
#[params]
#[derive(Debug, Clone)]
pub struct PitchShiftParams {
    /// Semitones to shift by (−24..=24, fractions allowed; positive is up).
    pub semitones: f64,
    /// Time-stretch algorithm: `phase-vocoder` (chords, mixtures) or `wsola` (single voices).
    #[serde(default = "default_method")]
    pub method: Method,
    /// Frame length in seconds (0.01–0.5); 0.093 for the phase vocoder and 0.046 for WSOLA when
    /// absent. Longer frames resolve lower pitches, shorter ones keep transients sharper.
    #[serde(default)]
    pub frame_s: Option<f64>,
}

fn default_method() -> Method {
    Method::PhaseVocoder
}

impl Method {
    /// Stretches `samples` (at `sample_rate`) to exactly `target` samples, keeping the pitch, with
    /// frames of `frame_s` seconds (when `None`: 0.093 for the phase vocoder, 0.046 for WSOLA).
    pub fn stretch(self, samples: &[f32], target: usize, sample_rate: u32, frame_s: Option<f64>) -> Vec<f32> {
        let frame_samples = |seconds: f64| 2 * ((seconds * f64::from(sample_rate) / 2.0).round() as usize);
        match self {
            Method::PhaseVocoder => {
                let frame = frame_samples(frame_s.unwrap_or(0.093)).max(16);
                vocoder::stretch(samples, target, frame)
            }
            Method::Wsola => {
                let frame = frame_samples(frame_s.unwrap_or(0.046)).max(4);
                wsola::stretch(samples, target, frame, frame / 4)
            }
        }
    }
}

/// The `pitch-shift` operator.
pub struct PitchShift(PitchShiftParams);

impl Function for PitchShift {
    const DOC: &'static str =
        "Shifts pitch by semitones keeping the duration: windowed-sinc resampling, then a phase-vocoder (or WSOLA) time-stretch back.";
    type Params = PitchShiftParams;

    fn open(p: PitchShiftParams, _ctx: &Context) -> Result<Self> {
        check_range("semitones", p.semitones, -24.0, 24.0)?;
        if let Some(frame_s) = p.frame_s {
            check_range("frame-s", frame_s, 0.01, 0.5)?;
        }
        Ok(PitchShift(p))
    }
}

impl Operator for PitchShift {
    type Input<'a> = AudioRef<'a>;
    type Output = Audio;

    fn apply(&mut self, audio: AudioRef<'_>) -> Result<Audio> {
        validate(&audio)?;
        if self.0.semitones == 0.0 || audio.samples.is_empty() {
            return Ok(audio.to_owned());
        }
        let ratio = 2f64.powf(self.0.semitones / 12.0);
        let faster = resample(audio.samples, 1.0 / ratio);
        let samples = self.0.method.stretch(&faster, audio.samples.len(), audio.sample_rate, self.0.frame_s);
        Ok(Audio { sample_rate: audio.sample_rate, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::tests::{chord, dominant_hz, rms, sine, tone_level};

    fn shift(semitones: f64, samples: &[f32], sample_rate: u32) -> Vec<f32> {
        shift_with(Method::PhaseVocoder, semitones, samples, sample_rate)
    }

    fn shift_with(method: Method, semitones: f64, samples: &[f32], sample_rate: u32) -> Vec<f32> {
        let p = PitchShiftParams { semitones, method, frame_s: None };
        let mut op = PitchShift::open(p, &Context::default()).expect("valid");
        let out = op.apply(AudioRef { sample_rate, samples }).expect("applies");
        assert_eq!(out.sample_rate, sample_rate);
        out.samples
    }

    #[test]
    fn a_440_hz_tone_moves_to_the_expected_frequency() {
        for (rate, semitones, expected) in [
            (22050, 12.0, 880.0),
            (22050, 2.0, 493.883),
            (22050, -12.0, 220.0),
            (16000, 7.0, 659.255),
            (44100, -5.0, 329.628),
            (22050, 0.5, 452.893),
        ] {
            for method in [Method::PhaseVocoder, Method::Wsola] {
                let x = sine(440.0, 0.5, rate, 1.0);
                let y = shift_with(method, semitones, &x, rate);
                assert_eq!(y.len(), x.len(), "duration kept");
                let hz = dominant_hz(&y, rate);
                let what = format!("{method:?} {semitones:+} at {rate} Hz");
                assert!((hz / expected - 1.0).abs() < 0.01, "{what}: {hz}, want {expected}");
                let level = 20.0 * (rms(&y) / rms(&x)).log10();
                assert!(level.abs() < 1.0, "{what}: level changed by {level} dB");
            }
        }
    }

    #[test]
    fn every_partial_of_a_chord_moves() {
        // A minor triad (A3 C4 E4) up a fourth is a D minor triad (D4 F4 A4).
        let x = chord(&[57, 60, 64], 22050, 1.0);
        let y = shift(5.0, &x, 22050);
        let reference = tone_level(&x, 22050, 220.0);
        for hz in [293.665, 349.228, 440.0] {
            let level = tone_level(&y, 22050, hz);
            assert!(level > 0.5 * reference, "{hz} Hz: {level} vs {reference}");
        }
        for hz in [220.0, 261.626, 329.628] {
            let level = tone_level(&y, 22050, hz);
            assert!(level < 0.05 * reference, "{hz} Hz left behind: {level} vs {reference}");
        }
    }

    #[test]
    fn edge_cases() {
        assert!(shift(3.0, &[], 22050).is_empty());
        assert_eq!(shift(3.0, &[0.5], 22050).len(), 1);
        assert_eq!(shift(-3.0, &[0.0; 4000], 8000), vec![0.0; 4000]);
        let x = sine(100.0, 0.3, 8000, 0.2);
        assert_eq!(shift(0.0, &x, 8000), x);
        for bad in [25.0, f64::NAN] {
            let p = PitchShiftParams { semitones: bad, method: Method::Wsola, frame_s: None };
            assert!(PitchShift::open(p, &Context::default()).is_err());
        }
        let p = PitchShiftParams { semitones: 1.0, method: Method::Wsola, frame_s: Some(1.0) };
        assert!(PitchShift::open(p, &Context::default()).is_err());
    }
}
