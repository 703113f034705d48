//! The C-stable types that cross the plugin boundary (the only module, with its two adapters,
//! that names `abi_stable` types).
//!
//! # Design
//!
//! The ABI is *message-shaped and coarse*: a plugin exports a declaration (a frozen `repr(C)`
//! struct, read before anything else) and a root module with three calls: `init` (log sink),
//! `manifest` (JSON) and `open` (function name, parameters as TOML text, context as JSON) which
//! returns an instance whose single method `call` maps a batch of values to a batch of results.
//! Text formats for the rare calls and plain buffers for the hot one keep the surface small, keep
//! old plugins loading when fields are added, and let a later isolated mode run the same library
//! in a child process.
//!
//! - [`export`]: the plugin side, turning the authoring traits into these types (with panic guards).
//! - [`client`]: the host side, turning these types back into [`Value`]s and errors.
//! - [`load`]: the host side of loading a library and checking it is a plugin it can talk to.

// abi_stable's derives generate unsafe impls; this module is where the FFI lives.
#![allow(unsafe_code, non_local_definitions)]

pub mod client;
pub mod export;
pub mod load;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RResult, RSlice, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, sabi_trait, StableAbi};

use crate::value::{
    AudioRef, ImageRef, Score, ScoreRef, Sequence, SequenceRef, TensorRef, Value, ValueKind, ValueRef,
    NOTE_WIRE_LEN,
};

/// Major version of the plugin ABI. A host loads only plugins with the same major version.
pub const ABI_MAJOR: u32 = 1;
/// Minor version of the plugin ABI: bumped when an optional capability is added. A host loads
/// plugins of any minor version of its major and checks optional capabilities before use.
pub const ABI_MINOR: u32 = 2;

/// Name of the exported declaration symbol, read before the root module.
pub const DECLARATION_SYMBOL: &str = "commute_plugin_declaration";
/// The first bytes of every declaration.
pub const DECLARATION_MAGIC: [u8; 8] = *b"COMMUTE\0";

/// Frozen forever: what a host reads first, with plain `dlsym`, before trusting anything else in
/// the library. Never reorder or resize these fields; new facts go in the manifest.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginDeclaration {
    /// Always [`DECLARATION_MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_MAJOR`] of the SDK the plugin was built with.
    pub abi_major: u32,
    /// [`ABI_MINOR`] of the SDK the plugin was built with.
    pub abi_minor: u32,
    /// 1 when the plugin was built with `panic = "unwind"` (required), 0 for `panic = "abort"`.
    pub panic_unwind: u8,
    /// The `commute-sdk` crate version, NUL-padded.
    pub sdk_version: [u8; 23],
}

impl PluginDeclaration {
    /// The declaration of a plugin built now, against this SDK.
    pub const fn current(panic_unwind: bool) -> PluginDeclaration {
        let version = env!("CARGO_PKG_VERSION").as_bytes();
        let mut sdk_version = [0u8; 23];
        let mut i = 0;
        while i < version.len() && i < sdk_version.len() {
            sdk_version[i] = version[i];
            i += 1;
        }
        PluginDeclaration {
            magic: DECLARATION_MAGIC,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            panic_unwind: panic_unwind as u8,
            sdk_version,
        }
    }

    /// The SDK version as text.
    pub fn sdk_version(&self) -> String {
        let end = self.sdk_version.iter().position(|&b| b == 0).unwrap_or(self.sdk_version.len());
        String::from_utf8_lossy(&self.sdk_version[..end]).into_owned()
    }
}

/// Host services handed to a plugin once, right after loading.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct FfiHost {
    /// Receives the plugin's log events: level (1 error … 5 trace), target, message.
    pub log: extern "C" fn(level: u8, target: RStr<'_>, message: RStr<'_>),
    /// The most verbose level the host wants (1 error … 5 trace; 0 none).
    pub max_level: u8,
}

/// Why a call failed. Crosses the boundary as a `u8` so that a newer plugin's new kinds read as
/// [`FfiErrorKind::Failed`] in an older host instead of an invalid enum.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfiErrorKind {
    /// The parameters did not parse or were rejected.
    BadParams = 1,
    /// The batch had values of the wrong kind or shape.
    BadInput = 2,
    /// The function panicked; the instance is now poisoned.
    Panic = 3,
    /// The instance panicked earlier and refuses further calls.
    Poisoned = 4,
    /// The function returned an error.
    Failed = 5,
    /// No function of that name.
    UnknownFunction = 6,
    /// `open` asked for a declared asset the host has not provided yet (the message is its
    /// name): the host provides it and opens again. Lets a function fetch only the assets its
    /// parameters need.
    MissingAsset = 7,
}

