//! `onnx`: any audio model exported to ONNX as an encoder — mono waveform in at the model's
//! sample rate, cut into the model's windows (or whole), any tensors of its graph read out
//! frame by frame (declared outputs or a layer's states), stitched and pooled over time.
//!
//! Each item is resampled to `sample-rate` and cut as a [`Windowing`] says: window `w` holds
//! the samples from `w · hop − lead` (zeros outside the audio), and of each window's output the
//! first and last `trim` frames are dropped. A model with a fixed input length runs in windows
//! of that length, the windows of all items of a batch sharing ONNX Runtime calls; a model whose
//! length is free takes each item whole (after `lead` zeros) unless `window` says otherwise.
//!
//! The model takes one float32 input: `[batch, samples]`, `[batch, samples, 1]`,
//! `[batch, 1, samples]` or `[samples]` (read from its declared shape). Every tensor read is
//! `[batch, frames, features]` (frame-level), `[batch, features]` (one frame per window) or a
//! feature map `[batch, a, b, c]` whose frame axis `frame-axis` names (a convolution's channels ×
//! frames × bins: `frame-axis = 2`); the tensors named in `outputs` are put side by side frame by
//! frame, so they must agree on frames.
//!
//! The timeline is cut to `⌊samples · frame-rate / sample-rate⌋` frames where `frame-rate` is
//! given; otherwise, with windows, to the frames over the audio, `⌈samples · F / window⌉` for
//! `F` output frames per window (the frames over the last window's padding are left out), and
//! taken whole for a whole item. Pooling is over those frames; audio with no frame encodes as
//! zeros. The dimension and the frames per window are read from a probe run of silence at open.

use crate::resample::convert;
use crate::signal::validate;
use crate::windowing::Windowing;
use commute_sdk::onnx::ort::session::Session;
use commute_sdk::onnx::ort::value::{TensorElementType, TensorRef as OrtTensorRef, ValueType};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::borrow::Cow;

/// How the frames become one vector.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// The mean over frames of every feature.
    #[default]
    Mean,
    /// The largest value of every feature over the frames.
    Max,
    /// The means, then the maxima in the same order (twice the dimension).
    MeanMax,
}

/// Parameters of `onnx`.
#[params]
#[derive(Debug, Clone)]
pub struct OnnxAudioParams {
    /// The model (`.onnx`). A relative path is read from the experiment file's folder.
    #[schemars(extend("format" = "path"))]
    pub model: String,
    /// The tensors to read, side by side frame by frame in this order: graph outputs or any
    /// tensor a node produces (a layer's states). Default: the model's first output.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// The model's sample rate in Hz; every item is resampled to it (1–768000).
    #[serde(default = "default_sample_rate")]
    #[schemars(range(min = 1, max = 768_000))]
    pub sample_rate: u32,
    /// Samples per window. Default: the length the model's input declares, or none (each item
    /// whole) where the length is free.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub window: Option<usize>,
    /// Samples between the starts of neighbouring windows. Default: the window (no overlap).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub hop: Option<usize>,
    /// Zeros put before the audio.
    #[serde(default)]
    pub lead: usize,
    /// Output frames dropped at each end of every window's output.
    #[serde(default)]
    pub trim: usize,
    /// Output frames per second: the stitched timeline is cut to ⌊samples · frame-rate /
    /// sample-rate⌋ frames (> 0). Default: the frames over the audio, ⌈samples · F / window⌉
    /// for F frames a window, or every frame of a whole item.
    #[serde(default)]
    pub frame_rate: Option<f64>,
    /// For a tensor of four axes (`[batch, a, b, c]`, a convolution's feature map): the axis (1, 2
    /// or 3) that runs over frames; the other two make each frame's features, in their order.
    #[serde(default)]
    #[schemars(range(min = 1, max = 3))]
    pub frame_axis: Option<usize>,
    /// How the frames are pooled: `mean`, `max` or `mean-max`.
    #[serde(default)]
    pub pooling: Pooling,
    /// Scale each vector to unit length.
    #[serde(default)]
    pub normalize: bool,
    /// Windows per ONNX Runtime call, across the items of a batch (1–256; 1 where the model's
    /// batch dimension is fixed at 1 or absent).
    #[serde(default = "default_batch_windows")]
    #[schemars(range(min = 1, max = 256))]
    pub batch_windows: usize,
}

