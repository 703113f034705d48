//! `minilm`: all-MiniLM-L6-v2 sentence embeddings — 384 floats per text, the mean of the token
//! vectors over the attention mask scaled to unit length, as sentence-transformers computes them —
//! on ONNX Runtime (int8 weights, the default) or candle (fp32 weights, pure Rust, CUDA-capable).
//!
//! A batch is tokenized, sorted by token count, cut into sub-batches of at most `batch-size` texts
//! that waste little on padding ([`batch`]), each padded to its own longest text, run, and put back
//! in input order. Texts longer than 256 tokens are cut at the end; the empty text is encoded as
//! `[CLS] [SEP]`, which is what sentence-transformers gives for it.
//!
//! Threads: `ctx.threads` in all. They tokenize in parallel, then run sub-batches side by side —
//! single-threaded ONNX Runtime sessions ([`onnx`]) or one candle forward pass per thread
//! ([`candle`]) — which beats splitting each small sub-batch across threads.
//!
//! `layer` reads an earlier layer the same way (its token states mean-pooled over the mask and
//! scaled to unit length): 0 is the token embeddings after their layer norm, k the output of
//! transformer block k. The ONNX backend reads that tensor of the graph (made an output), the
//! candle backend builds the model up to that block; the two agree as closely at every layer as at
//! the output. `layers` reads several layers in one forward pass, their vectors side by side: a
//! layer sweep (`layers = "all"` on a node) costs one pass, not one per layer.
//!
//! `minilm-static` ([`static_table`]) embeds a word by the model's input token table alone, and
//! `minilm-states` / `minilm-resume` ([`resume`]) are the model cut at a layer: the token states
//! there, and the rest of the model run on given states.

pub mod batch;
pub mod candle;
pub mod onnx;
pub mod pooling;
pub mod resume;
pub mod static_table;
pub mod tokenize;

use batch::{embed_texts, TokenBatch};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use rayon::prelude::*;
use tokenize::Tokenizer;

/// Embedding dimension of all-MiniLM-L6-v2.
pub const DIM: usize = 384;

/// Which runtime runs the model.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// ONNX Runtime on the int8 model: fastest on a CPU; cosine with the fp32 model 0.9995 on
    /// average, at least 0.998 for sentences, 0.996 for the empty text or a single word.
    #[default]
    Onnx,
    /// candle on the fp32 weights: pure Rust, on a CPU or a CUDA device; matches
    /// sentence-transformers to ~3e-7 per component.
    Candle,
}

/// Parameters of `minilm`.
#[params]
#[derive(Debug, Clone)]
pub struct MinilmParams {
    /// Runtime: `onnx` (int8 weights, ONNX Runtime) or `candle` (fp32 weights, pure Rust).
    #[serde(default)]
    pub backend: Backend,
    /// Most texts per model call (1–4096). A batch is sorted by length and cut into sub-batches of
    /// up to this size, each padded to its longest text.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// The layer whose token states are pooled: 0 = the token embeddings (after their layer
    /// norm), k = after transformer block k, 6 = the model's output (the default, the sentence
    /// embedding).
    #[serde(default = "default_layer")]
    #[schemars(range(min = 0, max = 6))]
    pub layer: usize,
    /// Several layers in one forward pass, in place of `layer`: each row is their vectors one
    /// after another, in this order (384 floats each), each what `layer` = that layer gives. A
    /// node's `layers = "all"` sweep reads its layers this way.
    #[serde(default)]
    #[schemars(inner(range(min = 0, max = 6)))]
    pub layers: Option<Vec<usize>>,
    /// Scale each vector to unit length (the default, as the model's sentence embedding is);
    /// `false`: the plain mean of the token states, which a linear map of `minilm-states` rows
    /// commutes with (a stitch's operator nodes).
    #[serde(default = "default_normalize")]
    pub normalize: bool,
}

fn default_normalize() -> bool {
    true
}

/// Transformer blocks of all-MiniLM-L6-v2.
pub const LAYERS: usize = 6;

