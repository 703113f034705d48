//! Mel scales and the triangular mel filterbank used by `log-mel`.
//!
//! Band edges are `n_mels + 2` points equally spaced on the mel scale between `f_min` and
//! `f_max`; band `i` is a triangle rising from edge `i` to a peak of 1 at edge `i + 1` and falling
//! to zero at edge `i + 2`, evaluated at each FFT bin's centre frequency (as librosa does).
//! With [`MelNorm::Peak`] adjacent triangles sum to exactly 1 between the first and last peaks (a
//! partition of unity); with [`MelNorm::Area`] (Slaney's normalisation, librosa's default) band
//! `i` is scaled by `2 / (edge[i+2] − edge[i])` so every band integrates to 1 over Hz and wide
//! high bands do not dominate.

use commute_sdk::prelude::*;

/// Which mel scale places the bands.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MelScale {
    /// Slaney's Auditory Toolbox scale (librosa's default): linear below 1 kHz (3 mels per
    /// 200 Hz), logarithmic above.
    Slaney,
    /// The HTK scale `2595 log10(1 + f / 700)`.
    Htk,
}

/// How each triangular band is scaled.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MelNorm {
    /// Each band integrates to 1 over Hz (Slaney's normalisation, librosa's default).
    Area,
    /// Each band peaks at 1; adjacent bands sum to 1.
    Peak,
}

/// Slaney scale: the frequency where the log part starts, and its mel value.
const BREAK_HZ: f64 = 1000.0;
const BREAK_MEL: f64 = BREAK_HZ * 3.0 / 200.0;

impl MelScale {
    /// Hz → mel.
    pub fn mel(self, hz: f64) -> f64 {
        match self {
            MelScale::Htk => 2595.0 * (1.0 + hz / 700.0).log10(),
            MelScale::Slaney if hz < BREAK_HZ => hz * 3.0 / 200.0,
            MelScale::Slaney => BREAK_MEL + (hz / BREAK_HZ).ln() / log_step(),
        }
    }

    /// Mel → Hz.
    pub fn hz(self, mel: f64) -> f64 {
        match self {
            MelScale::Htk => 700.0 * (10f64.powf(mel / 2595.0) - 1.0),
            MelScale::Slaney if mel < BREAK_MEL => mel * 200.0 / 3.0,
            MelScale::Slaney => BREAK_HZ * ((mel - BREAK_MEL) * log_step()).exp(),
        }
    }
}

/// Slaney's log step: 27 mels per factor 6.4.
fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// One band: the first bin with a weight and the weights from there on.
#[derive(Debug, Clone)]
struct Band {
    first: usize,
    weights: Vec<f32>,
}

/// A mel filterbank for one FFT size and sample rate.
#[derive(Debug, Clone)]
pub struct Filterbank {
    bands: Vec<Band>,
}

impl Filterbank {
    /// Builds `n_mels` bands over `f_min..f_max` Hz for FFTs of `n_fft` samples at `sample_rate`.
    /// Fails when a band covers no FFT bin (too many bands for the frequency resolution).
    pub fn new(
        n_mels: usize,
        n_fft: usize,
        sample_rate: f64,
        f_min: f64,
        f_max: f64,
        scale: MelScale,
        norm: MelNorm,
    ) -> Result<Filterbank> {
        ensure!(n_mels > 0, "n-mels must be at least 1");
        ensure!(
            0.0 <= f_min && f_min < f_max && f_max <= sample_rate / 2.0,
            "need 0 <= f-min < f-max <= sample-rate / 2 ({}), got f-min = {f_min}, f-max = {f_max}",
            sample_rate / 2.0
        );
        let (lo, hi) = (scale.mel(f_min), scale.mel(f_max));
        let edges: Vec<f64> =
            (0..n_mels + 2).map(|i| scale.hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
        let bins = n_fft / 2 + 1;
        let bin_hz = sample_rate / n_fft as f64;
        let mut bands = Vec::with_capacity(n_mels);
        for (i, e) in edges.windows(3).enumerate() {
            let gain = match norm {
                MelNorm::Area => 2.0 / (e[2] - e[0]),
                MelNorm::Peak => 1.0,
            };
            let weight = |k: usize| {
                let f = k as f64 * bin_hz;
                let rising = (f - e[0]) / (e[1] - e[0]);
                let falling = (e[2] - f) / (e[2] - e[1]);
                rising.min(falling).max(0.0) * gain
            };
            let first = (e[0] / bin_hz).floor() as usize;
            let last = ((e[2] / bin_hz).ceil() as usize).min(bins - 1);
            let weights: Vec<f32> = (first..=last).map(|k| weight(k) as f32).collect();
            ensure!(
                weights.iter().any(|&w| w > 0.0),
                "mel band {i} ({:.1}–{:.1} Hz) falls between FFT bins ({bin_hz:.2} Hz apart): \
                 use fewer n-mels, a larger n-fft or a higher f-min",
                e[0],
                e[2]
            );
            bands.push(Band { first, weights });
        }
        Ok(Filterbank { bands })
    }

    /// Number of bands.
    pub fn len(&self) -> usize {
        self.bands.len()
    }

    /// Whether there are no bands (never, once built).
    pub fn is_empty(&self) -> bool {
        self.bands.is_empty()
    }

    /// Applies the bank to a power spectrum, writing one energy per band into `out`.
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        for (band, o) in self.bands.iter().zip(out.iter_mut()) {
            let spectrum = power.get(band.first..).unwrap_or(&[]);
            *o = band.weights.iter().zip(spectrum).map(|(w, p)| w * p).sum();
        }
    }