fn default_sample_rate() -> u32 {
    16_000
}
fn default_batch_windows() -> usize {
    8
}

/// Largest `batch-windows`.
const MAX_BATCH_WINDOWS: usize = 256;

/// Where the samples are in the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `[samples]`: no batch dimension.
    Samples,
    /// `[batch, samples]`.
    BatchSamples,
    /// `[batch, samples, 1]`.
    BatchSamplesChannel,
    /// `[batch, 1, samples]`.
    BatchChannelSamples,
}

impl Layout {
    /// The layout, the declared length (if fixed) and the declared batch (if fixed) of an input
    /// of shape `dims`.
    fn of(dims: &[i64]) -> Option<(Layout, Option<usize>, Option<usize>)> {
        let fixed = |d: i64| usize::try_from(d).ok().filter(|&d| d > 0);
        match *dims {
            [t] => Some((Layout::Samples, fixed(t), Some(1))),
            [b, t] => Some((Layout::BatchSamples, fixed(t), fixed(b))),
            [b, t, 1] => Some((Layout::BatchSamplesChannel, fixed(t), fixed(b))),
            [b, 1, t] => Some((Layout::BatchChannelSamples, fixed(t), fixed(b))),
            _ => None,
        }
    }

    /// The input's shape for `n` windows of `len` samples.
    fn shape(self, n: usize, len: usize) -> Vec<usize> {
        match self {
            Layout::Samples => vec![len],
            Layout::BatchSamples => vec![n, len],
            Layout::BatchSamplesChannel => vec![n, len, 1],
            Layout::BatchChannelSamples => vec![n, 1, len],
        }
    }
}

/// The `onnx` audio encoder.
pub struct OnnxAudio {
    session: Session,
    input: String,
    layout: Layout,
    outputs: Vec<String>,
    params: OnnxAudioParams,
    /// Windows of this many samples, or `None`: each item whole.
    window: Option<usize>,
    batch: usize,
    /// Output frames per window (fixed windows only) and features per frame, from the probe.
    frames: usize,
    width: usize,
}

impl Function for OnnxAudio {
    const DOC: &'static str = "Any ONNX audio model on the waveform: resampled to its rate, cut into its windows (lead, hop, trimmed frames) or taken whole, any tensors of its graph (outputs or a layer's states) stitched frame by frame and pooled (mean, max, mean-max).";
    const ASSETS: &'static [AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME];
    type Params = OnnxAudioParams;

    fn open(params: OnnxAudioParams, ctx: &Context) -> Result<Self> {
        check(&params)?;
        let (model, outputs) = commute_sdk::onnx::model_reading_all(&params.model, &params.outputs)?;
        let session = commute_sdk::onnx::session_from_memory(ctx, &model)?;
        let io = || commute_sdk::onnx::describe_io(&session);
        let (input, dims) = match session.inputs() {
            [only] => match only.dtype() {
                ValueType::Tensor { ty: TensorElementType::Float32, shape, .. } => {
                    (only.name().to_owned(), shape.to_vec())
                }
                other => bail!(
                    "{}: input `{}` is {other}, not float32 samples ({})",
                    params.model,
                    only.name(),
                    io()
                ),
            },
            _ => bail!("{}: an audio encoder feeds one float32 input of samples ({})", params.model, io()),
        };
        let Some((layout, declared, batch)) = Layout::of(&dims) else {
            bail!(
                "{}: input `{input}` has shape {dims:?}; an audio encoder feeds [samples], [batch, samples], [batch, samples, 1] or [batch, 1, samples] ({})",
                params.model,
                io()
            )
        };
        ensure!(
            params.hop.is_none() || params.window.is_some() || declared.is_some(),
            "hop = {:?} needs windows: the model's input `{input}` takes any length, so give `window` too",
            params.hop
        );
        let window = match (params.window, declared) {
            (Some(w), Some(d)) if w != d => {
                bail!("window = {w}, but the model's input `{input}` takes {d} samples ({})", io())
            }
            (w, d) => w.or(d),
        };
        let batch = if window.is_some() { params.batch_windows.min(batch.unwrap_or(usize::MAX)) } else { 1 };
        let mut encoder =
            OnnxAudio { session, input, layout, outputs, params, window, batch, frames: 0, width: 0 };
        // The probe: one window of silence, or a second of it for a model of free length.
        let len = window.unwrap_or(encoder.params.sample_rate as usize);
        let (frames, width, _) = encoder.run(&vec![0.0; len], 1, len).with_context(|| {
            format!(
                "the probe run on {len} samples of silence failed ({})",
                commute_sdk::onnx::describe_io(&encoder.session)
            )
        })?;
        if window.is_some() {
            ensure!(
                encoder.windowing(len).kept(frames) > 0,
                "the model gives {frames} frames a window, and trim = {} drops {} of them",
                encoder.params.trim,
                2 * encoder.params.trim
            );
        }
        encoder.frames = frames;
        encoder.width = width;
        Ok(encoder)
    }
}

