//! Time stretching without changing pitch: a phase vocoder with identity phase locking (Laroche
//! & Dolson 1999).
//!
//! Analysis frames of `frame` samples (periodic Hann) are taken every `hop_in` input samples and
//! resynthesised every `hop_out = frame / 4` output samples (`hop_in = hop_out / stretch`). Each
//! spectral peak (a bin larger than the two bins on either side) gets its instantaneous frequency
//! from its phase advance over the analysis hop, and its phase is advanced by that frequency over
//! the synthesis hop; every other bin keeps its phase offset to the nearest peak, so the partials
//! of a chord each stay coherent. Frames are windowed again, overlap-added and normalised by the
//! summed squared windows. The input is padded with zeros so the edges come out at full level.
//!
//! Artefacts: transients are smeared over about one frame (the classic "phasiness" of phase
//! vocoders, reduced but not removed by phase locking); partials closer than about two bins
//! (`2 × sample rate / frame` Hz) beat against each other; stretching by 1 reproduces the input.

use realfft::num_complex::Complex;
use realfft::RealFftPlanner;
use std::f64::consts::{PI, TAU};

/// Stretches `x` to exactly `target_len` samples; `frame` is even, at least 16.
pub fn stretch(x: &[f32], target_len: usize, frame: usize) -> Vec<f32> {
    if x.is_empty() || target_len == 0 {
        return vec![0.0; target_len];
    }
    let frame = (frame.max(16) / 2) * 2;
    let hop_out = frame / 4;
    let hop_in = hop_out as f64 * x.len() as f64 / target_len as f64;
    let bins = frame / 2 + 1;

    // Original sample j sits at j + frame/2 in the padded input; frame t starts at round(t·hop_in)
    // there (centred on input sample t·hop_in) and is written at t·hop_out in the padded output
    // (centred on output sample t·hop_out).
    let last_frame = (frame / 2 + target_len - 1) / hop_out;
    let front = frame / 2;
    let needed = (last_frame as f64 * hop_in).round() as usize + frame;
    let mut padded = vec![0.0f32; needed.max(front + x.len())];
    padded[front..front + x.len()].copy_from_slice(x);

    let mut planner = RealFftPlanner::<f32>::new();
    let forward = planner.plan_fft_forward(frame);
    let inverse = planner.plan_fft_inverse(frame);
    let window: Vec<f32> =
        (0..frame).map(|i| (0.5 - 0.5 * (TAU * i as f64 / frame as f64).cos()) as f32).collect();
    let mut input = forward.make_input_vec();
    let mut spectrum = forward.make_output_vec();
    let mut output = inverse.make_output_vec();
    let mut scratch = vec![Complex::default(); forward.get_scratch_len().max(inverse.get_scratch_len())];

    let mut out = vec![0.0f32; last_frame * hop_out + frame];
    let mut norm = vec![0.0f32; out.len()];
    let mut magnitude = vec![0.0f64; bins];
    let mut phase = vec![0.0f64; bins];
    let mut last_phase = vec![0.0f64; bins];
    let mut synth_phase = vec![0.0f64; bins];
    let mut peaks = Vec::with_capacity(bins);
    let mut last_start = 0usize;

    for t in 0..=last_frame {
        let start = (t as f64 * hop_in).round() as usize;
        for ((slot, s), w) in input.iter_mut().zip(&padded[start..start + frame]).zip(&window) {
            *slot = s * w;
        }
        if forward.process_with_scratch(&mut input, &mut spectrum, &mut scratch).is_err() {
            return vec![0.0; target_len];
        }
        for (k, c) in spectrum.iter().enumerate() {
            magnitude[k] = f64::from(c.norm());
            phase[k] = f64::from(c.arg());
        }
        if t == 0 {
            synth_phase.copy_from_slice(&phase);
        } else {
            let hop = (start - last_start).max(1) as f64;
            find_peaks(&magnitude, &mut peaks);
            for &k in &peaks {
                let expected = TAU * k as f64 / frame as f64;
                let deviation = wrap(phase[k] - last_phase[k] - expected * hop);
                let frequency = expected + deviation / hop;
                synth_phase[k] = wrap(synth_phase[k] + frequency * hop_out as f64);
            }
            lock_phases(&peaks, &phase, &mut synth_phase);
        }
        last_phase.copy_from_slice(&phase);
        last_start = start;

        for (k, c) in spectrum.iter_mut().enumerate() {
            let (m, p) = (magnitude[k], synth_phase[k]);
            *c = Complex::new((m * p.cos()) as f32, (m * p.sin()) as f32);
        }
        spectrum[0].im = 0.0;
        spectrum[bins - 1].im = 0.0;
        if inverse.process_with_scratch(&mut spectrum, &mut output, &mut scratch).is_err() {
            return vec![0.0; target_len];
        }
        let base = t * hop_out;
        for (i, (&y, &w)) in output.iter().zip(&window).enumerate() {
            out[base + i] += y * w / frame as f32;
            norm[base + i] += w * w;
        }
    }
    out.iter()
        .zip(&norm)
        .skip(frame / 2)
        .take(target_len)
        .map(|(&y, &n)| if n > 1e-3 { y / n } else { 0.0 })
        .collect()
}

