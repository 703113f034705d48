//! The `chroma` encoder: a 12-bin pitch-class profile (index 0 = C, 9 = A) of the whole item,
//! from the STFT magnitude.
//!
//! # Method
//!
//! 1. Resample to the analysis rate `sample-rate` (default 22 050 Hz) when the input differs.
//! 2. STFT ([`stft`](crate::stft)) with `n-fft` = 4096 (5.4 Hz bins, enough to separate semitones
//!    down to about 100 Hz) and `hop` = 1024; the magnitude spectra are summed over all frames
//!    (time pooling weighted by magnitude).
//! 3. Peaks: the bins between `f-min` (55 Hz) and `f-max` (5 kHz) larger than the two bins on
//!    either side (which excludes the window's side lobes) and above −80 dB of the strongest bin
//!    are the partials; each is located to a fraction of a bin by parabolic interpolation of the
//!    log magnitude and weighted by its magnitude. Using peaks rather than every bin keeps the
//!    window's main lobe (±0.7 semitone at 260 Hz) from smearing notes into their neighbours.
//! 4. Tuning (when `estimate-tuning`, the default): the peaks' deviations from the nearest
//!    equal-tempered pitch are averaged on the circle weighted by magnitude, and that offset
//!    (within ±½ semitone) is removed — so a recording tuned to A4 = 446 Hz gives the same
//!    profile as one at 440 Hz.
//! 5. Each peak, at pitch `p = 69 + 12 log2(f / a4-hz)` minus the tuning offset, gives its
//!    magnitude to the two nearest pitch classes in proportion to closeness (a partial on a
//!    semitone goes wholly to its class, one half-way is split evenly).
//! 6. Normalisation: `l1` (sums to 1, default), `l2` (unit length) or `max` (largest is 1).
//!    Silence and empty audio encode as zeros.
//!
//! With `pooling = "none"` steps 3, 5 and 6 run on every frame's spectrum instead of the sum
//! (the tuning offset is still the whole item's): 12 classes a frame at `sample-rate / hop`
//! frames per second, frame `t` centred on `t · hop` samples; a silent frame is zeros.

use crate::resample::convert;
use crate::signal::{check_range, validate};
use crate::stft::Stft;
use commute_sdk::prelude::*;

/// How a chroma vector is normalised.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// Entries sum to 1.
    L1,
    /// Unit Euclidean length.
    L2,
    /// The largest entry is 1.
    Max,
}

/// Parameters of `chroma`.
#[params]
#[derive(Debug, Clone)]
pub struct ChromaParams {
    /// Normalisation: `l1` (sums to 1), `l2` (unit length) or `max` (largest entry is 1).
    #[serde(default = "default_norm")]
    pub norm: Norm,
    /// FFT frame size in samples at the analysis rate (even, 16–65536).
    #[serde(default = "default_n_fft")]
    pub n_fft: usize,
    /// Hop between frames in samples at the analysis rate (1..=n-fft).
    #[serde(default = "default_hop")]
    pub hop: usize,
    /// Lowest frequency used, in Hz.
    #[serde(default = "default_f_min")]
    pub f_min: f64,
    /// Highest frequency used, in Hz (at most sample-rate / 2).
    #[serde(default = "default_f_max")]
    pub f_max: f64,
    /// Analysis sample rate in Hz (4000–192000): inputs at other rates are resampled to it.
    #[serde(default = "default_sample_rate")]
    pub sample_rate: u32,
    /// Reference frequency of A4 in Hz (400–480).
    #[serde(default = "default_a4_hz")]
    pub a4_hz: f64,
    /// Estimate each item's tuning offset (within ±½ semitone of a4-hz) and remove it.
    #[serde(default = "default_true")]
    pub estimate_tuning: bool,
    /// `sum`: one profile of the whole item; `none`: a profile per frame.
    #[serde(default)]
    pub pooling: ChromaPooling,
}

/// How `chroma` pools over time.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChromaPooling {
    /// The profile of the spectra summed over frames.
    #[default]
    Sum,
    /// A profile per frame, kept on the time axis.
    None,
}

impl Default for ChromaParams {
    fn default() -> Self {
        ChromaParams {
            norm: default_norm(),
            n_fft: default_n_fft(),
            hop: default_hop(),
            f_min: default_f_min(),
            f_max: default_f_max(),
            sample_rate: default_sample_rate(),
            a4_hz: default_a4_hz(),
            estimate_tuning: true,
            pooling: ChromaPooling::Sum,
        }
    }
}

