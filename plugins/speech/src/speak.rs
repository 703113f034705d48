//! The `speak` render: text → speech audio with eSpeak NG ([`espeak`](crate::espeak)).
//!
//! The voice, rate, pitch, pitch range and word gap are parameters. `rate-variation` and
//! `pitch-variation` draw each item's rate and pitch uniformly from `value ± variation`, from a
//! generator seeded by `seed` and the text itself, so an item always sounds the same whatever
//! else is in the batch or the run. The audio is eSpeak's 16-bit output at 22 050 Hz, scaled to
//! [−1, 1], resampled to `sample-rate` when another rate is asked for.
//!
//! Text with nothing to say (empty or only spaces) and text eSpeak turns into no sound are item
//! errors that name the text.

use crate::espeak::{Espeak, Voice, ASSETS, SAMPLE_RATE, VOICES};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// Parameters of `speak`.
#[params]
#[derive(Debug, Clone)]
pub struct SpeakParams {
    /// The voice: "en-us" (American English) or "en" (British English).
    #[serde(default = "default_voice")]
    pub voice: String,
    /// Speaking rate in words per minute (80–450).
    #[serde(default = "default_rate")]
    #[schemars(range(min = 80, max = 450))]
    pub rate: u32,
    /// Base pitch of the voice (0–100).
    #[serde(default = "default_fifty")]
    #[schemars(range(max = 100))]
    pub pitch: u32,
    /// Pitch range: how much the intonation moves (0–100; 0 is monotone).
    #[serde(default = "default_fifty")]
    #[schemars(range(max = 100))]
    pub range: u32,
    /// Extra pause between words, in units of 10 ms (0–100).
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub word_gap: u32,
    /// Each item's rate is drawn from rate ± this many words per minute (seeded; 0: none).
    #[serde(default)]
    pub rate_variation: u32,
    /// Each item's pitch is drawn from pitch ± this much (seeded; 0: none).
    #[serde(default)]
    pub pitch_variation: u32,
    /// Seed of the variation, mixed with each item's text.
    #[serde(default)]
    pub seed: u64,
    /// Output sample rate in Hz (8000–192000; eSpeak's own is 22050).
    #[serde(default = "default_sample_rate")]
    #[schemars(range(min = 8000, max = 192_000))]
    pub sample_rate: u32,
    /// Longest speech accepted, in seconds (longer is an item error).
    #[serde(default = "default_max_duration_s")]
    #[schemars(range(max = 3600.0), extend("exclusiveMinimum" = 0.0))]
    pub max_duration_s: f64,
}

fn default_voice() -> String {
    "en-us".to_owned()
}
fn default_rate() -> u32 {
    175
}
fn default_fifty() -> u32 {
    50
}
fn default_sample_rate() -> u32 {
    SAMPLE_RATE
}
fn default_max_duration_s() -> f64 {
    120.0
}

impl Default for SpeakParams {
    fn default() -> Self {
        SpeakParams {
            voice: default_voice(),
            rate: default_rate(),
            pitch: default_fifty(),
            range: default_fifty(),
            word_gap: 0,
            rate_variation: 0,
            pitch_variation: 0,
            seed: 0,
            sample_rate: default_sample_rate(),
            max_duration_s: default_max_duration_s(),
        }
    }
}

impl SpeakParams {
    fn check(&self) -> Result<()> {
        ensure!(
            VOICES.contains(&self.voice.as_str()),
            "voice must be one of {VOICES:?}, got {:?}",
            self.voice
        );
        ensure!(
            (80..=450).contains(&self.rate),
            "rate must be within 80..=450 words a minute, got {}",
            self.rate
        );
        ensure!(self.pitch <= 100, "pitch must be within 0..=100, got {}", self.pitch);
        ensure!(self.range <= 100, "range must be within 0..=100, got {}", self.range);
        ensure!(self.word_gap <= 100, "word-gap must be within 0..=100, got {}", self.word_gap);
        ensure!(
            (8000..=192_000).contains(&self.sample_rate),
            "sample-rate must be within 8000..=192000 Hz, got {}",
            self.sample_rate
        );
        ensure!(
            self.max_duration_s > 0.0 && self.max_duration_s <= 3600.0,
            "max-duration-s must be within (0, 3600], got {}",
            self.max_duration_s
        );
        Ok(())
    }

