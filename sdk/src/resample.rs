//! Band-limited resampling by any ratio: windowed-sinc interpolation (Kaiser window, β = 8,
//! 24 zero crossings a side) read from a finely sampled kernel table, in the manner of Smith's
//! bandlimited interpolation.
//!
//! Output sample `m` is the input evaluated at time `m / ratio` (in input samples) through a
//! low-pass kernel whose cutoff is 0.94 × the lower of the two Nyquist frequencies, so
//! downsampling is anti-aliased and upsampling adds no images. Samples outside the input count as
//! zero.
//!
//! Rate conversions between integer rates ([`convert`], e.g. 44 100 → 22 050 or 48 000 → 22 050
//! Hz) use an exact polyphase filter bank computed once per call (one filter per output phase,
//! plain dot products); arbitrary ratios ([`resample`], e.g. the irrational ones of
//! `pitch-shift`) read the kernel from a table with linear interpolation.

use std::borrow::Cow;
use std::sync::OnceLock;

/// Zero crossings of the sinc on each side of the centre.
const ZEROS: usize = 24;
/// Table entries per zero crossing.
const RESOLUTION: usize = 512;
/// Kaiser window shape parameter.
const BETA: f64 = 8.0;
/// Cutoff as a share of the lower Nyquist frequency.
const ROLLOFF: f64 = 0.94;

/// The right half of the windowed sinc, sampled `RESOLUTION` times per zero crossing, with a
/// trailing zero so that linear interpolation never reads past the end.
fn kernel() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let n = ZEROS * RESOLUTION;
        let norm = bessel_i0(BETA);
        let mut table: Vec<f32> = (0..n)
            .map(|i| {
                let u = i as f64 / RESOLUTION as f64;
                let r = u / ZEROS as f64;
                let window = bessel_i0(BETA * (1.0 - r * r).max(0.0).sqrt()) / norm;
                (sinc(u) * window) as f32
            })
            .collect();
        table.push(0.0);
        table
    })
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// The modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..200 {
        term *= (half / k as f64).powi(2);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Resamples by `ratio` = output rate / input rate: the output has `round(len × ratio)` samples.
/// A non-positive or non-finite ratio gives an empty output.
pub fn resample(samples: &[f32], ratio: f64) -> Vec<f32> {
    if !(ratio.is_finite() && ratio > 0.0) || samples.is_empty() {
        return Vec::new();
    }
    let out_len = (samples.len() as f64 * ratio).round() as usize;
    let table = kernel();
    // The kernel in input samples: scale · sinc(scale · x) · window, half-width ZEROS / scale.
    let scale = ratio.min(1.0) * ROLLOFF;
    let half_width = ZEROS as f64 / scale;
    let step = scale * RESOLUTION as f64;
    let last = samples.len() as isize - 1;
    let mut out = Vec::with_capacity(out_len);
    for m in 0..out_len {
        let t = m as f64 / ratio;
        let first = ((t - half_width).ceil() as isize).max(0);
        let end = ((t + half_width).floor() as isize).min(last);
        let mut acc = 0.0f64;
        let mut j = first;
        while j <= end {
            let pos = (t - j as f64).abs() * step;
            let i = pos as usize;
            if i < table.len() - 1 {
                let frac = (pos - i as f64) as f32;
                let h = table[i] + frac * (table[i + 1] - table[i]);
                acc += f64::from(h * samples[j as usize]);
            }
            j += 1;
        }
        out.push((acc * scale) as f32);
    }
    out
}