/// Wraps a phase into −π..π.
fn wrap(phase: f64) -> f64 {
    phase - TAU * ((phase + PI) / TAU).floor()
}

/// The bins larger than both neighbours on each side (and not negligible).
fn find_peaks(magnitude: &[f64], peaks: &mut Vec<usize>) {
    peaks.clear();
    let strongest = magnitude.iter().copied().fold(0.0, f64::max);
    let floor = strongest * 1e-6;
    for k in 0..magnitude.len() {
        let m = magnitude[k];
        if m <= floor {
            continue;
        }
        let lo = k.saturating_sub(2);
        let hi = (k + 2).min(magnitude.len() - 1);
        if (lo..=hi).all(|j| j == k || magnitude[j] < m) {
            peaks.push(k);
        }
    }
}

/// Gives every bin the synthesis phase of its nearest peak plus its own analysis-phase offset
/// to that peak (identity phase locking). Peaks keep their phase.
fn lock_phases(peaks: &[usize], phase: &[f64], synth_phase: &mut [f64]) {
    if peaks.is_empty() {
        return;
    }
    let mut next = 0;
    for k in 0..phase.len() {
        while next + 1 < peaks.len() && peaks[next + 1].abs_diff(k) <= peaks[next].abs_diff(k) {
            next += 1;
        }
        let peak = peaks[next];
        if peak != k {
            synth_phase[k] = synth_phase[peak] + phase[k] - phase[peak];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::tests::{chord, dominant_hz, rms, sine, tone_level};

    #[test]
    fn stretching_keeps_pitch_and_level_and_hits_the_length() {
        let x = sine(330.0, 0.5, 22050, 1.0);
        for factor in [0.25, 0.5, 0.8, 1.25, 2.0, 4.0] {
            let len = (x.len() as f64 * factor).round() as usize;
            let y = stretch(&x, len, 2048);
            assert_eq!(y.len(), len);
            let hz = dominant_hz(&y, 22050);
            assert!((hz / 330.0 - 1.0).abs() < 0.005, "×{factor}: {hz} Hz");
            let level = 20.0 * (rms(&y) / rms(&x)).log10();
            assert!(level.abs() < 0.5, "×{factor}: level changed by {level} dB");
        }
    }

    #[test]
    fn every_partial_of_a_chord_survives() {
        let x = chord(&[57, 60, 64], 22050, 1.0);
        let y = stretch(&x, x.len() * 3 / 2, 2048);
        for hz in [220.0, 261.626, 329.628] {
            let (before, after) = (tone_level(&x, 22050, hz), tone_level(&y, 22050, hz));
            assert!((after / before - 1.0).abs() < 0.2, "{hz} Hz: {before} -> {after}");
        }
    }

    #[test]
    fn stretching_by_one_reproduces_the_input() {
        let x = chord(&[50, 62, 69], 16000, 0.5);
        let y = stretch(&x, x.len(), 1024);
        let err = x.iter().zip(&y).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 1e-4, "{err}");
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(stretch(&[], 3, 64), [0.0; 3]);
        assert!(stretch(&[0.5], 0, 64).is_empty());
        assert_eq!(stretch(&[0.5], 5, 64).len(), 5);
        assert_eq!(stretch(&[0.5; 100], 7, 2).len(), 7);
        assert_eq!(stretch(&[0.0; 300], 1000, 64), vec![0.0; 1000]);
        assert!((wrap(3.0 * PI) - PI).abs() < 1e-12 || (wrap(3.0 * PI) + PI).abs() < 1e-12);
    }
}
