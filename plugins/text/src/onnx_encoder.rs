//! `onnx`: any text model exported to ONNX as an encoder — its `tokenizer.json`, any tensor of its
//! graph (a declared output, or an inner one: a layer's states), pooled over the tokens.
//!
//! The model's inputs are filled by name: `input_ids` (required), `attention_mask` and
//! `token_type_ids` (0, and 1 on the second text of a pair), as int64 or int32, whichever the
//! model declares — what BERT-family exports (PyTorch's `torch.onnx.export`, `optimum`) take. With
//! `pair-separator`, a text holding the separator is split at it into a pair, joined by the
//! tokenizer's pair template (`[CLS] a [SEP] b [SEP]`) and cut longest-first, as cross-encoders and
//! NLI models read sentence pairs. A model asking for anything else is
//! refused at open with its real inputs and outputs. The dimension is read from one probe run at
//! open. Batches are tokenized, sorted by length and padded per sub-batch as `minilm` does
//! ([`crate::minilm::batch`]), and run on single-threaded sessions side by side, as `minilm`'s
//! ONNX backend runs them (each session holds its own copy of the weights); padding is masked
//! out of every pooling.
//!
//! Configured as `model` = MiniLM's ONNX file, `tokenizer` = its tokenizer, `max-tokens = 256`,
//! `pooling = "mean"` and `normalize = true`, it gives `minilm`'s vectors (the plugin's tests check
//! it to float tolerance).

use crate::minilm::batch::{embed_texts, side_by_side, Sequence, TokenBatch};
use crate::minilm::onnx::session_threads;
use crate::minilm::tokenize::Tokenizer;
use commute_sdk::onnx::ort::session::Session;
use commute_sdk::onnx::ort::value::{Tensor, TensorElementType, ValueType};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// How token vectors become one vector per text.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// `mean` for a `[batch, tokens, dim]` tensor, `none` for a `[batch, dim]` one.
    #[default]
    Auto,
    /// The mean over the text's tokens (padding excluded).
    Mean,
    /// The first token's vector (`[CLS]` in BERT-family models).
    First,
    /// The largest value of each dimension over the text's tokens.
    Max,
    /// None: the tensor is already one vector per text (`[batch, dim]`).
    None,
}

/// Parameters of `onnx`.
#[params]
#[derive(Debug, Clone)]
pub struct OnnxParams {
    /// The model (`.onnx`). A relative path is read from the experiment file's folder.
    #[schemars(extend("format" = "path"))]
    pub model: String,
    /// Its tokenizer (`tokenizer.json`, as Hugging Face tokenizers saves it). A relative path is
    /// read from the experiment file's folder.
    #[schemars(extend("format" = "path"))]
    pub tokenizer: String,
    /// The tensor to read: a graph output or any tensor a node of the graph produces (a layer's
    /// states). Default: the model's first output.
    #[serde(default)]
    pub output: Option<String>,
    /// Several tensors read in one run of the model, in place of `output` (e.g. every layer of a
    /// layer sweep): each pooled (and scaled) as `output` would be, side by side in this order.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// How token vectors are pooled: `auto`, `mean`, `first`, `max` or `none`.
    #[serde(default)]
    pub pooling: Pooling,
    /// Scale each vector to unit length.
    #[serde(default)]
    pub normalize: bool,
    /// Longest token sequence, special tokens included; longer texts are cut at the end.
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 2, max = 65536))]
    pub max_tokens: usize,
    /// Texts holding this string are encoded as a pair, as cross-encoders and NLI models take
    /// them: the part before its first occurrence is the first text, the rest the second (token
    /// type ids 0 and 1, the tokenizer's pair template). Default: none, each text one sequence.
    #[serde(default)]
    pub pair_separator: Option<String>,
    /// Most texts per model call; a batch is sorted by length and cut into sub-batches of up to
    /// this size, each padded to its longest text.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 4096))]
    pub batch_size: usize,
}