    /// The voice an item is spoken with: the parameters, varied by the seed and the text.
    pub fn voice_for(&self, text: &str) -> Voice {
        let mut state = self.seed ^ fnv1a(text.as_bytes());
        let mut draw = |spread: u32| -> i64 {
            if spread == 0 {
                return 0;
            }
            let width = 2 * u64::from(spread) + 1;
            (splitmix64(&mut state) % width) as i64 - i64::from(spread)
        };
        let rate = (i64::from(self.rate) + draw(self.rate_variation)).clamp(80, 450);
        let pitch = (i64::from(self.pitch) + draw(self.pitch_variation)).clamp(0, 100);
        Voice {
            name: self.voice.clone(),
            rate: rate as i32,
            pitch: pitch as i32,
            range: self.range as i32,
            word_gap: self.word_gap as i32,
        }
    }
}

/// FNV-1a over bytes: the text's part of an item's seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// SplitMix64: the next number of a small seeded generator.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `speak` render.
pub struct Speak {
    espeak: Espeak,
    params: SpeakParams,
}

impl Function for Speak {
    const DOC: &'static str = "Speaks text with eSpeak NG (American or British English): voice, rate, pitch, range and word gap as parameters, seeded per-item variation; deterministic.";
    type Params = SpeakParams;
    const ASSETS: &'static [AssetSpec] = ASSETS;

    fn open(params: SpeakParams, ctx: &Context) -> Result<Self> {
        params.check()?;
        Ok(Speak { espeak: Espeak::open(ctx)?, params })
    }
}

impl Render for Speak {
    type Input<'a> = &'a str;
    type Output = Audio;

    fn render(&mut self, text: &str) -> Result<Audio> {
        ensure!(!text.trim().is_empty(), "nothing to speak: the text is empty");
        let voice = self.params.voice_for(text);
        let max_samples = (self.params.max_duration_s * f64::from(SAMPLE_RATE)).ceil() as usize;
        let pcm = self.espeak.synthesize(text, &voice, max_samples)?;
        let samples: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
        ensure!(samples.iter().any(|&s| s != 0.0), "eSpeak made no sound of the text {text:?}");
        let samples =
            commute_sdk::resample::convert(&samples, SAMPLE_RATE, self.params.sample_rate).into_owned();
        Ok(Audio { sample_rate: self.params.sample_rate, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variation_is_seeded_by_the_text_and_stays_in_range() {
        let p = SpeakParams { rate_variation: 40, pitch_variation: 20, seed: 7, ..SpeakParams::default() };
        let a = p.voice_for("The cat sat.");
        assert_eq!(a, p.voice_for("The cat sat."), "same text, same voice");
        let voices: Vec<Voice> = (0..50).map(|i| p.voice_for(&format!("sentence {i}"))).collect();
        assert!(voices.iter().all(|v| (135..=215).contains(&v.rate) && (30..=70).contains(&v.pitch)));
        let rates: std::collections::HashSet<i32> = voices.iter().map(|v| v.rate).collect();
        assert!(rates.len() > 20, "rates vary: {rates:?}");
        let other = SpeakParams { seed: 8, ..p.clone() };
        assert_ne!(
            (0..10).map(|i| p.voice_for(&i.to_string()).rate).collect::<Vec<_>>(),
            (0..10).map(|i| other.voice_for(&i.to_string()).rate).collect::<Vec<_>>(),
            "the seed matters"
        );
        let plain = SpeakParams::default().voice_for("anything");
        assert_eq!((plain.rate, plain.pitch, plain.range), (175, 50, 50));
    }

    #[test]
    fn bad_parameters_are_refused() {
        for bad in [
            SpeakParams { voice: "klingon".into(), ..SpeakParams::default() },
            SpeakParams { rate: 20, ..SpeakParams::default() },
            SpeakParams { pitch: 101, ..SpeakParams::default() },
            SpeakParams { sample_rate: 100, ..SpeakParams::default() },
            SpeakParams { max_duration_s: f64::NAN, ..SpeakParams::default() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        assert!(SpeakParams::default().check().is_ok());
    }
}
