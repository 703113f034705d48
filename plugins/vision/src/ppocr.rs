//! The `ppocr` encoder: the PP-OCRv4 recognizer's sequence features (the 120-dimensional output
//! of its neck, one vector per 8 pixels of the 48-pixel-high line), pooled over the time steps
//! that cover the image into a fixed-size vector.
//!
//! The features are read before the classifier ([`recognizer`](crate::recognizer)), so they
//! describe the glyph shapes the model sees rather than a distribution over 6,625 characters.
//! Steps over the right padding are left out of the pooling: the padding depends on nothing but
//! the image's width, and leaving it out makes a short and a long rendering of the same kind of
//! text comparable. Pooling (`pooling`):
//!
//! - `mean` — the mean over the image's steps: 120 dims, blind to character order.
//! - `mean-max` — the mean, then the per-channel maximum: 240 dims.
//! - `segments` — the line's steps cut into `segments` equal spans (fractional steps weighted by
//!   their overlap), the mean of each in order: `120 × segments` dims, which keeps the coarse
//!   order of the characters (the beginning of a word, its middle, its end).
//!
//! `layer` reads an earlier stage the same way ([`LAYERS`](crate::recognizer::LAYERS)): the
//! backbone's output, the neck's convolutions or either of its transformer blocks, each a
//! sequence of the same steps; `layers` reads several in one run of the model, side by side.

use crate::read::default_min_width;
use crate::recognizer::{Head, Options, Recognizer, Sequence, LAYERS, REC_MODEL};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// How the feature sequence is pooled over time.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over the image's time steps (120 dims).
    Mean,
    /// The mean, then the per-channel maximum (240 dims).
    MeanMax,
    /// The means of `segments` equal spans of the line, in order (120 × segments dims).
    Segments,
}

/// Parameters of `ppocr`.
#[params]
#[derive(Debug, Clone)]
pub struct PpocrParams {
    /// Pooling over time: `mean`, `mean-max` or `segments`.
    #[serde(default = "default_pooling")]
    pub pooling: Pooling,
    /// Spans of the line for `pooling = "segments"` (1–16).
    #[serde(default = "default_segments")]
    pub segments: usize,
    /// Lines run through the model at once (1–256; by default 1 on a CPU, where larger batches
    /// measured slower per line, and 32 on CUDA). Lines are grouped by padded width, so this
    /// changes speed, never results.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// The narrowest padded line in pixels (32–4800, rounded up to a multiple of 32). The default,
    /// 320, is the width the model was trained at; narrower runs short words up to 3× faster but
    /// changes results slightly (the model's attention also sees the padding).
    #[serde(default = "default_min_width")]
    pub min_width: usize,
    /// The layer read, every one a sequence of a step per 8 pixels: 0 = the convolutional
    /// backbone's output (480 channels), 1 = the neck's convolutions (120), 2 = after the neck's
    /// first transformer block, 3 = after its second (and its layer norm), 4 = the neck's output,
    /// which the classifier reads (the default).
    #[serde(default = "default_layer")]
    #[schemars(range(min = 0, max = 4))]
    pub layer: usize,
    /// Several layers in one run of the model, in place of `layer`: each pooled as `layer` would
    /// be, side by side in this order. A node's `layers = "all"` sweep reads its layers this way.
    #[serde(default)]
    #[schemars(inner(range(min = 0, max = 4)))]
    pub layers: Option<Vec<usize>>,
}

fn default_layer() -> usize {
    LAYERS.len() - 1
}

fn default_pooling() -> Pooling {
    Pooling::Segments
}
fn default_segments() -> usize {
    4
}

/// The `ppocr` encoder.
pub struct Ppocr {
    recognizer: Recognizer,
    pooling: Pooling,
    segments: usize,
    /// Channels per step of each layer read, in order.
    channels: Vec<usize>,
}

impl Function for Ppocr {
    const DOC: &'static str = "PP-OCRv4 recognizer features (its 120-dim neck output per 8 px of a 48 px-high line) pooled over the line: mean, mean-max or segment means.";
    type Params = PpocrParams;
    const ASSETS: &'static [AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME, REC_MODEL];
    // ONNX Runtime's CUDA execution provider (with the `cuda` feature).
    const CUDA: bool = true;

    fn open(params: PpocrParams, ctx: &Context) -> Result<Self> {
        ensure!(
            (1..=16).contains(&params.segments),
            "segments must be within 1..=16, got {}",
            params.segments
        );
        let options = Options::new(ctx, params.batch_size, params.min_width)?;
        let layers =
            commute_sdk::layers::layers_read(params.layer, params.layers.as_deref(), LAYERS.len() - 1)?;
        let channels = layers.iter().map(|&l| LAYERS[l].1).collect();
        let heads: Vec<Head> = layers.into_iter().map(Head::Layer).collect();
        let recognizer = Recognizer::open_heads(ctx, &heads, options)?;
        Ok(Ppocr { recognizer, pooling: params.pooling, segments: params.segments, channels })
    }
}

