//! The values that cross the plugin boundary: text, audio, images, scores and tensors.
//!
//! Owned values ([`Value`]) are what functions return; borrowed views ([`ValueRef`]) are what they
//! receive, pointing straight into the caller's buffers so that inputs are never copied on the way in.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a value, as declared in a function's signature.
///
/// New kinds may be added in later ABI minor versions; a plugin that meets a kind it does not know
/// reports it as an error instead of misreading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ValueKind {
    /// UTF-8 text.
    Text,
    /// Mono audio samples at a sample rate.
    Audio,
    /// An 8-bit image, row-major, interleaved channels.
    Image,
    /// A symbolic score: a list of notes.
    Score,
    /// A dense f32 tensor with a shape.
    Tensor,
    /// Frames of equal width at a frame rate: an encoder's output before pooling over time.
    Sequence,
    /// Any kind (only in signatures of generic functions such as an echo).
    Any,
}

impl ValueKind {
    /// The kebab-case name used in manifests, TOML and messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Text => "text",
            ValueKind::Audio => "audio",
            ValueKind::Image => "image",
            ValueKind::Score => "score",
            ValueKind::Tensor => "tensor",
            ValueKind::Sequence => "sequence",
            ValueKind::Any => "any",
        }
    }

    /// Whether a value of kind `actual` may be passed where `self` is expected.
    pub fn accepts(self, actual: ValueKind) -> bool {
        self == ValueKind::Any || actual == ValueKind::Any || self == actual
    }

    pub(crate) fn wire_tag(self) -> u32 {
        match self {
            ValueKind::Text => 1,
            ValueKind::Audio => 2,
            ValueKind::Image => 3,
            ValueKind::Score => 4,
            ValueKind::Tensor => 5,
            ValueKind::Sequence => 6,
            ValueKind::Any => 0,
        }
    }

    pub(crate) fn from_wire_tag(tag: u32) -> Option<ValueKind> {
        Some(match tag {
            1 => ValueKind::Text,
            2 => ValueKind::Audio,
            3 => ValueKind::Image,
            4 => ValueKind::Score,
            5 => ValueKind::Tensor,
            6 => ValueKind::Sequence,
            _ => return None,
        })
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Mono audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audio {
    /// Samples per second.
    pub sample_rate: u32,
    /// Samples in [-1, 1].
    pub samples: Vec<f32>,
}

impl Audio {
    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        if self.sample_rate == 0 {
            0.0
        } else {
            self.samples.len() as f64 / f64::from(self.sample_rate)
        }
    }

    /// A borrowed view.
    pub fn as_ref(&self) -> AudioRef<'_> {
        AudioRef { sample_rate: self.sample_rate, samples: &self.samples }
    }
}

/// A borrowed view of mono audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioRef<'a> {
    /// Samples per second.
    pub sample_rate: u32,
    /// Samples in [-1, 1].
    pub samples: &'a [f32],
}

impl AudioRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Audio {
        Audio { sample_rate: self.sample_rate, samples: self.samples.to_vec() }
    }
}

/// An 8-bit image, row-major with interleaved channels (1 = grey, 3 = RGB, 4 = RGBA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channels per pixel.
    pub channels: u8,
    /// `width * height * channels` bytes.
    pub pixels: Vec<u8>,
}

impl Image {
    /// A borrowed view.
    pub fn as_ref(&self) -> ImageRef<'_> {
        ImageRef { width: self.width, height: self.height, channels: self.channels, pixels: &self.pixels }
    }
}

/// A borrowed view of an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageRef<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channels per pixel.
    pub channels: u8,
    /// `width * height * channels` bytes.
    pub pixels: &'a [u8],
}

impl ImageRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Image {
        Image {
            width: self.width,
            height: self.height,
            channels: self.channels,
            pixels: self.pixels.to_vec(),
        }
    }
}

/// One note of a score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// MIDI pitch, 0–127 (60 = middle C).
    pub pitch: u8,
    /// Start time in seconds.
    pub onset_s: f32,
    /// Duration in seconds.
    pub duration_s: f32,
    /// MIDI velocity, 1–127.
    pub velocity: u8,
    /// General MIDI program, 0–127.
    pub program: u8,
}

impl Note {
    /// End time in seconds.
    pub fn end_s(&self) -> f32 {
        self.onset_s + self.duration_s
    }
}

/// Floats per note on the wire: pitch, onset, duration, velocity, program.
pub(crate) const NOTE_WIRE_LEN: usize = 5;

/// A symbolic score: notes in any order (functions that care sort them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The notes.
    pub notes: Vec<Note>,
}

impl Score {
    /// End of the last note in seconds (0 for an empty score).
    pub fn duration_s(&self) -> f32 {
        self.notes.iter().map(Note::end_s).fold(0.0, f32::max)
    }

