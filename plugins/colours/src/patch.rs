//! `patch`: a colour rendered as an image — a square of it under a lighting gradient, with a
//! texture and pixel noise, so that the picture is not simply its colour's three numbers. Every
//! pixel's lightness varies around the colour's; its chroma and hue are the colour's. Seeded by
//! the colour and `seed`: the same colour always gives the same patch.

use crate::colour::channels;
use crate::lab::{to_lab, to_rgb};
use commute_sdk::prelude::*;
use commute_sdk::{Image, TensorRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Parameters of `patch`.
#[params]
#[derive(Debug, Clone)]
pub struct PatchParams {
    /// Width and height in pixels.
    #[serde(default = "default_size")]
    #[schemars(range(min = 4, max = 512))]
    pub size: u32,
    /// Amplitude of the lighting gradient across the patch, in L* (0–100 scale).
    #[serde(default = "default_lighting")]
    #[schemars(range(min = 0, max = 50))]
    pub lighting: f64,
    /// Amplitude of the texture (a seeded wave pattern), in L*.
    #[serde(default = "default_texture")]
    #[schemars(range(min = 0, max = 50))]
    pub texture: f64,
    /// Standard deviation of the pixel noise, in 8-bit channel steps.
    #[serde(default = "default_noise")]
    #[schemars(range(min = 0, max = 64))]
    pub noise: f64,
    /// Seed mixed with the colour for the gradient's direction, the texture and the noise.
    #[serde(default)]
    pub seed: u64,
}

fn default_size() -> u32 {
    32
}
fn default_lighting() -> f64 {
    8.0
}
fn default_texture() -> f64 {
    4.0
}
fn default_noise() -> f64 {
    3.0
}

/// The `patch` render.
pub struct Patch(PatchParams);

impl Function for Patch {
    const DOC: &'static str = "A colour as an RGB image: a square of it under a lighting gradient, with a texture and pixel noise (seeded by the colour and `seed`).";
    type Params = PatchParams;

    fn open(p: PatchParams, _: &Context) -> Result<Self> {
        Ok(Patch(p))
    }
}

impl Render for Patch {
    type Input<'a> = TensorRef<'a>;
    type Output = Image;

    fn render(&mut self, colour: TensorRef<'_>) -> Result<Image> {
        let rgb = channels(colour)?;
        let p = &self.0;
        let mut seed = p.seed;
        for &c in colour.data {
            seed = seed.rotate_left(21) ^ u64::from(c.to_bits()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let angle = rng.random_range(0.0..std::f64::consts::TAU);
        let (fx, fy) = (rng.random_range(1.0..4.0), rng.random_range(1.0..4.0));
        let phase = rng.random_range(0.0..std::f64::consts::TAU);
        let lab = to_lab(rgb);
        let n = p.size as usize;
        let mut pixels = Vec::with_capacity(n * n * 3);
        for y in 0..n {
            for x in 0..n {
                let (u, v) = (x as f64 / (n - 1) as f64 - 0.5, y as f64 / (n - 1) as f64 - 0.5);
                let light = 2.0 * p.lighting * (u * angle.cos() + v * angle.sin());
                let wave = p.texture * (std::f64::consts::TAU * (fx * u + fy * v) + phase).sin();
                let pixel = to_rgb([(lab[0] + light + wave).clamp(0.0, 100.0), lab[1], lab[2]]);
                for c in pixel {
                    let noise = p.noise * gaussian(&mut rng);
                    pixels.push((c * 255.0 + noise).round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        Ok(Image { width: p.size, height: p.size, channels: 3, pixels })
    }
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour::tensor;

    fn mean_lab(image: &Image) -> [f64; 3] {
        let mut sum = [0.0; 3];
        for px in image.pixels.chunks(3) {
            let lab = to_lab([px[0], px[1], px[2]].map(|v| f64::from(v) / 255.0));
            for i in 0..3 {
                sum[i] += lab[i];
            }
        }
        sum.map(|s| s / (image.pixels.len() / 3) as f64)
    }

    #[test]
    fn a_patch_is_its_colour_on_average_varies_inside_and_is_deterministic() {
        let colour = tensor([0.6, 0.3, 0.2]);
        let params = PatchParams { size: 32, lighting: 8.0, texture: 4.0, noise: 3.0, seed: 1 };
        let a = Patch(params.clone()).render(colour.as_ref()).unwrap();
        assert_eq!((a.width, a.height, a.channels, a.pixels.len()), (32, 32, 3, 32 * 32 * 3));
        let target = to_lab([0.6, 0.3, 0.2]);
        let mean = mean_lab(&a);
        assert!((0..3).all(|i| (mean[i] - target[i]).abs() < 1.5), "{mean:?} vs {target:?}");
        assert!(
            a.pixels.chunks(3).collect::<std::collections::HashSet<_>>().len() > 100,
            "texture and noise vary the pixels"
        );
        assert_eq!(Patch(params.clone()).render(colour.as_ref()).unwrap().pixels, a.pixels);
        let other = Patch(PatchParams { seed: 2, ..params.clone() }).render(colour.as_ref()).unwrap();
        assert_ne!(other.pixels, a.pixels);
        let flat = Patch(PatchParams { lighting: 0.0, texture: 0.0, noise: 0.0, ..params })
            .render(colour.as_ref())
            .unwrap();
        assert_eq!(flat.pixels.chunks(3).collect::<std::collections::HashSet<_>>().len(), 1);
    }
}