/// The windowed sinc at `u` zero crossings from the centre.
fn windowed_sinc(u: f64) -> f64 {
    if u >= ZEROS as f64 {
        return 0.0;
    }
    let r = u / ZEROS as f64;
    sinc(u) * bessel_i0(BETA * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(BETA)
}

/// Largest polyphase bank (phases × taps) built; larger conversions use [`resample`].
const MAX_BANK: usize = 1 << 21;

/// Converts from one sample rate to another (output length `round(len × to / from)`); borrows
/// the input when the rates are equal.
pub fn convert(samples: &[f32], from_rate: u32, to_rate: u32) -> Cow<'_, [f32]> {
    if from_rate == to_rate || from_rate == 0 || to_rate == 0 {
        return Cow::Borrowed(samples);
    }
    let g = gcd(from_rate, to_rate);
    let (up, down) = ((to_rate / g) as usize, (from_rate / g) as usize);
    let ratio = f64::from(to_rate) / f64::from(from_rate);
    let taps = 2 * (ZEROS as f64 / (ratio.min(1.0) * ROLLOFF)).ceil() as usize;
    if up.saturating_mul(taps) <= MAX_BANK {
        Cow::Owned(polyphase(samples, up, down, taps))
    } else {
        Cow::Owned(resample(samples, ratio))
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Resamples by `up / down` with one precomputed filter of `taps` coefficients per output phase.
fn polyphase(x: &[f32], up: usize, down: usize, taps: usize) -> Vec<f32> {
    if x.is_empty() {
        return Vec::new();
    }
    let ratio = up as f64 / down as f64;
    let scale = ratio.min(1.0) * ROLLOFF;
    let left = taps / 2 - 1;
    // Output m sits at input time (m·down)/up = i + p/up; tap q reads input i − left + q, at
    // distance p/up − (q − left) from that time.
    let bank: Vec<f32> = (0..up)
        .flat_map(|p| {
            let frac = p as f64 / up as f64;
            (0..taps).map(move |q| {
                let distance = (frac - (q as f64 - left as f64)).abs();
                (scale * windowed_sinc(distance * scale)) as f32
            })
        })
        .collect();
    let mut padded = vec![0.0f32; left + x.len() + taps + 1];
    padded[left..left + x.len()].copy_from_slice(x);
    let out_len = (x.len() as f64 * ratio).round() as usize;
    (0..out_len)
        .map(|m| {
            let position = m as u64 * down as u64;
            let (i, p) = ((position / up as u64) as usize, (position % up as u64) as usize);
            let coefficients = &bank[p * taps..(p + 1) * taps];
            let segment = padded.get(i..i + taps).unwrap_or(&[]);
            coefficients.iter().zip(segment).map(|(c, v)| c * v).sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sine of `hz` at `amplitude`, `seconds` long.
    fn sine(hz: f64, amplitude: f64, rate: u32, seconds: f64) -> Vec<f32> {
        sines(&[(hz, amplitude)], rate, seconds)
    }

    /// A sum of sines, `(hz, amplitude)` each.
    fn sines(partials: &[(f64, f64)], rate: u32, seconds: f64) -> Vec<f32> {
        let n = (seconds * f64::from(rate)).round() as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                partials.iter().map(|&(f, a)| a * (std::f64::consts::TAU * f * t).sin()).sum::<f64>() as f32
            })
            .collect()
    }

    fn rms(samples: &[f32]) -> f64 {
        (samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
    }

    /// Largest error against an ideal sine, away from the edges.
    fn max_error(got: &[f32], hz: f64, rate: u32) -> f32 {
        let ideal = sine(hz, 0.5, rate, got.len() as f64 / f64::from(rate));
        let edge = got.len() / 10;
        got[edge..got.len() - edge].iter().zip(&ideal[edge..]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn rate_conversion_reproduces_a_sine() {
        for (from, to, hz) in [(16000, 48000, 1000.0), (44100, 22050, 440.0), (22050, 16000, 3000.0)] {
            let x = sine(hz, 0.5, from, 0.5);
            let y = convert(&x, from, to);
            assert_eq!(y.len(), (x.len() as f64 * f64::from(to) / f64::from(from)).round() as usize);
            let err = max_error(&y, hz, to);
            // Within 2e-3 of the ideal sine at the new rate: right frequency, phase and gain.
            assert!(err < 2e-3, "{from} -> {to} Hz at {hz} Hz: error {err}");
        }
    }

    #[test]
    fn the_polyphase_bank_agrees_with_the_table_resampler() {
        // Harmonic tones on A2, C4 and E5 (6 partials each, amplitude 1/k).
        let partials: Vec<(f64, f64)> = [45.0f64, 60.0, 76.0]
            .iter()
            .flat_map(|p| {
                let f0 = 440.0 * 2f64.powf((p - 69.0) / 12.0);
                (1..=6).map(move |k| (f0 * f64::from(k), 0.1 / f64::from(k)))
            })
            .collect();
        let x = sines(&partials, 48000, 0.3);
        for (from, to) in [(48000, 22050), (48000, 44100), (16000, 22050), (44100, 22050)] {
            let y = if from == 48000 { x.clone() } else { resample(&x, f64::from(from) / 48000.0) };
            let a = convert(&y, from, to);
            let b = resample(&y, f64::from(to) / f64::from(from));
            assert_eq!(a.len(), b.len());
            let err = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
            assert!(err < 1e-4, "{from} -> {to}: differ by {err}");
        }
        assert_eq!(gcd(44100, 22050), 22050);
    }

    #[test]
    fn downsampling_removes_what_no_longer_fits() {
        // 15 kHz cannot exist at 22.05 kHz: it must vanish, not alias to 7.05 kHz.
        let x = sine(15000.0, 0.5, 44100, 0.5);
        let y = resample(&x, 0.5);
        let inner = &y[y.len() / 10..y.len() * 9 / 10];
        assert!(rms(inner) < 5e-4, "aliased residue {}", rms(inner));
    }

    #[test]
    fn dc_passes_with_unit_gain_and_edges_are_safe() {
        let y = resample(&[0.25; 2000], 0.7);
        assert!(y[600..800].iter().all(|v| (v - 0.25).abs() < 1e-3));
        assert!(resample(&[], 2.0).is_empty());
        assert_eq!(resample(&[0.5], 2.0).len(), 2);
        assert!(resample(&[0.5], 0.1).is_empty());
        assert!(resample(&[0.5; 4], f64::NAN).is_empty());
        assert!(matches!(convert(&[0.5; 4], 8000, 8000), Cow::Borrowed(_)));
    }
}
