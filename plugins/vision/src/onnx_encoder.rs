//! `onnx`: any image model exported to ONNX as an encoder — the image resized and normalised as
//! the model was trained (size, channel order, scale, mean and std, NCHW or NHWC), any tensor of
//! its graph read out (a declared output or a layer's feature map), pooled.
//!
//! Each image: grey is used for all three channels and an alpha channel is composited over white
//! (as the recognizer's input is made, [`crate::line_input`]); resized to `size` by bilinear
//! interpolation between pixel centres (no antialiasing); each value `v` in 0..=255 becomes
//! `(v · scale − mean[c]) / std[c]` — with the defaults (`scale = 1/255`, ImageNet's mean and std)
//! torchvision's `ToTensor` + `Normalize`. The model must take one float32 input; images are run
//! one at a time (any batch dimension of the model is 1). The dimension is read from a probe run
//! at open.

use crate::line_input::{checked_size, resize_rgb};
use commute_sdk::onnx::ort::session::Session;
use commute_sdk::onnx::ort::value::{Tensor, TensorElementType, ValueType};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// How the tensor read out becomes one vector per image.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// `mean` for a feature map or a token sequence, `none` for one vector per image.
    #[default]
    Auto,
    /// The mean over the spatial positions of a `[1, C, H, W]` map (or the tokens of `[1, T, D]`).
    Mean,
    /// The largest value of each channel over the positions.
    Max,
    /// The first token of a `[1, T, D]` sequence (a ViT's class token).
    First,
    /// None: the whole tensor, flattened, is the vector.
    None,
}

/// Where the channels are in the model's input.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `[1, 3, height, width]` (PyTorch).
    #[default]
    Nchw,
    /// `[1, height, width, 3]` (TensorFlow).
    Nhwc,
}

/// The order of the colour channels the model expects.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Channels {
    /// Red, green, blue.
    #[default]
    Rgb,
    /// Blue, green, red (OpenCV-trained models).
    Bgr,
}

/// How an image is brought to the input size.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resize {
    /// To `size` exactly, whatever the aspect ratio.
    #[default]
    Stretch,
    /// To the height `size[0]`, the width following the aspect ratio (`⌈height · w / h⌉`), then
    /// padded on the right with `pad` to at least `size[1]` and to a multiple of `width-multiple`
    /// (text-line recognizers such as PP-OCR); pooling then covers only the positions over the
    /// image.
    KeepAspect,
}

/// Parameters of `onnx`.
#[params]
#[derive(Debug, Clone)]
pub struct OnnxParams {
    /// The model (`.onnx`). A relative path is read from the experiment file's folder.
    #[schemars(extend("format" = "path"))]
    pub model: String,
    /// The tensor to read: a graph output or any tensor a node of the graph produces (a layer's
    /// feature map). Default: the model's first output.
    #[serde(default)]
    pub output: Option<String>,
    /// Input size, `[height, width]` in pixels (1–8192 each).
    #[serde(default = "default_size")]
    pub size: [u32; 2],
    /// How the image is brought to `size`: `stretch` or `keep-aspect`.
    #[serde(default)]
    pub resize: Resize,
    /// With `keep-aspect`: the padded width is a multiple of this (1–1024).
    #[serde(default = "default_width_multiple")]
    #[schemars(range(min = 1, max = 1024))]
    pub width_multiple: u32,
    /// With `keep-aspect`: the value of the padding, after normalisation.
    #[serde(default)]
    pub pad: f32,
    /// Where the channels are: `nchw` or `nhwc`.
    #[serde(default)]
    pub layout: Layout,
    /// Channel order: `rgb` or `bgr`.
    #[serde(default)]
    pub channels: Channels,
    /// Factor on the 0–255 pixel values before the mean is taken off.
    #[serde(default = "default_scale")]
    pub scale: f32,
    /// Per-channel mean, in the model's channel order, after scaling.
    #[serde(default = "default_mean")]
    pub mean: [f32; 3],
    /// Per-channel standard deviation, in the model's channel order, after scaling (each > 0).
    #[serde(default = "default_std")]
    pub std: [f32; 3],
    /// How the tensor is pooled: `auto`, `mean`, `max`, `first` or `none`.
    #[serde(default)]
    pub pooling: Pooling,
    /// Scale each vector to unit length.
    #[serde(default)]
    pub normalize: bool,
}

fn default_size() -> [u32; 2] {
    [224, 224]
}
fn default_width_multiple() -> u32 {
    1
}
fn default_scale() -> f32 {
    1.0 / 255.0
}
fn default_mean() -> [f32; 3] {
    [0.485, 0.456, 0.406]
}
fn default_std() -> [f32; 3] {
    [0.229, 0.224, 0.225]
}

/// The `onnx` image encoder.
pub struct OnnxImage {
    session: Session,
    input: String,
    output: String,
    params: OnnxParams,
    dim: usize,
}

