//! Evaluation metrics, from [`commute_align::metrics`], under the host's path `crate::metrics`.

pub use commute_align::metrics::*;
