//! The PP-OCRv4 text-line recognizer run through ONNX Runtime: its model asset, which of its
//! tensors a session returns, and batched runs that group lines by padded width.
//!
//! The model (`ch_PP-OCRv4_rec_infer.onnx` from `rapidocr-onnxruntime` 1.4.4, Apache-2.0) maps a
//! `[N, 3, 48, W]` line image (see [`line_input`]) to a sequence of `W / 8`
//! time steps. Its graph ends in a convolutional and transformer neck whose output, transposed to
//! `[N, W/8, 120]` ([`Head::Features`]), feeds one linear layer and a softmax over 6,625 classes
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

/// Which tensor a [`Recognizer`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The 120-dimensional sequence features before the classifier.
    Features,
    /// The per-step probabilities over the CTC classes.
    Probabilities,
}

impl Head {
    fn tensor(self) -> &'static str {
        match self {
            Head::Features => FEATURES,
            Head::Probabilities => PROBABILITIES,
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
    head: Head,
    options: Options,
}

impl Recognizer {
    /// Opens the model from the context's assets, returning `head`.
    pub fn open(ctx: &Context, head: Head, options: Options) -> Result<Recognizer> {
        let path = ctx.asset(REC_MODEL.name.as_ref())?;
        let session = match head {
            Head::Probabilities => commute_sdk::onnx::session(ctx, path)?,
            Head::Features => {
                let model = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                let edited = onnx_graph::with_outputs(&model, &[FEATURES])
                    .with_context(|| format!("cannot expose the features of {}", path.display()))?;
                commute_sdk::onnx::session_from_memory(ctx, &edited)?
            }
        };
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        ensure!(
            outputs == [head.tensor()],
            "the recognizer returns {outputs:?}, expected [{:?}]: is {} the pinned model?",
            head.tensor(),
            path.display()
        );
        tracing::debug!(model = %path.display(), ?head, threads = ctx.threads, "opened the PP-OCRv4 recognizer");
        Ok(Recognizer { session, head, options })
    }

    /// The model's character list (metadata key `character`, one character per line).
    pub fn characters(&self) -> Result<String> {
        let metadata =
            self.session.metadata().map_err(|e| anyhow!("cannot read the model's metadata: {e}"))?;
        metadata.custom(CHARACTER_KEY).ok_or_else(|| anyhow!("the model has no `{CHARACTER_KEY}` metadata"))
    }

    /// Runs the recognizer on a batch of line images: one result per image, in order.
    ///
    /// Images are grouped by padded width and each group runs in chunks of at most the batch size,
    /// so no image is padded for another's sake: the results do not depend on the batch.
    pub fn run(&mut self, images: &[ImageRef<'_>]) -> Vec<Result<Sequence>> {
        let mut results: Vec<Option<Result<Sequence>>> = (0..images.len()).map(|_| None).collect();
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

    /// Runs lines of one padded width as one batch.
    fn run_chunk(&mut self, chunk: &[(usize, LineInput)]) -> Result<Vec<Sequence>> {
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
        let name = self.head.tensor();
        let value = outputs.get(name).ok_or_else(|| anyhow!("the recognizer returned no `{name}`"))?;
        let (shape, values) = value.try_extract_tensor::<f32>().map_err(|e| anyhow!("`{name}`: {e}"))?;
        let dims: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
        let steps = width / line_input::STRIDE;
        ensure!(
            dims.len() == 3 && dims[0] == chunk.len() && dims[1] == steps && dims[2] > 0,
            "`{name}` has shape {dims:?}, expected [{}, {steps}, _]",
            chunk.len()
        );
        let per_line = steps * dims[2];
        Ok(chunk
            .iter()
            .zip(values.chunks_exact(per_line))
            .map(|((_, line), v)| Sequence {
                steps,
                content_steps: line.content_steps(),
                channels: dims[2],
                values: v.to_vec(),
            })
            .collect())
    }
}