fn default_max_tokens() -> usize {
    512
}

fn default_batch_size() -> usize {
    32
}

/// The inputs the encoder can fill.
const IDS: &str = "input_ids";
const MASK: &str = "attention_mask";
const TYPES: &str = "token_type_ids";

/// The `onnx` encoder.
pub struct OnnxText {
    tokenizer: Tokenizer,
    /// Single-threaded sessions side by side, as `minilm` runs its model
    /// ([`session_threads`](crate::minilm::onnx::session_threads)).
    sessions: Vec<Session>,
    reading: Reading,
    batch_size: usize,
    /// Where a text splits into a pair.
    pair_separator: Option<String>,
    /// `ctx.threads` threads: running sub-batches side by side.
    pool: rayon::ThreadPool,
}

/// How a sub-batch goes in and its vectors come out.
struct Reading {
    /// The model's inputs, in its order, each with whether it takes int64 (else int32).
    inputs: Vec<(String, bool)>,
    /// The tensors read, in order, each with the dimension of its pooled vector.
    outputs: Vec<(String, usize)>,
    pooling: Pooling,
    normalize: bool,
}

impl Function for OnnxText {
    const DOC: &'static str = "Any ONNX text model: its tokenizer.json, any tensor of its graph (an output or a layer's states), pooled over tokens (mean, first, max) and optionally scaled to unit length.";
    const ASSETS: &'static [AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME];
    type Params = OnnxParams;

    fn open(params: OnnxParams, ctx: &Context) -> Result<Self> {
        ensure!(
            params.pair_separator.as_ref().is_none_or(|s| !s.is_empty()),
            "pair-separator must not be empty"
        );
        let json = std::fs::read_to_string(&params.tokenizer)
            .with_context(|| format!("cannot read the tokenizer {}", params.tokenizer))?;
        let tokenizer = Tokenizer::from_json_cut_at(&json, params.max_tokens)
            .with_context(|| format!("in {}", params.tokenizer))?;
        let wanted = match (&params.output, params.outputs.is_empty()) {
            (Some(_), false) => bail!("give `output` or `outputs`, not both"),
            (Some(one), true) => vec![one.clone()],
            (None, _) => params.outputs.clone(),
        };
        let (model, names) = commute_sdk::onnx::model_reading_all(&params.model, &wanted)?;
        let sessions = session_threads(ctx.threads)
            .into_iter()
            .map(|threads| {
                commute_sdk::onnx::session_from_memory(&Context { threads, ..ctx.clone() }, &model)
            })
            .collect::<Result<Vec<_>>>()?;
        let inputs = model_inputs(&sessions[0], &params.model)?;
        let mut reading = Reading {
            inputs,
            outputs: names.into_iter().map(|n| (n, 0)).collect(),
            pooling: params.pooling,
            normalize: params.normalize,
        };
        let probe = TokenBatch::pad(&[&tokenizer.ids("a")?]);
        let mut first = sessions.into_iter();
        let mut session = first.next().ok_or_else(|| anyhow!("no session"))?;
        let read = reading.run(&mut session, &probe).context("the probe run on the text \"a\" failed")?;
        for ((name, dim), (shape, _)) in reading.outputs.iter_mut().zip(&read) {
            *dim = pooled_dim(shape, reading.pooling, name)?;
        }
        let sessions: Vec<Session> = std::iter::once(session).chain(first).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(ctx.threads.max(1))
            .thread_name(|i| format!("onnx-text-{i}"))
            .build()
            .context("cannot start the encoder's worker threads")?;
        tracing::debug!(
            model = params.model,
            outputs = ?reading.outputs,
            dim = reading.dim(),
            "onnx text encoder open"
        );
        Ok(OnnxText {
            tokenizer,
            sessions,
            reading,
            batch_size: params.batch_size,
            pair_separator: params.pair_separator,
            pool,
        })
    }
}

