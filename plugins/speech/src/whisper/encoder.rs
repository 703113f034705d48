//! The `whisper` encoder: Whisper tiny.en's encoder states (after its final layer norm), averaged
//! over the 20 ms positions that hold the item's audio — the padding to 30 s is left out.

use super::model::Whisper;
use super::ASSETS;
use candle_core::{IndexOp, D};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// Parameters of `whisper` (none yet: the encoder's last states, averaged).
#[params]
#[derive(Debug, Clone, Default)]
pub struct WhisperParams {}

/// The `whisper` encoder.
pub struct WhisperEncoder {
    model: Whisper,
    dim: usize,
}

impl Function for WhisperEncoder {
    const DOC: &'static str = "Whisper tiny.en's encoder states (384 dims) averaged over the positions holding the audio (up to 30 s, any rate).";
    type Params = WhisperParams;
    const ASSETS: &'static [AssetSpec] = ASSETS;

    fn open(_params: WhisperParams, ctx: &Context) -> Result<Self> {
        let model = Whisper::open(ctx)?;
        let dim = model.width();
        Ok(WhisperEncoder { model, dim })
    }
}

impl Encoder for WhisperEncoder {
    type Input<'a> = AudioRef<'a>;

    fn dim(&self) -> usize {
        self.dim
    }

    fn encode(&mut self, audio: AudioRef<'_>) -> Result<Vec<f32>> {
        let features = self.model.features(audio)?;
        let states = self.model.encode(&features)?;
        // The second convolution halves the frame rate: position j reads frames 2j − 1 … 2j + 1.
        let positions = features.content_frames.div_ceil(2).max(1);
        let mean = states.i((0, ..positions))?.mean(D::Minus2)?;
        Ok(mean.to_vec1::<f32>()?)
    }
}
