//! Alignment methods, from the [`commute_align`] crate (plain matrices in, maps out), under the
//! host's path `crate::align`.

pub use commute_align::*;