impl FfiErrorKind {
    /// Reads a wire tag; unknown tags are [`FfiErrorKind::Failed`].
    pub fn from_tag(tag: u8) -> FfiErrorKind {
        match tag {
            1 => FfiErrorKind::BadParams,
            2 => FfiErrorKind::BadInput,
            3 => FfiErrorKind::Panic,
            4 => FfiErrorKind::Poisoned,
            6 => FfiErrorKind::UnknownFunction,
            7 => FfiErrorKind::MissingAsset,
            _ => FfiErrorKind::Failed,
        }
    }
}

/// An error crossing the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiError {
    /// What kind of failure: an [`FfiErrorKind`] tag.
    pub kind: u8,
    /// Human-readable message (the full error chain).
    pub message: RString,
    /// Source location (`file:line:col`) for panics, empty otherwise.
    pub location: RString,
}

impl FfiError {
    pub(crate) fn new(kind: FfiErrorKind, message: impl Into<String>) -> FfiError {
        FfiError { kind: kind as u8, message: RString::from(message.into()), location: RString::new() }
    }
}

/// A borrowed value on the wire: a kind tag and three plain buffers.
///
/// | kind | `meta` | `dims` | `f32s` | `bytes` |
/// |---|---|---|---|---|
/// | text | – | – | – | UTF-8 |
/// | audio | `[sample_rate, 0, 0, 0]` | – | samples | – |
/// | image | `[width, height, channels, 0]` | – | – | pixels |
/// | score | – | – | 5 floats per note | – |
/// | tensor | – | shape | data | – |
/// | sequence | `[frame rate as f64 bits, floats per frame, 0, 0]` | – | frames × dim | – |
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct FfiValueRef<'a> {
    /// [`ValueKind`] wire tag.
    pub kind: u32,
    /// Fixed small integers (sample rate, image size).
    pub meta: [u64; 4],
    /// A tensor's shape.
    pub dims: RSlice<'a, usize>,
    /// Float payload.
    pub f32s: RSlice<'a, f32>,
    /// Byte payload.
    pub bytes: RSlice<'a, u8>,
}

/// An owned value on the wire (same layout rules as [`FfiValueRef`]).
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiValue {
    /// [`ValueKind`] wire tag.
    pub kind: u32,
    /// Fixed small integers (sample rate, image size).
    pub meta: [u64; 4],
    /// A tensor's shape.
    pub dims: RVec<usize>,
    /// Float payload.
    pub f32s: RVec<f32>,
    /// Byte payload.
    pub bytes: RVec<u8>,
}

/// One item of a result batch: a value, or why this item failed.
pub type FfiItem = RResult<FfiValue, RString>;

/// A live function instance: calls a batch, returns one item per input (or the items of a source).
#[sabi_trait]
pub trait FfiFunction: Send {
    /// Maps a batch. A whole-call `RErr` means nothing in the batch was computed.
    #[sabi(last_prefix_field)]
    fn call(&mut self, batch: RSlice<'_, FfiValueRef<'_>>) -> RResult<RVec<FfiItem>, FfiError>;

    /// Maps a batch into `out`, a buffer the host owns and reuses from call to call (ABI 1.1): no
    /// result vector is allocated, returned and freed per call. The host passes `out` empty; on a
    /// whole-call `RErr` whatever is in it is discarded. A plugin built before 1.1 has no such entry
    /// in its vtable, and this default (run on the host's side) calls [`call`](Self::call) instead.
    fn call_into(
        &mut self,
        batch: RSlice<'_, FfiValueRef<'_>>,
        out: &mut RVec<FfiItem>,
    ) -> RResult<(), FfiError> {
        match self.call(batch) {
            RResult::ROk(items) => {
                out.extend(items);
                RResult::ROk(())
            }
            RResult::RErr(e) => RResult::RErr(e),
        }
    }
}

