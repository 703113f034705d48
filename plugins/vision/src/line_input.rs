//! The recognizer's input for one text-line image: resized to height 48 keeping the aspect ratio
//! (bilinear), in blue-green-red channel order, scaled to −1..1 and padded on the right.
//!
//! This is PP-OCR's recognition preprocessing: the resized width is `⌈48 · w / h⌉` pixels, pixel
//! values `v` become `v / 127.5 − 1`, and the padding is 0 (mid-grey). The model was trained on
//! lines padded to at least 320 pixels ([`MIN_WIDTH`]), so by default every line is padded to at
//! least that; longer lines are padded up to a multiple of [`WIDTH_STEP`]. The padded width
//! depends on the image alone, never on the other images of a batch, so a line reads and encodes
//! the same alone or in any batch. Grey images are used for all three channels; an alpha channel is composited over
//! white.

use commute_sdk::prelude::*;

/// Input height of the recognizer.
pub const HEIGHT: usize = 48;
/// The narrowest padded input by default: the width the recognizer was trained at.
pub const MIN_WIDTH: usize = 320;
/// Wider lines are padded to a multiple of this many pixels (four time steps).
pub const WIDTH_STEP: usize = 32;
/// Horizontal pixels per time step of the recognizer's output sequence.
pub const STRIDE: usize = 8;
/// The widest resized line accepted: an aspect ratio of at most 100 (400 time steps).
pub const MAX_WIDTH: usize = 4_800;

/// One line, ready for the recognizer.
#[derive(Debug, Clone, PartialEq)]
pub struct LineInput {
    /// Width of the resized image, before padding.
    pub content_width: usize,
    /// Width after padding: the tensor is 3 × [`HEIGHT`] × `width`.
    pub width: usize,
    /// Channel-major values, blue, green, red planes.
    pub data: Vec<f32>,
}

impl LineInput {
    /// Time steps of the output sequence (`width / STRIDE`).
    pub fn steps(&self) -> usize {
        self.width / STRIDE
    }

    /// Time steps that cover the image rather than the padding (at least 1).
    pub fn content_steps(&self) -> usize {
        self.content_width.div_ceil(STRIDE).clamp(1, self.steps())
    }
}

/// Checks an image's shape and converts it into the recognizer's input, padded to at least
/// `min_width` pixels (rounded up to a multiple of [`WIDTH_STEP`]).
pub fn prepare(image: ImageRef<'_>, min_width: usize) -> Result<LineInput> {
    let (w, h) = checked_size(image)?;
    let content_width = ((HEIGHT * w) as f64 / h as f64).ceil().max(1.0) as usize;
    ensure!(
        content_width <= MAX_WIDTH,
        "the image is too wide for one text line: {w}×{h} resizes to {content_width}×{HEIGHT}, at most \
         {MAX_WIDTH} pixels wide (aspect ratio 100)"
    );
    let width = content_width.max(min_width).div_ceil(WIDTH_STEP).max(1) * WIDTH_STEP;
    let plane = HEIGHT * width;
    let mut data = vec![0.0f32; 3 * plane];
    let resized = resize_rgb(image, content_width, HEIGHT);
    for (i, rgb) in resized.iter().enumerate() {
        let (y, x) = (i / content_width, i % content_width);
        // Blue, green, red planes.
        for (k, v) in [rgb[2], rgb[1], rgb[0]].into_iter().enumerate() {
            data[k * plane + y * width + x] = v / 127.5 - 1.0;
        }
    }
    Ok(LineInput { content_width, width, data })
}

/// An image's width and height, after checking that it has pixels, 1, 3 or 4 channels, and as
/// many bytes as its shape says.
pub(crate) fn checked_size(image: ImageRef<'_>) -> Result<(usize, usize)> {
    let (w, h, c) = (image.width as usize, image.height as usize, usize::from(image.channels));
    ensure!(w > 0 && h > 0, "the image is empty ({w}×{h})");
    ensure!(matches!(c, 1 | 3 | 4), "images need 1, 3 or 4 channels, this one has {c}");
    ensure!(
        image.pixels.len() == w * h * c,
        "a {w}×{h}×{c} image needs {} bytes, got {}",
        w * h * c,
        image.pixels.len()
    );
    Ok((w, h))
}

