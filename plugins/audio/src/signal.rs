//! Shared audio checks and conversions: input validation, decibels, and the test signals the
//! unit tests use (sines, chords, a DFT frequency estimator).

use commute_sdk::prelude::*;

/// Highest sample rate accepted, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 768_000;
/// Level reported for silence, in dB (floors every level so that embeddings stay finite).
pub const FLOOR_DB: f64 = -100.0;

/// Checks that an input is usable: a sample rate in 1..=768000 Hz and finite samples.
pub fn validate(audio: &AudioRef<'_>) -> Result<()> {
    ensure!(
        (1..=MAX_SAMPLE_RATE).contains(&audio.sample_rate),
        "sample rate must be within 1..={MAX_SAMPLE_RATE} Hz, got {}",
        audio.sample_rate
    );
    if let Some(i) = audio.samples.iter().position(|x| !x.is_finite()) {
        bail!("sample {i} is not finite ({})", audio.samples[i]);
    }
    Ok(())
}

/// `20 log10(amplitude)`, floored at [`FLOOR_DB`].
pub fn amplitude_db(amplitude: f64) -> f64 {
    power_db(amplitude * amplitude)
}

/// `10 log10(power)`, floored at [`FLOOR_DB`].
pub fn power_db(power: f64) -> f64 {
    if power > 0.0 {
        (10.0 * power.log10()).max(FLOOR_DB)
    } else {
        FLOOR_DB
    }
}

/// Checks a frequency-like parameter: finite and within `low..=high`.
pub fn check_range(name: &str, value: f64, low: f64, high: f64) -> Result<()> {
    ensure!(
        value.is_finite() && (low..=high).contains(&value),
        "{name} must be within {low}..={high}, got {value}"
    );
    Ok(())
}

#[cfg(test)]
pub mod tests {
    //! Test signals and measurements shared by the unit tests.

    use super::*;
    use realfft::RealFftPlanner;

    /// A sum of sines `(frequency Hz, amplitude)` lasting `seconds`.
    pub fn sines(partials: &[(f64, f64)], sample_rate: u32, seconds: f64) -> Vec<f32> {
        let n = (seconds * f64::from(sample_rate)).round() as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(sample_rate);
                partials.iter().map(|&(f, a)| a * (std::f64::consts::TAU * f * t).sin()).sum::<f64>() as f32
            })
            .collect()
    }

    /// One sine.
    pub fn sine(hz: f64, amplitude: f64, sample_rate: u32, seconds: f64) -> Vec<f32> {
        sines(&[(hz, amplitude)], sample_rate, seconds)
    }

    /// A harmonic tone (6 partials, amplitude 1/k) per MIDI pitch, summed.
    pub fn chord(pitches: &[u8], sample_rate: u32, seconds: f64) -> Vec<f32> {
        let partials: Vec<(f64, f64)> = pitches
            .iter()
            .flat_map(|&p| {
                let f0 = 440.0 * 2f64.powf((f64::from(p) - 69.0) / 12.0);
                (1..=6).map(move |k| (f0 * f64::from(k), 0.1 / f64::from(k)))
            })
            .collect();
        sines(&partials, sample_rate, seconds)
    }

    /// The frequency of the strongest spectral peak: Hann window, 8× zero-padded real FFT and
    /// parabolic interpolation of the log magnitude (error well below 0.1 % for tones of a second).
    pub fn dominant_hz(samples: &[f32], sample_rate: u32) -> f64 {
        let n = samples.len();
        let size = (n * 8).next_power_of_two();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(size);
        let mut input = fft.make_input_vec();
        for (i, (x, slot)) in samples.iter().zip(&mut input).enumerate() {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
            *slot = f64::from(*x) * w;
        }
        let mut spectrum = fft.make_output_vec();
        fft.process(&mut input, &mut spectrum).expect("fft sizes match");
        let mags: Vec<f64> = spectrum.iter().map(|c| c.norm().max(1e-300).ln()).collect();
        let k = (1..mags.len() - 1).max_by(|&a, &b| mags[a].total_cmp(&mags[b])).expect("bins");
        let (a, b, c) = (mags[k - 1], mags[k], mags[k + 1]);
        let offset = 0.5 * (a - c) / (a - 2.0 * b + c);
        (k as f64 + offset) * f64::from(sample_rate) / size as f64
    }

    /// The magnitude of the Hann-windowed DFT of `samples` at one frequency (amplitude / 2 for a
    /// sine of that frequency).
    pub fn tone_level(samples: &[f32], sample_rate: u32, hz: f64) -> f64 {
        let n = samples.len() as f64;
        let (mut re, mut im, mut total) = (0.0, 0.0, 0.0);
        for (i, &x) in samples.iter().enumerate() {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos();
            let phase = std::f64::consts::TAU * hz * i as f64 / f64::from(sample_rate);
            re += w * f64::from(x) * phase.cos();
            im -= w * f64::from(x) * phase.sin();
            total += w;
        }
        (re * re + im * im).sqrt() / total
    }

    /// Root mean square.
    pub fn rms(samples: &[f32]) -> f64 {
        (samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
    }

    #[test]
    fn validation_rejects_bad_rates_and_non_finite_samples() {
        let ok = [0.0, 0.5];
        assert!(validate(&AudioRef { sample_rate: 22050, samples: &ok }).is_ok());
        assert!(validate(&AudioRef { sample_rate: 0, samples: &ok }).is_err());
        let nan = [0.0, f32::NAN];
        let msg = validate(&AudioRef { sample_rate: 8000, samples: &nan }).expect_err("nan").to_string();
        assert!(msg.contains("sample 1"), "{msg}");
    }

    #[test]
    fn decibels_are_floored() {
        assert!((amplitude_db(0.5) + 6.0206).abs() < 1e-3);
        assert_eq!(power_db(0.0), FLOOR_DB);
        assert_eq!(amplitude_db(1e-9), FLOOR_DB);
    }

    #[test]
    fn the_frequency_estimator_is_accurate() {
        for hz in [61.7, 440.0, 1234.5] {
            let got = dominant_hz(&sine(hz, 0.5, 22050, 1.0), 22050);
            assert!((got / hz - 1.0).abs() < 1e-3, "{hz} Hz estimated as {got}");
        }
    }
}