/// The model's inputs, checked: each one the encoder can fill, `input_ids` among them.
fn model_inputs(session: &Session, model: &str) -> Result<Vec<(String, bool)>> {
    let real = || commute_sdk::onnx::describe_io(session);
    let mut inputs = Vec::new();
    for input in session.inputs() {
        let name = input.name();
        ensure!(
            [IDS, MASK, TYPES].contains(&name),
            "{model}: cannot fill input `{name}`: a text encoder gives `{IDS}`, `{MASK}` and `{TYPES}` ({})",
            real()
        );
        let int64 = match input.dtype() {
            ValueType::Tensor { ty: TensorElementType::Int64, .. } => true,
            ValueType::Tensor { ty: TensorElementType::Int32, .. } => false,
            other => bail!("{model}: input `{name}` is {other}, not int64 or int32 token ids ({})", real()),
        };
        inputs.push((name.to_owned(), int64));
    }
    ensure!(inputs.iter().any(|(n, _)| n == IDS), "{model}: no input `{IDS}` for the token ids ({})", real());
    Ok(inputs)
}

/// The dimension of a pooled vector from the output's shape (batch first).
fn pooled_dim(shape: &[i64], pooling: Pooling, output: &str) -> Result<usize> {
    let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    match (dims.as_slice(), pooling) {
        ([_, _, dim], Pooling::Auto | Pooling::Mean | Pooling::First | Pooling::Max) => Ok(*dim),
        ([_, dim], Pooling::Auto | Pooling::None) => Ok(*dim),
        ([_, _], _) => bail!("`{output}` is {shape:?}, one vector per text already: use pooling = \"none\""),
        ([_, _, _], Pooling::None) => {
            bail!("`{output}` is {shape:?}, a vector per token: pool it (mean, first or max)")
        }
        _ => bail!(
            "`{output}` is {shape:?}: a text encoder reads a [batch, tokens, dim] or [batch, dim] tensor"
        ),
    }
}

impl Reading {
    /// The dimension of a text's vector: its parts' together.
    fn dim(&self) -> usize {
        self.outputs.iter().map(|(_, d)| d).sum()
    }

