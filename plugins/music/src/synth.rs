//! The `synth` renderer: score → mono audio with band-limited wavetable voices per General MIDI
//! program family, ADSR envelopes, velocity-proportional amplitude, full polyphony, a release tail
//! and a fixed master gain with a soft limiter (no per-item normalisation).
//!
//! # Signal path
//!
//! Each note plays the [`Voice`](crate::voice::Voice) of its program family
//! ([`voice_index`]): a wavetable oscillator (2048-sample single cycles, linear interpolation, one
//! table set per octave so no harmonic exceeds 0.48 × the sample rate) crossfading from a bright
//! attack spectrum into a mellower body, shaped by the voice's ADSR, ring-out and vibrato. Its
//! amplitude is `gain × voice trim × velocity / 127`, so velocity is proportional to amplitude and
//! `louder { db = 6 }` makes the audio 6 dB louder. All notes are summed; samples whose magnitude
//! exceeds 0.9 pass through a tanh knee that keeps them within [−1, 1]. Quiet material is never
//! rescaled, so loudness edits survive rendering. Notes whose fundamental is above the Nyquist
//! frequency are silent. The output lasts until the last note ends plus `tail-s`.
//! Rendering is deterministic: every oscillator starts at phase 0 and nothing is random.

use crate::envelope::{decay_factor, NoteEnvelope};
use crate::score::{amplitude, validate};
use crate::voice::{voice_index, Spectrum, VOICES};
use commute_sdk::prelude::*;

/// Parameters of `synth`.
#[params]
#[derive(Debug, Clone)]
pub struct SynthParams {
    /// Output sample rate in Hz (8000–192000).
    #[serde(default = "default_sample_rate")]
    #[schemars(range(min = 8000, max = 192_000))]
    pub sample_rate: u32,
    /// Seconds of audio kept after the last note ends, for release tails (0–30).
    #[serde(default = "default_tail_s")]
    #[schemars(range(min = 0.0, max = 30.0))]
    pub tail_s: f64,
    /// Master gain: the peak amplitude of one full-velocity note before the limiter (0–4). Fixed
    /// for every item, so relative loudness between scores is preserved.
    #[serde(default = "default_gain")]
    #[schemars(range(max = 4.0), extend("exclusiveMinimum" = 0.0))]
    pub gain: f64,
    /// Longest output accepted, in seconds; longer scores are an error instead of a huge buffer.
    #[serde(default = "default_max_duration_s")]
    #[schemars(range(max = 86_400.0), extend("exclusiveMinimum" = 0.0))]
    pub max_duration_s: f64,
}

fn default_sample_rate() -> u32 {
    22050
}
fn default_tail_s() -> f64 {
    1.0
}
fn default_gain() -> f64 {
    0.25
}
fn default_max_duration_s() -> f64 {
    600.0
}

/// Samples per wavetable cycle.
const TABLE_LEN: usize = 2048;
/// One wavetable set per octave of MIDI pitch (0–11, 12–23, … 120–127).
const BANDS: usize = 11;
/// Highest harmonic frequency kept, as a share of the sample rate.
const BAND_LIMIT: f32 = 0.48;
/// Samples per control block (vibrato is updated once per block).
const BLOCK: usize = 32;
/// Level above which the limiter's tanh knee starts.
const KNEE: f32 = 0.9;

/// The bright and body wavetables of one voice in one octave band (`TABLE_LEN + 1` samples each,
/// the last repeating the first for interpolation); `None` when no harmonic fits below Nyquist.
type Tables = Option<(Vec<f32>, Vec<f32>)>;

/// The `synth` renderer.
pub struct Synth {
    params: SynthParams,
    /// Wavetables built on first use, indexed by `voice * BANDS + band`.
    tables: Vec<Option<Tables>>,
}

impl Function for Synth {
    const DOC: &'static str =
        "Renders a score to mono audio with wavetable voices per General MIDI program family (fixed gain, no per-item normalisation).";
    type Params = SynthParams;

    fn open(params: SynthParams, _ctx: &Context) -> Result<Self> {
        ensure!(
            (8000..=192_000).contains(&params.sample_rate),
            "sample-rate must be within 8000..=192000 Hz, got {}",
            params.sample_rate
        );
        ensure!(
            (0.0..=30.0).contains(&params.tail_s),
            "tail-s must be within 0..=30 s, got {}",
            params.tail_s
        );
        ensure!(params.gain > 0.0 && params.gain <= 4.0, "gain must be within (0, 4], got {}", params.gain);
        ensure!(
            params.max_duration_s > 0.0 && params.max_duration_s <= 86_400.0,
            "max-duration-s must be within (0, 86400] s, got {}",
            params.max_duration_s
        );
        Ok(Synth { params, tables: vec![None; VOICES.len() * BANDS] })
    }
}

