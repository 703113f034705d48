//! `WarmStart`: the last solution of a chain of related functional fits (the rounds of refinement
//! and self-learning), offered to the next fit as its conjugate gradient's starting point, and the
//! relative residual those later fits stop at.
//!
//! Consecutive rounds refit on dictionaries that differ in a few pairs, so the previous map is
//! close to the next one: starting there, the conjugate gradient needs fewer iterations to reach
//! a relative residual than starting at zero (a start changes where the iteration begins, not what
//! it converges to). Most of a refit's iterations go to the last orders of magnitude of the
//! default `1e-10`, which a round that only induces the next dictionary does not need: a chain may
//! stop its warm-started solves earlier (`refit_tolerance`), trading the last digits of its maps for
//! time. The first fit of a chain (no start yet) always solves to the default.

use faer::Mat;
use std::sync::Mutex;

/// The last map a chain of functional fits solved (in `f64`), if any.
#[derive(Debug, Default)]
pub struct WarmStart {
    last: Mutex<Option<Mat<f64>>>,
    refit_tolerance: Option<f64>,
}

impl WarmStart {
    /// An empty start: the first fit of the chain starts at zero; every solve stops at the
    /// solver's default tolerance.
    pub fn new() -> WarmStart {
        WarmStart::default()
    }

    /// An empty start whose warm-started solves stop at relative residual `tolerance`.
    pub fn with_refit_tolerance(tolerance: f64) -> WarmStart {
        WarmStart { last: Mutex::default(), refit_tolerance: Some(tolerance) }
    }

    /// The relative residual at which warm-started solves stop (`None`: the solver's default).
    pub fn refit_tolerance(&self) -> Option<f64> {
        self.refit_tolerance
    }

    /// The last solution kept, when it is `rows × cols` (a start of another shape is no start).
    pub fn get(&self, rows: usize, cols: usize) -> Option<Mat<f64>> {
        let last = self.last.lock().ok()?;
        last.as_ref().filter(|t| t.nrows() == rows && t.ncols() == cols).cloned()
    }

    /// Keeps `t` as the start of the next fit.
    pub fn put(&self, t: Mat<f64>) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(t);
        }
    }
}
