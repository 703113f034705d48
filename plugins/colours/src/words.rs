//! Colours in words: `name` renders a colour as the nearest XKCD colour name (two shades with the
//! same nearest name get the same text: what a text bridge loses), and `phrase` puts a modifier
//! before a text ("darker" + "red" → "darker red"), the text side's counterpart of an edit.

use crate::colour::channels;
use crate::lab::to_lab;
use crate::names::{NameTable, XKCD};
use commute_sdk::prelude::*;
use commute_sdk::{AssetSpec, TensorRef};

/// The `name` render: colour → its nearest XKCD name.
pub struct Name(NameTable);

impl Function for Name {
    const DOC: &'static str =
        "A colour's nearest name in the XKCD colour survey's list (CIE76 in Lab), as text.";
    type Params = NoParams;
    const ASSETS: &'static [AssetSpec] = &[XKCD];

    fn open(_: NoParams, ctx: &Context) -> Result<Self> {
        Ok(Name(NameTable::open(ctx.asset(XKCD.name.as_ref())?)?))
    }
}

impl Render for Name {
    type Input<'a> = TensorRef<'a>;
    type Output = String;

    fn render(&mut self, colour: TensorRef<'_>) -> Result<String> {
        let lab = to_lab(channels(colour)?);
        Ok(self.0.names[self.0.nearest(lab)].clone())
    }
}

/// Parameters of `phrase`.
#[params]
#[derive(Debug, Clone)]
pub struct PhraseParams {
    /// The words put before the text, e.g. `darker` or `more saturated`.
    pub modifier: String,
}

/// The `phrase` operator: text → `modifier text`.
pub struct Phrase(String);

impl Function for Phrase {
    const DOC: &'static str =
        "Puts `modifier` before a text (\"darker\" + \"red\" → \"darker red\"): a colour edit said in words.";
    type Params = PhraseParams;

    fn open(p: PhraseParams, _: &Context) -> Result<Self> {
        let modifier = p.modifier.trim().to_owned();
        ensure!(!modifier.is_empty(), "modifier must not be empty");
        Ok(Phrase(modifier))
    }
}

impl Operator for Phrase {
    type Input<'a> = &'a str;
    type Output = String;

    fn apply(&mut self, text: &str) -> Result<String> {
        Ok(format!("{} {}", self.0, text.trim()))
    }
}

/// The `lab` encoder: a colour's CIELAB coordinates, each divided by 100.
pub struct LabEncoder;

impl Function for LabEncoder {
    const DOC: &'static str =
        "A colour's CIELAB coordinates (D65) divided by 100: [L*, a*, b*] / 100, 3 dims.";
    type Params = NoParams;

    fn open(_: NoParams, _: &Context) -> Result<Self> {
        Ok(LabEncoder)
    }
}

impl Encoder for LabEncoder {
    type Input<'a> = TensorRef<'a>;

    fn dim(&self) -> usize {
        3
    }

    fn encode(&mut self, colour: TensorRef<'_>) -> Result<Vec<f32>> {
        Ok(to_lab(channels(colour)?).iter().map(|v| (v / 100.0) as f32).collect())
    }
}

/// The `rgb` encoder: a colour's sRGB channels in 0–1, as they are — what a report paints a
/// swatch with (`swatches = "…"` on an edge).
pub struct RgbEncoder;

impl Function for RgbEncoder {
    const DOC: &'static str = "A colour's sRGB channels in 0–1, 3 dims: the colour itself, for swatches.";
    type Params = NoParams;

    fn open(_: NoParams, _: &Context) -> Result<Self> {
        Ok(RgbEncoder)
    }
}

impl Encoder for RgbEncoder {
    type Input<'a> = TensorRef<'a>;

    fn dim(&self) -> usize {
        3
    }

    fn encode(&mut self, colour: TensorRef<'_>) -> Result<Vec<f32>> {
        Ok(channels(colour)?.iter().map(|&v| v as f32).collect())
    }
}
