//! Operators with a known meaning in colour: `lightness` (darker / lighter: L* moved by `delta`),
//! `chroma` (more / less saturated: chroma scaled by `factor`) and `hue` (hue angle turned by
//! `degrees`), each on a colour (`[3]` sRGB tensor) and on an image (every pixel edited the same
//! way in LCh, so a patch's texture and lighting are kept). Results leave the sRGB gamut only by
//! clipping each channel.

use crate::colour::{channels, tensor};
use crate::lab::{from_lch, to_lab, to_lch, to_rgb};
use commute_sdk::prelude::*;
use commute_sdk::{Image, Value, ValueRef};

/// An edit of one colour in LCh, with its parameters and documentation.
pub trait Edit: Sized + Send + 'static {
    /// The operator's parameters.
    type Params: commute_sdk::Params;
    /// The operator's documentation.
    const DOC: &'static str;
    /// The edit its parameters describe.
    fn new(params: Self::Params) -> Self;
    /// The edited colour.
    fn edit(&self, lch: [f64; 3]) -> [f64; 3];
}

fn edit_rgb(e: &impl Edit, rgb: [f64; 3]) -> [f64; 3] {
    to_rgb(from_lch(e.edit(to_lch(to_lab(rgb)))))
}

/// An edit as an operator on colours and images.
pub struct EditOperator<E>(pub E);

impl<E: Edit> Function for EditOperator<E> {
    const DOC: &'static str = E::DOC;
    type Params = E::Params;

    fn open(params: E::Params, _: &Context) -> Result<Self> {
        Ok(EditOperator(E::new(params)))
    }
}

impl<E: Edit> Operator for EditOperator<E> {
    type Input<'a> = ValueRef<'a>;
    type Output = Value;

    /// Applies the edit to a colour or to every pixel of an image (alpha kept).
    fn apply(&mut self, item: ValueRef<'_>) -> Result<Value> {
        let e = &self.0;
        match item {
            ValueRef::Tensor(t) => Ok(Value::Tensor(tensor(edit_rgb(e, channels(t)?)))),
            ValueRef::Image(image) => {
                let c = usize::from(image.channels);
                ensure!(c == 3 || c == 4, "expected an RGB or RGBA image, got {c} channels");
                let mut pixels = image.pixels.to_vec();
                // A patch has far fewer distinct colours than pixels: each is converted once.
                let mut seen: std::collections::HashMap<[u8; 3], [u8; 3]> = std::collections::HashMap::new();
                for px in pixels.chunks_exact_mut(c) {
                    let key = [px[0], px[1], px[2]];
                    let out = *seen.entry(key).or_insert_with(|| {
                        edit_rgb(e, key.map(|v| f64::from(v) / 255.0)).map(|v| (v * 255.0).round() as u8)
                    });
                    px[..3].copy_from_slice(&out);
                }
                Ok(Value::Image(Image {
                    width: image.width,
                    height: image.height,
                    channels: image.channels,
                    pixels,
                }))
            }
            other => bail!("expected a colour ([3] tensor) or an image, got {}", other.kind()),
        }
    }
}

/// Parameters of `lightness`.
#[params]
#[derive(Debug, Clone)]
pub struct LightnessParams {
    /// Change of L* (0–100 scale): negative is darker, positive lighter.
    #[schemars(range(min = -100, max = 100))]
    pub delta: f64,
}

/// Darker or lighter.
pub struct Lightness(pub f64);

impl Edit for Lightness {
    type Params = LightnessParams;
    const DOC: &'static str = "Darker or lighter: L* moved by `delta` (negative: darker), chroma and hue kept; on a colour or every pixel of an image.";

    fn new(p: LightnessParams) -> Self {
        Lightness(p.delta)
    }

    fn edit(&self, lch: [f64; 3]) -> [f64; 3] {
        [(lch[0] + self.0).clamp(0.0, 100.0), lch[1], lch[2]]
    }
}