fn default_norm() -> Norm {
    Norm::L1
}
fn default_n_fft() -> usize {
    4096
}
fn default_hop() -> usize {
    1024
}
fn default_f_min() -> f64 {
    55.0
}
fn default_f_max() -> f64 {
    5000.0
}
fn default_sample_rate() -> u32 {
    22050
}
fn default_a4_hz() -> f64 {
    440.0
}
fn default_true() -> bool {
    true
}

/// The `chroma` encoder (dimension 12, index 0 = C).
pub struct Chroma {
    norm: Norm,
    sample_rate: u32,
    estimate_tuning: bool,
    stft: Stft,
    /// Bins searched for peaks: `first..=last`.
    first: usize,
    last: usize,
    /// Frequency of one bin step in Hz.
    bin_hz: f64,
    a4_hz: f64,
    hop: usize,
    pooling: ChromaPooling,
}

impl Function for Chroma {
    const DOC: &'static str = "12-bin pitch-class profile (index 0 = C) of the STFT magnitude, tuning-corrected, time-pooled, L1/L2/max normalised.";
    type Params = ChromaParams;

    fn open(p: ChromaParams, _ctx: &Context) -> Result<Self> {
        ensure!(
            (4000..=192_000).contains(&p.sample_rate),
            "sample-rate must be within 4000..=192000 Hz, got {}",
            p.sample_rate
        );
        let nyquist = f64::from(p.sample_rate) / 2.0;
        check_range("a4-hz", p.a4_hz, 400.0, 480.0)?;
        check_range("f-min", p.f_min, 1.0, nyquist)?;
        check_range("f-max", p.f_max, p.f_min, nyquist)?;
        let stft = Stft::new(p.n_fft, p.hop)?;
        let bin_hz = f64::from(p.sample_rate) / p.n_fft as f64;
        let first = (p.f_min / bin_hz).ceil().max(1.0) as usize;
        let last = ((p.f_max / bin_hz).floor() as usize).min(stft.bins() - 1);
        ensure!(
            first <= last,
            "no FFT bin between f-min and f-max ({bin_hz:.2} Hz apart): widen the range or raise n-fft"
        );
        Ok(Chroma {
            norm: p.norm,
            sample_rate: p.sample_rate,
            estimate_tuning: p.estimate_tuning,
            stft,
            first,
            last,
            bin_hz,
            a4_hz: p.a4_hz,
            hop: p.hop,
            pooling: p.pooling,
        })
    }
}

/// The (fractional) MIDI pitch of a frequency, given A4's frequency.
fn midi_pitch(hz: f64, a4_hz: f64) -> f64 {
    69.0 + 12.0 * (hz / a4_hz).log2()
}

/// Peaks weaker than this share of the strongest bin are ignored.
const PEAK_FLOOR: f64 = 1e-4;

impl Chroma {
    /// The spectral peaks of `spectrum` as (MIDI pitch relative to a4-hz, magnitude).
    fn peaks(&self, spectrum: &[f64]) -> Vec<(f64, f64)> {
        let strongest = spectrum[self.first..=self.last].iter().copied().fold(0.0, f64::max);
        let mut peaks = Vec::new();
        if strongest <= 0.0 {
            return peaks;
        }
        for k in self.first..=self.last {
            let m = spectrum[k];
            let lo = k.saturating_sub(2);
            let hi = (k + 2).min(spectrum.len() - 1);
            if m < strongest * PEAK_FLOOR || !(lo..=hi).all(|j| j == k || spectrum[j] < m) {
                continue;
            }
            let offset = if k > 0 && k + 1 < spectrum.len() {
                let (la, lb, lc) = (spectrum[k - 1].max(1e-30).ln(), m.ln(), spectrum[k + 1].max(1e-30).ln());
                let curvature = la - 2.0 * lb + lc;
                if curvature < 0.0 {
                    (0.5 * (la - lc) / curvature).clamp(-0.5, 0.5)
                } else {
                    0.0
                }
            } else {
                0.0
            };
            peaks.push((midi_pitch((k as f64 + offset) * self.bin_hz, self.a4_hz), m));
        }
        peaks
    }
}

