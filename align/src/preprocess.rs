//! `Preprocess`: per-space row preprocessing (unit-normalise, centre, PCA, whiten), its TOML form
//! and its fitted form, which applies the same transformation to any later rows.

use super::error::{AlignError, Space};
use super::kernels::{self, c};
use super::scalar::Real;
use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

/// How each space's rows are preprocessed before a method is fitted, as written in TOML
/// (`preprocess = { center = true, unit-norm = true, pca = 50 }`). Each space is preprocessed on
/// its own, with statistics (means, bases) fitted on the rows given to `fit` and stored, so that
/// later rows are transformed identically.
///
/// The steps run in this order:
/// 1. `unit-norm`: scale each row to unit length;
/// 2. `center`: subtract the mean row;
/// 3. `unit-norm` again (only when both are on): the classic order for word vectors
///    (unit, centre, unit: VecMap's default normalisation);
/// 4. `pca`: project onto the top principal directions (about the current mean);
/// 5. `whiten`: multiply by `C^{-1/2}` (symmetric, "ZCA"), so the covariance becomes the identity.
///
/// The defaults are that classic order (`unit-norm = true`, `center = true`), no PCA and no
/// whitening. [`Preprocess::none`] turns everything off. Unknown keys are errors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Preprocess {
    /// Scale rows to unit Euclidean length (before centring, and again after it when `center` is
    /// on; rows of zeros stay zero). Default true.
    pub unit_norm: bool,
    /// Subtract the mean row (fitted on the given rows). Default true.
    pub center: bool,
    /// Project onto the top `k` principal directions, making both spaces `k`-dimensional (a
    /// common dimension). Needs `1 ≤ k ≤ d` and at least `k + 1` rows. The projection is about
    /// the rows' mean, so the result is centred whatever `center` says. Default: no PCA.
    pub pca: Option<usize>,
    /// Whiten: multiply rows by the inverse square root of their covariance (after PCA), so the
    /// covariance on the given rows is the identity. Directions with (numerically) zero variance
    /// are dropped from the inverse, i.e. the whitening is a pseudo-inverse when there are fewer
    /// rows than dimensions. Translation is not removed: combine with `center`. Needs at least 2
    /// rows. Default false.
    pub whiten: bool,
    /// Which rows the statistics (means, bases) are fitted on: `anchors` (the paired rows a method
    /// is fitted on) or `pool` (every non-test row of each space, each side on its own: no pairing
    /// is used, so a handful of anchors still gets a well-centred space, as VecMap normalises the
    /// whole vocabulary). Default `anchors`.
    #[serde(skip_serializing_if = "FitOn::is_anchors")]
    pub fit_on: FitOn,
}

/// Which rows preprocessing statistics are fitted on (`fit-on` in [`Preprocess`]).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FitOn {
    /// The anchors (the paired rows of each fit).
    #[default]
    Anchors,
    /// Every non-test row of each space, unpaired.
    Pool,
}

impl FitOn {
    fn is_anchors(&self) -> bool {
        *self == FitOn::Anchors
    }
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess { unit_norm: true, center: true, pca: None, whiten: false, fit_on: FitOn::Anchors }
    }
}

impl Preprocess {
    /// No preprocessing at all: rows are used as given.
    pub fn none() -> Self {
        Preprocess { unit_norm: false, center: false, pca: None, whiten: false, fit_on: FitOn::Anchors }
    }

    /// Whether any step is fitted from statistics of the rows (centring, PCA, whitening), so that
    /// fitting it needs rows; unit length needs none.
    pub fn fits_statistics(&self) -> bool {
        self.center || self.pca.is_some() || self.whiten
    }

    /// Whether this preprocessing leaves rows unchanged.
    pub fn is_identity(&self) -> bool {
        !self.unit_norm && !self.center && self.pca.is_none() && !self.whiten
    }
}

