//! The `basic-pitch` encoder: Basic Pitch's posteriorgrams pooled over time into one vector.
//!
//! # Layout
//!
//! Audio at any rate is resampled to 22 050 Hz, run through the model in 2-second windows
//! ([`windows`](super::windows)) and stitched into note, onset and contour posteriorgrams.
//!
//! The model was trained with label smoothing 0.2, so its targets were 0.1 (absent) and 0.9
//! (present) and silent keys sit near 0.1 in every frame. With `rescale` (the default) each
//! activation `p` is first mapped to `(p − 0.1) / 0.8`, clamped to 0–1, so that a silent key
//! reads 0 and a sure one 1; otherwise the constant floor dominates every vector (two different
//! pure tones would have a cosine of 0.96).
//!
//! Every value below is a mean or maximum over frames, so items of different lengths are
//! comparable; audio with no frame (empty, or under 11.6 ms) encodes as zeros. Key `k` is MIDI
//! `21 + k`.
//!
//! `pool = "summary"` (default, 300 dims):
//!
//! | index | value |
//! |---|---|
//! | `0 .. 88` | mean note activation of key `k`: how much each key sounds (cf. music's `piano-roll`) |
//! | `88 .. 176` | maximum note activation of key `k`: whether it sounds at all, however briefly |
//! | `176 .. 264` | mean onset activation of key `k`: how often notes of that key start |
//! | `264 .. 300` | pitch-class contour: the contour summed over octaves and averaged over frames; index `3c + j` is pitch class `c` (0 = C) raised by `j` thirds of a semitone |
//!
//! `pool = "none"` keeps the time axis: each frame (22 050 / 256 ≈ 86.13 a second, frame `f`
//! centred at `f · 256` samples) is the note (88), onset (88) and contour (264) activations
//! side by side, 440 floats; an inner layer's frame is its row. Audio without a frame is an
//! error (a sequence has at least one frame).
//!
//! `pool = "mean"` (440 dims): the mean over frames of the note (88), onset (88) and contour
//! (264) posteriorgrams, in that order. `pool = "mean-max"` (880 dims): those 440 means followed
//! by the 440 maxima in the same order.
//!
//! # Layers
//!
//! `layer` reads one of the network's layers instead ([`LAYERS`](super::model::LAYERS): 0 = the
//! normalised constant-Q transform … 5 = the note posteriorgram; 6, the default, is the output
//! above), each frame a row of the layer's maps, pooled over frames: the mean, or with
//! `pool = "mean-max"` the mean followed by the maximum (`summary` is the mean: an inner layer has
//! no keys to summarise). `rescale` applies to the posteriorgrams (layers 3, 5 and 6). `layers`
//! reads several in one run of the model, side by side, each part what its `layer` alone gives.

use super::model::{BasicPitch, LayerFrames, Reading, ASSETS, DEFAULT_BATCH_WINDOWS, LAYERS, OUTPUT_LAYER};
use super::posteriorgram::{Posteriorgrams, CONTOUR_BINS, CONTOUR_BINS_PER_SEMITONE, KEYS, LOWEST_PITCH};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// How the posteriorgrams are pooled over time.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Per key: mean and maximum note, mean onset; contour folded to 36 pitch-class bins (300).
    Summary,
    /// Mean of note, onset and contour (440).
    Mean,
    /// Mean and maximum of note, onset and contour (880).
    MeanMax,
    /// No pooling: every frame's note, onset and contour (440 a frame).
    None,
}

impl Pool {
    /// The embedding dimension.
    pub fn dim(self) -> usize {
        match self {
            Pool::Summary => 3 * KEYS + FOLDED,
            Pool::Mean => 2 * KEYS + CONTOUR_BINS,
            Pool::MeanMax => 2 * (2 * KEYS + CONTOUR_BINS),
            Pool::None => 2 * KEYS + CONTOUR_BINS,
        }
    }
}

/// Frames per second of the posteriorgrams: a frame every 256 samples at 22 050 Hz.
pub const FRAME_RATE: f64 = 22050.0 / 256.0;

/// Pitch-class contour bins (12 classes × 3 bins per semitone).
const FOLDED: usize = 12 * CONTOUR_BINS_PER_SEMITONE;