/// A boxed [`FfiFunction`] owned by the host, dropped through the plugin's own allocator.
pub type FfiFunctionBox = FfiFunction_TO<'static, RBox<()>>;

/// What `open` returns.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiInstance {
    /// The live function.
    pub function: FfiFunctionBox,
    /// Facts known once open, as JSON (e.g. `{"dim": 384}`).
    pub info: RString,
}

/// The root module every plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Called once by the host after loading: log sink and level.
    pub init: extern "C" fn(host: FfiHost) -> RResult<(), FfiError>,
    /// The manifest as JSON.
    pub manifest: extern "C" fn() -> RResult<RString, FfiError>,
    /// Opens a function: name, parameters as TOML text, context as JSON.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(
        function: RStr<'_>,
        params: RStr<'_>,
        context: RStr<'_>,
    ) -> RResult<FfiInstance, FfiError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "commute_plugin";
    const NAME: &'static str = "commute_plugin";
    // Versioning is ours (the declaration's ABI_MAJOR/ABI_MINOR); abi_stable's number stays fixed
    // so that its check never rejects a plugin ours accepts.
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

/// The exported name abi_stable looks up for the root module (checked against abi_stable in a test).
#[doc(hidden)]
pub const ROOT_MODULE_EXPORT_NAME: &str = "_1as_0lib_1header_0root_bmodule_bloader";

impl<'a> FfiValueRef<'a> {
    /// Borrows a value. Scores are packed into `scratch`, which must outlive the reference.
    pub fn borrow(value: &'a Value, scratch: Option<&'a [f32]>) -> FfiValueRef<'a> {
        let kind = value.kind().wire_tag();
        let empty = FfiValueRef {
            kind,
            meta: [0; 4],
            dims: RSlice::EMPTY,
            f32s: RSlice::EMPTY,
            bytes: RSlice::EMPTY,
        };
        match value {
            Value::Text { text } => FfiValueRef { bytes: text.as_bytes().into(), ..empty },
            Value::Audio(a) => FfiValueRef {
                meta: [u64::from(a.sample_rate), 0, 0, 0],
                f32s: a.samples.as_slice().into(),
                ..empty
            },
            Value::Image(i) => FfiValueRef {
                meta: [u64::from(i.width), u64::from(i.height), u64::from(i.channels), 0],
                bytes: i.pixels.as_slice().into(),
                ..empty
            },
            Value::Score(_) => FfiValueRef { f32s: scratch.unwrap_or(&[]).into(), ..empty },
            Value::Tensor(t) => {
                FfiValueRef { dims: t.shape.as_slice().into(), f32s: t.data.as_slice().into(), ..empty }
            }
            Value::Sequence(q) => FfiValueRef {
                meta: [q.frame_rate.to_bits(), q.dim as u64, 0, 0],
                f32s: q.data.as_slice().into(),
                ..empty
            },
        }
    }

    /// Reads the wire form back as a typed view.
    pub fn view(&self) -> Result<ValueRef<'a>, String> {
        let kind = ValueKind::from_wire_tag(self.kind)
            .ok_or_else(|| format!("unknown value kind tag {} (a newer host?)", self.kind))?;
        let dims = self.dims.as_slice();
        Ok(match kind {
            ValueKind::Text => ValueRef::Text(
                std::str::from_utf8(self.bytes.as_slice()).map_err(|e| format!("text is not UTF-8: {e}"))?,
            ),
            ValueKind::Audio => {
                let rate = self.meta[0];
                let rate = u32::try_from(rate).map_err(|_| format!("sample rate {rate} is too large"))?;
                ValueRef::Audio(AudioRef { sample_rate: rate, samples: self.f32s.as_slice() })
            }
            ValueKind::Image => {
                let [w, h, c, _] = self.meta;
                let too_big = |x: u64| x > u64::from(u32::MAX);
                if too_big(w) || too_big(h) {
                    return Err(format!("image {w}x{h} is too large"));
                }
                let expected = w.checked_mul(h).and_then(|x| x.checked_mul(c));
                if expected != Some(self.bytes.len() as u64) || c == 0 || c > 4 {
                    return Err(format!(
                        "image {w}x{h}x{c} does not match its {} bytes of pixels",
                        self.bytes.len()
                    ));
                }
                ValueRef::Image(ImageRef {
                    width: w as u32,
                    height: h as u32,
                    channels: c as u8,
                    pixels: self.bytes.as_slice(),
                })
            }
            ValueKind::Score => {
                if self.f32s.len() % NOTE_WIRE_LEN != 0 {
                    return Err(format!(
                        "a score needs {NOTE_WIRE_LEN} floats per note, got {}",
                        self.f32s.len()
                    ));
                }
                ValueRef::Score(ScoreRef { wire: self.f32s.as_slice() })
            }
            ValueKind::Tensor => {
                let n = dims.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
                if n != Some(self.f32s.len()) {
                    return Err(format!(
                        "tensor of shape {dims:?} does not match its {} values",
                        self.f32s.len()
                    ));
                }
                ValueRef::Tensor(TensorRef { shape: dims, data: self.f32s.as_slice() })
            }
            ValueKind::Sequence => {
                let frame_rate = f64::from_bits(self.meta[0]);
                let dim = usize::try_from(self.meta[1]).map_err(|_| "a sequence's width is too large")?;
                Sequence::check(frame_rate, dim, self.f32s.len())?;
                ValueRef::Sequence(SequenceRef { frame_rate, dim, data: self.f32s.as_slice() })
            }
            ValueKind::Any => unreachable!("`any` has no wire tag"),
        })
    }
}