impl Function for OnnxImage {
    const DOC: &'static str = "Any ONNX image model: images resized and normalised as it was trained (size, channel order, scale, mean, std, NCHW or NHWC), any tensor of its graph (an output or a layer's feature map), pooled and optionally scaled to unit length.";
    const ASSETS: &'static [AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME];
    type Params = OnnxParams;

    fn open(params: OnnxParams, ctx: &Context) -> Result<Self> {
        let [h, w] = params.size;
        ensure!(
            (1..=8192).contains(&h) && (1..=8192).contains(&w),
            "size must be [height, width] within 1..=8192, got {:?}",
            params.size
        );
        ensure!(params.scale.is_finite(), "scale must be finite, got {}", params.scale);
        ensure!(params.pad.is_finite(), "pad must be finite, got {}", params.pad);
        ensure!(
            (1..=1024).contains(&params.width_multiple),
            "width-multiple must be within 1..=1024, got {}",
            params.width_multiple
        );
        ensure!(
            params.std.iter().all(|s| s.is_finite() && *s > 0.0),
            "std must be > 0, got {:?}",
            params.std
        );
        ensure!(params.mean.iter().all(|m| m.is_finite()), "mean must be finite, got {:?}", params.mean);
        let (model, output) = commute_sdk::onnx::model_reading(&params.model, params.output.as_deref())?;
        let session = commute_sdk::onnx::session_from_memory(ctx, &model)?;
        let input = match session.inputs() {
            [only] => match only.dtype() {
                ValueType::Tensor { ty: TensorElementType::Float32, .. } => only.name().to_owned(),
                other => bail!(
                    "{}: input `{}` is {other}, not a float32 image ({})",
                    params.model,
                    only.name(),
                    commute_sdk::onnx::describe_io(&session)
                ),
            },
            _ => bail!(
                "{}: an image encoder feeds one float32 input ({})",
                params.model,
                commute_sdk::onnx::describe_io(&session)
            ),
        };
        let mut encoder = OnnxImage { session, input, output, params, dim: 0 };
        let white = Image { width: 1, height: 1, channels: 3, pixels: vec![255; 3] };
        let probe = encoder.run(white.as_ref()).with_context(|| {
            format!(
                "the probe run on a white image failed ({})",
                commute_sdk::onnx::describe_io(&encoder.session)
            )
        })?;
        encoder.dim = probe.len();
        Ok(encoder)
    }
}

impl OnnxImage {
    /// The model's input for one image, in its layout: the values, the input's width, and the
    /// width the image covers (the rest is padding).
    fn prepare(&self, image: ImageRef<'_>) -> Result<(Vec<f32>, usize, usize)> {
        let (w, h) = checked_size(image)?;
        let p = &self.params;
        let [out_h, size_w] = p.size.map(|d| d as usize);
        let (content_w, out_w) = match p.resize {
            Resize::Stretch => (size_w, size_w),
            Resize::KeepAspect => {
                let content = ((out_h * w) as f64 / h as f64).ceil().max(1.0) as usize;
                ensure!(
                    content <= 8192,
                    "a {w}×{h} image resizes to {content}×{out_h}: at most 8192 pixels wide"
                );
                let step = p.width_multiple as usize;
                (content, content.max(size_w).div_ceil(step) * step)
            }
        };
        let order = match p.channels {
            Channels::Rgb => [0, 1, 2],
            Channels::Bgr => [2, 1, 0],
        };
        let mut data = vec![p.pad; 3 * out_h * out_w];
        for (i, rgb) in resize_rgb(image, content_w, out_h).iter().enumerate() {
            let (y, x) = (i / content_w, i % content_w);
            for (k, &source) in order.iter().enumerate() {
                let at = match p.layout {
                    Layout::Nchw => k * out_h * out_w + y * out_w + x,
                    Layout::Nhwc => (y * out_w + x) * 3 + k,
                };
                data[at] = (rgb[source] * p.scale - p.mean[k]) / p.std[k];
            }
        }
        Ok((data, out_w, content_w))
    }

    /// One image's vector.
    fn run(&mut self, image: ImageRef<'_>) -> Result<Vec<f32>> {
        let (data, w, content_w) = self.prepare(image)?;
        let h = self.params.size[0] as usize;
        let shape = match self.params.layout {
            Layout::Nchw => [1, 3, h, w],
            Layout::Nhwc => [1, h, w, 3],
        };
        let tensor = Tensor::from_array((shape, data)).map_err(|e| anyhow!("cannot build the input: {e}"))?;
        let outputs = self
            .session
            .run(vec![(self.input.clone(), commute_sdk::onnx::ort::session::SessionInputValue::from(tensor))])
            .map_err(|e| anyhow!("ONNX Runtime failed on a {h}×{w} image: {e}"))?;
        let (out_shape, values) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| anyhow!("`{}` is not a float32 tensor: {e}", self.output))?;
        let vector = pool(out_shape, values, self.params.pooling, &self.output, (content_w, w))?;
        Ok(if self.params.normalize { commute_sdk::onnx::unit_length(vector) } else { vector })
    }
}