/// A checked image ([`checked_size`]) resized to `to_w × to_h` by bilinear interpolation between
/// pixel centres: red, green and blue in 0..=255 per output pixel, row by row. Grey is used for
/// all three channels; an alpha channel is composited over white.
pub(crate) fn resize_rgb(image: ImageRef<'_>, to_w: usize, to_h: usize) -> Vec<[f32; 3]> {
    let (w, h, c) = (image.width as usize, image.height as usize, usize::from(image.channels));
    let rgb = |x: usize, y: usize| -> [f32; 3] {
        let p = &image.pixels[(y * w + x) * c..][..c];
        match c {
            1 => [f32::from(p[0]); 3],
            3 => [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])],
            _ => {
                let a = f32::from(p[3]) / 255.0;
                let over_white = |v: u8| f32::from(v) * a + 255.0 * (1.0 - a);
                [over_white(p[0]), over_white(p[1]), over_white(p[2])]
            }
        }
    };
    let (xs, ys) = (taps(w, to_w), taps(h, to_h));
    let mut out = Vec::with_capacity(to_w * to_h);
    for &(y0, y1, ty) in &ys {
        for &(x0, x1, tx) in &xs {
            let (a, b, cc, d) = (rgb(x0, y0), rgb(x1, y0), rgb(x0, y1), rgb(x1, y1));
            out.push(std::array::from_fn(|k| {
                let top = a[k] + (b[k] - a[k]) * tx;
                let bottom = cc[k] + (d[k] - cc[k]) * tx;
                top + (bottom - top) * ty
            }));
        }
    }
    out
}

/// Bilinear taps for resizing `from` samples to `to`: for each output index the two source
/// indices and the weight of the second, with pixel centres aligned (`(i + 0.5) · from / to − 0.5`)
/// and positions clamped to the edges.
fn taps(from: usize, to: usize) -> Vec<(usize, usize, f32)> {
    let scale = from as f64 / to as f64;
    (0..to)
        .map(|i| {
            let pos = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, (from - 1) as f64);
            let i0 = pos.floor() as usize;
            let i1 = (i0 + 1).min(from - 1);
            (i0, i1, (pos - i0 as f64) as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(width: u32, height: u32, channels: u8, pixels: Vec<u8>) -> Image {
        Image { width, height, channels, pixels }
    }

    #[test]
    fn widths_keep_the_aspect_ratio_and_pad_to_the_step() {
        let line = |w: u32, h: u32| {
            prepare(image(w, h, 1, vec![255; (w * h) as usize]).as_ref(), MIN_WIDTH).unwrap()
        };
        let l = line(100, 50);
        assert_eq!((l.content_width, l.width, l.steps(), l.content_steps()), (96, 320, 40, 12));
        assert_eq!(l.data.len(), 3 * 48 * 320);
        let l = line(1000, 48);
        assert_eq!((l.content_width, l.width, l.content_steps()), (1000, 1024, 125));
        let l = line(1, 1);
        assert_eq!((l.content_width, l.width, l.content_steps()), (48, 320, 6));
        let narrow = prepare(image(1, 1, 1, vec![0]).as_ref(), 40).unwrap();
        assert_eq!((narrow.content_width, narrow.width, narrow.steps()), (48, 64, 8));
        // White content is 1, the padding 0.
        assert_eq!((l.data[0], l.data[47], l.data[48]), (1.0, 1.0, 0.0));
    }

    #[test]
    fn colour_is_ordered_blue_green_red_and_alpha_goes_over_white() {
        let plane = 48 * 320;
        let rgb = prepare(image(1, 1, 3, vec![255, 0, 51]).as_ref(), MIN_WIDTH).unwrap();
        assert_eq!([rgb.data[0], rgb.data[plane], rgb.data[2 * plane]], [51.0 / 127.5 - 1.0, -1.0, 1.0]);
        let clear = prepare(image(1, 1, 4, vec![0, 0, 0, 0]).as_ref(), MIN_WIDTH).unwrap();
        assert_eq!([clear.data[0], clear.data[plane], clear.data[2 * plane]], [1.0; 3]);
        let opaque = prepare(image(1, 1, 4, vec![0, 0, 0, 255]).as_ref(), MIN_WIDTH).unwrap();
        assert_eq!(opaque.data[0], -1.0);
    }

    #[test]
    fn resizing_interpolates_between_pixel_centres() {
        // Two columns, black and white, stretched to 96: a ramp from black to white in the middle.
        let l = prepare(image(2, 1, 1, vec![0, 255]).as_ref(), MIN_WIDTH).unwrap();
        assert_eq!(l.content_width, 96);
        let row: Vec<f32> = l.data[..96].iter().map(|v| (v + 1.0) * 127.5).collect();
        assert_eq!((row[0], row[23], row[72], row[95]), (0.0, 0.0, 255.0, 255.0));
        assert!((row[47] + row[48] - 255.0).abs() < 1e-3 && row[47] < row[48]);
        assert!(row.windows(2).all(|p| p[0] <= p[1]));
    }

    #[test]
    fn bad_shapes_are_errors() {
        let err = |img: Image| prepare(img.as_ref(), MIN_WIDTH).unwrap_err().to_string();
        assert!(err(image(0, 0, 1, vec![])).contains("empty"));
        assert!(err(image(1, 1, 2, vec![0, 0])).contains("channels"));
        assert!(err(image(2, 2, 1, vec![0; 3])).contains("needs 4 bytes"));
        assert!(err(image(500, 4, 1, vec![0; 2000])).contains("too wide"));
    }
}