    /// The weight of band `band` at FFT bin `bin` (0 outside the band).
    pub fn weight(&self, band: usize, bin: usize) -> f32 {
        self.bands
            .get(band)
            .and_then(|b| bin.checked_sub(b.first).and_then(|i| b.weights.get(i)))
            .copied()
            .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_invert_and_match_reference_points() {
        for scale in [MelScale::Slaney, MelScale::Htk] {
            for hz in [0.0, 440.0, 999.0, 1000.0, 4000.0, 11025.0] {
                assert!((scale.hz(scale.mel(hz)) - hz).abs() < 1e-6, "{scale:?} {hz}");
            }
        }
        assert!((MelScale::Slaney.mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((MelScale::Slaney.mel(6400.0) - 42.0).abs() < 1e-9);
        assert!((MelScale::Htk.mel(700.0) - 2595.0 * 2f64.log10()).abs() < 1e-9);
    }

    #[test]
    fn peak_normalised_bands_partition_unity() {
        let fb =
            Filterbank::new(40, 2048, 22050.0, 0.0, 11025.0, MelScale::Slaney, MelNorm::Peak).expect("valid");
        let bin_hz = 22050.0 / 2048.0;
        let first_peak = MelScale::Slaney.hz(MelScale::Slaney.mel(11025.0) / 41.0);
        let last_peak = MelScale::Slaney.hz(MelScale::Slaney.mel(11025.0) * 40.0 / 41.0);
        for k in 0..1025 {
            let f = k as f64 * bin_hz;
            let total: f32 = (0..40).map(|b| fb.weight(b, k)).sum();
            if f >= first_peak && f <= last_peak {
                assert!((total - 1.0).abs() < 1e-5, "bin {k} ({f} Hz) sums to {total}");
            }
            assert!(total <= 1.0 + 1e-5);
        }
    }

    #[test]
    fn area_normalised_bands_integrate_to_one() {
        let fb =
            Filterbank::new(64, 2048, 22050.0, 0.0, 11025.0, MelScale::Slaney, MelNorm::Area).expect("valid");
        let bin_hz = 22050.0 / 2048.0;
        for b in 0..64 {
            let area: f32 = (0..1025).map(|k| fb.weight(b, k)).sum::<f32>() * bin_hz as f32;
            // Narrow low bands are sampled by few bins; the integral is still close to 1.
            let tolerance = if b < 8 { 0.35 } else { 0.05 };
            assert!((area - 1.0).abs() < tolerance, "band {b} integrates to {area}");
        }
    }

    #[test]
    fn apply_sums_weighted_power_and_sparse_banks_are_refused() {
        let fb = Filterbank::new(8, 256, 8000.0, 100.0, 4000.0, MelScale::Htk, MelNorm::Peak).expect("valid");
        let power = vec![1.0f32; 129];
        let mut out = vec![0.0; 8];
        fb.apply(&power, &mut out);
        for (b, o) in out.iter().enumerate() {
            let expected: f32 = (0..129).map(|k| fb.weight(b, k)).sum();
            assert!((o - expected).abs() < 1e-5 && *o > 0.0);
        }
        let err = Filterbank::new(128, 64, 8000.0, 0.0, 4000.0, MelScale::Slaney, MelNorm::Area)
            .expect_err("bands between bins");
        assert!(err.to_string().contains("n-mels"), "{err}");
        assert!(Filterbank::new(8, 256, 8000.0, 0.0, 5000.0, MelScale::Htk, MelNorm::Peak).is_err());
    }
}