/// Parameters of `basic-pitch`.
#[params]
#[derive(Debug, Clone)]
pub struct BasicPitchParams {
    /// Pooling over time: `summary` (300 dims), `mean` (440), `mean-max` (880) or `none` (440
    /// a frame, 86.13 frames a second).
    #[serde(default = "default_pool")]
    pub pool: Pool,
    /// Undo the model's label smoothing before pooling: (p − 0.1) / 0.8, clamped to 0–1.
    #[serde(default = "default_true")]
    pub rescale: bool,
    /// Two-second windows per ONNX Runtime call, across the items of a batch (1–256).
    #[serde(default = "default_batch_windows")]
    pub batch_windows: usize,
    /// The layer read, pooled over frames: 0 = the normalised constant-Q transform (309 bins),
    /// 1 = its harmonic stack (264 × 8), 2 = the contour's convolution block (8 × 264), 3 = the
    /// contour posteriorgram (264), 4 = the note branch's convolution (32 × 88), 5 = the note
    /// posteriorgram (88), 6 = the three posteriorgrams pooled by `pool` (the default).
    #[serde(default = "default_layer")]
    #[schemars(range(min = 0, max = 6))]
    pub layer: usize,
    /// Several layers in one run of the model, in place of `layer`: each pooled as `layer` would
    /// be, side by side in this order. A node's `layers = "all"` sweep reads its layers this way.
    #[serde(default)]
    #[schemars(inner(range(min = 0, max = 6)))]
    pub layers: Option<Vec<usize>>,
}

fn default_layer() -> usize {
    OUTPUT_LAYER
}

impl Default for BasicPitchParams {
    fn default() -> Self {
        BasicPitchParams {
            pool: default_pool(),
            rescale: true,
            batch_windows: default_batch_windows(),
            layer: default_layer(),
            layers: None,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_pool() -> Pool {
    Pool::Summary
}
fn default_batch_windows() -> usize {
    DEFAULT_BATCH_WINDOWS
}

/// The model's training target for an absent note (label smoothing 0.2).
const ABSENT: f32 = 0.1;
/// The model's training target for a present note.
const PRESENT: f32 = 0.9;

/// Maps an activation from the model's 0.1–0.9 target range to 0–1.
pub fn rescale(p: f32) -> f32 {
    ((p - ABSENT) / (PRESENT - ABSENT)).clamp(0.0, 1.0)
}

/// Pools posteriorgrams over time into a `pool.dim()` vector, after [`rescale`] when `rescaled`.
pub fn pool(p: &Posteriorgrams, pool: Pool, rescaled: bool) -> Vec<f32> {
    let mut out = vec![0.0f32; pool.dim()];
    if p.frames == 0 {
        return out;
    }
    let owned;
    let p = if rescaled {
        let map = |v: &[f32]| v.iter().map(|&x| rescale(x)).collect::<Vec<f32>>();
        owned = Posteriorgrams {
            frames: p.frames,
            note: map(&p.note),
            onset: map(&p.onset),
            contour: map(&p.contour),
        };
        &owned
    } else {
        p
    };
    match pool {
        Pool::Summary => {
            out[..KEYS].copy_from_slice(&frame_means(&p.note, KEYS));
            out[KEYS..2 * KEYS].copy_from_slice(&frame_maxima(&p.note, KEYS));
            out[2 * KEYS..3 * KEYS].copy_from_slice(&frame_means(&p.onset, KEYS));
            // Contour bin b is MIDI 21 + b/3: pitch class 9 (A) at sub-bin 0.
            let offset = usize::from(LOWEST_PITCH % 12) * CONTOUR_BINS_PER_SEMITONE;
            for (b, v) in frame_means(&p.contour, CONTOUR_BINS).into_iter().enumerate() {
                out[3 * KEYS + (b + offset) % FOLDED] += v;
            }
        }
        Pool::Mean | Pool::MeanMax | Pool::None => {
            let means = [
                frame_means(&p.note, KEYS),
                frame_means(&p.onset, KEYS),
                frame_means(&p.contour, CONTOUR_BINS),
            ]
            .concat();
            out[..means.len()].copy_from_slice(&means);
            if pool == Pool::MeanMax {
                let maxima = [
                    frame_maxima(&p.note, KEYS),
                    frame_maxima(&p.onset, KEYS),
                    frame_maxima(&p.contour, CONTOUR_BINS),
                ]
                .concat();
                out[means.len()..].copy_from_slice(&maxima);
            }
        }
    }
    out
}

/// The mean over frames (rows of `width` values) of each value, summed in f64 so that long items
/// do not lose precision; zeros without frames.
fn frame_means(frames: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0.0f64; width];
    let mut n = 0usize;
    for row in frames.chunks_exact(width.max(1)) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += f64::from(v);
        }
        n += 1;
    }
    let scale = if n == 0 { 0.0 } else { 1.0 / n as f64 };
    sums.into_iter().map(|s| (s * scale) as f32).collect()
}

