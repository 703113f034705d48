//! The `text-image` render: draws a text on one line with a DejaVu font into an 8-bit image,
//! optionally rotated, blurred and with seeded pixel noise — deterministic for given parameters.
//!
//! # Drawing
//!
//! 1. Layout: the text's characters on one baseline (control characters such as line breaks and
//!    tabs become spaces; characters the font lacks are drawn as its missing-glyph box), advancing
//!    by each glyph's advance width plus the font's pair kerning. `size` is the em size in pixels
//!    (as in CSS: a 32 px DejaVu Sans capital is about 23 px tall).
//! 2. Canvas: `padding` pixels of paper on every side of the line box, whose height is the font's
//!    ascent − descent (about 1.16 em for DejaVu). With `height`, the image is that tall and the
//!    line box is centred in it (glyphs that do not fit are clipped). Empty text gives a canvas of
//!    paper only, `2 × padding` wide (at least 1 pixel).
//! 3. Glyph outlines are rasterised with exact area coverage (anti-aliased).
//! 4. `rotation` turns the canvas counter-clockwise about its centre (bilinear), growing it so
//!    that nothing is cut; `blur` convolves with a Gaussian of that standard deviation.
//! 5. Each channel is `paper + (ink − paper) × coverage`; `noise` adds Gaussian noise of that
//!    standard deviation (in 0–255 levels) to every channel of every pixel, drawn from a ChaCha8
//!    generator seeded with a hash of `seed` and the text: the same text with the same
//!    parameters always gives the same image, different texts get independent noise.
//!
//! `mode = "grey"` gives one channel (the ITU-R BT.601 luma of `ink` and `paper`), `"rgb"` three.

use crate::canvas::Canvas;
use crate::fonts::{self, Family};
use ab_glyph::{point, Font, FontVec, Glyph, PxScale, ScaleFont};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The widest image `text-image` draws, in pixels (before rotation).
pub const MAX_WIDTH: usize = 16_384;
/// The tallest image `text-image` draws, in pixels (before rotation).
pub const MAX_HEIGHT: usize = 4_096;

/// Pixel format of the rendered image.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One channel: the luma of the ink and paper colours.
    Grey,
    /// Three channels, red green blue.
    Rgb,
}

/// Parameters of `text-image`.
#[params]
#[derive(Debug, Clone)]
pub struct TextImageParams {
    /// Font family: `sans`, `serif` or `mono` (DejaVu Sans, Serif, Sans Mono).
    #[serde(default = "default_font")]
    pub font: Family,
    /// Use the bold weight of the family.
    #[serde(default)]
    pub bold: bool,
    /// Font size: pixels per em (4–512).
    #[serde(default = "default_size")]
    pub size: f32,
    /// Paper around the line box on every side, in pixels (0–1024).
    #[serde(default = "default_padding")]
    #[schemars(range(max = 1024))]
    pub padding: u32,
    /// Image height in pixels (1–4096), the line centred vertically; by default the line box
    /// plus twice the padding.
    #[serde(default)]
    pub height: Option<u32>,
    /// `grey` (one channel) or `rgb` (three channels).
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// Ink colour, `[red, green, blue]` in 0–255.
    #[serde(default = "default_ink")]
    pub ink: [u8; 3],
    /// Paper (background) colour, `[red, green, blue]` in 0–255.
    #[serde(default = "default_paper")]
    pub paper: [u8; 3],
    /// Counter-clockwise rotation in degrees (−45–45); the image grows to hold the turned text.
    #[serde(default)]
    pub rotation: f32,
    /// Gaussian blur: standard deviation in pixels (0–10; 0 = none).
    #[serde(default)]
    pub blur: f32,
    /// Gaussian pixel noise: standard deviation in 0–255 levels (0–128; 0 = none).
    #[serde(default)]
    pub noise: f32,
    /// Noise seed; each item's noise depends on this seed and its text only.
    #[serde(default)]
    pub seed: u64,
}

impl Default for TextImageParams {
    fn default() -> Self {
        TextImageParams {
            font: default_font(),
            bold: false,
            size: default_size(),
            padding: default_padding(),
            height: None,
            mode: default_mode(),
            ink: default_ink(),
            paper: default_paper(),
            rotation: 0.0,
            blur: 0.0,
            noise: 0.0,
            seed: 0,
        }
    }
}

fn default_font() -> Family {
    Family::Sans
}
fn default_size() -> f32 {
    32.0
}
fn default_padding() -> u32 {
    8
}
fn default_mode() -> Mode {
    Mode::Grey
}
fn default_ink() -> [u8; 3] {
    [0, 0, 0]
}
fn default_paper() -> [u8; 3] {
    [255, 255, 255]
}

fn check_range(name: &str, value: f32, min: f32, max: f32) -> Result<()> {
    ensure!(
        value.is_finite() && (min..=max).contains(&value),
        "{name} must be within {min}..={max}, got {value}"
    );
    Ok(())
}

/// The `text-image` render.
pub struct TextImage {
    params: TextImageParams,
    font: FontVec,
    scale: PxScale,
}

impl Function for TextImage {
    const DOC: &'static str = "Draws the text on one line with a DejaVu font (sans, serif or mono; grey or RGB), optionally rotated, blurred and with seeded Gaussian noise.";
    type Params = TextImageParams;
    const ASSETS: &'static [AssetSpec] = &fonts::ALL;

