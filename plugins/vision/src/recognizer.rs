//! The PP-OCRv4 text-line recognizer run through ONNX Runtime: its model asset, which of its
//! tensors a session returns, and batched runs that group lines by padded width.
//!
//! The model (`ch_PP-OCRv4_rec_infer.onnx` from `rapidocr-onnxruntime` 1.4.4, Apache-2.0) maps a
//! `[N, 3, 48, W]` line image (see [`line_input`]) to a sequence of `W / 8`
//! time steps. Its graph ends in a convolutional and transformer neck whose output, transposed to
//! `[N, W/8, 120]` ([`Head::FEATURES`]), feeds one linear layer and a softmax over 6,625 classes
//! ([`Head::Probabilities`]): the CTC blank, 6,623 characters and a space. For features the
//! graph's output is rewritten to the neck's tensor ([`onnx_graph`](commute_sdk::onnx_graph)); the
//! classifier costs little next to the backbone either way.

use crate::line_input::{self, LineInput};
use commute_sdk::onnx::ort;
use commute_sdk::onnx_graph;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::collections::BTreeMap;

/// The recognizer model.
pub const REC_MODEL: AssetSpec = AssetSpec::pypi(
    "ppocr-v4-rec-onnx",
    "rapidocr-onnxruntime",
    "1.4.4",
    "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
    "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
    10_857_958,
    "Apache-2.0",
);

/// The model's input: `[N, 3, 48, W]` float32.
const INPUT: &str = "x";
/// The neck's output, `[N, W/8, 120]`: the sequence features the classifier reads.
pub const FEATURES: &str = "transpose_51.tmp_0";
/// The model's own output, `[N, W/8, 6625]`: per-step class probabilities.
pub const PROBABILITIES: &str = "softmax_11.tmp_0";
/// Channels of [`FEATURES`].
pub const FEATURE_DIM: usize = 120;
/// The model metadata key that holds the character list, one per line.
const CHARACTER_KEY: &str = "character";

/// The recognizer's layers read as spaces, in order: each a sequence of `W / 8` time steps (the
/// stages after the backbone, where every step covers the same 8 pixels of the line), with its
/// channels per step.
///
/// | layer | tensor | what | channels |
/// |---|---|---|---|
/// | 0 | `p2o.AveragePool.1` | the convolutional backbone's output | 480 |
/// | 1 | `swish_12.tmp_0` | the neck's convolutions, before its transformer | 120 |
/// | 2 | `p2o.Add.251` | after the neck's first transformer block | 120 |
/// | 3 | `p2o.Add.275` | after its second block and layer norm | 120 |
/// | 4 | [`FEATURES`] | the neck's output, which the classifier reads | 120 |
pub const LAYERS: [(&str, usize); 5] = [
    ("p2o.AveragePool.1", 480),
    ("swish_12.tmp_0", 120),
    ("p2o.Add.251", 120),
    ("p2o.Add.275", 120),
    (FEATURES, FEATURE_DIM),
];

/// Which tensor a [`Recognizer`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// A layer of [`LAYERS`]; the last is the 120-dimensional sequence features before the
    /// classifier.
    Layer(usize),
    /// The per-step probabilities over the CTC classes.
    Probabilities,
    /// Any tensor of the graph laid out as `[N, W/8, C]` or `[N, C, 1, W/8]`, by name.
    Tensor(&'static str),
}

impl Head {
    /// The sequence features (the last layer).
    pub const FEATURES: Head = Head::Layer(LAYERS.len() - 1);

    fn tensor(self) -> &'static str {
        match self {
            Head::Layer(k) => LAYERS[k.min(LAYERS.len() - 1)].0,
            Head::Probabilities => PROBABILITIES,
            Head::Tensor(name) => name,
        }
    }
}

/// Lines per run by default on a CPU, where larger batches measured slower per line.
pub const CPU_BATCH: usize = 1;
/// Lines per run by default on a CUDA device.
pub const CUDA_BATCH: usize = 32;