/// The maximum over frames of each value; zeros without frames.
fn frame_maxima(frames: &[f32], width: usize) -> Vec<f32> {
    let mut top = vec![f32::NEG_INFINITY; width];
    for row in frames.chunks_exact(width.max(1)) {
        for (m, &v) in top.iter_mut().zip(row) {
            *m = m.max(v);
        }
    }
    if frames.len() < width.max(1) {
        top.fill(0.0);
    }
    top
}

/// A layer's frames pooled over time: the mean, then (with `mean-max`) the maximum, per value;
/// zeros without frames.
pub fn pool_frames(frames: &[f32], width: usize, pool: Pool) -> Vec<f32> {
    let mut out = frame_means(frames, width);
    if pool == Pool::MeanMax {
        out.extend(frame_maxima(frames, width));
    }
    out
}

/// The dimension of layer `k` pooled by `pool` (a frame's, with `none`).
fn layer_dim(k: usize, pool: Pool) -> usize {
    if k >= OUTPUT_LAYER {
        return pool.dim();
    }
    LAYERS[k].width() * if pool == Pool::MeanMax { 2 } else { 1 }
}

/// Layer `k`'s frames of one item, `layer_dim(k, Pool::None)` floats a frame (rescaled where
/// the layer is a posteriorgram and `rescaled`).
fn layer_rows(frames: &LayerFrames, k: usize, rescaled: bool) -> std::borrow::Cow<'_, [f32]> {
    let p = &frames.posteriorgrams;
    let map = |raw: &[f32]| if rescaled { raw.iter().map(|&x| rescale(x)).collect() } else { raw.to_vec() };
    if k >= OUTPUT_LAYER {
        let (note, onset, contour) = (map(&p.note), map(&p.onset), map(&p.contour));
        let mut out = Vec::with_capacity(p.frames * Pool::None.dim());
        for t in 0..p.frames {
            out.extend_from_slice(&note[t * KEYS..(t + 1) * KEYS]);
            out.extend_from_slice(&onset[t * KEYS..(t + 1) * KEYS]);
            out.extend_from_slice(&contour[t * CONTOUR_BINS..(t + 1) * CONTOUR_BINS]);
        }
        return out.into();
    }
    match LAYERS[k].reading {
        Reading::Contour => map(&p.contour).into(),
        Reading::Note => map(&p.note).into(),
        Reading::Inner => {
            frames.inner.iter().find(|(layer, _)| *layer == k).map_or(&[][..], |(_, f)| &f[..]).into()
        }
    }
}

/// Layer `k` of one item, pooled.
fn pool_layer(frames: &LayerFrames, k: usize, pool_kind: Pool, rescaled: bool) -> Vec<f32> {
    if k >= OUTPUT_LAYER {
        return pool(&frames.posteriorgrams, pool_kind, rescaled);
    }
    pool_frames(&layer_rows(frames, k, rescaled), LAYERS[k].width(), pool_kind)
}

/// The layers read of one item, frame by frame, side by side.
fn unpooled(frames: &LayerFrames, layers: &[usize], rescaled: bool) -> Result<Vec<f32>> {
    let n = frames.posteriorgrams.frames;
    ensure!(n > 0, "the audio is shorter than one frame (11.6 ms): a sequence needs at least one");
    let parts: Vec<_> =
        layers.iter().map(|&k| (layer_rows(frames, k, rescaled), layer_dim(k, Pool::None))).collect();
    let mut out = Vec::with_capacity(n * parts.iter().map(|(_, w)| w).sum::<usize>());
    for t in 0..n {
        for (rows, w) in &parts {
            out.extend_from_slice(&rows[t * w..(t + 1) * w]);
        }
    }
    Ok(out)
}

/// The `basic-pitch` encoder.
pub struct BasicPitchEncoder {
    model: BasicPitch,
    pool: Pool,
    rescale: bool,
    /// The layers read, in order (one unless `layers` is given).
    layers: Vec<usize>,
}

