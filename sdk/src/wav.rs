//! WAV files ↔ [`Audio`]: the workspace's one reader and writer (the host's `commute call` and run
//! inputs, the audio plugin's `wav-files` source). Reading never panics, whatever the bytes.

use crate::Audio;

/// The largest WAV file [`read`] decodes: 2 GiB, far above any clip an encoder reads.
pub const MAX_BYTES: usize = 2 << 30;

/// The highest sample rate [`read`] accepts, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 768_000;

/// Why WAV bytes could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// The bytes are not a WAV file hound can decode (bad magic, truncated, unsupported format).
    #[error("not a readable WAV file: {0}")]
    Malformed(#[from] hound::Error),
    /// The header's sample rate is 0 or above [`MAX_SAMPLE_RATE`].
    #[error("not a readable WAV file: the header declares a sample rate of {0} Hz (1 to {MAX_SAMPLE_RATE} Hz are read)")]
    SampleRate(u32),
    /// The header says 0 channels.
    #[error("not a readable WAV file: the header declares 0 channels")]
    ZeroChannels,
    /// Integer samples of more than 32 bits (or of 0).
    #[error("not a readable WAV file: {0} bits per integer sample (1 to 32 are read)")]
    Bits(u16),
    /// A float sample is NaN or infinite.
    #[error("the WAV file holds a NaN or infinite sample at frame {0}")]
    NonFinite(usize),
    /// Larger than [`MAX_BYTES`].
    #[error("WAV file of {bytes} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Size of the input.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// Decodes a WAV file's bytes into mono audio: channels averaged, integer samples scaled to
/// [-1, 1) (in `f64`, then rounded to `f32`), float samples as they are.
///
/// # Errors
/// [`WavError`] for anything hound cannot decode, a header without a usable rate, channels or
/// sample width, or a non-finite float sample.
pub fn read(bytes: &[u8]) -> Result<Audio, WavError> {
    if bytes.len() > MAX_BYTES {
        return Err(WavError::TooLarge { bytes: bytes.len(), limit: MAX_BYTES });
    }
    let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes))?;
    let spec = reader.spec();
    if !(1..=MAX_SAMPLE_RATE).contains(&spec.sample_rate) {
        return Err(WavError::SampleRate(spec.sample_rate));
    }
    if spec.channels == 0 {
        return Err(WavError::ZeroChannels);
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            if !(1..=32).contains(&spec.bits_per_sample) {
                return Err(WavError::Bits(spec.bits_per_sample));
            }
            let scale = 1.0 / 2f64.powi(i32::from(spec.bits_per_sample) - 1);
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| (f64::from(v) * scale) as f32))
                .collect::<Result<_, _>>()?
        }
    };
    let channels = usize::from(spec.channels);
    if let Some(at) = interleaved.iter().position(|x| !x.is_finite()) {
        return Err(WavError::NonFinite(at / channels));
    }
    let samples = if channels == 1 {
        interleaved
    } else {
        interleaved.chunks_exact(channels).map(|f| f.iter().sum::<f32>() / channels as f32).collect()
    };
    Ok(Audio { sample_rate: spec.sample_rate, samples })
}

/// Encodes mono audio as a 32-bit float WAV file (exact: [`read`] gives the samples back).
///
/// # Errors
/// hound's, for a sample rate of 0.
pub fn write(audio: &Audio) -> Result<Vec<u8>, WavError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec)?;
    for &s in &audio.samples {
        writer.write_sample(s)?;
    }
    writer.finalize()?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_wav(channels: u16, bits: u16, rate: u32, frames: &[i32]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cursor = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for &s in frames {
            if bits <= 16 {
                w.write_sample(s as i16).unwrap();
            } else {
                w.write_sample(s).unwrap();
            }
        }
        w.finalize().unwrap();
        cursor.into_inner()
    }

    #[test]
    fn float_audio_round_trips_exactly() {
        let audio = Audio { sample_rate: 8000, samples: vec![0.0, 0.5, -0.25, 1e-7] };
        assert_eq!(read(&write(&audio).unwrap()).unwrap(), audio);
    }

    #[test]
    fn integer_stereo_is_scaled_and_mixed_to_mono() {
        // 16 bits: 16384 is 0.5; frames (0.5, -0.5) and (0.5, 0.5).
        let audio = read(&int_wav(2, 16, 22_050, &[16384, -16384, 16384, 16384])).unwrap();
        assert_eq!(audio.sample_rate, 22_050);
        assert_eq!(audio.samples, vec![0.0, 0.5]);
    }

    #[test]
    fn bad_headers_and_bytes_are_errors_never_panics() {
        let mut bytes = write(&Audio { sample_rate: 8000, samples: vec![0.0, 0.5] }).unwrap();
        bytes[24..32].copy_from_slice(&[0; 8]); // sample rate and byte rate
        assert!(matches!(read(&bytes), Err(WavError::SampleRate(0))));
        let nan = write(&Audio { sample_rate: 8000, samples: vec![0.0, f32::NAN] }).unwrap();
        assert!(matches!(read(&nan), Err(WavError::NonFinite(1))));
        let good = write(&Audio { sample_rate: 8000, samples: vec![0.1; 50] }).unwrap();
        for len in 0..good.len() {
            let _ = read(&good[..len]); // an error or audio, never a panic
        }
    }
}