fn default_layer() -> usize {
    LAYERS
}

pub(crate) fn default_batch_size() -> usize {
    32
}

enum Model {
    Onnx(onnx::OnnxModel),
    Candle(Box<candle::CandleModel>),
}

/// The `minilm` encoder.
pub struct Minilm {
    tokenizer: Tokenizer,
    model: Model,
    batch_size: usize,
    /// 384 per layer read.
    dim: usize,
    /// `ctx.threads` threads: tokenizing, and running sub-batches side by side.
    pool: rayon::ThreadPool,
}

impl Function for Minilm {
    const DOC: &'static str = "all-MiniLM-L6-v2 sentence embeddings (384-d, mean-pooled, unit length unless normalize = false) on ONNX Runtime (int8) or candle (fp32).";
    type Params = MinilmParams;
    const ASSETS: &'static [AssetSpec] =
        &[commute_sdk::onnx::ONNXRUNTIME, onnx::MODEL_INT8, candle::MODEL_F32, tokenize::TOKENIZER];
    // Both backends honour `cuda:N` (with the `cuda` feature).
    const CUDA: bool = true;

    fn open(params: MinilmParams, ctx: &Context) -> Result<Self> {
        ensure!(
            (1..=4096).contains(&params.batch_size),
            "batch-size must be within 1..=4096, got {}",
            params.batch_size
        );
        let layers = commute_sdk::layers::layers_read(params.layer, params.layers.as_deref(), LAYERS)?;
        let tokenizer = Tokenizer::open(ctx.asset(tokenize::TOKENIZER.name.as_ref())?)?;
        let model = match (params.backend, params.normalize) {
            (Backend::Onnx, true) => Model::Onnx(onnx::OnnxModel::open(ctx, &layers)?),
            (Backend::Onnx, false) => Model::Onnx(onnx::OnnxModel::open(ctx, &layers)?.unnormalised()),
            (Backend::Candle, true) => {
                Model::Candle(Box::new(candle::CandleModel::open_layers(ctx, &layers)?))
            }
            (Backend::Candle, false) => {
                Model::Candle(Box::new(candle::CandleModel::open_layers(ctx, &layers)?.unnormalised()))
            }
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(ctx.threads.max(1))
            .thread_name(|i| format!("minilm-{i}"))
            .build()
            .context("cannot start the MiniLM worker threads")?;
        tracing::debug!(backend = ?params.backend, threads = ctx.threads, device = %ctx.device, "minilm open");
        Ok(Minilm { tokenizer, model, batch_size: params.batch_size, dim: DIM * layers.len(), pool })
    }
}

impl Minilm {
    /// How many sub-batches the model runs at once.
    fn workers(&self) -> usize {
        match &self.model {
            Model::Onnx(model) => model.workers(),
            Model::Candle(model) => model.workers(&self.pool),
        }
    }

    /// Runs padded sub-batches through the model, one result per sub-batch, in order.
    fn embed_all(&mut self, batches: &[TokenBatch]) -> Vec<Result<Vec<Vec<f32>>>> {
        match &mut self.model {
            Model::Onnx(model) => model.embed_all(batches, &self.pool),
            Model::Candle(model) => model.embed_all(batches, &self.pool),
        }
    }
}

impl Encoder for Minilm {
    type Input<'a> = &'a str;

    fn dim(&self) -> usize {
        self.dim
    }

    fn encode(&mut self, text: &str) -> Result<Vec<f32>> {
        self.encode_batch(vec![text]).pop().unwrap_or_else(|| Err(anyhow!("no result for the text")))
    }

    fn encode_batch(&mut self, texts: Vec<&str>) -> Vec<Result<Vec<f32>>> {
        let tokenizer = &self.tokenizer;
        let tokens: Vec<Result<Vec<u32>>> =
            self.pool.install(|| texts.par_iter().map(|t| tokenizer.ids(t)).collect());
        let workers = self.workers();
        let batch_size = self.batch_size;
        embed_texts(tokens, batch_size, workers, |batches| self.embed_all(batches))
    }
}