/// Checks the parameters that do not need the model.
fn check(p: &OnnxAudioParams) -> Result<()> {
    ensure!(
        (1..=crate::signal::MAX_SAMPLE_RATE).contains(&p.sample_rate),
        "sample-rate must be within 1..={}, got {}",
        crate::signal::MAX_SAMPLE_RATE,
        p.sample_rate
    );
    ensure!(p.window != Some(0), "window must be at least 1 sample");
    ensure!(p.hop != Some(0), "hop must be at least 1 sample");
    if let Some(rate) = p.frame_rate {
        ensure!(rate.is_finite() && rate > 0.0, "frame-rate must be a positive number, got {rate}");
    }
    ensure!(
        (1..=MAX_BATCH_WINDOWS).contains(&p.batch_windows),
        "batch-windows must be within 1..={MAX_BATCH_WINDOWS}, got {}",
        p.batch_windows
    );
    for (i, name) in p.outputs.iter().enumerate() {
        ensure!(!p.outputs[..i].contains(name), "outputs names `{name}` twice");
    }
    Ok(())
}

/// One item on its way through the model: its samples, how it is cut, and the running sums and
/// maxima of its frames.
struct Pending<'a> {
    samples: Cow<'a, [f32]>,
    windowing: Windowing,
    windows: usize,
    /// Frames on the timeline (`None`: every frame the model gives, for a whole item).
    total: Option<usize>,
    frames: usize,
    sums: Vec<f64>,
    maxima: Vec<f32>,
}

impl Pending<'_> {
    /// Adds frames `from..from + count` of one window's output (`frames × width`, frame-major).
    fn add(&mut self, output: &[f32], width: usize, from: usize, count: usize) {
        for row in output[from * width..(from + count) * width].chunks_exact(width) {
            for ((s, m), &v) in self.sums.iter_mut().zip(&mut self.maxima).zip(row) {
                *s += f64::from(v);
                *m = m.max(v);
            }
        }
        self.frames += count;
    }

    /// The pooled vector: zeros for no frame.
    fn pool(&self, pooling: Pooling, normalize: bool) -> Vec<f32> {
        let width = self.sums.len();
        let vector = if self.frames == 0 {
            vec![0.0; if pooling == Pooling::MeanMax { 2 * width } else { width }]
        } else {
            let scale = 1.0 / self.frames as f64;
            let means = self.sums.iter().map(|&s| (s * scale) as f32);
            match pooling {
                Pooling::Mean => means.collect(),
                Pooling::Max => self.maxima.clone(),
                Pooling::MeanMax => means.chain(self.maxima.iter().copied()).collect(),
            }
        };
        if normalize {
            commute_sdk::onnx::unit_length(vector)
        } else {
            vector
        }
    }
}

impl OnnxAudio {
    /// The windowing for windows of `window` samples.
    fn windowing(&self, window: usize) -> Windowing {
        let p = &self.params;
        Windowing { window, hop: p.hop.unwrap_or(window), lead: p.lead, trim: p.trim }
    }