impl Function for BasicPitchEncoder {
    const DOC: &'static str = "Basic Pitch (ONNX) note, onset and pitch-contour posteriorgrams of 2-second windows at 22.05 kHz, pooled over time (300 dims by default).";
    type Params = BasicPitchParams;
    const ASSETS: &'static [AssetSpec] = ASSETS;
    // ONNX Runtime's CUDA execution provider (with the `cuda` feature).
    const CUDA: bool = true;

    fn open(params: BasicPitchParams, ctx: &Context) -> Result<Self> {
        let layers = commute_sdk::layers::layers_read(params.layer, params.layers.as_deref(), OUTPUT_LAYER)?;
        let model = BasicPitch::open_layers(ctx, params.batch_windows, &layers)?;
        Ok(BasicPitchEncoder { model, pool: params.pool, rescale: params.rescale, layers })
    }
}

impl Encoder for BasicPitchEncoder {
    type Input<'a> = AudioRef<'a>;

    fn dim(&self) -> usize {
        self.layers.iter().map(|&k| layer_dim(k, self.pool)).sum()
    }

    fn frame_rate(&self) -> Option<f64> {
        (self.pool == Pool::None).then_some(FRAME_RATE)
    }

    fn encode(&mut self, audio: AudioRef<'_>) -> Result<Vec<f32>> {
        self.encode_batch(vec![audio]).pop().unwrap_or_else(|| Err(anyhow!("no result for the item")))
    }

    fn encode_batch(&mut self, items: Vec<AudioRef<'_>>) -> Vec<Result<Vec<f32>>> {
        let (kind, rescaled) = (self.pool, self.rescale);
        let layers = &self.layers;
        self.model
            .frames(&items)
            .into_iter()
            .map(|f| match kind {
                Pool::None => f.and_then(|f| unpooled(&f, layers, rescaled)),
                _ => f.map(|f| layers.iter().flat_map(|&k| pool_layer(&f, k, kind, rescaled)).collect()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_layout_and_folding() {
        let mut p = Posteriorgrams::zeros(4);
        // Key 39 (C4) sounds in two frames, starts in one.
        p.note[39] = 1.0;
        p.note[KEYS + 39] = 0.5;
        p.onset[39] = 0.8;
        // Contour: bin 3 × 39 = 117 is C4, bin 118 a third of a semitone above; bin 0 is A0.
        p.contour[117] = 1.0;
        p.contour[CONTOUR_BINS + 118] = 1.0;
        p.contour[2 * CONTOUR_BINS] = 1.0;
        let v = pool(&p, Pool::Summary, false);
        assert_eq!(v.len(), 300);
        assert_eq!((v[39], v[KEYS + 39], v[2 * KEYS + 39]), (0.375, 1.0, 0.2));
        let folded = &v[3 * KEYS..];
        assert_eq!((folded[0], folded[1], folded[27]), (0.25, 0.25, 0.25));
        assert!((folded.iter().sum::<f32>() - 0.75).abs() < 1e-6);
    }

    #[test]
    fn means_and_maxima_in_order_and_zeros_without_frames() {
        let mut p = Posteriorgrams::zeros(2);
        p.note[0] = 0.4;
        p.onset[KEYS + 1] = 0.6;
        p.contour[CONTOUR_BINS - 1] = 1.0;
        let mean = pool(&p, Pool::Mean, false);
        assert_eq!(mean.len(), 440);
        assert_eq!((mean[0], mean[KEYS + 1], mean[439]), (0.2, 0.3, 0.5));
        let both = pool(&p, Pool::MeanMax, false);
        assert_eq!(both.len(), 880);
        assert_eq!(&both[..440], &mean[..]);
        assert_eq!((both[440], both[440 + KEYS + 1], both[879]), (0.4, 0.6, 1.0));
        for kind in [Pool::Summary, Pool::Mean, Pool::MeanMax] {
            assert_eq!(pool(&Posteriorgrams::zeros(0), kind, true), vec![0.0; kind.dim()]);
        }
    }

    #[test]
    fn rescaling_maps_the_training_targets_to_zero_and_one() {
        assert_eq!((rescale(0.1), rescale(0.9)), (0.0, 1.0));
        assert!((rescale(0.5) - 0.5).abs() < 1e-6);
        assert_eq!((rescale(0.02), rescale(0.97)), (0.0, 1.0));
        let mut p = Posteriorgrams::zeros(2);
        p.note.fill(0.1);
        p.note[5] = 0.9;
        let v = pool(&p, Pool::Summary, true);
        assert_eq!((v[4], v[5], v[KEYS + 5]), (0.0, 0.5, 1.0));
    }
}