impl FfiValue {
    /// Moves a value onto the wire (buffers are handed over, not copied).
    pub fn from_value(value: Value) -> FfiValue {
        let kind = value.kind().wire_tag();
        let mut out =
            FfiValue { kind, meta: [0; 4], dims: RVec::new(), f32s: RVec::new(), bytes: RVec::new() };
        match value {
            Value::Text { text } => out.bytes = RVec::from(text.into_bytes()),
            Value::Audio(a) => {
                out.meta[0] = u64::from(a.sample_rate);
                out.f32s = RVec::from(a.samples);
            }
            Value::Image(i) => {
                out.meta = [u64::from(i.width), u64::from(i.height), u64::from(i.channels), 0];
                out.bytes = RVec::from(i.pixels);
            }
            Value::Score(s) => out.f32s = RVec::from(s.to_wire()),
            Value::Tensor(t) => {
                out.dims = RVec::from(t.shape);
                out.f32s = RVec::from(t.data);
            }
            Value::Sequence(q) => {
                out.meta = [q.frame_rate.to_bits(), q.dim as u64, 0, 0];
                out.f32s = RVec::from(q.data);
            }
        }
        out
    }

    /// Borrows this wire value.
    pub fn as_ref(&self) -> FfiValueRef<'_> {
        FfiValueRef {
            kind: self.kind,
            meta: self.meta,
            dims: self.dims.as_rslice(),
            f32s: self.f32s.as_rslice(),
            bytes: self.bytes.as_rslice(),
        }
    }

    /// Converts back into an owned value (validating it).
    pub fn into_value(self) -> Result<Value, String> {
        // Validate through the borrowed view, then take the buffers.
        let kind = self.as_ref().view()?.kind();
        Ok(match kind {
            ValueKind::Text => {
                Value::Text { text: String::from_utf8(self.bytes.into_vec()).map_err(|e| e.to_string())? }
            }
            ValueKind::Audio => Value::Audio(crate::value::Audio {
                sample_rate: self.meta[0] as u32,
                samples: self.f32s.into_vec(),
            }),
            ValueKind::Image => Value::Image(crate::value::Image {
                width: self.meta[0] as u32,
                height: self.meta[1] as u32,
                channels: self.meta[2] as u8,
                pixels: self.bytes.into_vec(),
            }),
            ValueKind::Score => Value::Score(Score::from_wire(&self.f32s)?),
            ValueKind::Tensor => Value::Tensor(crate::value::Tensor {
                shape: self.dims.into_vec(),
                data: self.f32s.into_vec(),
            }),
            ValueKind::Sequence => Value::Sequence(Sequence {
                frame_rate: f64::from_bits(self.meta[0]),
                dim: self.meta[1] as usize,
                data: self.f32s.into_vec(),
            }),
            ValueKind::Any => unreachable!("views never have kind `any`"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Audio, Image, Note, Tensor};

    fn round_trip(value: Value) -> Value {
        FfiValue::from_value(value).into_value().unwrap()
    }

    #[test]
    fn every_value_kind_survives_the_wire() {
        let values = vec![
            Value::text("héllo"),
            Value::Audio(Audio { sample_rate: 22050, samples: vec![0.5, -0.25] }),
            Value::Image(Image { width: 2, height: 1, channels: 3, pixels: vec![1, 2, 3, 4, 5, 6] }),
            Value::Score(Score {
                notes: vec![Note { pitch: 64, onset_s: 0.5, duration_s: 1.0, velocity: 90, program: 1 }],
            }),
            Value::Tensor(Tensor { shape: vec![2, 2], data: vec![1.0, 2.0, 3.0, 4.0] }),
            Value::Sequence(Sequence {
                frame_rate: 86.1328125,
                dim: 2,
                data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            }),
        ];
        for v in values {
            assert_eq!(round_trip(v.clone()), v);
        }
    }

    #[test]
    fn borrowing_does_not_copy_buffers() {
        let t = Value::Tensor(Tensor::vector(vec![1.0; 1024]));
        let r = FfiValueRef::borrow(&t, None);
        assert_eq!(r.f32s.as_ptr(), t.as_tensor().unwrap().data.as_ptr());
        let a = Value::Audio(Audio { sample_rate: 8000, samples: vec![0.0; 16] });
        let r = FfiValueRef::borrow(&a, None);
        assert_eq!(r.f32s.as_ptr(), a.as_audio().unwrap().samples.as_ptr());
        match r.view().unwrap() {
            ValueRef::Audio(view) => assert_eq!(view.sample_rate, 8000),
            other => panic!("wrong view {other:?}"),
        }
    }

    #[test]
    fn malformed_wire_values_are_rejected_with_a_reason() {
        let bad_tensor = FfiValue {
            kind: 5,
            meta: [0; 4],
            dims: RVec::from(vec![3]),
            f32s: RVec::from(vec![1.0]),
            bytes: RVec::new(),
        };
        assert!(bad_tensor.into_value().unwrap_err().contains("shape"));
        let bad_image = FfiValue {
            kind: 3,
            meta: [2, 2, 1, 0],
            dims: RVec::new(),
            f32s: RVec::new(),
            bytes: RVec::from(vec![0]),
        };
        assert!(bad_image.into_value().unwrap_err().contains("does not match"));
        let unknown =
            FfiValue { kind: 99, meta: [0; 4], dims: RVec::new(), f32s: RVec::new(), bytes: RVec::new() };
        assert!(unknown.into_value().unwrap_err().contains("unknown value kind"));
        let bad_text = FfiValue {
            kind: 1,
            meta: [0; 4],
            dims: RVec::new(),
            f32s: RVec::new(),
            bytes: RVec::from(vec![0xff]),
        };
        assert!(bad_text.into_value().unwrap_err().contains("UTF-8"));
        let sequence = |rate: f64, dim: u64, len: usize| FfiValue {
            kind: 6,
            meta: [rate.to_bits(), dim, 0, 0],
            dims: RVec::new(),
            f32s: RVec::from(vec![0.5; len]),
            bytes: RVec::new(),
        };
        assert!(sequence(100.0, 3, 6).into_value().is_ok());
        assert!(sequence(100.0, 3, 0).into_value().unwrap_err().contains("length 0"));
        assert!(sequence(100.0, 4, 6).into_value().unwrap_err().contains("whole frames"));
        assert!(sequence(100.0, 0, 6).into_value().unwrap_err().contains("at least one value"));
        assert!(sequence(f64::NAN, 3, 6).into_value().unwrap_err().contains("frame rate"));
        assert!(sequence(-1.0, 3, 6).into_value().unwrap_err().contains("frame rate"));
    }

    #[test]
    fn root_module_export_name_matches_abi_stable() {
        assert_eq!(ROOT_MODULE_EXPORT_NAME, abi_stable::library::ROOT_MODULE_LOADER_NAME);
    }

    #[test]
    fn declaration_records_versions() {
        let d = PluginDeclaration::current(true);
        assert_eq!(d.magic, DECLARATION_MAGIC);
        assert_eq!((d.abi_major, d.abi_minor, d.panic_unwind), (ABI_MAJOR, ABI_MINOR, 1));
        assert_eq!(d.sdk_version(), env!("CARGO_PKG_VERSION"));
    }
}