impl Render for Synth {
    type Input<'a> = Score;
    type Output = Audio;

    fn render(&mut self, score: Score) -> Result<Audio> {
        validate(&score)?;
        let sr = self.params.sample_rate as f32;
        let seconds = f64::from(score.duration_s()) + self.params.tail_s;
        ensure!(
            seconds <= self.params.max_duration_s,
            "the score lasts {:.1} s with its tail, longer than max-duration-s = {} s",
            seconds,
            self.params.max_duration_s
        );
        let mut samples = vec![0.0f32; (seconds * f64::from(sr)).ceil() as usize];
        for note in &score.notes {
            self.add_note(note, &mut samples);
        }
        for s in &mut samples {
            *s = soft_limit(*s);
        }
        Ok(Audio { sample_rate: self.params.sample_rate, samples })
    }
}

impl Synth {
    /// Mixes one note into `out`.
    fn add_note(&mut self, note: &Note, out: &mut [f32]) {
        let sr = self.params.sample_rate as f32;
        let start = (note.onset_s * sr).round() as usize;
        if start >= out.len() || note.velocity == 0 {
            return;
        }
        let vi = voice_index(note.program);
        let voice = VOICES[vi];
        let band = usize::from(note.pitch / 12).min(BANDS - 1);
        let amp = self.params.gain as f32 * voice.gain * amplitude(note.velocity);
        let Some((bright, body)) = self.tables(vi, band) else {
            return;
        };

        let f0 = midi_hz(f32::from(note.pitch));
        let inc0 = f0 * TABLE_LEN as f32 / sr;
        let env = NoteEnvelope::new(&voice.adsr, note.duration_s, sr);
        let len = env.samples().min(out.len() - start);
        let out = &mut out[start..start + len];

        let ring_tau =
            voice.ring_tau_s.map_or(0.0, |tau| tau * (-(f32::from(note.pitch) - 60.0) / 24.0).exp2());
        let ring = decay_factor(ring_tau, sr);
        let mut ring_level = 1.0f32;
        let (mut mix, mix_decay) = if voice.brightness_tau_s > 0.0 {
            (1.0f32, decay_factor(voice.brightness_tau_s, sr))
        } else {
            (0.0, 1.0)
        };

        let mut phase = 0.0f32;
        let table_len = TABLE_LEN as f32;
        for (b, chunk) in out.chunks_mut(BLOCK).enumerate() {
            let first = b * BLOCK;
            let inc = match voice.vibrato {
                Some(v) => {
                    let t = first as f32 / sr;
                    let fade = if v.delay_s > 0.0 { (t / v.delay_s).min(1.0) } else { 1.0 };
                    let cents = v.depth_cents * fade * (std::f32::consts::TAU * v.rate_hz * t).sin();
                    inc0 * (cents / 1200.0).exp2()
                }
                None => inc0,
            };
            for (k, sample) in chunk.iter_mut().enumerate() {
                let i = phase as usize;
                let frac = phase - i as f32;
                let (b0, b1) = (bright[i], bright[i + 1]);
                let (d0, d1) = (body[i], body[i + 1]);
                let bright_v = b0 + frac * (b1 - b0);
                let body_v = d0 + frac * (d1 - d0);
                let wave = body_v + mix * (bright_v - body_v);
                *sample += amp * ring_level * env.at(first + k) * wave;
                phase += inc;
                if phase >= table_len {
                    phase -= table_len;
                }
                ring_level *= ring;
                mix *= mix_decay;
            }
        }
    }

    /// The wavetables of a voice in an octave band, built on first use.
    fn tables(&mut self, voice: usize, band: usize) -> Option<(&[f32], &[f32])> {
        let sr = self.params.sample_rate as f32;
        let slot = &mut self.tables[voice * BANDS + band];
        let tables = slot.get_or_insert_with(|| {
            // The highest fundamental of the band, with room for vibrato.
            let top_hz = midi_hz((band * 12 + 12) as f32) * 1.01;
            let max_harmonic = (BAND_LIMIT * sr / top_hz).floor() as usize;
            if max_harmonic == 0 {
                return None;
            }
            let v = VOICES[voice];
            Some((wavetable(&v.bright, max_harmonic), wavetable(&v.body, max_harmonic)))
        });
        tables.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice()))
    }
}

