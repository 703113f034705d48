//! A coverage canvas (ink amount per pixel, 0 = paper, 1 = ink) and what `text-image` does to it
//! after drawing: rotation, Gaussian blur, and compositing into 8-bit pixels with seeded
//! Gaussian noise.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Ink coverage per pixel, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width × height` coverages in 0..=1.
    pub coverage: Vec<f32>,
}

impl Canvas {
    /// A blank (all paper) canvas.
    pub fn new(width: usize, height: usize) -> Canvas {
        Canvas { width, height, coverage: vec![0.0; width * height] }
    }

    /// Adds coverage at a pixel (clipped to the canvas and to 1).
    pub fn add(&mut self, x: i64, y: i64, amount: f32) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let cell = &mut self.coverage[y as usize * self.width + x as usize];
        *cell = (*cell + amount).min(1.0);
    }

    /// Coverage at a pixel, 0 outside the canvas.
    fn at(&self, x: i64, y: i64) -> f32 {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            0.0
        } else {
            self.coverage[y as usize * self.width + x as usize]
        }
    }

    /// Bilinear sample at a point in pixel coordinates (pixel centres at `i + 0.5`), 0 outside.
    fn sample(&self, x: f32, y: f32) -> f32 {
        let (fx, fy) = (x - 0.5, y - 0.5);
        let (x0, y0) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - x0, fy - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let top = self.at(x0, y0) * (1.0 - tx) + self.at(x0 + 1, y0) * tx;
        let bottom = self.at(x0, y0 + 1) * (1.0 - tx) + self.at(x0 + 1, y0 + 1) * tx;
        top * (1.0 - ty) + bottom * ty
    }

    /// Rotated counter-clockwise by `degrees` about the centre, on a canvas grown to hold all of
    /// the rotated one (bilinear resampling; new area is paper). Zero degrees is the identity.
    pub fn rotated(&self, degrees: f32) -> Canvas {
        if degrees == 0.0 {
            return self.clone();
        }
        let (sin, cos) = degrees.to_radians().sin_cos();
        let (w, h) = (self.width as f32, self.height as f32);
        // Rounding error must not add a column (cos 90° is not exactly 0 in floats).
        let width = (w * cos.abs() + h * sin.abs() - 1e-3).ceil().max(1.0) as usize;
        let height = (w * sin.abs() + h * cos.abs() - 1e-3).ceil().max(1.0) as usize;
        let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
        let mut out = Canvas::new(width, height);
        for y in 0..height {
            for x in 0..width {
                // Image rows grow downwards, so a counter-clockwise turn on screen maps an output
                // offset (dx, dy) back to the source through the transposed rotation.
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                let sx = cos * dx - sin * dy + w / 2.0;
                let sy = sin * dx + cos * dy + h / 2.0;
                out.coverage[y * width + x] = self.sample(sx, sy);
            }
        }
        out
    }

    /// Blurred with a Gaussian of standard deviation `sigma` pixels (separable, truncated at
    /// 3σ, renormalised; outside the canvas counts as paper). Zero is the identity.
    pub fn blurred(&self, sigma: f32) -> Canvas {
        if sigma <= 0.0 || self.coverage.is_empty() {
            return self.clone();
        }
        let radius = (3.0 * sigma).ceil() as i64;
        let weights: Vec<f32> =
            (-radius..=radius).map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp()).collect();
        let total: f32 = weights.iter().sum();
        let weights: Vec<f32> = weights.iter().map(|w| w / total).collect();
        let pass = |src: &Canvas, horizontal: bool| {
            let mut out = Canvas::new(src.width, src.height);
            for y in 0..src.height as i64 {
                for x in 0..src.width as i64 {
                    let mut acc = 0.0;
                    for (k, w) in weights.iter().enumerate() {
                        let d = k as i64 - radius;
                        acc += w * if horizontal { src.at(x + d, y) } else { src.at(x, y + d) };
                    }
                    out.coverage[y as usize * src.width + x as usize] = acc;
                }
            }
            out
        };
        pass(&pass(self, true), false)
    }

    /// 8-bit pixels: each channel is `paper + (ink − paper) × coverage`, plus Gaussian noise of
    /// standard deviation `noise` levels drawn from `rng` (one draw per channel of each pixel,
    /// row-major), rounded and clamped to 0..=255.
    pub fn composite(&self, ink: &[u8], paper: &[u8], noise: f32, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let channels = ink.len().min(paper.len());
        let mut out = Vec::with_capacity(self.coverage.len() * channels);
        let mut gauss = Gauss::default();
        for &c in &self.coverage {
            for k in 0..channels {
                let (i, p) = (f32::from(ink[k]), f32::from(paper[k]));
                let mut v = p + (i - p) * c;
                if noise > 0.0 {
                    v += noise * gauss.next(rng);
                }
                out.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
        out
    }
}

/// Standard normal draws by the Box–Muller transform, two per pair of uniforms.
#[derive(Default)]
struct Gauss {
    spare: Option<f32>,
}

impl Gauss {
    fn next(&mut self, rng: &mut ChaCha8Rng) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // 1 − u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some((r * s) as f32);
        (r * c) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn bar() -> Canvas {
        // A horizontal bar, 20 × 2 pixels, in the middle of a 30 × 10 canvas.
        let mut c = Canvas::new(30, 10);
        for y in 4..6 {
            for x in 5..25 {
                c.add(x, y, 1.0);
            }
        }
        c
    }

    fn ink(c: &Canvas) -> f32 {
        c.coverage.iter().sum()
    }

    #[test]
    fn coverage_is_clipped_to_the_canvas_and_to_one() {
        let mut c = Canvas::new(2, 2);
        c.add(-1, 0, 1.0);
        c.add(0, 5, 1.0);
        c.add(1, 1, 0.7);
        c.add(1, 1, 0.7);
        assert_eq!(c.coverage, [0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn a_quarter_turn_makes_a_horizontal_bar_vertical() {
        let c = bar().rotated(90.0);
        assert_eq!((c.width, c.height), (10, 30));
        let column = |x: usize| (0..c.height).map(|y| c.coverage[y * c.width + x]).sum::<f32>();
        let row = |y: usize| (0..c.width).map(|x| c.coverage[y * c.width + x]).sum::<f32>();
        assert!((column(4) + column(5) - 40.0).abs() < 1e-3, "{} {}", column(4), column(5));
        assert_eq!(row(2), 0.0, "the bar spans rows 5..25 only");
        assert!((ink(&c) - 40.0).abs() < 1e-3);
    }

    #[test]
    fn a_small_turn_keeps_the_ink_and_grows_the_canvas() {
        let c = bar().rotated(10.0);
        assert!(c.width > 30 && c.height > 10, "{}×{}", c.width, c.height);
        assert!((ink(&c) - 40.0).abs() < 1.5, "ink {}", ink(&c));
        // Counter-clockwise: the bar's right end rises (smaller row index) on screen.
        let centre_row = |x0: usize, x1: usize| {
            let (mut m, mut s) = (0.0, 0.0);
            for y in 0..c.height {
                for x in x0..x1 {
                    m += y as f32 * c.coverage[y * c.width + x];
                    s += c.coverage[y * c.width + x];
                }
            }
            m / s
        };
        let w = c.width;
        assert!(centre_row(w * 3 / 4, w) < centre_row(0, w / 4) - 2.0);
        assert_eq!(bar().rotated(0.0), bar());
    }

    #[test]
    fn blur_spreads_ink_but_keeps_it_away_from_the_edges() {
        let c = bar().blurred(1.0);
        assert!((ink(&c) - 40.0).abs() < 1e-3, "ink {}", ink(&c));
        assert!(c.coverage[3 * 30 + 15] > 0.1 && c.coverage[3 * 30 + 15] < 0.5);
        assert!(c.coverage[4 * 30 + 15] < 1.0);
        assert_eq!(bar().blurred(0.0), bar());
    }

    #[test]
    fn compositing_mixes_ink_and_paper_and_adds_seeded_noise() {
        let mut c = Canvas::new(2, 1);
        c.add(1, 0, 0.5);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(
            c.composite(&[0, 200, 255], &[255, 100, 255], 0.0, &mut rng),
            [255, 100, 255, 128, 150, 255]
        );
        let big = Canvas::new(200, 200);
        let noisy = |seed| big.composite(&[0], &[128], 10.0, &mut ChaCha8Rng::seed_from_u64(seed));
        let a = noisy(3);
        assert_eq!(a, noisy(3));
        assert_ne!(a, noisy(4));
        let mean = a.iter().map(|&v| f64::from(v)).sum::<f64>() / a.len() as f64;
        let std = (a.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
        assert!((mean - 128.0).abs() < 0.3 && (std - 10.0).abs() < 0.3, "mean {mean}, std {std}");
    }
}