/// The tuning offset in semitones (−½..½): the magnitude-weighted circular mean of the peaks'
/// deviations from the nearest semitone.
fn tuning(peaks: &[(f64, f64)]) -> f64 {
    let (mut sin, mut cos) = (0.0f64, 0.0f64);
    for &(pitch, weight) in peaks {
        let angle = std::f64::consts::TAU * (pitch - pitch.round());
        sin += weight * angle.sin();
        cos += weight * angle.cos();
    }
    if sin == 0.0 && cos == 0.0 {
        0.0
    } else {
        sin.atan2(cos) / std::f64::consts::TAU
    }
}

impl Encoder for Chroma {
    type Input<'a> = AudioRef<'a>;

    fn dim(&self) -> usize {
        12
    }

    fn frame_rate(&self) -> Option<f64> {
        (self.pooling == ChromaPooling::None).then(|| f64::from(self.sample_rate) / self.hop as f64)
    }

    fn encode(&mut self, audio: AudioRef<'_>) -> Result<Vec<f32>> {
        validate(&audio)?;
        let samples = convert(audio.samples, audio.sample_rate, self.sample_rate);
        let bins = self.stft.bins();
        let mut spectrum = vec![0.0f64; bins];
        let framed = self.pooling == ChromaPooling::None;
        let mut frames: Vec<f32> = Vec::new();
        self.stft.magnitudes(&samples, |mags| {
            for (s, m) in spectrum.iter_mut().zip(mags) {
                *s += f64::from(*m);
            }
            if framed {
                frames.extend_from_slice(mags);
            }
        })?;
        let shift = if self.estimate_tuning { tuning(&self.peaks(&spectrum)) } else { 0.0 };
        if !framed {
            return Ok(self.profile(&spectrum, shift).to_vec());
        }
        if frames.is_empty() {
            return Ok(vec![0.0; 12]);
        }
        let mut one = vec![0.0f64; bins];
        let mut out = Vec::with_capacity(frames.len() / bins * 12);
        for frame in frames.chunks_exact(bins) {
            for (o, m) in one.iter_mut().zip(frame) {
                *o = f64::from(*m);
            }
            out.extend(self.profile(&one, shift));
        }
        Ok(out)
    }
}