/// One cycle of a spectrum up to `max_harmonic`, scaled so the sum of squared harmonic amplitudes
/// is 1 (the RMS of a unit sine), plus one guard sample.
fn wavetable(spectrum: &Spectrum, max_harmonic: usize) -> Vec<f32> {
    let harmonics: Vec<(usize, f32)> = (1..=spectrum.len().min(max_harmonic))
        .map(|h| (h, spectrum.harmonic(h)))
        .filter(|&(_, a)| a != 0.0)
        .collect();
    let norm = harmonics.iter().map(|&(_, a)| f64::from(a) * f64::from(a)).sum::<f64>().sqrt().max(1e-12);
    let mut table: Vec<f32> = (0..=TABLE_LEN)
        .map(|i| {
            let x = std::f64::consts::TAU * (i % TABLE_LEN) as f64 / TABLE_LEN as f64;
            let s: f64 = harmonics.iter().map(|&(h, a)| f64::from(a) * (h as f64 * x).sin()).sum();
            (s / norm) as f32
        })
        .collect();
    table.shrink_to_fit();
    table
}

/// Frequency in Hz of a (fractional) MIDI pitch, A4 = 69 = 440 Hz.
pub fn midi_hz(pitch: f32) -> f32 {
    440.0 * ((pitch - 69.0) / 12.0).exp2()
}

/// Identity below the knee; above it, a tanh curve that approaches ±1 (reaching it only in f32 rounding).
fn soft_limit(x: f32) -> f32 {
    let m = x.abs();
    if m <= KNEE {
        x
    } else {
        let room = 1.0 - KNEE;
        x.signum() * (KNEE + room * ((m - KNEE) / room).tanh())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tests::note;

    fn synth() -> Synth {
        let params = SynthParams {
            sample_rate: default_sample_rate(),
            tail_s: default_tail_s(),
            gain: default_gain(),
            max_duration_s: default_max_duration_s(),
        };
        Synth::open(params, &Context::default()).expect("valid params")
    }

    /// Magnitude of the DFT of `x` at `hz` (Goertzel).
    fn dft_magnitude(x: &[f32], sr: f32, hz: f32) -> f64 {
        let w = std::f64::consts::TAU * f64::from(hz) / f64::from(sr);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s0 = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    #[test]
    fn a4_peaks_at_440_hz_for_every_voice() {
        let mut s = synth();
        for &program in &crate::voice::REPRESENTATIVE_PROGRAMS {
            let audio = s.render(Score { notes: vec![note(69, 0.0, 1.0, 100, program)] }).expect("renders");
            let x = &audio.samples[..22050];
            let candidates = (0..=1600).map(|i| 100.0 + i as f32 * 0.5);
            let peak = candidates
                .map(|hz| (hz, dft_magnitude(x, 22050.0, hz)))
                .fold((0.0, 0.0), |best, c| if c.1 > best.1 { c } else { best });
            assert!((peak.0 - 440.0).abs() <= 2.0, "program {program}: peak at {} Hz", peak.0);
        }
    }

    #[test]
    fn six_db_more_velocity_is_six_db_more_rms() {
        let mut s = synth();
        let chord = |v| Score { notes: [60, 64, 67].iter().map(|&p| note(p, 0.1, 1.0, v, 48)).collect() };
        let quiet = s.render(chord(50)).expect("renders");
        let loud = s.render(chord(100)).expect("renders");
        let db = 20.0 * (rms(&loud.samples) / rms(&quiet.samples)).log10();
        assert!((db - 6.02).abs() < 1.0, "{db} dB");
    }

    #[test]
    fn output_stays_inside_unit_range_and_is_deterministic() {
        let mut s = synth();
        let loud = Score { notes: (40..80).map(|p| note(p, 0.0, 0.5, 127, p % 80)).collect() };
        let a = s.render(loud.clone()).expect("renders");
        assert!(a.samples.iter().all(|v| v.abs() <= 1.0));
        assert!(a.samples.iter().any(|v| v.abs() > KNEE));
        let b = synth().render(loud).expect("renders");
        assert_eq!(a, b);
    }

    #[test]
    fn length_is_score_plus_tail() {
        let mut s = synth();
        let audio = s.render(Score { notes: vec![note(60, 1.0, 0.5, 90, 0)] }).expect("renders");
        assert_eq!(audio.samples.len(), (2.5 * 22050.0f32).ceil() as usize);
        assert_eq!(audio.sample_rate, 22050);
        let empty = s.render(Score::default()).expect("renders");
        assert_eq!(empty.samples.len(), 22050);
        assert!(empty.samples.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn too_long_and_bad_params_are_errors() {
        let mut s = synth();
        assert!(s.render(Score { notes: vec![note(60, 1e6, 0.5, 90, 0)] }).is_err());
        let bad = SynthParams { sample_rate: 100, ..synth().params };
        assert!(Synth::open(bad, &Context::default()).is_err());
    }

    #[test]
    fn soft_limit_is_continuous_and_bounded() {
        assert_eq!(soft_limit(0.5), 0.5);
        assert!((soft_limit(0.9001) - 0.9001).abs() < 1e-4);
        assert!(soft_limit(100.0) <= 1.0 && soft_limit(-100.0) >= -1.0);
    }
}
