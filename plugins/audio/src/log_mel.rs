//! The `log-mel` encoder: a log-mel spectrogram pooled over time into the mean and standard
//! deviation of each band.
//!
//! # Pipeline
//!
//! 1. Resample the input to the analysis rate `sample-rate` (default 22 050 Hz) with the
//!    windowed-sinc [`resample`](crate::resample) when it differs, so the same sound at any input
//!    rate gives nearly the same embedding (content above the input's Nyquist frequency is of
//!    course missing).
//! 2. STFT ([`stft`](crate::stft)): periodic Hann window, `n-fft` = 2048 (93 ms at 22.05 kHz,
//!    10.8 Hz bins — librosa's defaults), `hop` = 512, centred frames with zero padding, spectra
//!    scaled by `1 / Σ window`; power = magnitude².
//! 3. Mel filterbank ([`mel`](crate::mel)): `n-mels` = 64 triangular bands between `f-min` = 0
//!    and `f-max` = Nyquist, Slaney mel scale and Slaney area normalisation by default (librosa's
//!    defaults; `mel-scale = "htk"` and `mel-norm = "peak"` are the alternatives).
//! 4. Decibels: `10 log10(mel + eps)` with `eps` = 1e-10 (a −100 dB floor, so silence and empty
//!    audio give finite values).
//! 5. Pooling over all frames: dims `0..n-mels` are each band's mean dB, dims
//!    `n-mels..2·n-mels` each band's standard deviation in dB (population, 0 for one frame).
//!
//! With `pooling = "none"` step 5 is skipped: the encoder keeps the time axis and returns
//! `n-mels` dB values per frame at `sample-rate / hop` frames per second (frame `t` centred on
//! `t · hop` samples), at least one frame.
//!
//! A gain of g dB shifts every mean by g dB (where the band is well above the floor) and leaves
//! the standard deviations unchanged. Empty audio encodes as one silent frame: every mean is
//! `10 log10(eps)`, every deviation 0.

use crate::mel::{Filterbank, MelNorm, MelScale};
use crate::resample::convert;
use crate::signal::{check_range, validate};
use crate::stft::Stft;
use commute_sdk::prelude::*;

/// Parameters of `log-mel`.
#[params]
#[derive(Debug, Clone)]
pub struct LogMelParams {
    /// Number of mel bands (1–512); the embedding has twice as many dimensions.
    #[serde(default = "default_n_mels")]
    #[schemars(range(min = 1, max = 512))]
    pub n_mels: usize,
    /// FFT frame size in samples at the analysis rate (even, 16–65536).
    #[serde(default = "default_n_fft")]
    pub n_fft: usize,
    /// Hop between frames in samples at the analysis rate (1..=n-fft).
    #[serde(default = "default_hop")]
    pub hop: usize,
    /// Lowest band edge in Hz.
    #[serde(default)]
    pub f_min: f64,
    /// Highest band edge in Hz (at most sample-rate / 2); the Nyquist frequency when absent.
    #[serde(default)]
    pub f_max: Option<f64>,
    /// Analysis sample rate in Hz (4000–192000): inputs at other rates are resampled to it.
    #[serde(default = "default_sample_rate")]
    pub sample_rate: u32,
    /// Mel scale: `slaney` (linear below 1 kHz, log above) or `htk`.
    #[serde(default = "default_scale")]
    pub mel_scale: MelScale,
    /// Band normalisation: `area` (each band integrates to 1, Slaney) or `peak` (each peaks at 1).
    #[serde(default = "default_norm")]
    pub mel_norm: MelNorm,
    /// Added to mel power before the logarithm (1e-20–1): sets the dB floor, 10 log10(eps).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// `mean-std`: one vector, each band's mean and deviation; `none`: every frame's bands.
    #[serde(default)]
    pub pooling: MelPooling,
}

/// How `log-mel` pools its frames.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MelPooling {
    /// Each band's mean and standard deviation in dB.
    #[default]
    MeanStd,
    /// Every frame, kept on the time axis.
    None,
}

impl Default for LogMelParams {
    fn default() -> Self {
        LogMelParams {
            n_mels: default_n_mels(),
            n_fft: default_n_fft(),
            hop: default_hop(),
            f_min: 0.0,
            f_max: None,
            sample_rate: default_sample_rate(),
            mel_scale: default_scale(),
            mel_norm: default_norm(),
            eps: default_eps(),
            pooling: MelPooling::MeanStd,
        }
    }
}

fn default_n_mels() -> usize {
    64
}
fn default_n_fft() -> usize {
    2048
}
fn default_hop() -> usize {
    512
}
fn default_sample_rate() -> u32 {
    22050
}
fn default_scale() -> MelScale {
    MelScale::Slaney
}
fn default_norm() -> MelNorm {
    MelNorm::Area
}
fn default_eps() -> f64 {
    1e-10
}