/// One fitted preprocessing step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step<T: Real> {
    /// Scale each row to unit length.
    UnitNorm,
    /// Subtract this mean row.
    Center {
        /// The mean row of the rows the step was fitted on.
        mean: Vec<T>,
    },
    /// PCA: `(row − mean) · basis`.
    Project {
        /// The mean row the principal directions are taken about.
        mean: Vec<T>,
        /// The principal directions, as columns (d × k), by decreasing variance.
        basis: Mat<T>,
        /// The variance along each kept direction, decreasing.
        variances: Vec<T>,
    },
    /// Whitening: `row · matrix` (symmetric d × d).
    Whiten {
        /// The (pseudo-)inverse square root of the covariance.
        matrix: Mat<T>,
        /// How many directions had non-zero variance (the rank of `matrix`).
        rank: usize,
    },
}

/// Preprocessing fitted on one space's rows: a list of steps applied in order.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedPreprocess<T: Real> {
    dim_in: usize,
    dim_out: usize,
    space: Space,
    steps: Vec<Step<T>>,
}

impl<T: Real> FittedPreprocess<T> {
    /// The identity on `dim`-dimensional rows.
    pub fn identity(dim: usize, space: Space) -> Self {
        FittedPreprocess { dim_in: dim, dim_out: dim, space, steps: Vec::new() }
    }

    /// Fits `pre` on `rows` (n × d) of `space`.
    pub fn fit(pre: &Preprocess, rows: MatRef<'_, T>, space: Space) -> Result<Self, AlignError> {
        kernels::check_finite(rows, space)?;
        Ok(Self::fit_transform(pre, rows, space)?.0)
    }

    /// Fits `pre` on `rows` (already checked to be finite) and returns the transformed rows too
    /// (`None` when `pre` is the identity, to avoid a copy).
    pub(crate) fn fit_transform(
        pre: &Preprocess,
        rows: MatRef<'_, T>,
        space: Space,
    ) -> Result<(Self, Option<Mat<T>>), AlignError> {
        let (n, d) = (rows.nrows(), rows.ncols());
        let mut fitted = Self::identity(d, space);
        if pre.is_identity() {
            return Ok((fitted, None));
        }
        if let Some(k) = pre.pca {
            if k == 0 || k > d {
                return Err(AlignError::InvalidParameter {
                    field: "preprocess.pca".to_owned(),
                    detail: format!("must be between 1 and the {space} dimension {d}, got {k}"),
                });
            }
            if n < k + 1 {
                return Err(AlignError::TooFewPairs { what: format!("pca = {k}"), needed: k + 1, got: n });
            }
        }
        if pre.whiten && n < 2 {
            return Err(AlignError::TooFewPairs { what: "whiten".to_owned(), needed: 2, got: n });
        }
        let mut z = rows.to_owned();
        if pre.unit_norm {
            kernels::normalise_rows(&mut z);
            fitted.steps.push(Step::UnitNorm);
        }
        if pre.center {
            let mean = kernels::column_means(z.as_ref());
            kernels::subtract_row(&mut z, &mean);
            fitted.steps.push(Step::Center { mean });
            if pre.unit_norm {
                kernels::normalise_rows(&mut z);
                fitted.steps.push(Step::UnitNorm);
            }
        }
        if let Some(k) = pre.pca {
            let step = fit_pca(z.as_ref(), k, space)?;
            z = apply_step(&step, z);
            fitted.steps.push(step);
        }
        if pre.whiten {
            let step = fit_whitening(z.as_ref(), space)?;
            z = apply_step(&step, z);
            fitted.steps.push(step);
        }
        fitted.dim_out = z.ncols();
        Ok((fitted, Some(z)))
    }

    /// Dimension of the rows it accepts.
    pub fn dim_in(&self) -> usize {
        self.dim_in
    }

    /// Dimension of the rows it returns.
    pub fn dim_out(&self) -> usize {
        self.dim_out
    }

    /// The fitted steps, in the order they are applied.
    pub fn steps(&self) -> &[Step<T>] {
        &self.steps
    }

    /// Whether it leaves rows unchanged.
    pub fn is_identity(&self) -> bool {
        self.steps.is_empty()
    }

    /// Appends a unit-normalisation step, unless the last step already is one (`relative` compares
    /// preprocessed rows by cosine).
    pub(crate) fn push_unit_norm(&mut self) {
        if !matches!(self.steps.last(), Some(Step::UnitNorm)) {
            self.steps.push(Step::UnitNorm);
        }
    }