/// Pools one image's tensor (`shape` with the batch first, of 1). `covered` is (the width the
/// image covers, the input's width): positions along the width (a map's last axis, a sequence's
/// tokens) beyond the image — over the padding — are left out of mean and max.
fn pool(
    shape: &[i64],
    values: &[f32],
    pooling: Pooling,
    output: &str,
    (content_w, input_w): (usize, usize),
) -> Result<Vec<f32>> {
    let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    // Positions of `n` along the width that cover the image (at least 1).
    let covering = |n: usize| (n * content_w).div_ceil(input_w.max(1)).clamp(1, n.max(1));
    ensure!(dims.first() == Some(&1), "`{output}` has shape {shape:?}: expected one image in its batch");
    let over =
        |channels: usize, positions: &[usize], at: &dyn Fn(usize, usize) -> usize, max: bool| -> Vec<f32> {
            (0..channels)
                .map(|ch| {
                    let values = positions.iter().map(|&p| values[at(ch, p)]);
                    if max {
                        values.fold(f32::NEG_INFINITY, f32::max)
                    } else {
                        values.sum::<f32>() / positions.len().max(1) as f32
                    }
                })
                .collect()
        };
    Ok(match (dims.as_slice(), pooling) {
        (_, Pooling::None) | ([_, _], Pooling::Auto) => values.to_vec(),
        // [1, C, H, W]: over the H × W positions of each channel.
        ([_, ch, hh, ww], Pooling::Auto | Pooling::Mean | Pooling::Max) => {
            let cols = covering(*ww);
            let positions: Vec<usize> = (0..*hh).flat_map(|y| (0..cols).map(move |x| y * ww + x)).collect();
            over(*ch, &positions, &|c, p| c * hh * ww + p, pooling == Pooling::Max)
        }
        // [1, T, D]: over the tokens.
        ([_, t, d], Pooling::Auto | Pooling::Mean | Pooling::Max) => {
            let positions: Vec<usize> = (0..covering(*t)).collect();
            over(*d, &positions, &|c, p| p * d + c, pooling == Pooling::Max)
        }
        ([_, t, d], Pooling::First) if *t > 0 => values[..*d].to_vec(),
        _ => bail!(
            "`{output}` has shape {shape:?}: pooling `{pooling:?}` reads a [1, C, H, W] map or a [1, T, D] sequence (first: a sequence); `none` takes any tensor whole"
        ),
    })
}

impl Encoder for OnnxImage {
    type Input<'a> = ImageRef<'a>;

    fn dim(&self) -> usize {
        self.dim
    }

    fn encode(&mut self, image: ImageRef<'_>) -> Result<Vec<f32>> {
        let vector = self.run(image)?;
        ensure!(
            vector.len() == self.dim,
            "`{}` gave {} values, {} for the probe image",
            self.output,
            vector.len(),
            self.dim
        );
        Ok(vector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_reads_maps_by_channel_and_sequences_by_token() {
        // [1, 2, 1, 2]: channel 0 = (1, 3), channel 1 = (4, -2).
        let map = [1.0, 3.0, 4.0, -2.0];
        assert_eq!(pool(&[1, 2, 1, 2], &map, Pooling::Auto, "m", (1, 1)).unwrap(), vec![2.0, 1.0]);
        assert_eq!(pool(&[1, 2, 1, 2], &map, Pooling::Max, "m", (1, 1)).unwrap(), vec![3.0, 4.0]);
        assert_eq!(pool(&[1, 2, 1, 2], &map, Pooling::None, "m", (1, 1)).unwrap(), map.to_vec());
        // [1, 2, 2]: tokens (1, 3) and (4, -2).
        assert_eq!(pool(&[1, 2, 2], &map, Pooling::Mean, "s", (1, 1)).unwrap(), vec![2.5, 0.5]);
        assert_eq!(pool(&[1, 2, 2], &map, Pooling::First, "s", (1, 1)).unwrap(), vec![1.0, 3.0]);
        assert!(pool(&[1, 2, 1, 2], &map, Pooling::First, "m", (1, 1))
            .unwrap_err()
            .to_string()
            .contains("first"));
        assert!(pool(&[2, 2], &map, Pooling::Auto, "b", (1, 1)).is_err(), "one image per batch");
        // Half the input is padding: only the first half of the width counts.
        assert_eq!(pool(&[1, 2, 1, 2], &map, Pooling::Mean, "m", (1, 2)).unwrap(), vec![1.0, 4.0]);
        assert_eq!(pool(&[1, 2, 2], &map, Pooling::Mean, "s", (3, 8)).unwrap(), vec![1.0, 3.0]);
    }
}