impl Chroma {
    /// The normalised pitch-class profile of a magnitude spectrum, its peaks moved by `shift`
    /// semitones (the tuning offset).
    fn profile(&self, spectrum: &[f64], shift: f64) -> [f32; 12] {
        let mut bins = [0.0f64; 12];
        for (pitch, magnitude) in self.peaks(spectrum) {
            let p = pitch - shift;
            let lower = p.floor();
            let frac = p - lower;
            let class = (lower as i64).rem_euclid(12) as usize;
            bins[class] += magnitude * (1.0 - frac);
            bins[(class + 1) % 12] += magnitude * frac;
        }
        let norm = match self.norm {
            Norm::L1 => bins.iter().sum::<f64>(),
            Norm::L2 => bins.iter().map(|b| b * b).sum::<f64>().sqrt(),
            Norm::Max => bins.iter().copied().fold(0.0, f64::max),
        };
        let scale = if norm > 1e-12 && norm.is_finite() { 1.0 / norm } else { 0.0 };
        bins.map(|b| (b * scale) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::tests::{chord, sine};

    fn chroma(p: ChromaParams, samples: &[f32], sample_rate: u32) -> Vec<f32> {
        let mut c = Chroma::open(p, &Context::default()).expect("valid");
        c.encode(AudioRef { sample_rate, samples }).expect("encodes")
    }

    fn top(v: &[f32], n: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
        idx.truncate(n);
        idx.sort_unstable();
        idx
    }

    #[test]
    fn a_440_hz_tone_is_an_a_at_any_rate() {
        for rate in [16000, 22050, 44100] {
            let c = chroma(ChromaParams::default(), &sine(440.0, 0.5, rate, 1.0), rate);
            assert_eq!(c.len(), 12);
            assert!(c[9] > 0.95, "A gets {} at {rate} Hz: {c:?}", c[9]);
            assert!((c.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn a_c_major_triad_is_mostly_c_e_g() {
        let c = chroma(ChromaParams::default(), &chord(&[60, 64, 67], 22050, 1.5), 22050);
        assert_eq!(top(&c, 3), [0, 4, 7], "{c:?}");
        assert!(c[0] + c[4] + c[7] > 0.75, "{c:?}");
    }

    #[test]
    fn tuning_estimation_absorbs_a_detuned_instrument() {
        // A4 = 450 Hz is 39 cents sharp: without the estimate half the mass leaks into A♯.
        let sharp = chord(&[57, 61, 64], 22050, 1.5);
        let detuned = crate::resample::resample(&sharp, 440.0 / 450.0);
        let fixed = ChromaParams { estimate_tuning: false, ..ChromaParams::default() };
        let c = chroma(ChromaParams::default(), &detuned, 22050);
        let raw = chroma(fixed, &detuned, 22050);
        assert_eq!(top(&c, 3), [1, 4, 9], "{c:?}");
        assert!(c[1] + c[4] + c[9] > 0.7, "{c:?}");
        assert!(raw[1] + raw[4] + raw[9] < c[1] + c[4] + c[9] - 0.2, "{raw:?}");
    }

    #[test]
    fn norms_and_silence() {
        let x = chord(&[62, 65, 69], 22050, 1.0);
        let l2 = chroma(ChromaParams { norm: Norm::L2, ..ChromaParams::default() }, &x, 22050);
        assert!((l2.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
        let max = chroma(ChromaParams { norm: Norm::Max, ..ChromaParams::default() }, &x, 22050);
        assert!((max.iter().copied().fold(0.0, f32::max) - 1.0).abs() < 1e-6);
        for (samples, rate) in [(vec![], 22050), (vec![0.0; 4000], 8000)] {
            assert_eq!(chroma(ChromaParams::default(), &samples, rate), [0.0; 12]);
        }
        assert!(chroma(ChromaParams::default(), &[0.5], 22050).iter().all(|v| v.is_finite()));
        let bad = ChromaParams { f_min: 3000.0, f_max: 2000.0, ..ChromaParams::default() };
        assert!(Chroma::open(bad, &Context::default()).is_err());
        let narrow = ChromaParams { f_min: 100.0, f_max: 101.0, ..ChromaParams::default() };
        assert!(Chroma::open(narrow, &Context::default()).is_err());
    }

    #[test]
    fn frames_follow_the_music_and_a_lone_chord_frame_is_the_pooled_profile() {
        let none = ChromaParams { pooling: ChromaPooling::None, ..ChromaParams::default() };
        let mut c = Chroma::open(none.clone(), &Context::default()).expect("valid");
        assert_eq!((c.dim(), c.frame_rate()), (12, Some(22050.0 / 1024.0)));
        // One second of C major, then one of A minor (A, C, E).
        let mut x = chord(&[60, 64, 67], 22050, 1.0);
        x.extend(chord(&[57, 60, 64], 22050, 1.0));
        let f = c.encode(AudioRef { sample_rate: 22050, samples: &x }).expect("encodes");
        assert_eq!(f.len(), (1 + x.len() / 1024) * 12);
        let frame = |t: usize| &f[t * 12..(t + 1) * 12];
        let top = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(j, _)| j);
        // Well inside each chord: G (7) sounds in the first (in the second only as C's third
        // harmonic), A (9) in the second only.
        let (first, second) = (frame(10), frame(32));
        assert!(first[7] > 0.2 && second[7] < first[7] / 2.0, "G: {} then {}", first[7], second[7]);
        assert!(second[9] > 0.2 && first[9] < 0.02, "A: {} then {}", first[9], second[9]);
        assert!((first.iter().sum::<f32>() - 1.0).abs() < 1e-5, "l1 per frame");
        // One steady chord: its middle frame's profile is the whole item's.
        let steady = chord(&[62, 66, 69], 22050, 1.0);
        let pooled = chroma(ChromaParams::default(), &steady, 22050);
        let frames = c.encode(AudioRef { sample_rate: 22050, samples: &steady }).expect("encodes");
        let middle = &frames[10 * 12..11 * 12];
        let gap = middle.iter().zip(&pooled).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(gap < 0.02, "{middle:?} vs {pooled:?}");
        let sounding = |v: &[f32]| [2, 6, 9].iter().map(|&j| v[j]).sum::<f32>();
        assert!(sounding(middle) > 0.6 && top(middle).is_some_and(|j| [2, 6, 9].contains(&j)));
        // Empty audio: one silent frame.
        assert_eq!(c.encode(AudioRef { sample_rate: 22050, samples: &[] }).expect("ok"), vec![0.0; 12]);
    }
}