    /// A 64-bit fingerprint of what it does: its dimensions, space and every fitted statistic,
    /// bit for bit. Two fitted preprocessings with one fingerprint transform rows identically
    /// (barring a hash collision).
    pub fn fingerprint(&self) -> u64 {
        let space = match self.space {
            Space::Source => 0,
            Space::Target => 1,
        };
        let mut tags = vec![self.dim_in as u64, self.dim_out as u64, space];
        let mut values: Vec<MatRef<'_, T>> = Vec::new();
        fn column<T: Real>(v: &[T]) -> MatRef<'_, T> {
            MatRef::from_column_major_slice(v, v.len(), 1)
        }
        for step in &self.steps {
            match step {
                Step::UnitNorm => tags.push(1),
                Step::Center { mean } => {
                    tags.push(2);
                    values.push(column(mean));
                }
                Step::Project { mean, basis, variances } => {
                    tags.push(3);
                    values.extend([column(mean), basis.as_ref(), column(variances)]);
                }
                Step::Whiten { matrix, rank } => {
                    tags.extend([4, *rank as u64]);
                    values.push(matrix.as_ref());
                }
            }
        }
        let tags = tags.iter().fold(0u64, |h, &t| h.rotate_left(7) ^ t.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        crate::memo::fingerprint(&values, tags).0
    }

    /// Applies the fitted steps to `rows` (n × `dim_in`).
    pub fn apply(&self, rows: MatRef<'_, T>) -> Result<Mat<T>, AlignError> {
        if rows.ncols() != self.dim_in {
            return Err(AlignError::DimensionMismatch {
                space: self.space,
                expected: self.dim_in,
                got: rows.ncols(),
            });
        }
        Ok(self.steps.iter().fold(rows.to_owned(), |z, step| apply_step(step, z)))
    }

    /// Rows of the preprocessed space taken back to the raw space (n × `dim_out` → n ×
    /// `dim_in`): a centring is added back and a PCA projection reconstructed from its basis
    /// (exact on the kept directions). `None` where a step has no inverse (unit length, whitening):
    /// what is lost cannot be read back. For decoding a mapped target row in its own space.
    pub fn invert(&self, rows: MatRef<'_, T>) -> Option<Mat<T>> {
        if rows.ncols() != self.dim_out {
            return None;
        }
        let mut z = rows.to_owned();
        for step in self.steps.iter().rev() {
            z = match step {
                Step::Center { mean } => {
                    let neg: Vec<T> = mean.iter().map(|&m| -m).collect();
                    kernels::subtract_row(&mut z, &neg);
                    z
                }
                Step::Project { mean, basis, .. } => {
                    let mut x = kernels::matmul(z.as_ref(), basis.transpose());
                    let neg: Vec<T> = mean.iter().map(|&m| -m).collect();
                    kernels::subtract_row(&mut x, &neg);
                    x
                }
                Step::UnitNorm | Step::Whiten { .. } => return None,
            };
        }
        Some(z)
    }
}

fn apply_step<T: Real>(step: &Step<T>, mut z: Mat<T>) -> Mat<T> {
    match step {
        Step::UnitNorm => {
            kernels::normalise_rows(&mut z);
            z
        }
        Step::Center { mean } => {
            kernels::subtract_row(&mut z, mean);
            z
        }
        Step::Project { mean, basis, .. } => {
            kernels::subtract_row(&mut z, mean);
            kernels::matmul(z.as_ref(), basis.as_ref())
        }
        Step::Whiten { matrix, .. } => kernels::matmul(z.as_ref(), matrix.as_ref()),
    }
}

/// Top-`k` principal directions of `z` about its mean.
fn fit_pca<T: Real>(z: MatRef<'_, T>, k: usize, space: Space) -> Result<Step<T>, AlignError> {
    let what = format!("{space} pca");
    let (n, d) = (z.nrows(), z.ncols());
    let (zc, mean) = kernels::centred(z);
    let dof = c::<T>((n - 1) as f64);
    let (mut basis, variances) = if n > d {
        // Covariance eigendecomposition: d × d, cheaper than an SVD of the n × d rows.
        let eig = kernels::sym_eigen(kernels::gram(zc.as_ref()).as_ref(), &what)?;
        let basis = eig.vectors.as_ref().subcols(0, k).to_owned();
        (basis, eig.values[..k].iter().map(|&v| v / dof).collect::<Vec<_>>())
    } else {
        let svd = kernels::thin_svd(zc.as_ref(), &what)?;
        let basis = svd.v.as_ref().subcols(0, k).to_owned();
        (basis, svd.s[..k].iter().map(|&s| s * s / dof).collect::<Vec<_>>())
    };
    kernels::fix_signs(&mut basis, None);
    Ok(Step::Project { mean, basis, variances })
}