    /// Runs one padded sub-batch; returns each output's shape and values, in order.
    fn run(&self, session: &mut Session, batch: &TokenBatch) -> Result<Vec<(Vec<i64>, Vec<f32>)>> {
        let shape = [batch.rows, batch.len];
        let mut values: Vec<(String, commute_sdk::onnx::ort::session::SessionInputValue<'_>)> = Vec::new();
        for (name, int64) in &self.inputs {
            let data: Vec<i64> = match name.as_str() {
                IDS => batch.ids_i64(),
                MASK => batch.mask::<i64>(),
                _ => batch.types(),
            };
            let value = if *int64 {
                Tensor::from_array((shape, data)).map(|t| t.into_dyn())
            } else {
                Tensor::from_array((shape, data.into_iter().map(|v| v as i32).collect::<Vec<i32>>()))
                    .map(|t| t.into_dyn())
            }
            .map_err(|e| anyhow!("cannot build input `{name}`: {e}"))?;
            values.push((name.clone(), value.into()));
        }
        let outputs = session.run(values).map_err(|e| {
            anyhow!("ONNX Runtime failed on a batch of {} × {} tokens: {e}", batch.rows, batch.len)
        })?;
        self.outputs
            .iter()
            .map(|(name, _)| {
                let (out_shape, data) = outputs[name.as_str()]
                    .try_extract_tensor::<f32>()
                    .map_err(|e| anyhow!("`{name}` is not a float32 tensor: {e}"))?;
                Ok((out_shape.to_vec(), data.to_vec()))
            })
            .collect()
    }

    /// One vector per row of a sub-batch: each output's pooled vectors side by side.
    fn embed(&self, session: &mut Session, batch: &TokenBatch) -> Result<Vec<Vec<f32>>> {
        let read = self.run(session, batch)?;
        let mut parts = Vec::with_capacity(read.len());
        for ((name, dim), (shape, data)) in self.outputs.iter().zip(read) {
            parts.push(self.pooled(name, *dim, &shape, &data, batch)?);
        }
        Ok(crate::minilm::pooling::side_by_side(parts))
    }

    /// Each row's token states of the one tensor read, unpooled: `tokens × dim` values per row,
    /// padding cut off (`pooling` and `normalize` do not apply).
    fn states(&self, session: &mut Session, batch: &TokenBatch) -> Result<Vec<Vec<f32>>> {
        let [(name, dim)] = self.outputs.as_slice() else {
            bail!("token states are read from one tensor, not {}", self.outputs.len())
        };
        let read = self.run(session, batch)?;
        let (shape, data) = read.first().ok_or_else(|| anyhow!("`{name}` was not read"))?;
        ensure!(shape.len() == 3, "`{name}` is {shape:?}, not token states [batch, tokens, dim]");
        Ok(token_rows(name, *dim, shape, data, batch)?.into_iter().map(<[f32]>::to_vec).collect())
    }

    /// The pooled (and, with `normalize`, unit-length) vectors of one output's values.
    fn pooled(
        &self,
        output: &str,
        dim: usize,
        shape: &[i64],
        data: &[f32],
        batch: &TokenBatch,
    ) -> Result<Vec<Vec<f32>>> {
        let vectors: Vec<Vec<f32>> = match shape.len() {
            2 => {
                let expected_rows = batch.rows as i64;
                ensure!(
                    shape.first() == Some(&expected_rows),
                    "`{output}` has shape {shape:?} for {} texts",
                    batch.rows
                );
                data.chunks_exact(dim.max(1)).map(<[f32]>::to_vec).collect()
            }
            _ => token_rows(output, dim, shape, data, batch)?
                .into_iter()
                .map(|rows| pool(rows, dim, self.pooling))
                .collect(),
        };
        ensure!(
            vectors.len() == batch.rows && vectors.iter().all(|v| v.len() == dim),
            "`{output}` does not have {dim} values per text"
        );
        Ok(if self.normalize {
            vectors.into_iter().map(commute_sdk::onnx::unit_length).collect()
        } else {
            vectors
        })
    }
}

/// Each row's token vectors in one `[batch, tokens, dim]` output of a sub-batch (`tokens × dim`
/// values, row-major), padding cut off.
fn token_rows<'d>(
    output: &str,
    dim: usize,
    shape: &[i64],
    data: &'d [f32],
    batch: &TokenBatch,
) -> Result<Vec<&'d [f32]>> {
    let expected_rows = batch.rows as i64;
    ensure!(shape.first() == Some(&expected_rows), "`{output}` has shape {shape:?} for {} texts", batch.rows);
    let tokens = shape.get(1).map_or(0, |&t| t.max(0) as usize);
    ensure!(tokens == batch.len, "`{output}` has {tokens} positions for {} tokens", batch.len);
    ensure!(data.len() == batch.rows * tokens * dim, "`{output}` does not have {dim} values per token");
    Ok(batch
        .lengths
        .iter()
        .enumerate()
        .map(|(row, &n)| &data[row * tokens * dim..(row * tokens + n.min(tokens)) * dim])
        .collect())
}

/// Pools a text's token vectors (`tokens × dim`, row-major, padding already cut off).
fn pool(tokens: &[f32], dim: usize, pooling: Pooling) -> Vec<f32> {
    let mut rows = tokens.chunks_exact(dim);
    match pooling {
        Pooling::First | Pooling::None => rows.next().map_or_else(|| vec![0.0; dim], <[f32]>::to_vec),
        Pooling::Max => rows.fold(vec![f32::NEG_INFINITY; dim], |mut m, row| {
            for (m, &x) in m.iter_mut().zip(row) {
                *m = m.max(x);
            }
            m
        }),
        Pooling::Auto | Pooling::Mean => {
            let count = (tokens.len() / dim.max(1)) as f32;
            let mut sum = vec![0.0f32; dim];
            for row in rows {
                for (s, &x) in sum.iter_mut().zip(row) {
                    *s += x;
                }
            }
            sum.iter().map(|s| s / count.max(1e-9)).collect()
        }
    }
}

