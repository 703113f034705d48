//! The Basic Pitch network (`nmp.onnx`) as a declared asset, and batched inference: audio items
//! at any rate → posteriorgrams (and, opened with [`BasicPitch::open_layers`], the frames of inner
//! layers), with the windows of all items sharing ONNX Runtime batches.
//!
//! On 60 s of synthesized music the stitched posteriorgrams are identical (max difference 0) to
//! Python ONNX Runtime's on the package's own windows; `scripts/bench-basic-pitch.sh` checks this
//! on every run.

use super::posteriorgram::{Posteriorgrams, CONTOUR_BINS, KEYS};
use super::windows::{
    fill_window, frame_count, stitch_window, window_count, SAMPLE_RATE, WINDOW, WINDOW_FRAMES,
};
use crate::resample::convert;
use crate::signal::validate;
use commute_sdk::onnx::ort::session::Session;
use commute_sdk::onnx::ort::value::TensorRef as OrtTensorRef;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::borrow::Cow;

/// Basic Pitch's ICASSP 2022 model as ONNX, from the `basic-pitch` 0.4.0 wheel (Apache-2.0).
pub const NMP: AssetSpec = AssetSpec::pypi(
    "basic-pitch-nmp-onnx",
    "basic-pitch",
    "0.4.0",
    "basic_pitch/saved_models/icassp_2022/nmp.onnx",
    "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec",
    230_444,
    "Apache-2.0",
);

/// Everything a Basic Pitch function needs: ONNX Runtime and the model.
pub const ASSETS: &[AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME, NMP];

/// The model's input: `[windows, 43844, 1]` mono samples at 22 050 Hz.
const INPUT: &str = "serving_default_input_2:0";
/// Pitch contour output, `[windows, 172, 264]`.
const CONTOUR: &str = "StatefulPartitionedCall:0";
/// Note output, `[windows, 172, 88]`.
const NOTE: &str = "StatefulPartitionedCall:1";
/// Onset output, `[windows, 172, 88]`.
const ONSET: &str = "StatefulPartitionedCall:2";

/// Where a layer's frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// An inner tensor, made an output of the session.
    Inner,
    /// The contour posteriorgram, one of the model's outputs.
    Contour,
    /// The note posteriorgram, one of the model's outputs.
    Note,
}

/// One of the network's layers read as a space: a tensor of the graph with one row per frame
/// (172 per window, like the posteriorgrams), `channels × bins` values a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// Where its frames come from.
    pub reading: Reading,
    /// The tensor's name in the graph.
    pub tensor: &'static str,
    /// Channels (feature maps) per frame.
    pub channels: usize,
    /// Frequency bins per channel.
    pub bins: usize,
    /// Whether the tensor is `[windows, channels, frames, bins]` (a convolution's output);
    /// otherwise `[windows, frames, bins, channels]` (or `[windows, frames, bins]`).
    pub channels_first: bool,
}

impl Layer {
    /// Values per frame.
    pub fn width(&self) -> usize {
        self.channels * self.bins
    }
}

/// The layers along the path from the audio to the note posteriorgram, in order. A frame of a
/// channels-first tensor is read channel by channel (channel `c`'s bins at `c × bins`).
///
/// | layer | what | per frame |
/// |---|---|---|
/// | 0 | the constant-Q transform, log-scaled and batch-normalised: 309 bins a third of a semitone apart | 309 |
/// | 1 | harmonic stacking: the CQT shifted to 8 harmonics (0.5, 1 … 7) on 264 bins | 264 × 8 = 2112 |
/// | 2 | the first convolution block (8 channels, batch norm, ReLU) that reads the contour | 8 × 264 = 2112 |
/// | 3 | the pitch-contour posteriorgram | 264 |
/// | 4 | the note branch's convolution (32 channels, ReLU) on the contour | 32 × 88 = 2816 |
/// | 5 | the note posteriorgram | 88 |
///
/// Layer 6 ([`OUTPUT_LAYER`]) is the model's whole output, the three posteriorgrams.
pub const LAYERS: [Layer; 6] = [
    Layer {
        reading: Reading::Inner,
        tensor: "model_1/batch_normalization/FusedBatchNormV3;model_1/batch_normalization/FusedBatchNormV33",
        channels: 1,
        bins: 309,
        channels_first: false,
    },
    Layer {
        reading: Reading::Inner,
        tensor:
            "model_1/harmonic-stacking-diff/strided_slice_7;model_1/harmonic-stacking-diff/strided_slice_7",
        channels: 8,
        bins: CONTOUR_BINS,
        channels_first: false,
    },
    Layer {
        reading: Reading::Inner,
        tensor: "Relu__38:0",
        channels: 8,
        bins: CONTOUR_BINS,
        channels_first: true,
    },
    Layer {
        reading: Reading::Contour,
        tensor: CONTOUR,
        channels: 1,
        bins: CONTOUR_BINS,
        channels_first: false,
    },
    Layer { reading: Reading::Inner, tensor: "Relu__42:0", channels: 32, bins: KEYS, channels_first: true },
    Layer { reading: Reading::Note, tensor: NOTE, channels: 1, bins: KEYS, channels_first: false },
];