    pub(crate) fn to_wire(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.notes.len() * NOTE_WIRE_LEN);
        for n in &self.notes {
            out.extend_from_slice(&[
                f32::from(n.pitch),
                n.onset_s,
                n.duration_s,
                f32::from(n.velocity),
                f32::from(n.program),
            ]);
        }
        out
    }

    pub(crate) fn from_wire(wire: &[f32]) -> Result<Score, String> {
        if wire.len() % NOTE_WIRE_LEN != 0 {
            return Err(format!(
                "a score's wire form has {} floats, not a multiple of {NOTE_WIRE_LEN}",
                wire.len()
            ));
        }
        let byte = |x: f32, what: &str| -> Result<u8, String> {
            if x.fract() == 0.0 && (0.0..=127.0).contains(&x) {
                Ok(x as u8)
            } else {
                Err(format!("note {what} {x} is not an integer in 0..=127"))
            }
        };
        let notes = wire
            .chunks_exact(NOTE_WIRE_LEN)
            .map(|c| {
                Ok(Note {
                    pitch: byte(c[0], "pitch")?,
                    onset_s: c[1],
                    duration_s: c[2],
                    velocity: byte(c[3], "velocity")?,
                    program: byte(c[4], "program")?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Score { notes })
    }
}

/// A dense row-major f32 tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A 1-D tensor (a vector, e.g. an embedding).
    pub fn vector(data: Vec<f32>) -> Tensor {
        Tensor { shape: vec![data.len()], data }
    }

    /// A borrowed view.
    pub fn as_ref(&self) -> TensorRef<'_> {
        TensorRef { shape: &self.shape, data: &self.data }
    }
}

/// A borrowed view of a tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorRef<'a> {
    /// Dimensions, outermost first.
    pub shape: &'a [usize],
    /// Row-major values.
    pub data: &'a [f32],
}

impl TensorRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Tensor {
        Tensor { shape: self.shape.to_vec(), data: self.data.to_vec() }
    }
}

/// Frames of `dim` floats each at `frame_rate` frames per second, frame 0 starting at time 0:
/// an encoder's output kept on its time axis (`pooling = "none"`). A sequence has at least one
/// frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// Frames per second (finite, positive).
    pub frame_rate: f64,
    /// Floats per frame (at least 1).
    pub dim: usize,
    /// `frames × dim` values, frame after frame.
    pub data: Vec<f32>,
}

impl Sequence {
    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    /// Frame `t`.
    pub fn frame(&self, t: usize) -> &[f32] {
        &self.data[t * self.dim..(t + 1) * self.dim]
    }

    /// A borrowed view.
    pub fn as_ref(&self) -> SequenceRef<'_> {
        SequenceRef { frame_rate: self.frame_rate, dim: self.dim, data: &self.data }
    }

    /// Why these fields do not make a sequence, if they do not.
    pub fn check(frame_rate: f64, dim: usize, len: usize) -> Result<(), String> {
        if !(frame_rate.is_finite() && frame_rate > 0.0) {
            return Err(format!("a sequence's frame rate must be finite and positive, got {frame_rate}"));
        }
        if dim == 0 {
            return Err("a sequence's frames must have at least one value".into());
        }
        if len == 0 {
            return Err("a sequence of length 0 (no frames)".into());
        }
        if len % dim != 0 {
            return Err(format!("a sequence's {len} values are not whole frames of {dim}"));
        }
        Ok(())
    }
}

/// A borrowed view of a sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequenceRef<'a> {
    /// Frames per second.
    pub frame_rate: f64,
    /// Floats per frame.
    pub dim: usize,
    /// `frames × dim` values.
    pub data: &'a [f32],
}

impl SequenceRef<'_> {
    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Sequence {
        Sequence { frame_rate: self.frame_rate, dim: self.dim, data: self.data.to_vec() }
    }
}

/// An owned value of any kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Value {
    /// UTF-8 text.
    Text {
        /// The text.
        text: String,
    },
    /// Mono audio.
    Audio(Audio),
    /// An 8-bit image.
    Image(Image),
    /// A symbolic score.
    Score(Score),
    /// A dense tensor.
    Tensor(Tensor),
    /// Frames at a frame rate.
    Sequence(Sequence),
}

