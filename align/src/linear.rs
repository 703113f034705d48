//! `LinearMap`: the fitted maps of a method on preprocessed rows, and the checks and dispatch that
//! fit one from a [`MethodSpec`] (behind [`Fit`](crate::Fit)).

use super::error::{AlignError, Space};
use super::method::MethodSpec;
use super::scalar::Real;
use super::{affine, cca, fitted, kernels, least_squares, procrustes, ridge, vecmap};
use faer::{Mat, MatRef};
use std::collections::BTreeMap;

/// An affine map of rows: `row ↦ (row − shift) · matrix + bias`.
#[derive(Clone, Debug, PartialEq)]
pub struct AffineMap<T: Real> {
    /// Subtracted from each row first (CCA's mean), if any.
    pub shift: Option<Vec<T>>,
    /// The linear part, d_in × d_out.
    pub matrix: Mat<T>,
    /// Added to each mapped row (the affine method's bias), if any.
    pub bias: Option<Vec<T>>,
}

impl<T: Real> AffineMap<T> {
    /// The linear map `row ↦ row · matrix`.
    pub fn linear(matrix: Mat<T>) -> Self {
        AffineMap { shift: None, matrix, bias: None }
    }

    /// Dimension of the rows it accepts.
    pub fn dim_in(&self) -> usize {
        self.matrix.nrows()
    }

    /// Dimension of the rows it returns.
    pub fn dim_out(&self) -> usize {
        self.matrix.ncols()
    }

    /// Maps `rows` (n × `dim_in`).
    ///
    /// # Panics
    /// If `rows` does not have `dim_in` columns.
    pub fn apply(&self, rows: MatRef<'_, T>) -> Mat<T> {
        assert_eq!(rows.ncols(), self.dim_in(), "rows have the wrong dimension for this map");
        let mut out = match &self.shift {
            Some(shift) => {
                let mut shifted = rows.to_owned();
                kernels::subtract_row(&mut shifted, shift);
                kernels::matmul(shifted.as_ref(), self.matrix.as_ref())
            }
            None => kernels::matmul(rows, self.matrix.as_ref()),
        };
        if let Some(bias) = &self.bias {
            kernels::add_row(&mut out, bias);
        }
        out
    }
}

/// What a method fitted on preprocessed rows: a map of source rows, optionally a map of target
/// rows (CCA, VecMap, relative; otherwise target rows are compared as they are), and diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearMap<T: Real> {
    /// Maps preprocessed source rows into the comparison space.
    pub source: AffineMap<T>,
    /// Maps preprocessed target rows into the comparison space; `None` is the identity.
    pub target: Option<AffineMap<T>>,
    /// The global scale of scaled Procrustes (already folded into `source.matrix`).
    pub scale: Option<T>,
    /// The canonical correlations of CCA, largest first.
    pub correlations: Option<Vec<T>>,
}

impl<T: Real> LinearMap<T> {
    /// Dimension of the comparison space.
    pub fn dim_out(&self) -> usize {
        self.source.dim_out()
    }
}

/// Checks that the rows of `x` and `y` pair up (the same count) and that both spaces have a
/// dimension.
pub(crate) fn check_shapes<T: Real>(x: MatRef<'_, T>, y: MatRef<'_, T>) -> Result<(), AlignError> {
    if x.nrows() != y.nrows() {
        return Err(AlignError::RowCountMismatch { source_rows: x.nrows(), target_rows: y.nrows() });
    }
    for (space, d) in [(Space::Source, x.ncols()), (Space::Target, y.ncols())] {
        if d == 0 {
            return Err(AlignError::InvalidParameter {
                field: format!("{space} rows"),
                detail: "have no columns (a space needs dimension ≥ 1)".to_owned(),
            });
        }
    }
    Ok(())
}

/// Checks the parameters, that rows pair up, that both spaces have a dimension and that there
/// are enough pairs for `spec`.
pub(crate) fn check_pairs<T: Real>(
    spec: &MethodSpec,
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
) -> Result<(), AlignError> {
    spec.validate()?;
    check_shapes(x, y)?;
    let needed = spec.min_pairs();
    if x.nrows() < needed {
        let what = match spec {
            MethodSpec::Cca { dim: Some(k), .. } => format!("cca with dim = {k}"),
            _ => spec.kind().to_owned(),
        };
        return Err(AlignError::TooFewPairs { what, needed, got: x.nrows() });
    }
    Ok(())
}

/// Fits `spec` on rows already checked by [`check_pairs`], with what it chose (for `cca` without
/// `reg`, the cross-validated `reg`; empty otherwise). Each method checks finiteness itself:
/// Procrustes and ridge through their products (sparing a scan of the rows), the others by
/// scanning the rows first.
pub(crate) fn fit_checked<T: Real>(
    spec: &MethodSpec,
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
) -> Result<(LinearMap<T>, BTreeMap<String, f64>), AlignError> {
    let what = spec.kind();
    let plain = |matrix| LinearMap {
        source: AffineMap::linear(matrix),
        target: None,
        scale: None,
        correlations: None,
    };
    let map = match *spec {
        MethodSpec::LeastSquares {} => Ok(plain(least_squares::solve(x, y, what, "source rows")?)),
        MethodSpec::Ridge { lambda } => Ok(plain(ridge::solve(x, y, lambda, what, "source rows")?)),
        MethodSpec::Procrustes { scaled } => {
            let (w, scale) = procrustes::solve(x, y, scaled, what)?;
            Ok(LinearMap { scale, ..plain(w) })
        }
        MethodSpec::Affine { lambda } => {
            let (w, bias) = affine::solve(x, y, lambda, what)?;
            Ok(LinearMap {
                source: AffineMap { shift: None, matrix: w, bias: Some(bias) },
                target: None,
                scale: None,
                correlations: None,
            })
        }
        MethodSpec::Cca { dim, reg: Some(reg) } => cca::solve(x, y, dim, reg, what),
        MethodSpec::Cca { dim, reg: None } => return cca::solve_cv(x, y, dim, what),
        MethodSpec::Vecmap { whiten, src_reweight, trg_reweight, dewhiten } => {
            let options = vecmap::VecmapOptions { whiten, src_reweight, trg_reweight, dewhiten };
            vecmap::solve(x, y, options, what)
        }
        MethodSpec::Relative {} => {
            kernels::check_pair_finite(x, y)?;
            let unit_transposed = |rows: MatRef<'_, T>| {
                let mut unit = rows.to_owned();
                kernels::normalise_rows(&mut unit);
                unit.as_ref().transpose().to_owned()
            };
            Ok(LinearMap {
                source: AffineMap::linear(unit_transposed(x)),
                target: Some(AffineMap::linear(unit_transposed(y))),
                scale: None,
                correlations: None,
            })
        }
        MethodSpec::Functional { .. } => Err(fitted::missing_operators(what, "none were given")),
        MethodSpec::Laplacian { k, .. } => Err(fitted::missing_rows(k, "none were given")),
    };
    map.map(|m| (m, BTreeMap::new()))
}