/// The `log-mel` encoder (dimension 2 × n-mels).
pub struct LogMel {
    sample_rate: u32,
    eps: f64,
    hop: usize,
    pooling: MelPooling,
    stft: Stft,
    bank: Filterbank,
}

impl Function for LogMel {
    const DOC: &'static str = "Log-mel spectrogram (Hann STFT, Slaney mel bands, dB) pooled over time: mean then std of each band, 2 × n-mels dims.";
    type Params = LogMelParams;

    fn open(p: LogMelParams, _ctx: &Context) -> Result<Self> {
        ensure!((1..=512).contains(&p.n_mels), "n-mels must be within 1..=512, got {}", p.n_mels);
        ensure!(
            (4000..=192_000).contains(&p.sample_rate),
            "sample-rate must be within 4000..=192000 Hz, got {}",
            p.sample_rate
        );
        check_range("eps", p.eps, 1e-20, 1.0)?;
        let nyquist = f64::from(p.sample_rate) / 2.0;
        let f_max = p.f_max.unwrap_or(nyquist);
        check_range("f-min", p.f_min, 0.0, nyquist)?;
        check_range("f-max", f_max, 0.0, nyquist)?;
        let stft = Stft::new(p.n_fft, p.hop)?;
        let bank = Filterbank::new(
            p.n_mels,
            p.n_fft,
            f64::from(p.sample_rate),
            p.f_min,
            f_max,
            p.mel_scale,
            p.mel_norm,
        )?;
        Ok(LogMel { sample_rate: p.sample_rate, eps: p.eps, hop: p.hop, pooling: p.pooling, stft, bank })
    }
}

impl Encoder for LogMel {
    type Input<'a> = AudioRef<'a>;

    fn dim(&self) -> usize {
        match self.pooling {
            MelPooling::MeanStd => 2 * self.bank.len(),
            MelPooling::None => self.bank.len(),
        }
    }

    fn frame_rate(&self) -> Option<f64> {
        (self.pooling == MelPooling::None).then(|| f64::from(self.sample_rate) / self.hop as f64)
    }