/// How a recognizer runs: the `batch-size` and `min-width` parameters of `ppocr` and `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Lines run through the model at once.
    pub batch_size: usize,
    /// The narrowest padded line, in pixels.
    pub min_width: usize,
}

impl Options {
    /// Checks the parameters; the batch size defaults by the context's device.
    pub fn new(ctx: &Context, batch_size: Option<usize>, min_width: usize) -> Result<Options> {
        let default = if ctx.cuda_device().is_some() { CUDA_BATCH } else { CPU_BATCH };
        let batch_size = batch_size.unwrap_or(default);
        ensure!((1..=256).contains(&batch_size), "batch-size must be within 1..=256, got {batch_size}");
        ensure!(
            (line_input::WIDTH_STEP..=line_input::MAX_WIDTH).contains(&min_width),
            "min-width must be within {}..={}, got {min_width}",
            line_input::WIDTH_STEP,
            line_input::MAX_WIDTH
        );
        Ok(Options { batch_size, min_width })
    }
}

/// The recognizer's output for one line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// Time steps, including those over the padding.
    pub steps: usize,
    /// Leading time steps that cover the image (the rest cover padding).
    pub content_steps: usize,
    /// Values per step.
    pub channels: usize,
    /// `steps × channels` values, step-major.
    pub values: Vec<f32>,
}

impl Sequence {
    /// The values of one time step.
    pub fn step(&self, t: usize) -> &[f32] {
        &self.values[t * self.channels..(t + 1) * self.channels]
    }
}

/// An open recognizer session.
pub struct Recognizer {
    session: ort::session::Session,
    /// The tensors returned, in order (one run of the model reads them all).
    heads: Vec<Head>,
    options: Options,
}

impl Recognizer {
    /// Opens the model from the context's assets, returning `head`.
    pub fn open(ctx: &Context, head: Head, options: Options) -> Result<Recognizer> {
        Self::open_heads(ctx, &[head], options)
    }

    /// Opens the model from the context's assets, returning every tensor of `heads` from one run.
    pub fn open_heads(ctx: &Context, heads: &[Head], options: Options) -> Result<Recognizer> {
        ensure!(!heads.is_empty(), "the recognizer must return at least one tensor");
        for head in heads {
            if let Head::Layer(k) = head {
                ensure!(*k < LAYERS.len(), "layer must be within 0..={}, got {k}", LAYERS.len() - 1);
            }
        }
        let path = ctx.asset(REC_MODEL.name.as_ref())?;
        let names: Vec<&str> = heads.iter().map(|h| h.tensor()).collect();
        let session = if names == [PROBABILITIES] {
            commute_sdk::onnx::session(ctx, path)?
        } else {
            let model = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let edited = onnx_graph::with_outputs(&model, &names)
                .with_context(|| format!("cannot expose {names:?} of {}", path.display()))?;
            commute_sdk::onnx::session_from_memory(ctx, &edited)?
        };
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        ensure!(
            outputs == names,
            "the recognizer returns {outputs:?}, expected {names:?}: is {} the pinned model?",
            path.display()
        );
        tracing::debug!(model = %path.display(), ?heads, threads = ctx.threads, "opened the PP-OCRv4 recognizer");
        Ok(Recognizer { session, heads: heads.to_vec(), options })
    }

    /// The model's character list (metadata key `character`, one character per line).
    pub fn characters(&self) -> Result<String> {
        let metadata =
            self.session.metadata().map_err(|e| anyhow!("cannot read the model's metadata: {e}"))?;
        metadata.custom(CHARACTER_KEY).ok_or_else(|| anyhow!("the model has no `{CHARACTER_KEY}` metadata"))
    }

