//! Whisper's input features: an 80-band log-mel spectrogram of 16 kHz audio, 100 frames a second,
//! computed as the reference transcriber (faster-whisper) computes it, so that the model reads
//! the same numbers.
//!
//! The audio gets 160 zero samples appended and 200 samples of reflection at each end; frames
//! of 400 samples (periodic Hann window) every 160 samples give power spectra (201 bins); the last
//! frame is dropped. Slaney-style mel filters (area-normalised triangles, linear below 1 kHz and
//! logarithmic above) give 80 bands; values are `log10(max(x, 1e-10))`, floored at 8 below their
//! maximum, then mapped by `(x + 4) / 4`. The model reads 3000 frames (30 s): the frames that
//! hold audio (all but the last computed one), then zeros.

use commute_sdk::prelude::*;
use realfft::RealFftPlanner;

/// Sample rate of the model's input, in Hz.
pub const SAMPLE_RATE: u32 = crate::audio_in::MODEL_RATE;
/// FFT size (25 ms).
pub const N_FFT: usize = 400;
/// Hop between frames (10 ms).
pub const HOP: usize = 160;
/// Mel bands.
pub const N_MELS: usize = 80;
/// Frames the model reads: 30 s.
pub const N_FRAMES: usize = 3000;

/// Log-mel features of one item, padded to [`N_FRAMES`].
#[derive(Debug, Clone)]
pub struct Features {
    /// `N_MELS × N_FRAMES`, band-major (a band's frames are contiguous), as the model reads them.
    pub values: Vec<f32>,
    /// Frames that hold audio (the rest are padding).
    pub content_frames: usize,
}

/// The mel filterbank, `N_MELS × (N_FFT / 2 + 1)`, row-major.
pub fn mel_filters() -> Vec<f32> {
    let bins = N_FFT / 2 + 1;
    let sr = f64::from(SAMPLE_RATE);
    let fft_hz: Vec<f64> = (0..bins).map(|k| k as f64 * sr / N_FFT as f64).collect();
    // Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above.
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let log_step = 6.4f64.ln() / 27.0;
    let max_mel = 45.245_640_471_924_965; // the mel of 8 kHz on this scale
    let hz: Vec<f64> = (0..N_MELS + 2)
        .map(|i| {
            let mel = max_mel * i as f64 / (N_MELS + 1) as f64;
            if mel >= min_log_mel {
                min_log_hz * (log_step * (mel - min_log_mel)).exp()
            } else {
                f_sp * mel
            }
        })
        .collect();
    let mut out = vec![0f32; N_MELS * bins];
    for m in 0..N_MELS {
        let (lo, mid, hi) = (hz[m], hz[m + 1], hz[m + 2]);
        let norm = 2.0 / (hi - lo);
        for (k, &f) in fft_hz.iter().enumerate() {
            let rising = (f - lo) / (mid - lo);
            let falling = (hi - f) / (hi - mid);
            out[m * bins + k] = (rising.min(falling).max(0.0) * norm) as f32;
        }
    }
    out
}