    /// Runs `n` windows of `len` samples (`input`, window after window) and gives the frames per
    /// window, the features per frame and the outputs side by side (`n × frames × width`,
    /// window-major, then frame-major).
    fn run(&mut self, input: &[f32], n: usize, len: usize) -> Result<(usize, usize, Vec<f32>)> {
        let shape = self.layout.shape(n, len);
        let tensor = OrtTensorRef::from_array_view((shape.clone(), input))
            .map_err(|e| anyhow!("cannot pass {n} windows to ONNX Runtime: {e}"))?;
        let outputs = self
            .session
            .run(commute_sdk::onnx::ort::inputs![self.input.as_str() => tensor])
            .map_err(|e| anyhow!("ONNX Runtime failed on input {shape:?}: {e}"))?;
        // Each output as (frames, features, values).
        let mut parts = Vec::with_capacity(self.outputs.len());
        for name in &self.outputs {
            let (out_shape, values) = outputs[name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| anyhow!("`{name}` is not a float32 tensor: {e}"))?;
            let dims: Vec<usize> = out_shape.iter().map(|&d| d.max(0) as usize).collect();
            // What one window gives: after the batch dimension, which an input without one may
            // still add to its outputs as 1.
            let per_window = match (self.layout, dims.as_slice()) {
                (Layout::Samples, [1, rest @ ..]) if rest.len() >= 2 => Some(rest),
                (Layout::Samples, all) => Some(all),
                (_, [b, rest @ ..]) if *b == n => Some(rest),
                _ => None,
            };
            let (frames, width, values) = match per_window {
                Some(&[d]) => (1, d, Cow::Borrowed(values)),
                Some(&[f, d]) => (f, d, Cow::Borrowed(values)),
                // A feature map: one axis runs over frames, the other two make the features.
                Some(&[a, b, c]) => {
                    let Some(axis) = self.params.frame_axis else {
                        bail!(
                            "`{name}` has shape {out_shape:?}, four axes: say which of axes 1, 2 and 3 runs over frames with `frame-axis`"
                        )
                    };
                    let (frames, values) = frames_first(values, n, [a, b, c], axis);
                    (frames, values.len() / (n * frames).max(1), Cow::Owned(values))
                }
                _ => (0, 0, Cow::Borrowed(values)),
            };
            ensure!(
                width > 0,
                "`{name}` has shape {out_shape:?} for input {shape:?}: expected [batch, frames, features], [batch, features] or a feature map [batch, a, b, c] with `frame-axis`"
            );
            parts.push((name, frames, width, values));
        }
        let frames = parts[0].1;
        if let Some((name, f, ..)) = parts.iter().find(|p| p.1 != frames) {
            bail!("`{name}` has {f} frames a window and `{}` {frames}: outputs read together must agree on frames", parts[0].0);
        }
        let width: usize = parts.iter().map(|p| p.2).sum();
        let mut joined = Vec::with_capacity(n * frames * width);
        for row in 0..n * frames {
            for (_, _, w, values) in &parts {
                joined.extend_from_slice(&values[row * w..(row + 1) * w]);
            }
        }
        Ok((frames, width, joined))
    }

    /// The timeline's length for `samples` samples at the model's rate.
    fn total_frames(&self, samples: usize, window: Option<usize>) -> Option<usize> {
        let rate = f64::from(self.params.sample_rate);
        match (self.params.frame_rate, window) {
            (Some(fps), _) => Some((samples as f64 * fps / rate).floor() as usize),
            (None, Some(w)) => Some((samples * self.frames).div_ceil(w)),
            (None, None) => None,
        }
    }