    fn encode(&mut self, audio: AudioRef<'_>) -> Result<Vec<f32>> {
        validate(&audio)?;
        let samples = convert(audio.samples, audio.sample_rate, self.sample_rate);
        let n = self.bank.len();
        let mut sum = vec![0.0f64; n];
        let mut sum_sq = vec![0.0f64; n];
        let mut mel = vec![0.0f32; n];
        let mut frames = 0usize;
        let (bank, eps) = (&self.bank, self.eps);
        if self.pooling == MelPooling::None {
            let mut out = Vec::new();
            self.stft.powers(&samples, |power| {
                bank.apply(power, &mut mel);
                out.extend(mel.iter().map(|m| (10.0 * (f64::from(*m) + eps).log10()) as f32));
            })?;
            if out.is_empty() {
                out = vec![(10.0 * eps.log10()) as f32; n];
            }
            return Ok(out);
        }
        self.stft.powers(&samples, |power| {
            bank.apply(power, &mut mel);
            for ((m, s), s2) in mel.iter().zip(&mut sum).zip(&mut sum_sq) {
                let db = 10.0 * (f64::from(*m) + eps).log10();
                *s += db;
                *s2 += db * db;
            }
            frames += 1;
        })?;
        let count = frames.max(1) as f64;
        let means = sum.iter().map(|s| s / count);
        let stds = sum.iter().zip(&sum_sq).map(|(s, s2)| {
            let mean = s / count;
            (s2 / count - mean * mean).max(0.0).sqrt()
        });
        Ok(means.chain(stds).map(|v| v as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::tests::{chord, sine};

    fn log_mel(p: LogMelParams) -> LogMel {
        LogMel::open(p, &Context::default()).expect("valid")
    }

    fn encode(p: LogMelParams, samples: &[f32], sample_rate: u32) -> Vec<f32> {
        log_mel(p).encode(AudioRef { sample_rate, samples }).expect("encodes")
    }

    #[test]
    fn a_tone_lands_in_the_band_around_its_frequency() {
        let p = LogMelParams { mel_norm: MelNorm::Peak, ..LogMelParams::default() };
        let emb = encode(p.clone(), &sine(1000.0, 0.5, 22050, 1.0), 22050);
        assert_eq!(emb.len(), 128);
        let loudest = (0..64).max_by(|&a, &b| emb[a].total_cmp(&emb[b])).expect("bands");
        let scale = MelScale::Slaney;
        let step = scale.mel(11025.0) / 65.0;
        let peak_hz = |b: usize| scale.hz(step * (b + 1) as f64);
        assert!(peak_hz(loudest - 1) < 1000.0 && peak_hz(loudest + 1) > 1000.0, "band {loudest}");
        // A steady tone: its band's level barely moves over time (edge frames are half empty).
        assert!(emb[64 + loudest] < 3.0, "std {}", emb[64 + loudest]);
    }

    #[test]
    fn silence_and_empty_audio_sit_on_the_floor() {
        for (samples, rate) in [(vec![], 22050), (vec![0.0; 4000], 8000), (vec![0.5], 22050)] {
            let emb = encode(LogMelParams::default(), &samples, rate);
            assert_eq!(emb.len(), 128);
            assert!(emb.iter().all(|v| v.is_finite()));
            if samples.iter().all(|&x| x == 0.0) {
                assert!(emb[..64].iter().all(|&v| (v + 100.0).abs() < 1e-4));
                assert!(emb[64..].iter().all(|&v| v.abs() < 1e-4));
            }
        }
    }

    #[test]
    fn the_same_sound_at_other_rates_gives_nearly_the_same_embedding() {
        let reference = encode(LogMelParams::default(), &chord(&[60, 64, 67], 22050, 2.0), 22050);
        for rate in [16000, 44100, 48000] {
            let other = encode(LogMelParams::default(), &chord(&[60, 64, 67], rate, 2.0), rate);
            let mut worst = 0.0f32;
            for b in 0..64 {
                // Bands with real content (above -60 dB) agree closely in mean and spread.
                if reference[b] > -60.0 {
                    worst = worst.max((reference[b] - other[b]).abs());
                    worst = worst.max((reference[64 + b] - other[64 + b]).abs());
                }
            }
            assert!(worst < 0.5, "{rate} Hz differs by up to {worst} dB");
        }
    }

    #[test]
    fn gain_shifts_the_means_and_keeps_the_spread() {
        let x = chord(&[57, 61, 64], 22050, 1.5);
        let louder: Vec<f32> = x.iter().map(|v| v * 10f32.powf(6.0 / 20.0)).collect();
        let (a, b) =
            (encode(LogMelParams::default(), &x, 22050), encode(LogMelParams::default(), &louder, 22050));
        for band in 0..64 {
            if a[band] > -50.0 {
                assert!((b[band] - a[band] - 6.0).abs() < 0.05, "band {band}: {} -> {}", a[band], b[band]);
                assert!((b[64 + band] - a[64 + band]).abs() < 0.05);
            }
        }
    }

    #[test]
    fn frames_are_the_pooled_statistics_before_pooling() {
        let x = chord(&[60, 64, 67], 22050, 1.0);
        let none = LogMelParams { pooling: MelPooling::None, ..LogMelParams::default() };
        let mut e = LogMel::open(none.clone(), &Context::default()).unwrap();
        assert_eq!((e.dim(), e.frame_rate()), (64, Some(22050.0 / 512.0)));
        let frames = encode(none.clone(), &x, 22050);
        let pooled = encode(LogMelParams::default(), &x, 22050);
        // 1 + ⌊22050 / 512⌋ centred frames.
        assert_eq!(frames.len(), 44 * 64);
        for band in [0, 20, 63] {
            let column: Vec<f64> = frames.chunks(64).map(|f| f64::from(f[band])).collect();
            let mean = column.iter().sum::<f64>() / column.len() as f64;
            let std = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / column.len() as f64).sqrt();
            assert!((mean - f64::from(pooled[band])).abs() < 1e-3, "band {band}");
            assert!((std - f64::from(pooled[64 + band])).abs() < 1e-3, "band {band}");
        }
        // Silence before the chord: its frames sit on the floor, the chord's do not.
        let mut late = vec![0.0; 22050];
        late.extend(&x);
        let f = encode(none.clone(), &late, 22050);
        let loudest = |t: usize| f[t * 64..(t + 1) * 64].iter().copied().fold(f32::MIN, f32::max);
        assert!(loudest(10) < -99.0 && loudest(70) > -60.0, "{} {}", loudest(10), loudest(70));
        assert_eq!(encode(none, &[], 22050), vec![-100.0; 64], "empty audio: one silent frame");
        assert!(e.encode(AudioRef { sample_rate: 22050, samples: &x }).is_ok());
    }

    #[test]
    fn bad_parameters_are_refused() {
        let open = |p: LogMelParams| LogMel::open(p, &Context::default());
        assert!(open(LogMelParams { n_mels: 0, ..LogMelParams::default() }).is_err());
        assert!(open(LogMelParams { f_max: Some(20000.0), ..LogMelParams::default() }).is_err());
        assert!(open(LogMelParams { f_min: 5000.0, f_max: Some(4000.0), ..LogMelParams::default() }).is_err());
        assert!(open(LogMelParams { eps: 0.0, ..LogMelParams::default() }).is_err());
        assert!(open(LogMelParams { sample_rate: 100, ..LogMelParams::default() }).is_err());
        assert!(open(LogMelParams { n_mels: 256, n_fft: 256, ..LogMelParams::default() }).is_err());
        let mut ok =
            log_mel(LogMelParams { n_mels: 40, mel_scale: MelScale::Htk, ..LogMelParams::default() });
        assert_eq!(ok.dim(), 80);
        assert!(ok.encode(AudioRef { sample_rate: 0, samples: &[0.0] }).is_err());
    }
}
