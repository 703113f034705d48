//! A colour as a value: a tensor of shape `[3]`, its sRGB channels in 0–1.

use commute_sdk::prelude::*;
use commute_sdk::{Tensor, TensorRef};

/// A colour's sRGB channels, or why the tensor is not a colour.
pub fn channels(t: TensorRef<'_>) -> Result<[f64; 3]> {
    let (&[3], &[r, g, b]) = (t.shape, t.data) else {
        bail!("a colour is a tensor of shape [3] (sRGB in 0–1), got shape {:?}", t.shape);
    };
    for c in [r, g, b] {
        ensure!((0.0..=1.0).contains(&c), "colour channels must be within 0..=1, got {c}");
    }
    Ok([r, g, b].map(f64::from))
}

/// The value of a colour.
pub fn tensor(rgb: [f64; 3]) -> Tensor {
    Tensor::vector(rgb.iter().map(|&c| c.clamp(0.0, 1.0) as f32).collect())
}