/// The features of `samples` (mono, 16 kHz). At most 30 s (480 000 samples) is accepted.
pub fn features(samples: &[f32], filters: &[f32]) -> Result<Features> {
    ensure!(
        samples.len() <= N_FRAMES * HOP,
        "the audio lasts {:.2} s; at most 30 s is accepted",
        samples.len() as f64 / f64::from(SAMPLE_RATE)
    );
    ensure!(
        samples.len() > N_FFT / 2,
        "the audio is too short: {} samples at 16 kHz, at least {}",
        samples.len(),
        N_FFT / 2 + 1
    );
    let bins = N_FFT / 2 + 1;
    let pad = N_FFT / 2;
    // The signal with 160 zeros appended, then reflected at both ends (the edge sample not repeated).
    let mut x: Vec<f32> = samples.to_vec();
    x.resize(samples.len() + HOP, 0.0);
    let n = x.len();
    let mut padded = Vec::with_capacity(n + 2 * pad);
    padded.extend((1..=pad).rev().map(|i| x[i]));
    padded.extend_from_slice(&x);
    padded.extend((0..pad).map(|i| x[n - 2 - i]));
    let frames = 1 + (padded.len() - N_FFT) / HOP - 1; // the last frame is dropped
    let window: Vec<f32> = (0..N_FFT)
        .map(|i| (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / N_FFT as f64).cos()) as f32)
        .collect();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
    let (mut input, mut spectrum) = (fft.make_input_vec(), fft.make_output_vec());
    let mut power = vec![0f32; bins];
    let mut mel = vec![0f32; N_MELS * frames];
    for f in 0..frames {
        for ((slot, &s), &w) in input.iter_mut().zip(&padded[f * HOP..f * HOP + N_FFT]).zip(&window) {
            *slot = s * w;
        }
        fft.process(&mut input, &mut spectrum).map_err(|e| anyhow!("FFT: {e}"))?;
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for m in 0..N_MELS {
            let row = &filters[m * bins..(m + 1) * bins];
            let e: f32 = row.iter().zip(&power).map(|(a, b)| a * b).sum();
            mel[m * frames + f] = e.max(1e-10).log10();
        }
    }
    let top = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let content_frames = frames - 1;
    let mut values = vec![0f32; N_MELS * N_FRAMES];
    for m in 0..N_MELS {
        for f in 0..content_frames.min(N_FRAMES) {
            values[m * N_FRAMES + f] = (mel[m * frames + f].max(top - 8.0) + 4.0) / 4.0;
        }
    }
    Ok(Features { values, content_frames: content_frames.min(N_FRAMES) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of the reference transcriber's filterbank (faster-whisper 1.2, numpy).
    #[test]
    fn filters_match_the_reference() {
        let f = mel_filters();
        let bins = N_FFT / 2 + 1;
        assert_eq!(f.len(), N_MELS * bins);
        for (m, k, want) in [
            (0, 1, 0.024_862_593_984_176_087),
            (10, 10, 0.019_908_218_880_980_696),
            (40, 43, 0.014_735_565_741_439_09),
            (79, 190, 0.002_232_055_052_712_615_7),
            (79, 192, 0.003_164_711_739_176_461),
            (10, 12, 0.0),
            (79, 200, 0.0),
        ] {
            assert!(
                (f64::from(f[m * bins + k]) - want).abs() < 1e-7,
                "band {m} bin {k}: {} vs {want}",
                f[m * bins + k]
            );
        }
        for m in 0..N_MELS {
            let row = &f[m * bins..(m + 1) * bins];
            let peak = (0..bins).max_by(|&a, &b| row[a].total_cmp(&row[b])).expect("bins");
            assert!(
                row[..peak].windows(2).all(|w| w[0] <= w[1]) && row[peak..].windows(2).all(|w| w[0] >= w[1]),
                "band {m}"
            );
        }
    }

    /// Features of a two-tone second against the reference transcriber's (faster-whisper 1.2).
    #[test]
    fn features_match_the_reference() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| {
                let t = f64::from(i) / 16_000.0;
                (0.5 * (std::f64::consts::TAU * 1000.0 * t).sin()
                    + 0.2 * (std::f64::consts::TAU * 330.0 * t).sin()) as f32
            })
            .collect();
        let feats = features(&tone, &mel_filters()).expect("features");
        // 16 000 samples + 160 → 102 frames, the last dropped; the last of the other 101 is not read.
        assert_eq!(feats.content_frames, 100);
        let at = |m: usize, f: usize| feats.values[m * N_FRAMES + f];
        for (m, f, want) in [
            (26, 50, 1.439_647_436_141_967_8),
            (11, 50, 0.286_127_686_500_549_3),
            (60, 50, -0.560_344_099_998_474_1),
            (26, 0, 1.130_060_076_713_562),
            (0, 99, 0.295_819_997_787_475_6),
        ] {
            assert!((f64::from(at(m, f)) - want).abs() < 1e-4, "band {m} frame {f}: {} vs {want}", at(m, f));
        }
        assert!(
            (feats.content_frames..N_FRAMES).all(|f| (0..N_MELS).all(|m| at(m, f) == 0.0)),
            "padding is zero"
        );
    }

    #[test]
    fn empty_short_and_long_audio_are_refused() {
        let f = mel_filters();
        assert!(features(&[], &f).is_err());
        assert!(features(&[0.1; 200], &f).is_err());
        assert!(features(&vec![0.0; 480_001], &f).unwrap_err().to_string().contains("30 s"));
        assert!(features(&[0.1; 201], &f).is_ok());
    }
}