impl Value {
    /// Text from anything string-like.
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text { text: s.into() }
    }

    /// This value's kind.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Text { .. } => ValueKind::Text,
            Value::Audio(_) => ValueKind::Audio,
            Value::Image(_) => ValueKind::Image,
            Value::Score(_) => ValueKind::Score,
            Value::Tensor(_) => ValueKind::Tensor,
            Value::Sequence(_) => ValueKind::Sequence,
        }
    }

    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text { text } => Some(text),
            _ => None,
        }
    }

    /// The tensor, if this is a tensor.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// The sequence, if this is a sequence.
    pub fn as_sequence(&self) -> Option<&Sequence> {
        match self {
            Value::Sequence(s) => Some(s),
            _ => None,
        }
    }

    /// The audio, if this is audio.
    pub fn as_audio(&self) -> Option<&Audio> {
        match self {
            Value::Audio(a) => Some(a),
            _ => None,
        }
    }

    /// The score, if this is a score.
    pub fn as_score(&self) -> Option<&Score> {
        match self {
            Value::Score(s) => Some(s),
            _ => None,
        }
    }

    /// The image, if this is an image.
    pub fn as_image(&self) -> Option<&Image> {
        match self {
            Value::Image(i) => Some(i),
            _ => None,
        }
    }

    /// The first value that is NaN or infinite, if any: where it sits (the flat index into a
    /// tensor's data or an audio's samples, or a note's index in a score) and the value itself.
    /// Text and images cannot hold one.
    pub fn non_finite(&self) -> Option<NonFinite> {
        let first = |data: &[f32]| {
            data.iter().position(|x| !x.is_finite()).map(|at| NonFinite { at, value: data[at] })
        };
        match self {
            Value::Tensor(t) => first(&t.data),
            Value::Sequence(s) => first(&s.data),
            Value::Audio(a) => first(&a.samples),
            Value::Score(s) => {
                s.notes.iter().position(|n| !(n.onset_s.is_finite() && n.duration_s.is_finite())).map(|at| {
                    let n = &s.notes[at];
                    NonFinite { at, value: if n.onset_s.is_finite() { n.duration_s } else { n.onset_s } }
                })
            }
            Value::Text { .. } | Value::Image(_) => None,
        }
    }
}

/// A NaN or infinite number inside a value: see [`Value::non_finite`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFinite {
    /// Where: a flat index into a tensor's data or an audio's samples, or a note's index.
    pub at: usize,
    /// The value: NaN, `inf` or `-inf`.
    pub value: f32,
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.value.is_nan() { "NaN" } else { "an infinite value" };
        write!(f, "{what} at element {}", self.at)
    }
}

/// A borrowed value of any kind, as a function receives it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ValueRef<'a> {
    /// UTF-8 text.
    Text(&'a str),
    /// Mono audio.
    Audio(AudioRef<'a>),
    /// An 8-bit image.
    Image(ImageRef<'a>),
    /// A score in its wire form (decode it with [`ValueRef::to_owned`] or [`Score`]'s `FromValue`).
    Score(ScoreRef<'a>),
    /// A dense tensor.
    Tensor(TensorRef<'a>),
    /// Frames at a frame rate.
    Sequence(SequenceRef<'a>),
}

/// A borrowed score in its packed wire form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRef<'a> {
    pub(crate) wire: &'a [f32],
}

impl ScoreRef<'_> {
    /// Number of notes.
    pub fn len(&self) -> usize {
        self.wire.len() / NOTE_WIRE_LEN
    }

    /// Whether the score has no notes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes the notes.
    pub fn to_owned(&self) -> Result<Score, String> {
        Score::from_wire(self.wire)
    }
}

impl ValueRef<'_> {
    /// This value's kind.
    pub fn kind(&self) -> ValueKind {
        match self {
            ValueRef::Text(_) => ValueKind::Text,
            ValueRef::Audio(_) => ValueKind::Audio,
            ValueRef::Image(_) => ValueKind::Image,
            ValueRef::Score(_) => ValueKind::Score,
            ValueRef::Tensor(_) => ValueKind::Tensor,
            ValueRef::Sequence(_) => ValueKind::Sequence,
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Result<Value, String> {
        Ok(match self {
            ValueRef::Text(t) => Value::text(*t),
            ValueRef::Audio(a) => Value::Audio(a.to_owned()),
            ValueRef::Image(i) => Value::Image(i.to_owned()),
            ValueRef::Score(s) => Value::Score(s.to_owned()?),
            ValueRef::Tensor(t) => Value::Tensor(t.to_owned()),
            ValueRef::Sequence(s) => Value::Sequence(s.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_wire_round_trip_is_exact() {
        let score = Score {
            notes: vec![
                Note { pitch: 60, onset_s: 0.0, duration_s: 0.5, velocity: 100, program: 0 },
                Note { pitch: 127, onset_s: 1.25, duration_s: 0.125, velocity: 1, program: 40 },
            ],
        };
        assert_eq!(Score::from_wire(&score.to_wire()).unwrap(), score);
    }

    #[test]
    fn score_wire_rejects_bad_lengths_and_out_of_range_fields() {
        assert!(Score::from_wire(&[60.0, 0.0, 1.0]).unwrap_err().contains("multiple of 5"));
        assert!(Score::from_wire(&[128.0, 0.0, 1.0, 10.0, 0.0]).unwrap_err().contains("pitch"));
        assert!(Score::from_wire(&[60.0, 0.0, 1.0, 10.5, 0.0]).unwrap_err().contains("velocity"));
    }

    #[test]
    fn kinds_accept_themselves_and_any() {
        assert!(ValueKind::Text.accepts(ValueKind::Text));
        assert!(ValueKind::Any.accepts(ValueKind::Audio));
        assert!(!ValueKind::Audio.accepts(ValueKind::Score));
        for tag in 0..8 {
            if let Some(k) = ValueKind::from_wire_tag(tag) {
                assert_eq!(k.wire_tag(), tag);
            }
        }
    }

    #[test]
    fn values_serialise_with_a_kind_tag() {
        let v = Value::text("cat");
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"kind":"text","text":"cat"}"#);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), v);
    }
}
