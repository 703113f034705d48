//! `paraphrase-minilm-states`: paraphrase-MiniLM-L3-v2 ([`paraphrase`](crate::paraphrase)) cut at
//! a layer — a text rendered as its token states after layer k, a `T × 384` tensor with one row
//! per token, `[CLS]` and `[SEP]` included, padding excluded, cut at the model's 128 tokens.
//!
//! The counterpart of [`minilm-states`](crate::minilm::resume): the same tokenizer (MiniLM's
//! WordPiece), so that for a text of up to 128 tokens the two models' states have the same rows,
//! token for token, and a map fitted between them can feed `minilm-resume` (stitching). The mean of
//! its rows is what `paraphrase-minilm` gives at that `layer`.

use crate::minilm::default_batch_size;
use crate::minilm::tokenize::TOKENIZER;
use crate::onnx_encoder::OnnxText;
use crate::paraphrase::{open_model, LAYERS, MODEL};
use commute_sdk::prelude::*;
use commute_sdk::{AssetSpec, Tensor};

/// Parameters of `paraphrase-minilm-states`.
#[params]
#[derive(Debug, Clone)]
pub struct ParaphraseStatesParams {
    /// Where the model is cut: 0 = the token embeddings (after their layer norm), k = after
    /// transformer block k, 3 = the model's last token states.
    #[schemars(range(min = 0, max = 3))]
    pub layer: usize,
    /// Most texts per model call (1–4096).
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 4096))]
    pub batch_size: usize,
}

/// The `paraphrase-minilm-states` render: text → its token states after layer `layer`.
pub struct ParaphraseStates(OnnxText);

impl Function for ParaphraseStates {
    const DOC: &'static str = "paraphrase-MiniLM-L3-v2 cut after `layer`: a text's token states there, a T × 384 tensor (MiniLM's WordPiece tokens, cut at 128; the rows of minilm-states, for a map between the models).";
    const ASSETS: &'static [AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME, MODEL, TOKENIZER];
    type Params = ParaphraseStatesParams;

    fn open(p: ParaphraseStatesParams, ctx: &Context) -> Result<Self> {
        ensure!(p.layer <= LAYERS, "layer must be within 0..={LAYERS}, got {}", p.layer);
        Ok(ParaphraseStates(open_model(&[p.layer], false, p.batch_size, ctx)?))
    }
}

impl Render for ParaphraseStates {
    type Input<'a> = &'a str;
    type Output = Tensor;

    fn render(&mut self, text: &str) -> Result<Tensor> {
        self.render_batch(vec![text]).pop().unwrap_or_else(|| Err(anyhow!("no result for the text")))
    }

    fn render_batch(&mut self, texts: Vec<&str>) -> Vec<Result<Tensor>> {
        let dim = self.0.dim();
        self.0
            .token_states(&texts)
            .into_iter()
            .map(|s| s.map(|data| Tensor { shape: vec![data.len() / dim, dim], data }))
            .collect()
    }
}
