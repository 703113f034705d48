//! Alignment of embedding spaces on plain matrices: maps between two spaces fitted from paired
//! rows (and, for functional alignment, from each space's own operators), and the metrics that
//! judge them ([`metrics`]). Nothing here knows about plugins, files or experiments; every input
//! is a `faer` matrix, so any Rust program can use it.
//!
//! Rows are items: `x` (n × d_a) in the source space, `y` (n × d_b) in the target space, row i of
//! each describing the same item. A fitted [`Alignment`] maps source rows and target rows into a
//! common comparison space, where retrieval and similarity are measured.
//!
//! ```
//! use commute_align::{Alignment, Fit, MethodSpec, Preprocess};
//! use faer::Mat;
//!
//! // A target that is the source turned by 90° in its first two coordinates.
//! let x = Mat::<f32>::from_fn(20, 3, |i, j| ((i * 7 + j * 3) % 11) as f32 - 5.0);
//! let y = Mat::<f32>::from_fn(20, 3, |i, j| match j { 0 => -x[(i, 1)], 1 => x[(i, 0)], _ => x[(i, 2)] });
//! let spec = MethodSpec::Procrustes { scaled: false };
//! let map = Fit::new(&spec).run_f32(x.as_ref(), y.as_ref()).unwrap();
//! let mapped = map.map_source(x.as_ref());
//! assert!((0..20).all(|i| (0..3).all(|j| (mapped[(i, j)] - y[(i, j)]).abs() < 1e-4)));
//! ```
//!
//! # Feature alignment
//! [`MethodSpec`] (least squares, ridge, Procrustes, CCA, affine, VecMap's whitened orthogonal
//! mapping with re-weighting and de-whitening, and the methods below) and
//! [`Preprocess`] (unit-normalise, centre, PCA, whiten) are the TOML forms. [`Fit`] is the one
//! entry point: a method, each side's preprocessing (fitted on the pairs, or already fitted and
//! kept, as refinement needs) and the functional family's [`FitData`], fitted on paired rows in
//! either precision into a [`FittedMap`], which is an [`Alignment`] on `f32` rows.
//!
//! # Functional alignment
//! `functional` also uses operators of each space ("plural", "transpose +2"), known only by
//! within-space pairs of rows: [`fit_action`] fits each operator's affine action, and the map is
//! asked to commute with corresponding operators ([`functional`] has the objective, its solvers and
//! the normalisation of its weights). `laplacian` does the same with one operator per side, kNN
//! averaging on unpaired rows ([`neighbour_mean`]); `relative` compares rows by their similarities
//! to the anchors. [`Fit::data`] takes this extra [`FitData`]; [`commutation_error`] measures how
//! far a map is from commuting with an operator pair.
//!
//! # Precision
//! The core is generic over [`Real`] (`f32`, `f64`) with `faer`'s scalar traits.
//! [`Fit::run_f32`] computes in `f64`: the experiment's anchor sets are small (n ≤ ~1000), so the cost is the d × d
//! decompositions, where `f64` costs about 1.8× `f32`; in exchange, the methods that square a
//! condition number (ridge with a small `lambda`, whitening, CCA's `C^{-1/2}`) keep about 8 more
//! digits, and fits near `n ≈ d` (where `XᵀX` is nearly singular) stay stable. Results are exposed
//! as `f32` through [`Alignment`]. [`Fit::run`] on `f32` rows is there for large problems, where the products
//! over the pairs dominate and `f32` halves the time: the embeddings are `f32` to begin with, and
//! Procrustes, which only needs an SVD of the well-conditioned `XᵀY`, loses nothing that matters.
//!
//! # Formulations
//! Chosen for `faer`'s strengths (its SVD is fast; its GEMM is slower than OpenBLAS's): every
//! method touches the n × d rows only through one or two products (`XᵀY`, `XᵀX`), then works on
//! d × d matrices. Procrustes is an SVD of `XᵀY`; ridge is a Cholesky solve of the d × d normal
//! equations (or of the n × n kernel form when n < d); least squares is minimum-norm by a thin SVD
//! of `X` (robust at any rank, and n ≤ 1000 keeps it cheap); CCA whitens each covariance by an
//! eigendecomposition and takes one SVD.

mod affine;
mod cca;
mod error;
mod fitted;
pub mod functional;
pub mod kernels;
mod least_squares;
mod linear;
mod memo;
mod method;
pub mod metrics;
mod operator;
mod preprocess;
mod procrustes;
pub mod refine;
mod ridge;
mod scalar;
pub mod self_learning;
#[cfg(test)]
mod testing;
pub mod unsupervised;
mod vecmap;
mod warm;

pub use cca::CCA_REG_GRID;
pub use error::{AlignError, Space};
pub use fitted::{
    preprocess_rows, to_f32, to_precision, Fit, FitData, FittedMap, OperatorRows, Preprocessed,
};
pub use functional::{commutation_error, FunctionalSolution, OperatorPair, SolveOptions};
pub use linear::{AffineMap, LinearMap};
pub use memo::ActionMemo;
pub use method::{
    MethodSpec, OperatorForm, Solver, DEFAULT_CCA_REG, DEFAULT_LAPLACIAN_K, DEFAULT_RIDGE_LAMBDA,
};
pub use operator::{action_lambda_grid, fit_action, neighbour_mean, OperatorAction};
pub use preprocess::{FitOn, FittedPreprocess, Preprocess, Step};
pub use scalar::Real;
pub use warm::WarmStart;

use faer::{Mat, MatRef};
use std::collections::BTreeMap;

/// A fitted alignment between a source space and a target space.
pub trait Alignment: Send + Sync {
    /// Maps source rows (n × d_a) into the comparison space.
    fn map_source(&self, x: MatRef<'_, f32>) -> Mat<f32>;
    /// Maps target rows (n × d_b) into the comparison space (for most methods: the target's own
    /// preprocessing only).
    fn map_target(&self, y: MatRef<'_, f32>) -> Mat<f32>;
    /// Diagnostics of the fit by name (e.g. the weights the functional family chose; see
    /// [`FittedMap::details`]); empty by default.
    fn details(&self) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }
    /// Maps source rows that are already preprocessed by the preprocessing with fingerprint `by`
    /// ([`FittedPreprocess::fingerprint`]), when this alignment starts with that preprocessing:
    /// the values [`map_source`](Self::map_source) gives for the raw rows, without preprocessing
    /// them again. `None` (the default) when it does not; the caller then maps the raw rows.
    fn map_preprocessed_source(&self, _z: MatRef<'_, f64>, _by: u64) -> Option<Mat<f32>> {
        None
    }
    /// [`map_preprocessed_source`](Self::map_preprocessed_source) for target rows.
    fn map_preprocessed_target(&self, _z: MatRef<'_, f64>, _by: u64) -> Option<Mat<f32>> {
        None
    }
}
