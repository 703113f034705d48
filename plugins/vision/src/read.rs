//! The `read` render: the text of a one-line image, by the PP-OCRv4 recognizer and CTC greedy
//! decoding with the model's own character list.
//!
//! The image is prepared as in [`line_input`]; every time step of the padded
//! line is decoded ([`ctc`](crate::ctc)), and surrounding spaces are trimmed. The recognizer
//! reads Chinese and Latin script, digits and punctuation (6,623 characters); it expects one
//! horizontal line of text, cropped with a little margin.

use crate::ctc::Charset;
use crate::line_input;
use crate::recognizer::{Head, Options, Recognizer, REC_MODEL};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// Parameters of `read`.
#[params]
#[derive(Debug, Clone)]
pub struct ReadParams {
    /// Lines run through the model at once (1–256; by default 1 on a CPU, where larger batches
    /// measured slower per line, and 32 on CUDA). Lines are grouped by padded width, so this
    /// changes speed, never results.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// The narrowest padded line in pixels (32–4800, rounded up to a multiple of 32). The default,
    /// 320, is the width the model was trained at; narrower runs short words up to 3× faster but
    /// changes results slightly (the model's attention also sees the padding).
    #[serde(default = "default_min_width")]
    pub min_width: usize,
}

pub(crate) fn default_min_width() -> usize {
    line_input::MIN_WIDTH
}

/// The `read` render.
pub struct Read {
    recognizer: Recognizer,
    charset: Charset,
}

impl Function for Read {
    const DOC: &'static str =
        "Reads the text of a one-line image with the PP-OCRv4 recognizer (CTC greedy decoding over its 6,623 characters).";
    type Params = ReadParams;
    const ASSETS: &'static [AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME, REC_MODEL];
    // ONNX Runtime's CUDA execution provider (with the `cuda` feature).
    const CUDA: bool = true;

    fn open(params: ReadParams, ctx: &Context) -> Result<Self> {
        let options = Options::new(ctx, params.batch_size, params.min_width)?;
        let recognizer = Recognizer::open(ctx, Head::Probabilities, options)?;
        let charset = Charset::from_lines(&recognizer.characters()?);
        Ok(Read { recognizer, charset })
    }
}

impl Read {
    fn text(&self, sequence: &crate::recognizer::Sequence) -> Result<String> {
        let text = self.charset.decode(&sequence.values, sequence.channels)?;
        Ok(text.trim().to_owned())
    }
}

impl Render for Read {
    type Input<'a> = ImageRef<'a>;
    type Output = String;

    fn render(&mut self, image: ImageRef<'_>) -> Result<String> {
        self.render_batch(vec![image]).pop().unwrap_or_else(|| Err(anyhow!("no result")))
    }

    fn render_batch(&mut self, images: Vec<ImageRef<'_>>) -> Vec<Result<String>> {
        let sequences = self.recognizer.run(&images);
        sequences.into_iter().map(|s| s.and_then(|s| self.text(&s))).collect()
    }
}