/// Symmetric whitening of `z`: `C^{-1/2}` of its covariance (pseudo-inverse on a null space).
fn fit_whitening<T: Real>(z: MatRef<'_, T>, space: Space) -> Result<Step<T>, AlignError> {
    let what = format!("{space} whitening");
    let (n, d) = (z.nrows(), z.ncols());
    let (zc, _) = kernels::centred(z);
    let mut cov = kernels::gram(zc.as_ref());
    let scale = c::<T>(1.0 / (n - 1) as f64);
    for j in 0..d {
        for v in cov.col_as_slice_mut(j) {
            *v *= scale;
        }
    }
    let rel_tol = (n.max(d) as f64) * T::EPSILON;
    let (matrix, rank, _) = kernels::inv_sqrt_psd(cov.as_ref(), rel_tol, &what)?;
    if rank == 0 {
        return Err(AlignError::Singular {
            what,
            detail: format!("the {space} rows have zero variance"),
            hint: "give rows that are not all equal, or turn whiten off".to_owned(),
        });
    }
    Ok(Step::Whiten { matrix, rank })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{centred_orthonormal, covariance, gaussian, max_diff, orthogonal, rng};

    fn fit(pre: &Preprocess, rows: &Mat<f64>) -> (FittedPreprocess<f64>, Mat<f64>) {
        let (fitted, out) = FittedPreprocess::fit_transform(pre, rows.as_ref(), Space::Source).unwrap();
        (fitted, out.unwrap_or_else(|| rows.clone()))
    }

    #[test]
    fn toml_keys_defaults_and_unknown_keys() {
        let parsed: Preprocess = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, Preprocess::default());
        assert_eq!(parsed, Preprocess::default());
        let parsed: Preprocess =
            serde_json::from_str(r#"{"unit-norm":false,"center":true,"pca":50,"whiten":true}"#).unwrap();
        assert_eq!(
            parsed,
            Preprocess {
                unit_norm: false,
                center: true,
                pca: Some(50),
                whiten: true,
                fit_on: FitOn::Anchors
            }
        );
        let err = serde_json::from_str::<Preprocess>(r#"{"unit_norm":false}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `unit_norm`"), "{err}");
        assert!(Preprocess::none().is_identity() && !Preprocess::default().is_identity());
    }

    #[test]
    fn unit_centre_unit_order_and_stored_statistics() {
        let mut r = rng(51);
        let x = gaussian(&mut r, 20, 6);
        let (fitted, z) = fit(&Preprocess::default(), &x);
        assert!(matches!(fitted.steps(), [Step::UnitNorm, Step::Center { .. }, Step::UnitNorm]));
        for i in 0..20 {
            let norm: f64 = (0..6).map(|j| z[(i, j)] * z[(i, j)]).sum();
            assert!((norm - 1.0).abs() < 1e-12);
        }
        // Applying to the fitting rows reproduces the fit; a later row uses the stored mean.
        assert!(max_diff(fitted.apply(x.as_ref()).unwrap().as_ref(), z.as_ref()) < 1e-14);
        let Step::Center { mean } = &fitted.steps()[1] else { unreachable!() };
        let row = x.as_ref().subrows(3, 1).to_owned();
        let norm: f64 = (0..6).map(|j| row[(0, j)] * row[(0, j)]).sum::<f64>().sqrt();
        let by_hand: Vec<f64> = (0..6).map(|j| row[(0, j)] / norm - mean[j]).collect();
        let norm2: f64 = by_hand.iter().map(|v| v * v).sum::<f64>().sqrt();
        let got = fitted.apply(row.as_ref()).unwrap();
        for j in 0..6 {
            assert!((got[(0, j)] - by_hand[j] / norm2).abs() < 1e-12);
        }
    }

    #[test]
    fn centring_and_a_full_pca_invert_exactly_unit_length_does_not() {
        let mut r = rng(53);
        let x = gaussian(&mut r, 30, 5);
        let centred = Preprocess { unit_norm: false, center: true, ..Preprocess::none() };
        let full = Preprocess { unit_norm: false, center: true, pca: Some(5), ..Preprocess::none() };
        for pre in [centred, full] {
            let (fitted, z) = fit(&pre, &x);
            let back = fitted.invert(z.as_ref()).expect("invertible");
            assert!(max_diff(back.as_ref(), x.as_ref()) < 1e-10, "{pre:?}");
        }
        // A PCA that drops directions reconstructs the kept part: applying it again is exact.
        let (fitted, z) =
            fit(&Preprocess { unit_norm: false, center: true, pca: Some(2), ..Preprocess::none() }, &x);
        let back = fitted.invert(z.as_ref()).expect("invertible");
        assert!(max_diff(fitted.apply(back.as_ref()).unwrap().as_ref(), z.as_ref()) < 1e-10);
        let (fitted, z) = fit(&Preprocess::default(), &x);
        assert!(fitted.invert(z.as_ref()).is_none(), "unit length loses each row's norm");
        assert!(FittedPreprocess::<f64>::identity(5, Space::Source).invert(x.as_ref()).is_some());
    }

    #[test]
    fn pca_keeps_the_top_variance_directions() {
        // Rows with exactly known covariance: Z = U diag(σ) Qᵀ with U centred and orthonormal.
        let mut r = rng(52);
        let (n, d, k) = (300, 8, 3);
        let u = centred_orthonormal(&mut r, n, d);
        let q = orthogonal(&mut r, d);
        let sigma = [9.0, 7.0, 5.0, 3.0, 2.0, 1.5, 1.0, 0.5];
        let us = Mat::from_fn(n, d, |i, j| u[(i, j)] * sigma[j]);
        let z = kernels::matmul(us.as_ref(), q.as_ref().transpose());
        let pre = Preprocess { pca: Some(k), ..Preprocess::none() };
        let (fitted, projected) = fit(&pre, &z);
        let Step::Project { basis, variances, .. } = &fitted.steps()[0] else { unreachable!() };
        // The basis spans the top-k columns of Q (each column equal up to sign).
        let overlap = kernels::tmatmul(basis.as_ref(), q.as_ref().subcols(0, k));
        let abs = Mat::from_fn(k, k, |i, j| overlap[(i, j)].abs());
        assert!(max_diff(abs.as_ref(), Mat::<f64>::identity(k, k).as_ref()) < 1e-10);
        for (v, s) in variances.iter().zip(sigma) {
            assert!((v - s * s / (n - 1) as f64).abs() < 1e-10);
        }
        assert_eq!((projected.nrows(), projected.ncols(), fitted.dim_out()), (n, k, k));
        // Fewer rows than dimensions takes the SVD route; same answer on the rows' span.
        let few = z.as_ref().subrows(0, 6).to_owned();
        let (fitted_few, projected_few) = fit(&Preprocess { pca: Some(2), ..Preprocess::none() }, &few);
        let c = covariance(projected_few.as_ref());
        assert!(c[(0, 0)] >= c[(1, 1)] && c[(0, 1)].abs() < 1e-10);
        assert_eq!(fitted_few.dim_out(), 2);
    }

    #[test]
    fn whitening_gives_identity_covariance() {
        let mut r = rng(53);
        let g = gaussian(&mut r, 200, 5);
        let mix = gaussian(&mut r, 5, 5);
        let z = kernels::matmul(g.as_ref(), mix.as_ref());
        let (fitted, w) = fit(&Preprocess { whiten: true, ..Preprocess::none() }, &z);
        assert!(max_diff(covariance(w.as_ref()).as_ref(), Mat::<f64>::identity(5, 5).as_ref()) < 1e-10);
        let Step::Whiten { matrix, rank } = &fitted.steps()[0] else { unreachable!() };
        assert_eq!(*rank, 5);
        assert!(max_diff(matrix.as_ref(), matrix.as_ref().transpose()) < 1e-12, "symmetric (ZCA)");
        // With fewer rows than dimensions the covariance becomes a projector of rank n - 1.
        let few = z.as_ref().subrows(0, 3).to_owned();
        let (fitted, w) = fit(&Preprocess { whiten: true, ..Preprocess::none() }, &few);
        let c = covariance(w.as_ref());
        let c2 = kernels::matmul(c.as_ref(), c.as_ref());
        assert!(max_diff(c.as_ref(), c2.as_ref()) < 1e-8);
        assert!(matches!(fitted.steps()[0], Step::Whiten { rank: 2, .. }));
    }

    #[test]
    fn the_fingerprint_tells_fitted_preprocessings_apart() {
        let mut r = rng(55);
        let x = gaussian(&mut r, 30, 6);
        let pre = Preprocess { pca: Some(4), ..Preprocess::default() };
        let fitted = FittedPreprocess::fit(&pre, x.as_ref(), Space::Source).unwrap();
        assert_eq!(fitted.fingerprint(), fitted.clone().fingerprint());
        assert_eq!(
            fitted.fingerprint(),
            FittedPreprocess::fit(&pre, x.as_ref(), Space::Source).unwrap().fingerprint()
        );
        // Another space, other statistics, other steps or another width: another fingerprint.
        let mut y = x.clone();
        y[(2, 3)] += 1e-9;
        let others = [
            FittedPreprocess::fit(&pre, x.as_ref(), Space::Target).unwrap(),
            FittedPreprocess::fit(&pre, y.as_ref(), Space::Source).unwrap(),
            FittedPreprocess::fit(&Preprocess::default(), x.as_ref(), Space::Source).unwrap(),
            FittedPreprocess::fit(&Preprocess { pca: Some(3), ..pre.clone() }, x.as_ref(), Space::Source)
                .unwrap(),
            FittedPreprocess::identity(6, Space::Source),
        ];
        for other in &others {
            assert_ne!(fitted.fingerprint(), other.fingerprint(), "{other:?}");
        }
        assert_ne!(others[2].fingerprint(), others[4].fingerprint());
    }

    #[test]
    fn bad_input_is_reported() {
        let mut r = rng(54);
        let x = gaussian(&mut r, 5, 4);
        let fit_err = |pre: Preprocess, x: &Mat<f64>| {
            FittedPreprocess::fit(&pre, x.as_ref(), Space::Target).unwrap_err()
        };
        let err = fit_err(Preprocess { pca: Some(0), ..Preprocess::none() }, &x);
        assert!(matches!(err, AlignError::InvalidParameter { .. }), "{err}");
        let err = fit_err(Preprocess { pca: Some(5), ..Preprocess::none() }, &x);
        assert!(err.to_string().contains("target dimension 4"), "{err}");
        let err =
            fit_err(Preprocess { pca: Some(4), ..Preprocess::none() }, &x.as_ref().subrows(0, 4).to_owned());
        assert_eq!(err, AlignError::TooFewPairs { what: "pca = 4".to_owned(), needed: 5, got: 4 });
        let err =
            fit_err(Preprocess { whiten: true, ..Preprocess::none() }, &x.as_ref().subrows(0, 1).to_owned());
        assert!(matches!(err, AlignError::TooFewPairs { needed: 2, got: 1, .. }), "{err}");
        let constant = Mat::from_fn(5, 4, |_, j| j as f64);
        let err = fit_err(Preprocess { whiten: true, ..Preprocess::none() }, &constant);
        assert!(matches!(err, AlignError::Singular { .. }), "{err}");
        let mut bad = x.clone();
        bad[(2, 1)] = f64::NAN;
        let err = fit_err(Preprocess::default(), &bad);
        assert!(matches!(err, AlignError::NonFinite { row: 2, col: 1, space: Space::Target, .. }), "{err}");
        let fitted = FittedPreprocess::fit(&Preprocess::default(), x.as_ref(), Space::Target).unwrap();
        let err = fitted.apply(Mat::<f64>::zeros(2, 3).as_ref()).unwrap_err();
        assert_eq!(err, AlignError::DimensionMismatch { space: Space::Target, expected: 4, got: 3 });
    }
}
