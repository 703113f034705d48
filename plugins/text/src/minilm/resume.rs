//! MiniLM cut at a layer, the two halves as functions: `minilm-states` renders a text as its
//! token states after layer k (a `T × 384` tensor, one row per token, `[CLS]` and `[SEP]`
//! included), and `minilm-resume` runs the rest of the model from layer k on such states (blocks
//! `k + 1 ..= 6`, then the mean over the tokens at unit length, as `minilm` pools). Between the
//! two, the states can be anything of that shape — mapped states of another model, for stitching.
//!
//! Both run the fp32 weights on candle, so that `minilm-resume(k) ∘ minilm-states(k)` is
//! `minilm` with `backend = "candle"` to float rounding, at every k.

use super::batch::{embed_texts, TokenBatch};
use super::candle::{CandleModel, CandleResume, MODEL_F32};
use super::tokenize::{self, Tokenizer};
use super::{default_batch_size, DIM, LAYERS};
use commute_sdk::prelude::*;
use commute_sdk::{AssetSpec, Tensor, TensorRef};
use rayon::prelude::*;

/// Parameters of `minilm-states` and `minilm-resume`.
#[params]
#[derive(Debug, Clone)]
pub struct CutParams {
    /// Where the model is cut: 0 = the token embeddings (after their layer norm), k = after
    /// transformer block k, 6 = the model's last token states.
    #[schemars(range(min = 0, max = 6))]
    pub layer: usize,
    /// Most items per model call (1–4096).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl CutParams {
    fn check(&self) -> Result<()> {
        ensure!(self.layer <= LAYERS, "layer must be within 0..={LAYERS}, got {}", self.layer);
        ensure!(
            (1..=4096).contains(&self.batch_size),
            "batch-size must be within 1..=4096, got {}",
            self.batch_size
        );
        Ok(())
    }
}

fn pool(ctx: &Context, name: &'static str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(ctx.threads.max(1))
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .context("cannot start the MiniLM worker threads")
}

/// The `minilm-states` render: text → its token states after layer `layer`.
pub struct MinilmStates {
    tokenizer: Tokenizer,
    model: CandleModel,
    batch_size: usize,
    pool: rayon::ThreadPool,
}

impl Function for MinilmStates {
    const DOC: &'static str = "all-MiniLM-L6-v2 (fp32, candle) cut after `layer`: a text's token states there, a T × 384 tensor (for minilm-resume, or a map between models).";
    type Params = CutParams;
    const ASSETS: &'static [AssetSpec] = &[MODEL_F32, tokenize::TOKENIZER];
    const CUDA: bool = true;

    fn open(params: CutParams, ctx: &Context) -> Result<Self> {
        params.check()?;
        Ok(MinilmStates {
            tokenizer: Tokenizer::open(ctx.asset(tokenize::TOKENIZER.name.as_ref())?)?,
            model: CandleModel::open(ctx, params.layer)?,
            batch_size: params.batch_size,
            pool: pool(ctx, "minilm-states")?,
        })
    }
}

impl Render for MinilmStates {
    type Input<'a> = &'a str;
    type Output = Tensor;

    fn render(&mut self, text: &str) -> Result<Tensor> {
        self.render_batch(vec![text]).pop().unwrap_or_else(|| Err(anyhow!("no result for the text")))
    }

    fn render_batch(&mut self, texts: Vec<&str>) -> Vec<Result<Tensor>> {
        let tokenizer = &self.tokenizer;
        let tokens: Vec<Result<Vec<u32>>> =
            self.pool.install(|| texts.par_iter().map(|t| tokenizer.ids(t)).collect());
        let (model, pool) = (&self.model, &self.pool);
        let states = embed_texts(tokens, self.batch_size, model.workers(pool), |batches: &[TokenBatch]| {
            pool.install(|| batches.par_iter().map(|b| model.states(b)).collect())
        });
        states
            .into_iter()
            .map(|s| s.map(|data| Tensor { shape: vec![data.len() / DIM, DIM], data }))
            .collect()
    }
}

/// The `minilm-resume` encoder: token states after layer `layer` → the model's sentence vector.
pub struct MinilmResume {
    model: CandleResume,
    batch_size: usize,
}

impl Function for MinilmResume {
    const DOC: &'static str = "all-MiniLM-L6-v2 (fp32, candle) from `layer` on: T × 384 token states (as minilm-states gives) → blocks layer+1..6 → the mean over tokens at unit length (384-d).";
    type Params = CutParams;
    const ASSETS: &'static [AssetSpec] = &[MODEL_F32];
    const CUDA: bool = true;

    fn open(params: CutParams, ctx: &Context) -> Result<Self> {
        params.check()?;
        Ok(MinilmResume { model: CandleResume::open(ctx, params.layer)?, batch_size: params.batch_size })
    }
}

/// The states of one item as rows of `DIM`, or why they are not.
fn states_of<'a>(t: &TensorRef<'a>) -> Result<&'a [f32]> {
    match *t.shape {
        [tokens, DIM] if tokens > 0 => Ok(t.data),
        _ => bail!("expected token states of shape [tokens ≥ 1, {DIM}], got {:?}", t.shape),
    }
}

impl Encoder for MinilmResume {
    type Input<'a> = TensorRef<'a>;

    fn dim(&self) -> usize {
        DIM
    }

    fn encode(&mut self, item: TensorRef<'_>) -> Result<Vec<f32>> {
        self.encode_batch(vec![item]).pop().unwrap_or_else(|| Err(anyhow!("no result for the states")))
    }

    fn encode_batch(&mut self, items: Vec<TensorRef<'_>>) -> Vec<Result<Vec<f32>>> {
        let mut out: Vec<Option<Result<Vec<f32>>>> = Vec::with_capacity(items.len());
        let mut good: Vec<(usize, &[f32])> = Vec::new();
        for (i, t) in items.iter().enumerate() {
            match states_of(t) {
                Ok(s) => {
                    good.push((i, s));
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        // Similar lengths together, so that padding stays small.
        good.sort_by_key(|(_, s)| s.len());
        for chunk in good.chunks(self.batch_size) {
            let states: Vec<&[f32]> = chunk.iter().map(|(_, s)| *s).collect();
            match self.model.embed(&states) {
                Ok(vectors) => {
                    for ((i, _), v) in chunk.iter().zip(vectors) {
                        out[*i] = Some(Ok(v));
                    }
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    for (i, _) in chunk {
                        out[*i] = Some(Err(anyhow!("{message}")));
                    }
                }
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(anyhow!("no result for the states")))).collect()
    }
}