/// The layer that stands for the model's output: note, onset and contour posteriorgrams.
pub const OUTPUT_LAYER: usize = LAYERS.len();

/// Whether layer `k` is read from the posteriorgrams (the contour, the note or all three)
/// rather than from an inner tensor.
pub fn is_posteriorgram(k: usize) -> bool {
    k >= OUTPUT_LAYER || LAYERS[k].reading != Reading::Inner
}

/// Default number of windows per ONNX Runtime call.
pub const DEFAULT_BATCH_WINDOWS: usize = 8;
/// Largest number of windows per ONNX Runtime call (about 175 kB of input and 300 kB of output
/// each).
pub const MAX_BATCH_WINDOWS: usize = 256;

/// An open Basic Pitch model.
pub struct BasicPitch {
    session: Session,
    batch_windows: usize,
    /// The inner layers read besides the posteriorgrams (layers of [`LAYERS`] that are not one).
    inner: Vec<usize>,
}

impl std::fmt::Debug for BasicPitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicPitch").field("batch_windows", &self.batch_windows).finish_non_exhaustive()
    }
}

/// `batch-windows` must be within 1..=[`MAX_BATCH_WINDOWS`].
fn check_batch_windows(batch_windows: usize) -> Result<()> {
    ensure!(
        (1..=MAX_BATCH_WINDOWS).contains(&batch_windows),
        "batch-windows must be within 1..={MAX_BATCH_WINDOWS}, got {batch_windows}"
    );
    Ok(())
}

/// One item on its way through the model.
struct Pending<'a> {
    samples: Cow<'a, [f32]>,
    out: Posteriorgrams,
    /// Frames of each inner layer read (`frames × width`), in the order of `BasicPitch::inner`.
    inner: Vec<Vec<f32>>,
}

/// An item's frames: its posteriorgrams and the frames of the inner layers read.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerFrames {
    /// The note, onset and contour posteriorgrams.
    pub posteriorgrams: Posteriorgrams,
    /// For each inner layer read, in the order given to [`BasicPitch::open_layers`]: its frames,
    /// `frames × width` values, frame-major.
    pub inner: Vec<(usize, Vec<f32>)>,
}

impl BasicPitch {
    /// Opens the model from the context's assets ([`ASSETS`]) with `ctx.threads` threads, running
    /// at most `batch_windows` (1–256) two-second windows per call. Outside a host (in tests),
    /// fill `ctx.assets` from `commute_sdk::asset::AssetStore` (commute-sdk feature `fetch`).
    pub fn open(ctx: &Context, batch_windows: usize) -> Result<BasicPitch> {
        check_batch_windows(batch_windows)?;
        let session = commute_sdk::onnx::session(ctx, ctx.asset(NMP.name.as_ref())?)?;
        Ok(BasicPitch { session, batch_windows, inner: Vec::new() })
    }

    /// [`BasicPitch::open`], with the graph's outputs widened to the inner tensors of `layers`
    /// (indices into [`LAYERS`], or [`OUTPUT_LAYER`]), so that one run of the model gives the
    /// posteriorgrams and every inner layer asked for ([`BasicPitch::frames`]).
    pub fn open_layers(ctx: &Context, batch_windows: usize, layers: &[usize]) -> Result<BasicPitch> {
        check_batch_windows(batch_windows)?;
        if let Some(bad) = layers.iter().find(|&&k| k > OUTPUT_LAYER) {
            bail!("layer must be within 0..={OUTPUT_LAYER}, got {bad}");
        }
        let mut inner: Vec<usize> = layers.iter().copied().filter(|&k| !is_posteriorgram(k)).collect();
        inner.sort_unstable();
        inner.dedup();
        if inner.is_empty() {
            return BasicPitch::open(ctx, batch_windows);
        }
        let path = ctx.asset(NMP.name.as_ref())?;
        let model = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut names = vec![CONTOUR, NOTE, ONSET];
        names.extend(inner.iter().map(|&k| LAYERS[k].tensor));
        let edited = commute_sdk::onnx_graph::with_outputs(&model, &names)?;
        let session = commute_sdk::onnx::session_from_memory(ctx, &edited)?;
        Ok(BasicPitch { session, batch_windows, inner })
    }

