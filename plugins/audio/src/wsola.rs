//! Time stretching without changing pitch: WSOLA (waveform-similarity overlap-add, Verhelst &
//! Roelands 1993).
//!
//! Output frames of `frame` samples (periodic Hann window, 50 % overlap, so the windows sum to
//! exactly 1) are taken from the input around the position that the stretch maps them to. Each
//! frame may move up to `tolerance` samples from that nominal position: the offset chosen is the
//! one whose input segment best matches (normalised cross-correlation) the natural continuation
//! of the previous frame, so periodic waveforms join in phase and keep their pitch. The input is
//! padded with zeros so the first and last samples are reconstructed at full level.
//!
//! Artefacts: transients can be doubled (stretching) or dropped (compressing) when they fall
//! between frames; polyphonic or noisy material, where no offset matches every partial at once,
//! gets a slight roughness ("phasiness") at the frame rate; timing jitters by up to `tolerance`.

/// Stretches `x` to exactly `target_len` samples. `frame` is even (at least 4); `tolerance` is
/// the largest shift of a frame from its nominal position, in samples (at most `frame / 2`).
pub fn stretch(x: &[f32], target_len: usize, frame: usize, tolerance: usize) -> Vec<f32> {
    if x.is_empty() || target_len == 0 {
        return vec![0.0; target_len];
    }
    let frame = (frame.max(4) / 2) * 2;
    let tolerance = tolerance.min(frame / 2);
    let hop_out = frame / 2;
    let alpha = target_len as f64 / x.len() as f64;
    let hop_in = hop_out as f64 / alpha;

    // Frame k starts at output k·hop_out (centre ↔ output sample k·hop_out) and reads the input
    // around k·hop_in; in the padded input, original sample j sits at j + front.
    let front = frame / 2 + tolerance;
    let last_frame = (frame / 2 + target_len - 1) / hop_out;
    let back = (last_frame as f64 * hop_in).ceil() as usize + 2 * tolerance + 2 * frame + hop_out;
    let mut padded = vec![0.0f32; front + back.max(x.len())];
    padded[front..front + x.len()].copy_from_slice(x);
    let max_start = padded.len() - frame;

    let window: Vec<f32> = (0..frame)
        .map(|i| (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / frame as f64).cos()) as f32)
        .collect();
    let mut out = vec![0.0f32; last_frame * hop_out + frame];
    let mut previous = tolerance;
    for k in 0..=last_frame {
        let nominal = ((k as f64 * hop_in).round() as usize + tolerance).min(max_start);
        let start = if k == 0 {
            nominal
        } else {
            let target = (previous + hop_out).min(max_start);
            best_offset(&padded, target, nominal, tolerance, frame, max_start)
        };
        let segment = &padded[start..start + frame];
        let slot = &mut out[k * hop_out..k * hop_out + frame];
        for ((o, s), w) in slot.iter_mut().zip(segment).zip(&window) {
            *o += s * w;
        }
        previous = start;
    }
    out.drain(..frame / 2);
    out.truncate(target_len);
    out
}

/// Samples skipped between terms of the correlation sums (halves the search cost; the frames
/// are far longer than the periods that matter).
const STRIDE: usize = 2;

/// The start within `nominal ± tolerance` whose segment best matches the one at `target`.
fn best_offset(
    x: &[f32],
    target: usize,
    nominal: usize,
    tolerance: usize,
    frame: usize,
    max: usize,
) -> usize {
    let reference = &x[target..target + frame];
    let low = nominal.saturating_sub(tolerance);
    let high = (nominal + tolerance).min(max);
    let mut best = (f64::NEG_INFINITY, nominal);
    for start in low..=high {
        let candidate = &x[start..start + frame];
        let (mut dot, mut energy) = (0.0f32, 0.0f32);
        for (a, b) in candidate.iter().zip(reference).step_by(STRIDE) {
            dot += a * b;
            energy += a * a;
        }
        let score = f64::from(dot) / (f64::from(energy).sqrt() + 1e-9);
        if score > best.0 {
            best = (score, start);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::tests::{dominant_hz, rms, sine};

    #[test]
    fn stretching_keeps_pitch_and_level_and_hits_the_length() {
        let x = sine(330.0, 0.5, 22050, 1.0);
        for factor in [0.5, 0.8, 1.0, 1.25, 2.0, 4.0] {
            let len = (x.len() as f64 * factor).round() as usize;
            let y = stretch(&x, len, 1024, 256);
            assert_eq!(y.len(), len);
            let hz = dominant_hz(&y, 22050);
            assert!((hz / 330.0 - 1.0).abs() < 0.005, "×{factor}: {hz} Hz");
            let level = 20.0 * (rms(&y[len / 10..len * 9 / 10]) / rms(&x)).log10();
            assert!(level.abs() < 0.5, "×{factor}: level changed by {level} dB");
        }
    }

    #[test]
    fn identity_stretch_reproduces_the_input() {
        let x = sine(200.0, 0.5, 8000, 0.5);
        let y = stretch(&x, x.len(), 256, 64);
        let err = x.iter().zip(&y).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 1e-4, "{err}");
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(stretch(&[], 3, 64, 16), [0.0; 3]);
        assert!(stretch(&[0.5], 0, 64, 16).is_empty());
        assert_eq!(stretch(&[0.5], 5, 64, 16).len(), 5);
        assert_eq!(stretch(&[0.5; 100], 7, 2, 100).len(), 7);
    }
}
