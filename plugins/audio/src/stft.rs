//! The short-time Fourier transform shared by the encoders: periodic Hann window, centred frames
//! (the signal is padded with `n_fft / 2` zeros at both ends, so frame `t` is centred on sample
//! `t × hop` and there are `1 + len / hop` frames — at least one, even for empty audio), and a real
//! FFT (`realfft`).
//!
//! Spectra are scaled by `1 / Σ window`, so a sine of amplitude `a` centred on a bin has magnitude
//! `a / 2` there (power `a² / 4`) whatever `n_fft` is.

use commute_sdk::prelude::*;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// A planned STFT of one frame size and hop.
pub struct Stft {
    n_fft: usize,
    hop: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl Stft {
    /// Plans frames of `n_fft` samples (even, 16..=65536) every `hop` samples (1..=n_fft).
    pub fn new(n_fft: usize, hop: usize) -> Result<Stft> {
        ensure!(
            (16..=65536).contains(&n_fft) && n_fft % 2 == 0,
            "n-fft must be an even number within 16..=65536, got {n_fft}"
        );
        ensure!((1..=n_fft).contains(&hop), "hop must be within 1..=n-fft ({n_fft}), got {hop}");
        let window: Vec<f32> = (0..n_fft)
            .map(|i| (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n_fft as f64).cos()) as f32)
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let input = fft.make_input_vec();
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Ok(Stft { n_fft, hop, window, fft, input, spectrum, scratch })
    }

    /// Number of frequency bins, `n_fft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Frame size in samples.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// Number of frames for a signal of `len` samples.
    pub fn frames(&self, len: usize) -> usize {
        1 + len / self.hop
    }

    /// Calls `visit` with the magnitude spectrum (`bins()` values) of each frame, in order.
    pub fn magnitudes(&mut self, samples: &[f32], visit: impl FnMut(&[f32])) -> Result<()> {
        self.spectra(samples, false, visit)
    }

    /// Like [`magnitudes`](Stft::magnitudes), with power (magnitude squared) spectra.
    pub fn powers(&mut self, samples: &[f32], visit: impl FnMut(&[f32])) -> Result<()> {
        self.spectra(samples, true, visit)
    }

    fn spectra(&mut self, samples: &[f32], power: bool, mut visit: impl FnMut(&[f32])) -> Result<()> {
        let scale = 1.0 / self.window.iter().map(|&w| f64::from(w)).sum::<f64>() as f32;
        let half = self.n_fft / 2;
        let mut out = vec![0.0f32; self.bins()];
        for frame in 0..self.frames(samples.len()) {
            // Frame `frame` covers samples centre - half .. centre + half, zero outside the signal.
            let start = (frame * self.hop) as isize - half as isize;
            self.input.fill(0.0);
            let first = start.max(0) as usize;
            let end = ((start + self.n_fft as isize).max(0) as usize).min(samples.len());
            if first < end {
                let offset = (first as isize - start) as usize;
                let slots = &mut self.input[offset..offset + (end - first)];
                for ((slot, x), w) in slots.iter_mut().zip(&samples[first..end]).zip(&self.window[offset..]) {
                    *slot = x * w;
                }
            }
            self.fft
                .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
                .map_err(|e| anyhow!("FFT failed: {e}"))?;
            for (o, c) in out.iter_mut().zip(&self.spectrum) {
                let p = (c.re * c.re + c.im * c.im) * (scale * scale);
                *o = if power { p } else { p.sqrt() };
            }
            visit(&out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::tests::sine;

    #[test]
    fn a_bin_centred_sine_peaks_at_its_bin_with_half_its_amplitude() {
        let mut stft = Stft::new(1024, 256).expect("valid");
        // Bin 40 of a 1024-point FFT at 16 kHz is 625 Hz.
        let x = sine(625.0, 0.8, 16000, 0.5);
        let mut frames = 0;
        stft.magnitudes(&x, |m| {
            frames += 1;
            if frames > 4 && frames < 28 {
                let peak = (0..m.len()).max_by(|&a, &b| m[a].total_cmp(&m[b])).expect("bins");
                assert_eq!(peak, 40);
                assert!((m[40] - 0.4).abs() < 1e-3, "{}", m[40]);
                assert!(m[100] < 1e-4);
            }
        })
        .expect("runs");
        assert_eq!(frames, stft.frames(x.len()));
        assert_eq!(frames, 1 + 8000 / 256);
    }

    #[test]
    fn empty_and_tiny_inputs_give_one_finite_frame() {
        let mut stft = Stft::new(64, 16).expect("valid");
        for x in [&[][..], &[0.5][..]] {
            let mut frames = Vec::new();
            stft.powers(x, |p| frames.push(p.to_vec())).expect("runs");
            assert_eq!(frames.len(), 1);
            assert!(frames[0].iter().all(|v| v.is_finite()));
        }
        assert!(Stft::new(15, 4).is_err());
        assert!(Stft::new(64, 0).is_err());
        assert!(Stft::new(64, 65).is_err());
    }
}