    /// The posteriorgrams of each item (mono audio at any rate, resampled to 22 050 Hz). Items
    /// are independent: one item's bad input fails that item only, and batching does not change
    /// any result.
    pub fn posteriorgrams(&mut self, items: &[AudioRef<'_>]) -> Vec<Result<Posteriorgrams>> {
        self.frames(items).into_iter().map(|f| f.map(|f| f.posteriorgrams)).collect()
    }

    /// The posteriorgrams of each item and the frames of the inner layers the model was opened
    /// with ([`BasicPitch::open_layers`]), from one run of the model.
    pub fn frames(&mut self, items: &[AudioRef<'_>]) -> Vec<Result<LayerFrames>> {
        let widths: Vec<usize> = self.inner.iter().map(|&k| LAYERS[k].width()).collect();
        let mut pending: Vec<Result<Pending<'_>>> = items
            .iter()
            .map(|audio| {
                validate(audio)?;
                let samples = convert(audio.samples, audio.sample_rate, SAMPLE_RATE);
                let frames = frame_count(samples.len());
                let inner = widths.iter().map(|w| vec![0.0f32; frames * w]).collect();
                Ok(Pending { samples, out: Posteriorgrams::zeros(frames), inner })
            })
            .collect();
        // Every (item, window) pair, in order.
        let jobs: Vec<(usize, usize)> = pending
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().ok().map(|p| (i, window_count(p.out.frames))))
            .flat_map(|(i, windows)| (0..windows).map(move |w| (i, w)))
            .collect();
        tracing::debug!(items = items.len(), windows = jobs.len(), "basic-pitch: running the model");
        let mut input = vec![0.0f32; self.batch_windows.min(jobs.len()) * WINDOW];
        for chunk in jobs.chunks(self.batch_windows) {
            let input = &mut input[..chunk.len() * WINDOW];
            for (&(item, window), slot) in chunk.iter().zip(input.chunks_exact_mut(WINDOW)) {
                if let Ok(p) = &pending[item] {
                    fill_window(&p.samples, window, slot);
                }
            }
            tracing::trace!(windows = chunk.len(), "basic-pitch: running a batch");
            if let Err(e) = self.run(input, chunk, &mut pending) {
                // The whole call failed: every item in it fails with the same message.
                let message = format!("{e:#}");
                for &(item, _) in chunk {
                    if pending[item].is_ok() {
                        pending[item] = Err(anyhow!("{message}"));
                    }
                }
            }
        }
        let layers = &self.inner;
        pending
            .into_iter()
            .map(|p| {
                p.map(|p| LayerFrames {
                    posteriorgrams: p.out,
                    inner: layers.iter().copied().zip(p.inner).collect(),
                })
            })
            .collect()
    }

    /// Runs one batch of windows and stitches each window's output into its item.
    fn run(
        &mut self,
        input: &[f32],
        chunk: &[(usize, usize)],
        pending: &mut [Result<Pending<'_>>],
    ) -> Result<()> {
        let n = chunk.len();
        let tensor = OrtTensorRef::from_array_view(([n, WINDOW, 1], input))
            .map_err(|e| anyhow!("cannot pass {n} windows to ONNX Runtime: {e}"))?;
        let outputs = self
            .session
            .run(commute_sdk::onnx::ort::inputs![INPUT => tensor])
            .map_err(|e| anyhow!("Basic Pitch failed on {n} windows: {e}"))?;
        for (name, width) in [(NOTE, KEYS), (ONSET, KEYS), (CONTOUR, CONTOUR_BINS)] {
            let value = outputs.get(name).ok_or_else(|| anyhow!("the model has no output `{name}`"))?;
            let (shape, data) =
                value.try_extract_tensor::<f32>().map_err(|e| anyhow!("output `{name}` is not f32: {e}"))?;
            let expected = [n as i64, WINDOW_FRAMES as i64, width as i64];
            ensure!(**shape == expected, "output `{name}` has shape {shape:?}, expected {expected:?}");
            for (&(item, window), output) in chunk.iter().zip(data.chunks_exact(WINDOW_FRAMES * width)) {
                if let Ok(p) = &mut pending[item] {
                    let target = match name {
                        NOTE => &mut p.out.note,
                        ONSET => &mut p.out.onset,
                        _ => &mut p.out.contour,
                    };
                    stitch_window(output, window, width, target);
                }
            }
        }
        let mut frame_major = Vec::new();
        for (slot, &k) in self.inner.iter().enumerate() {
            let layer = LAYERS[k];
            let name = layer.tensor;
            let value = outputs.get(name).ok_or_else(|| anyhow!("the model has no tensor `{name}`"))?;
            let (shape, data) =
                value.try_extract_tensor::<f32>().map_err(|e| anyhow!("tensor `{name}` is not f32: {e}"))?;
            let (frames, c, b) = (WINDOW_FRAMES as i64, layer.channels as i64, layer.bins as i64);
            let expected =
                if layer.channels_first { [n as i64, c, frames, b] } else { [n as i64, frames, b, c] };
            ensure!(**shape == expected, "tensor `{name}` has shape {shape:?}, expected {expected:?}");
            let width = layer.width();
            for (&(item, window), output) in chunk.iter().zip(data.chunks_exact(WINDOW_FRAMES * width)) {
                let Ok(p) = &mut pending[item] else { continue };
                let output = if layer.channels_first {
                    // [channels, frames, bins] → frame by frame, channel by channel.
                    frame_major.resize(output.len(), 0.0);
                    for (ch, plane) in output.chunks_exact(WINDOW_FRAMES * layer.bins).enumerate() {
                        for (f, row) in plane.chunks_exact(layer.bins).enumerate() {
                            let at = f * width + ch * layer.bins;
                            frame_major[at..at + layer.bins].copy_from_slice(row);
                        }
                    }
                    &frame_major[..]
                } else {
                    output
                };
                stitch_window(output, window, width, &mut p.inner[slot]);
            }
        }
        Ok(())
    }
}