    /// Runs the recognizer on a batch of line images: one result per image, in order (the first
    /// tensor it returns, for a recognizer opened with one).
    ///
    /// Images are grouped by padded width and each group runs in chunks of at most the batch size,
    /// so no image is padded for another's sake: the results do not depend on the batch.
    pub fn run(&mut self, images: &[ImageRef<'_>]) -> Vec<Result<Sequence>> {
        self.run_heads(images).into_iter().map(|r| r.map(|mut heads| heads.swap_remove(0))).collect()
    }

    /// [`Self::run`], with every tensor the recognizer returns: per image, one sequence per head.
    pub fn run_heads(&mut self, images: &[ImageRef<'_>]) -> Vec<Result<Vec<Sequence>>> {
        let mut results: Vec<Option<Result<Vec<Sequence>>>> = (0..images.len()).map(|_| None).collect();
        let mut by_width: BTreeMap<usize, Vec<(usize, LineInput)>> = BTreeMap::new();
        for (i, image) in images.iter().enumerate() {
            match line_input::prepare(*image, self.options.min_width) {
                Ok(line) => by_width.entry(line.width).or_default().push((i, line)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        for lines in by_width.values() {
            for chunk in lines.chunks(self.options.batch_size) {
                match self.run_chunk(chunk) {
                    Ok(sequences) => {
                        for ((i, _), sequence) in chunk.iter().zip(sequences) {
                            results[*i] = Some(Ok(sequence));
                        }
                    }
                    Err(e) => {
                        let message = format!("{e:#}");
                        for (i, _) in chunk {
                            results[*i] = Some(Err(anyhow!("{message}")));
                        }
                    }
                }
            }
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(anyhow!("the image was not run")))).collect()
    }

    /// Runs lines of one padded width as one batch: per line, one sequence per head.
    fn run_chunk(&mut self, chunk: &[(usize, LineInput)]) -> Result<Vec<Vec<Sequence>>> {
        let width = chunk.first().map_or(0, |(_, l)| l.width);
        let mut data = Vec::with_capacity(chunk.len() * 3 * line_input::HEIGHT * width);
        for (_, line) in chunk {
            data.extend_from_slice(&line.data);
        }
        let shape = vec![chunk.len() as i64, 3, line_input::HEIGHT as i64, width as i64];
        let input = ort::value::Tensor::from_array((shape, data)).map_err(|e| anyhow!("{e}"))?;
        let outputs = self
            .session
            .run(ort::inputs![INPUT => input])
            .map_err(|e| anyhow!("the recognizer failed on a batch of {} lines: {e}", chunk.len()))?;
        let steps = width / line_input::STRIDE;
        let mut lines: Vec<Vec<Sequence>> =
            chunk.iter().map(|_| Vec::with_capacity(self.heads.len())).collect();
        for head in &self.heads {
            let name = head.tensor();
            let value = outputs.get(name).ok_or_else(|| anyhow!("the recognizer returned no `{name}`"))?;
            let (shape, values) = value.try_extract_tensor::<f32>().map_err(|e| anyhow!("`{name}`: {e}"))?;
            let dims: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
            // `[N, steps, C]` as it is, or a feature map `[N, C, 1, steps]` read step by step.
            let channels = match dims[..] {
                [n, t, c] if n == chunk.len() && t == steps && c > 0 => c,
                [n, c, 1, t] if n == chunk.len() && t == steps && c > 0 => c,
                _ => bail!(
                    "`{name}` has shape {dims:?}, expected [{n}, {steps}, _] or [{n}, _, 1, {steps}]",
                    n = chunk.len()
                ),
            };
            let map = dims.len() == 4;
            for ((line, v), out) in
                chunk.iter().map(|(_, l)| l).zip(values.chunks_exact(steps * channels)).zip(&mut lines)
            {
                out.push(Sequence {
                    steps,
                    content_steps: line.content_steps(),
                    channels,
                    values: if map { step_major(v, channels, steps) } else { v.to_vec() },
                });
            }
        }
        Ok(lines)
    }
}

/// A `C × T` map (channel-major) as `T × C` (step-major).
fn step_major(map: &[f32], channels: usize, steps: usize) -> Vec<f32> {
    let mut out = vec![0.0; map.len()];
    for c in 0..channels {
        for t in 0..steps {
            out[t * channels + c] = map[c * steps + t];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_major_map_is_read_step_by_step() {
        // 2 channels × 3 steps: channel 0 = 1, 2, 3; channel 1 = 10, 20, 30.
        let map = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0];
        assert_eq!(step_major(&map, 2, 3), vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
    }
}
