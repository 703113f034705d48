//! The scalar types the alignment core is generic over: `f32` and `f64`.

use faer::traits::RealField;
use std::fmt::Debug;

/// A real scalar the fitting code runs in: `f32` (fast; the precision of the embeddings) or `f64`
/// (accurate; what [`fit`](super::fit) uses).
///
/// Sealed: only `f32` and `f64` implement it.
pub trait Real: RealField + Copy + Send + Sync + Debug + Default + sealed::Sealed + 'static {
    /// Machine epsilon of the type.
    const EPSILON: f64;
    /// Converts from `f64` (rounding for `f32`).
    fn from_f64(value: f64) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Converts from `f32` (exact).
    fn from_f32(value: f32) -> Self;
    /// Converts to `f32` (rounding for `f64`).
    fn to_f32(self) -> f32;
    /// Whether the value is neither NaN nor infinite.
    fn finite(self) -> bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Real for f32 {
    const EPSILON: f64 = f32::EPSILON as f64;
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f32(value: f32) -> Self {
        value
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
}

impl Real for f64 {
    const EPSILON: f64 = f64::EPSILON;
    fn from_f64(value: f64) -> Self {
        value
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f32(value: f32) -> Self {
        f64::from(value)
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
}
