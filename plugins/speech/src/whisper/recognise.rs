//! The `recognise` render: speech → text with Whisper tiny.en, greedy decoding without timestamps
//! ([`model`](super::model)).
//!
//! Audio at any rate from 1 kHz is resampled to 16 kHz. Empty audio, non-finite samples, audio
//! shorter than 12.5 ms or longer than 30 s are item errors. Silence is not an error: the model
//! says what it hears, often nothing (an empty text).

use super::model::{Whisper, MAX_TOKENS};
use super::ASSETS;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// Parameters of `recognise`.
#[params]
#[derive(Debug, Clone)]
pub struct RecogniseParams {
    /// Most tokens a transcript may have (1–224).
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 1, max = 224))]
    pub max_tokens: usize,
}

fn default_max_tokens() -> usize {
    MAX_TOKENS
}

impl Default for RecogniseParams {
    fn default() -> Self {
        RecogniseParams { max_tokens: MAX_TOKENS }
    }
}

/// The `recognise` render.
pub struct Recognise {
    model: Whisper,
    max_tokens: usize,
}

impl Function for Recognise {
    const DOC: &'static str = "Transcribes English speech with Whisper tiny.en (candle): one window of up to 30 s, greedy decoding without timestamps.";
    type Params = RecogniseParams;
    const ASSETS: &'static [AssetSpec] = ASSETS;

    fn open(params: RecogniseParams, ctx: &Context) -> Result<Self> {
        ensure!(
            (1..=MAX_TOKENS).contains(&params.max_tokens),
            "max-tokens must be within 1..={MAX_TOKENS}, got {}",
            params.max_tokens
        );
        Ok(Recognise { model: Whisper::open(ctx)?, max_tokens: params.max_tokens })
    }
}

impl Render for Recognise {
    type Input<'a> = AudioRef<'a>;
    type Output = String;

    fn render(&mut self, audio: AudioRef<'_>) -> Result<String> {
        self.model.transcribe(audio, self.max_tokens)
    }
}