impl Ppocr {
    /// The pooled vectors of each layer's sequence, side by side.
    fn pool(&self, sequences: &[Sequence]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.dim());
        for (sequence, &channels) in sequences.iter().zip(&self.channels) {
            ensure!(
                sequence.channels == channels,
                "the recognizer's layer has {} channels, expected {channels}",
                sequence.channels
            );
            out.extend(pool(sequence, self.pooling, self.segments));
        }
        Ok(out)
    }
}

/// Pools the content steps of a feature sequence.
pub fn pool(sequence: &Sequence, pooling: Pooling, segments: usize) -> Vec<f32> {
    let n = sequence.content_steps.min(sequence.steps);
    let c = sequence.channels;
    match pooling {
        Pooling::Mean => weighted_mean(sequence, (0..n).map(|t| (t, 1.0))),
        Pooling::MeanMax => {
            let mut out = weighted_mean(sequence, (0..n).map(|t| (t, 1.0)));
            let mut max = vec![f32::NEG_INFINITY; c];
            for t in 0..n {
                for (m, &v) in max.iter_mut().zip(sequence.step(t)) {
                    *m = m.max(v);
                }
            }
            out.extend(max.into_iter().map(|m| if m.is_finite() { m } else { 0.0 }));
            out
        }
        Pooling::Segments => {
            let mut out = Vec::with_capacity(c * segments);
            let span = n as f64 / segments as f64;
            for j in 0..segments {
                let (lo, hi) = (j as f64 * span, (j + 1) as f64 * span);
                let steps = (lo.floor() as usize..(hi.ceil() as usize).min(n)).filter_map(|t| {
                    let overlap = (hi.min(t as f64 + 1.0) - lo.max(t as f64)) as f32;
                    (overlap > 0.0).then_some((t, overlap))
                });
                out.extend(weighted_mean(sequence, steps));
            }
            out
        }
    }
}

/// The weighted mean of some steps (zeros when there are none).
fn weighted_mean(sequence: &Sequence, steps: impl Iterator<Item = (usize, f32)>) -> Vec<f32> {
    let mut sum = vec![0.0f32; sequence.channels];
    let mut total = 0.0f32;
    for (t, w) in steps {
        for (s, &v) in sum.iter_mut().zip(sequence.step(t)) {
            *s += w * v;
        }
        total += w;
    }
    if total > 0.0 {
        sum.iter_mut().for_each(|s| *s /= total);
    }
    sum
}

impl Encoder for Ppocr {
    type Input<'a> = ImageRef<'a>;

    fn dim(&self) -> usize {
        let channels: usize = self.channels.iter().sum();
        match self.pooling {
            Pooling::Mean => channels,
            Pooling::MeanMax => 2 * channels,
            Pooling::Segments => self.segments * channels,
        }
    }

    fn encode(&mut self, image: ImageRef<'_>) -> Result<Vec<f32>> {
        self.encode_batch(vec![image]).pop().unwrap_or_else(|| Err(anyhow!("no result")))
    }

    fn encode_batch(&mut self, images: Vec<ImageRef<'_>>) -> Vec<Result<Vec<f32>>> {
        let sequences = self.recognizer.run_heads(&images);
        sequences.into_iter().map(|s| s.and_then(|s| self.pool(&s))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four steps over the image and two over padding, two channels: step t is [t, −t].
    fn sequence() -> Sequence {
        let values = (0..6).flat_map(|t| [t as f32, -(t as f32)]).collect();
        Sequence { steps: 6, content_steps: 4, channels: 2, values }
    }

    #[test]
    fn means_and_maxima_leave_the_padding_out() {
        assert_eq!(pool(&sequence(), Pooling::Mean, 1), [1.5, -1.5]);
        assert_eq!(pool(&sequence(), Pooling::MeanMax, 1), [1.5, -1.5, 3.0, 0.0]);
    }

    #[test]
    fn segments_split_the_steps_in_order_with_fractional_overlaps() {
        assert_eq!(pool(&sequence(), Pooling::Segments, 2), [0.5, -0.5, 2.5, -2.5]);
        assert_eq!(pool(&sequence(), Pooling::Segments, 1), pool(&sequence(), Pooling::Mean, 1));
        // Three spans of 4/3 steps: [0, 1.33), [1.33, 2.67), [2.67, 4).
        let three = pool(&sequence(), Pooling::Segments, 3);
        let expected = [0.25, 1.5, 2.75];
        for (j, e) in expected.iter().enumerate() {
            assert!((three[2 * j] - e).abs() < 1e-6, "{three:?}");
        }
        // More segments than steps: each span lies inside one step.
        let one = Sequence { steps: 40, content_steps: 1, channels: 2, values: vec![7.0; 80] };
        assert!(pool(&one, Pooling::Segments, 3).iter().all(|v| (v - 7.0).abs() < 1e-5));
    }
}