/// Parameters of `chroma`.
#[params]
#[derive(Debug, Clone)]
pub struct ChromaParams {
    /// Factor on the chroma: above 1 more saturated, below 1 less.
    #[schemars(range(min = 0, max = 10))]
    pub factor: f64,
}

/// More or less saturated.
pub struct Chroma(pub f64);

impl Edit for Chroma {
    type Params = ChromaParams;
    const DOC: &'static str = "More or less saturated: chroma (in LCh) times `factor`, lightness and hue kept; on a colour or every pixel of an image.";

    fn new(p: ChromaParams) -> Self {
        Chroma(p.factor)
    }

    fn edit(&self, lch: [f64; 3]) -> [f64; 3] {
        [lch[0], lch[1] * self.0, lch[2]]
    }
}

/// Parameters of `hue`.
#[params]
#[derive(Debug, Clone)]
pub struct HueParams {
    /// Turn of the hue angle, in degrees.
    #[schemars(range(min = -360, max = 360))]
    pub degrees: f64,
}

/// The hue turned.
pub struct Hue(pub f64);

impl Edit for Hue {
    type Params = HueParams;
    const DOC: &'static str = "Hue turned by `degrees` (in LCh), lightness and chroma kept; on a colour or every pixel of an image.";

    fn new(p: HueParams) -> Self {
        Hue(p.degrees)
    }

    fn edit(&self, lch: [f64; 3]) -> [f64; 3] {
        [lch[0], lch[1], (lch[2] + self.0).rem_euclid(360.0)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_of(v: &Value) -> [f64; 3] {
        let t = v.as_tensor().unwrap();
        to_lab([0, 1, 2].map(|i| f64::from(t.data[i])))
    }

    #[test]
    fn each_edit_moves_its_own_coordinate_and_keeps_the_others() {
        let red = tensor([0.7, 0.2, 0.2]);
        let red = ValueRef::Tensor(red.as_ref());
        let before = to_lch(lab_of(&red.to_owned().unwrap()));
        let darker = to_lch(lab_of(&EditOperator(Lightness(-10.0)).apply(red).unwrap()));
        assert!((darker[0] - (before[0] - 10.0)).abs() < 0.05, "{before:?} → {darker:?}");
        assert!((darker[2] - before[2]).abs() < 0.5, "hue kept: {before:?} → {darker:?}");
        let duller = to_lch(lab_of(&EditOperator(Chroma(0.5)).apply(red).unwrap()));
        assert!((duller[1] - before[1] * 0.5).abs() < 0.1 && (duller[0] - before[0]).abs() < 0.05);
        let turned = to_lch(lab_of(&EditOperator(Hue(30.0)).apply(red).unwrap()));
        assert!(
            ((turned[2] - before[2]).rem_euclid(360.0) - 30.0).abs() < 0.5
                && (turned[0] - before[0]).abs() < 0.05
        );
    }

    #[test]
    fn an_image_is_edited_pixel_by_pixel_and_keeps_its_alpha() {
        let pixels = vec![200, 40, 40, 255, 20, 120, 200, 128];
        let image = Image { width: 2, height: 1, channels: 4, pixels };
        let Value::Image(out) =
            EditOperator(Lightness(-10.0)).apply(ValueRef::Image(image.as_ref())).unwrap()
        else {
            panic!("an image")
        };
        assert_eq!((out.pixels[3], out.pixels[7]), (255, 128));
        for (px, rgb) in out.pixels.chunks(4).zip([[200u8, 40, 40], [20, 120, 200]]) {
            let expected = edit_rgb(&Lightness(-10.0), rgb.map(|v| f64::from(v) / 255.0))
                .map(|v| (v * 255.0).round() as u8);
            assert_eq!(&px[..3], &expected);
        }
        assert!(EditOperator(Lightness(-10.0)).apply(ValueRef::Text("red")).is_err());
    }
}