    fn open(params: TextImageParams, ctx: &Context) -> Result<Self> {
        check_range("size", params.size, 4.0, 512.0)?;
        check_range("rotation", params.rotation, -45.0, 45.0)?;
        check_range("blur", params.blur, 0.0, 10.0)?;
        check_range("noise", params.noise, 0.0, 128.0)?;
        ensure!(params.padding <= 1024, "padding must be within 0..=1024, got {}", params.padding);
        if let Some(h) = params.height {
            ensure!((1..=MAX_HEIGHT as u32).contains(&h), "height must be within 1..={MAX_HEIGHT}, got {h}");
        }
        let font = fonts::load(ctx, params.font, params.bold)?;
        // ab_glyph scales so that ascent − descent spans the given pixels; convert from the em.
        let units_per_em = font.units_per_em().ok_or_else(|| anyhow!("the font has no units-per-em"))?;
        let scale = PxScale::from(params.size * font.height_unscaled() / units_per_em);
        Ok(TextImage { params, font, scale })
    }
}

impl TextImage {
    /// Draws the coverage of the text, before rotation and blur.
    fn draw(&self, text: &str) -> Result<Canvas> {
        let font = self.font.as_scaled(self.scale);
        let pad = self.params.padding as f32;
        let (ascent, line) = (font.ascent(), font.ascent() - font.descent());

        let mut glyphs: Vec<Glyph> = Vec::new();
        let mut pen = pad;
        let mut previous = None;
        for c in text.chars() {
            let c = if c.is_control() { ' ' } else { c };
            let id = font.glyph_id(c);
            if let Some(prev) = previous {
                pen += font.kern(prev, id);
            }
            glyphs.push(id.with_scale_and_position(self.scale, point(pen, 0.0)));
            pen += font.h_advance(id);
            previous = Some(id);
        }

        let width = (pen + pad).ceil().max(1.0) as usize;
        let height = match self.params.height {
            Some(h) => h as usize,
            None => (line + 2.0 * pad).ceil().max(1.0) as usize,
        };
        ensure!(
            width <= MAX_WIDTH,
            "the text is too long to draw at size {}: {width} px wide, at most {MAX_WIDTH}",
            self.params.size
        );
        ensure!(height <= MAX_HEIGHT, "the image would be {height} px tall, at most {MAX_HEIGHT}");
        let baseline = (height as f32 - line) / 2.0 + ascent;

        let mut canvas = Canvas::new(width, height);
        for mut glyph in glyphs {
            glyph.position.y = baseline;
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                let (x0, y0) = (bounds.min.x as i64, bounds.min.y as i64);
                outline.draw(|x, y, c| canvas.add(x0 + i64::from(x), y0 + i64::from(y), c));
            }
        }
        Ok(canvas)
    }

    /// The noise generator of one item: seeded by the `seed` parameter and the text (FNV-1a).
    fn rng(&self, text: &str) -> ChaCha8Rng {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.params.seed.to_le_bytes().iter().chain(text.as_bytes()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        ChaCha8Rng::seed_from_u64(hash)
    }
}

/// ITU-R BT.601 luma of an RGB colour.
fn luma([r, g, b]: [u8; 3]) -> u8 {
    (0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)).round().clamp(0.0, 255.0) as u8
}

impl Render for TextImage {
    type Input<'a> = &'a str;
    type Output = Image;

    fn render(&mut self, text: &str) -> Result<Image> {
        let canvas = self.draw(text)?.rotated(self.params.rotation).blurred(self.params.blur);
        let p = &self.params;
        let (ink, paper): (Vec<u8>, Vec<u8>) = match p.mode {
            Mode::Grey => (vec![luma(p.ink)], vec![luma(p.paper)]),
            Mode::Rgb => (p.ink.to_vec(), p.paper.to_vec()),
        };
        let pixels = canvas.composite(&ink, &paper, p.noise, &mut self.rng(text));
        Ok(Image {
            width: u32::try_from(canvas.width)?,
            height: u32::try_from(canvas.height)?,
            channels: ink.len() as u8,
            pixels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_weights_green_most() {
        assert_eq!(luma([0, 0, 0]), 0);
        assert_eq!(luma([255, 255, 255]), 255);
        assert!(luma([0, 255, 0]) > luma([255, 0, 0]) && luma([255, 0, 0]) > luma([0, 0, 255]));
    }

    #[test]
    fn out_of_range_parameters_are_refused_before_any_font_is_read() {
        let ctx = Context::default();
        for (p, word) in [
            (TextImageParams { size: 2.0, ..TextImageParams::default() }, "size"),
            (TextImageParams { rotation: 90.0, ..TextImageParams::default() }, "rotation"),
            (TextImageParams { blur: f32::NAN, ..TextImageParams::default() }, "blur"),
            (TextImageParams { noise: -1.0, ..TextImageParams::default() }, "noise"),
            (TextImageParams { padding: 5000, ..TextImageParams::default() }, "padding"),
            (TextImageParams { height: Some(0), ..TextImageParams::default() }, "height"),
        ] {
            let err = TextImage::open(p, &ctx).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(word), "{word}: {err}");
        }
        // Valid parameters get as far as asking for the font.
        let err = TextImage::open(TextImageParams::default(), &ctx).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("dejavu-sans"));
    }
}
