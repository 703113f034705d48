//! Audio as the speech models read it: checked (a rate they take, samples, finite values), then
//! resampled to 16 kHz.

use commute_sdk::prelude::*;
use std::borrow::Cow;

/// The sample rate every model of the plugin reads.
pub const MODEL_RATE: u32 = 16_000;

/// The lowest and highest sample rates an item may have.
const RATES: std::ops::RangeInclusive<u32> = 1000..=384_000;

/// An item's samples at [`MODEL_RATE`], or an error naming what is wrong with it: a rate outside
/// 1–384 kHz, no samples, or a sample that is not a finite number.
pub fn at_model_rate(audio: AudioRef<'_>) -> Result<Cow<'_, [f32]>> {
    ensure!(
        RATES.contains(&audio.sample_rate),
        "sample rate {} Hz: the speech models take 1000–384000 Hz (resampled to 16000)",
        audio.sample_rate
    );
    ensure!(!audio.samples.is_empty(), "the audio is empty (0 samples)");
    if let Some(i) = audio.samples.iter().position(|s| !s.is_finite()) {
        bail!("sample {i} is not a finite number");
    }
    Ok(commute_sdk::resample::convert(audio.samples, audio.sample_rate, MODEL_RATE))
}