    /// One item ready for the model.
    fn pending<'a>(&self, audio: &AudioRef<'a>) -> Result<Pending<'a>> {
        validate(audio)?;
        let samples = convert(audio.samples, audio.sample_rate, self.params.sample_rate);
        let window = self.window;
        let windowing = match window {
            Some(w) => self.windowing(w),
            // The whole item after the lead zeros, in one window.
            None => {
                let len = (self.params.lead + samples.len()).max(1);
                Windowing { window: len, hop: len, lead: self.params.lead, trim: self.params.trim }
            }
        };
        let total = self.total_frames(samples.len(), window);
        let windows = match (window, total) {
            // Only the windows whose kept frames reach into the timeline.
            (Some(_), Some(total)) => {
                windowing.count(samples.len()).min(total.div_ceil(windowing.kept(self.frames)))
            }
            _ => windowing.count(samples.len()),
        };
        let width = self.width;
        Ok(Pending {
            samples,
            windowing,
            windows,
            total,
            frames: 0,
            sums: vec![0.0; width],
            maxima: vec![f32::NEG_INFINITY; width],
        })
    }

    /// Runs a batch's windows through the model, `batch` windows a call.
    fn encode_all(&mut self, items: &[AudioRef<'_>]) -> Vec<Result<Vec<f32>>> {
        let mut pending: Vec<Result<Pending<'_>>> = items.iter().map(|a| self.pending(a)).collect();
        let jobs: Vec<(usize, usize)> = pending
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().ok().map(|p| (i, p.windows)))
            .flat_map(|(i, windows)| (0..windows).map(move |w| (i, w)))
            .collect();
        tracing::debug!(items = items.len(), windows = jobs.len(), "onnx audio: running the model");
        // Fixed windows share calls across items; a whole item is one call of its own length.
        let groups: Vec<&[(usize, usize)]> =
            if self.window.is_some() { jobs.chunks(self.batch).collect() } else { jobs.chunks(1).collect() };
        let mut input = Vec::new();
        for chunk in groups {
            let len = match (self.window, &pending[chunk[0].0]) {
                (Some(w), _) => w,
                (None, Ok(p)) => p.windowing.window,
                (None, Err(_)) => continue,
            };
            input.resize(chunk.len() * len, 0.0);
            for (&(item, window), slot) in chunk.iter().zip(input.chunks_exact_mut(len)) {
                if let Ok(p) = &pending[item] {
                    p.windowing.fill(&p.samples, window, slot);
                }
            }
            let result = self.run(&input, chunk.len(), len).and_then(|(frames, width, values)| {
                ensure!(
                    width == self.width,
                    "the model gave {width} features a frame, {} for the probe",
                    self.width
                );
                for (&(item, window), output) in
                    chunk.iter().zip(values.chunks_exact((frames * width).max(1)))
                {
                    if let Ok(p) = &mut pending[item] {
                        let total = p.total.unwrap_or(usize::MAX);
                        if let Some(at) = p.windowing.placement(window, frames, total) {
                            p.add(output, width, at.from, at.count);
                        }
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                // The whole call failed: every item in it fails with the same message.
                let message = format!("{e:#}");
                for &(item, _) in chunk {
                    if pending[item].is_ok() {
                        pending[item] = Err(anyhow!("{message}"));
                    }
                }
            }
        }
        let (pooling, normalize) = (self.params.pooling, self.params.normalize);
        pending.into_iter().map(|p| p.map(|p| p.pool(pooling, normalize))).collect()
    }
}

/// Values of `n` windows' `[a, b, c]` maps rearranged frame by frame: axis `axis` (1, 2 or 3,
/// counting the batch as 0) runs over frames, and each frame's features are the other two axes in
/// their order. Returns the frames per window and the values, `n × frames × features`.
fn frames_first(values: &[f32], n: usize, dims: [usize; 3], axis: usize) -> (usize, Vec<f32>) {
    let [a, b, c] = dims;
    let frames = dims[axis.clamp(1, 3) - 1];
    let mut out = Vec::with_capacity(values.len());
    for w in 0..n {
        let map = &values[w * a * b * c..(w + 1) * a * b * c];
        for f in 0..frames {
            match axis {
                1 => out.extend_from_slice(&map[f * b * c..(f + 1) * b * c]),
                2 => (0..a).for_each(|i| out.extend_from_slice(&map[(i * b + f) * c..(i * b + f + 1) * c])),
                _ => (0..a).for_each(|i| (0..b).for_each(|j| out.push(map[(i * b + j) * c + f]))),
            }
        }
    }
    (frames, out)
}

impl Encoder for OnnxAudio {
    type Input<'a> = AudioRef<'a>;

    fn dim(&self) -> usize {
        match self.params.pooling {
            Pooling::MeanMax => 2 * self.width,
            Pooling::Mean | Pooling::Max => self.width,
        }
    }

    fn encode(&mut self, audio: AudioRef<'_>) -> Result<Vec<f32>> {
        self.encode_all(&[audio]).pop().unwrap_or_else(|| Err(anyhow!("no result for the item")))
    }

    fn encode_batch(&mut self, items: Vec<AudioRef<'_>>) -> Vec<Result<Vec<f32>>> {
        self.encode_all(&items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_read_from_the_declared_shape() {
        assert_eq!(Layout::of(&[-1, 43844, 1]), Some((Layout::BatchSamplesChannel, Some(43844), None)));
        assert_eq!(Layout::of(&[1, -1]), Some((Layout::BatchSamples, None, Some(1))));
        assert_eq!(Layout::of(&[-1, 1, 16000]), Some((Layout::BatchChannelSamples, Some(16000), None)));
        assert_eq!(Layout::of(&[-1]), Some((Layout::Samples, None, Some(1))));
        assert_eq!(Layout::of(&[1, 3, 224, 224]), None);
        assert_eq!(Layout::of(&[-1, 80, 3000]), None, "a spectrogram is not samples");
        assert_eq!(Layout::BatchChannelSamples.shape(4, 10), [4, 1, 10]);
        assert_eq!(Layout::Samples.shape(1, 10), [10]);
    }

    #[test]
    fn feature_maps_are_read_frame_by_frame_along_any_axis() {
        // Two windows of [2, 3, 2] maps holding 0…23: value 12·w + 6·i + 2·j + k.
        let values: Vec<f32> = (0..24).map(|v| v as f32).collect();
        // Axis 1: 2 frames of 3 × 2 features.
        let (frames, out) = frames_first(&values, 2, [2, 3, 2], 1);
        assert_eq!((frames, &out[..6]), (2, &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0][..]));
        // Axis 2: 3 frames of 2 × 2 features; frame 1 of window 0 is (i, 1, k) for i, k in 0..2.
        let (frames, out) = frames_first(&values, 2, [2, 3, 2], 2);
        assert_eq!((frames, &out[4..8]), (3, &[2.0, 3.0, 8.0, 9.0][..]));
        // Axis 3: 2 frames of 2 × 3 features; frame 1 of window 1 is (i, j, 1) + 12.
        let (frames, out) = frames_first(&values, 2, [2, 3, 2], 3);
        assert_eq!((frames, &out[18..24]), (2, &[13.0, 15.0, 17.0, 19.0, 21.0, 23.0][..]));
        assert_eq!(out.len(), values.len());
    }

    #[test]
    fn pooling_means_maxima_and_no_frames() {
        let mut p = Pending {
            samples: Cow::Borrowed(&[]),
            windowing: Windowing { window: 1, hop: 1, lead: 0, trim: 0 },
            windows: 0,
            total: None,
            frames: 0,
            sums: vec![0.0; 2],
            maxima: vec![f32::NEG_INFINITY; 2],
        };
        assert_eq!(p.pool(Pooling::MeanMax, false), [0.0; 4], "no frame: zeros");
        // Three frames; the first is dropped.
        p.add(&[9.0, 9.0, 1.0, -2.0, 3.0, -4.0], 2, 1, 2);
        assert_eq!(p.pool(Pooling::Mean, false), [2.0, -3.0]);
        assert_eq!(p.pool(Pooling::Max, false), [3.0, -2.0]);
        assert_eq!(p.pool(Pooling::MeanMax, false), [2.0, -3.0, 3.0, -2.0]);
        let unit = p.pool(Pooling::Max, true);
        assert!((unit[0] - 3.0 / 13f32.sqrt()).abs() < 1e-6);
    }
}