/// How a sub-batch's run is read: one flat vector per text (pooled, or its token states).
type ReadBatch = fn(&Reading, &mut Session, &TokenBatch) -> Result<Vec<Vec<f32>>>;

impl OnnxText {
    /// Each text's vector as `read` reads it: the texts tokenized, cut into length-sorted
    /// sub-batches, and the sub-batches run by the sessions in turn, side by side on the pool's
    /// threads.
    fn read_texts(&mut self, texts: &[&str], read: ReadBatch) -> Vec<Result<Vec<f32>>> {
        let tokenize = |text: &str| -> Result<Sequence> {
            match self.pair_separator.as_deref().and_then(|s| text.split_once(s)) {
                Some((a, b)) => self.tokenizer.pair_ids(a, b),
                None => self.tokenizer.ids(text).map(Sequence::from),
            }
        };
        let tokens = texts.iter().map(|t| tokenize(t)).collect();
        let (batch_size, workers) = (self.batch_size, self.sessions.len());
        let (reading, pool) = (&self.reading, &self.pool);
        embed_texts(tokens, batch_size, workers, |batches| {
            side_by_side(&mut self.sessions, batches, pool, |session, batch| read(reading, session, batch))
        })
    }

    /// Each text's token states in the one tensor this encoder reads, unpooled: `tokens × dim`
    /// values, one row per token, special tokens included and padding excluded (its `pooling` and
    /// `normalize` do not apply). For renders of a model's states, as
    /// [`paraphrase-minilm-states`](crate::paraphrase_states) gives.
    pub(crate) fn token_states(&mut self, texts: &[&str]) -> Vec<Result<Vec<f32>>> {
        self.read_texts(texts, Reading::states)
    }
}

impl Encoder for OnnxText {
    type Input<'a> = &'a str;

    fn dim(&self) -> usize {
        self.reading.dim()
    }

    fn encode(&mut self, text: &str) -> Result<Vec<f32>> {
        self.encode_batch(vec![text]).pop().unwrap_or_else(|| Err(anyhow!("no result for the text")))
    }

    fn encode_batch(&mut self, texts: Vec<&str>) -> Vec<Result<Vec<f32>>> {
        self.read_texts(&texts, Reading::embed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_covers_the_texts_tokens_only() {
        // 3 tokens × 2 dims.
        let tokens = [1.0, 4.0, 3.0, -2.0, 5.0, 0.0];
        assert_eq!(pool(&tokens, 2, Pooling::Mean), vec![3.0, 2.0 / 3.0]);
        assert_eq!(pool(&tokens, 2, Pooling::First), vec![1.0, 4.0]);
        assert_eq!(pool(&tokens, 2, Pooling::Max), vec![5.0, 4.0]);
        assert_eq!(pool(&[], 2, Pooling::Mean), vec![0.0, 0.0], "no token: zeros, not NaN");
    }

    #[test]
    fn the_dimension_follows_the_tensors_rank_and_the_pooling() {
        assert_eq!(pooled_dim(&[1, 3, 384], Pooling::Auto, "h").unwrap(), 384);
        assert_eq!(pooled_dim(&[1, 384], Pooling::Auto, "s").unwrap(), 384);
        let e = pooled_dim(&[1, 384], Pooling::Mean, "s").unwrap_err().to_string();
        assert!(e.contains("use pooling = \"none\""), "{e}");
        let e = pooled_dim(&[1, 3, 384], Pooling::None, "h").unwrap_err().to_string();
        assert!(e.contains("pool it"), "{e}");
        assert!(pooled_dim(&[1, 2, 3, 4], Pooling::Auto, "x").is_err());
    }
}
