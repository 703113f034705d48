//! Operator actions: the affine map `x ↦ x·F + c` by which an operator of one space ("plural",
//! "transpose +2") acts on that space's embeddings, fitted from within-space pairs by ridge
//! regression towards the identity with a cross-validated penalty; and [`neighbour_mean`], the
//! kNN-averaging operator behind the `laplacian` method.

use super::error::AlignError;
use super::kernels::{self, c};
use super::scalar::Real;
use faer::{Mat, MatRef};

/// Folds of the cross-validation of [`fit_action`] (fewer when there are fewer pairs).
pub const ACTION_FOLDS: usize = 5;

/// The penalties tried by [`fit_action`], relative to `tr(XcᵀXc) / d` (the mean variance of the
/// centred inputs per dimension, times the number of pairs): `10^(−8 + j/3)` for `j = 0..=36`,
/// i.e. `1e-8 … 1e4`, three per decade. The low end reaches plain least squares (to about 1e-7
/// relative), the high end the pure-offset model.
pub fn action_lambda_grid() -> Vec<f64> {
    (0..=36).map(|j| 10f64.powf(-8.0 + j as f64 / 3.0)).collect()
}

/// The affine action of an operator on one space's (preprocessed) rows: `x ↦ x·F + c`.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorAction<T: Real = f64> {
    /// The linear part, d × d (rows are items: it acts as `x·F`).
    pub f: Mat<T>,
    /// The offset added after the linear part, length d.
    pub c: Vec<T>,
    /// The ridge penalty chosen by cross-validation, absolute (`‖Δ‖²_F` is weighted by it, with
    /// `F = I + Δ`); `NaN` for an action built with [`OperatorAction::from_parts`].
    pub lambda: f64,
    /// How many (input, image) pairs it was fitted from (0 when built from parts).
    pub pairs: usize,
    /// Held-out (cross-validated) R² of the fitted action at the chosen penalty; `NaN` when built
    /// from parts.
    pub r2: f64,
    /// Held-out R² of the offset-only model `x ↦ x + c` (the "vector offset" model); `NaN` when
    /// built from parts.
    pub r2_offset: f64,
    /// R² of `x ↦ x` (no fit at all; negative when the operator moves rows); `NaN` when built from
    /// parts.
    pub r2_identity: f64,
}

impl<T: Real> OperatorAction<T> {
    /// A known action `x ↦ x·f + c` (nothing fitted: `lambda` and the R² fields are `NaN`,
    /// `pairs` is 0).
    ///
    /// Fails unless `f` is square with as many rows as `c` has entries.
    pub fn from_parts(f: Mat<T>, c: Vec<T>) -> Result<Self, AlignError> {
        if f.nrows() != f.ncols() || f.nrows() != c.len() {
            return Err(AlignError::InvalidParameter {
                field: "operator action".to_owned(),
                detail: format!(
                    "the linear part must be d × d and the offset have d entries, got {} × {} and {}",
                    f.nrows(),
                    f.ncols(),
                    c.len()
                ),
            });
        }
        Ok(OperatorAction {
            f,
            c,
            lambda: f64::NAN,
            pairs: 0,
            r2: f64::NAN,
            r2_offset: f64::NAN,
            r2_identity: f64::NAN,
        })
    }

    /// Dimension of the space it acts on.
    pub fn dim(&self) -> usize {
        self.c.len()
    }

    /// Applies the action to `rows` (n × `dim`): `rows·F + c`.
    ///
    /// # Panics
    /// If `rows` does not have `dim` columns.
    pub fn apply(&self, rows: MatRef<'_, T>) -> Mat<T> {
        assert_eq!(rows.ncols(), self.dim(), "rows have the wrong dimension for this operator");
        let mut out = kernels::matmul(rows, self.f.as_ref());
        kernels::add_row(&mut out, &self.c);
        out
    }
}

/// How the ridge solution `Δ = (XcᵀXc + λI)⁻¹ Xcᵀ Dc` is written for a cheap sweep over `λ`:
/// `Δ = V diag(w(λ)) B`, with `w_i = 1 / (e_i + λ)` from the eigendecomposition `XcᵀXc = V E Vᵀ`
/// (then `B = Vᵀ Xcᵀ Dc`), or `w_i = s_i / (s_i² + λ)` from the thin SVD `Xc = U S Vᵀ` (then
/// `B = Uᵀ Dc`), whichever is smaller.
struct RidgePath<T: Real> {
    v: Mat<T>,
    b: Mat<T>,
    spectrum: Vec<f64>,
    from_svd: bool,
}

impl<T: Real> RidgePath<T> {
    fn new(xc: MatRef<'_, T>, dc: MatRef<'_, T>) -> Result<Self, AlignError> {
        const WHAT: &str = "operator action";
        if xc.nrows() > xc.ncols() {
            let eig = kernels::sym_eigen(kernels::gram(xc).as_ref(), WHAT)?;
            let b = kernels::tmatmul(eig.vectors.as_ref(), kernels::tmatmul(xc, dc).as_ref());
            let spectrum = eig.values.iter().map(|v| v.to_f64().max(0.0)).collect();
            Ok(RidgePath { v: eig.vectors, b, spectrum, from_svd: false })
        } else {
            let svd = kernels::thin_svd(xc, WHAT)?;
            let b = kernels::tmatmul(svd.u.as_ref(), dc);
            let spectrum = svd.s.iter().map(|v| v.to_f64()).collect();
            Ok(RidgePath { v: svd.v, b, spectrum, from_svd: true })
        }
    }

    fn weights(&self, lambda: f64) -> Vec<f64> {
        self.spectrum
            .iter()
            .map(|&s| if self.from_svd { s / (s * s + lambda) } else { 1.0 / (s + lambda) })
            .collect()
    }

    /// `Δ` at penalty `lambda` (d × d).
    fn delta(&self, lambda: f64) -> Mat<T> {
        let w = self.weights(lambda);
        let scaled = Mat::from_fn(self.v.nrows(), self.v.ncols(), |i, j| self.v[(i, j)] * c::<T>(w[j]));
        kernels::matmul(scaled.as_ref(), self.b.as_ref())
    }
}

/// The rows of `x` listed in `rows`.
pub(crate) fn select_rows<T: Real>(x: MatRef<'_, T>, rows: &[usize]) -> Mat<T> {
    Mat::from_fn(rows.len(), x.ncols(), |i, j| x[(rows[i], j)])
}

fn difference<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> Mat<T> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] - b[(i, j)])
}

fn r_squared(sse: f64, total: f64) -> f64 {
    if total > 0.0 {
        1.0 - sse / total
    } else if sse <= 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Fits the affine action `x ↦ x·F + c` of an operator from `m` pairs of rows of one space:
/// inputs `x` (m × d) and their images `fx` (m × d), already preprocessed.
///
/// Ridge regression towards the identity: with `F = I + Δ`, `Δ` minimises
/// `‖Xc(I + Δ) − FXc‖²_F + λ‖Δ‖²_F` on centred rows (`Xc = X − x̄`, `FXc = FX − f̄x`), and
/// `c = f̄x − x̄·F`. So `λ → ∞` is the pure-offset ("vector offset") model `x ↦ x + (f̄x − x̄)`,
/// `λ → 0` plain least squares. `λ` is chosen from [`action_lambda_grid`] (times
/// `tr(XcᵀXc) / d`) by `min(5, m)`-fold cross-validation with deterministic folds (pair `i` is
/// held out in fold `i mod k`), minimising the held-out squared error; among penalties within
/// `1e-14 · Σ‖fx − mean(fx)‖²` of the best, the largest (simplest model) wins. Each fold costs one
/// eigendecomposition of `XcᵀXc` (or a thin SVD of `Xc` when it has fewer rows than columns), after
/// which every `λ` costs `O(min(m, d)²)`.
///
/// Needs at least 2 pairs, the same shape on both sides and finite values.
pub fn fit_action<T: Real>(x: MatRef<'_, T>, fx: MatRef<'_, T>) -> Result<OperatorAction<T>, AlignError> {
    let (m, d) = (x.nrows(), x.ncols());
    if fx.nrows() != m || fx.ncols() != d {
        return Err(AlignError::InvalidParameter {
            field: "operator rows".to_owned(),
            detail: format!(
                "inputs and images must pair up with the same dimension: inputs are {m} × {d}, images {} × {}",
                fx.nrows(),
                fx.ncols()
            ),
        });
    }
    if d == 0 {
        return Err(AlignError::InvalidParameter {
            field: "operator rows".to_owned(),
            detail: "have no columns (a space needs dimension ≥ 1)".to_owned(),
        });
    }
    if m < 2 {
        return Err(AlignError::TooFewPairs { what: "an operator's action".to_owned(), needed: 2, got: m });
    }
    for (name, rows) in [("inputs", x), ("images", fx)] {
        for j in 0..d {
            if let Some(i) = rows.col(j).iter().position(|v| !v.finite()) {
                return Err(AlignError::InvalidParameter {
                    field: "operator rows".to_owned(),
                    detail: format!(
                        "the {name} hold a non-finite value ({:?}) at row {i}, column {j}",
                        rows[(i, j)].to_f64()
                    ),
                });
            }
        }
    }

    let (xc, x_mean) = kernels::centred(x);
    let (fxc, fx_mean) = kernels::centred(fx);
    let total = kernels::squared_norm(fxc.as_ref());
    let scale = {
        let s = kernels::squared_norm(xc.as_ref()) / d as f64;
        if s > 0.0 && s.is_finite() {
            s
        } else {
            1.0
        }
    };
    let grid: Vec<f64> = action_lambda_grid().into_iter().map(|l| l * scale).collect();

    let folds = ACTION_FOLDS.min(m);
    let mut sse = vec![0.0; grid.len()];
    let mut sse_offset = 0.0;
    for fold in 0..folds {
        let held: Vec<usize> = (fold..m).step_by(folds).collect();
        let train: Vec<usize> = (0..m).filter(|i| i % folds != fold).collect();
        let (xt, fxt) = (select_rows(x, &train), select_rows(fx, &train));
        let (xtc, xt_mean) = kernels::centred(xt.as_ref());
        let (fxtc, fxt_mean) = kernels::centred(fxt.as_ref());
        let dc = difference(fxtc.as_ref(), xtc.as_ref());
        // Held out: h = x − x̄_train, e0 = (fx − f̄x_train) − h; the residual is e0 − h·Δ.
        let mut h = select_rows(x, &held);
        kernels::subtract_row(&mut h, &xt_mean);
        let mut e0 = select_rows(fx, &held);
        kernels::subtract_row(&mut e0, &fxt_mean);
        let e0 = difference(e0.as_ref(), h.as_ref());
        let e0_norm = kernels::squared_norm(e0.as_ref());
        sse_offset += e0_norm;

        // ‖e0 − A W B‖² = ‖e0‖² − 2 Σ w_i (AᵀE0Bᵀ)_ii + Σ_ij w_i w_j (AᵀA)_ij (BBᵀ)_ij, A = h V.
        let path = RidgePath::new(xtc.as_ref(), dc.as_ref())?;
        let a = kernels::matmul(h.as_ref(), path.v.as_ref());
        let ata = kernels::gram(a.as_ref());
        let bbt = kernels::gram(path.b.as_ref().transpose());
        let ate = kernels::tmatmul(a.as_ref(), e0.as_ref());
        let r = path.spectrum.len();
        let cross: Vec<f64> =
            (0..r).map(|i| (0..d).map(|j| ate[(i, j)].to_f64() * path.b[(i, j)].to_f64()).sum()).collect();
        let product: Vec<f64> = (0..r)
            .flat_map(|j| (0..r).map(move |i| (i, j)))
            .map(|(i, j)| ata[(i, j)].to_f64() * bbt[(i, j)].to_f64())
            .collect();
        for (l, lambda) in grid.iter().enumerate() {
            let w = path.weights(*lambda);
            let linear: f64 = w.iter().zip(&cross).map(|(w, c)| w * c).sum();
            let mut quadratic = 0.0;
            for j in 0..r {
                let column: f64 = (0..r).map(|i| w[i] * product[i + j * r]).sum();
                quadratic += w[j] * column;
            }
            sse[l] += e0_norm - 2.0 * linear + quadratic;
        }
    }

    let best = sse.iter().copied().fold(f64::INFINITY, f64::min);
    let chosen = (0..grid.len()).rev().find(|&l| sse[l] <= best + 1e-14 * total).unwrap_or(0);
    let lambda = grid[chosen];

    let dc = difference(fxc.as_ref(), xc.as_ref());
    let path = RidgePath::new(xc.as_ref(), dc.as_ref())?;
    let mut f = path.delta(lambda);
    kernels::add_diagonal(&mut f, c::<T>(1.0));
    let mean_row = Mat::from_fn(1, d, |_, j| x_mean[j]);
    let mapped_mean = kernels::matmul(mean_row.as_ref(), f.as_ref());
    let offset: Vec<T> = (0..d).map(|j| fx_mean[j] - mapped_mean[(0, j)]).collect();
    let identity_sse = kernels::squared_norm(difference(fx, x).as_ref());
    Ok(OperatorAction {
        f,
        c: offset,
        lambda,
        pairs: m,
        r2: r_squared(sse[chosen].max(0.0), total),
        r2_offset: r_squared(sse_offset, total),
        r2_identity: r_squared(identity_sse, total),
    })
}

/// Rows per block of [`neighbour_mean`]'s similarity products.
const NEIGHBOUR_BLOCK: usize = 256;

/// The kNN-averaging operator on a set of rows: row `i` of the result is the mean of the `k` rows
/// most similar to row `i` by cosine, among the other rows (row `i` itself is excluded; ties go to
/// the lower index; an all-zero row has cosine 0 with every row).
///
/// As an operator, `N = I − L` with `L` the random-walk Laplacian of the (directed) kNN graph, so
/// an action fitted to the pairs `(rows, neighbour_mean(rows, k))` is the graph Laplacian's.
/// `k` is capped at `n − 1`; with `k = 0` or a single row the rows are returned unchanged. Rows
/// must be finite. `O(n² d)` time in blocks of 256 rows (`O(256 · n)` memory for similarities).
pub fn neighbour_mean<T: Real>(rows: MatRef<'_, T>, k: usize) -> Mat<T> {
    let (n, d) = (rows.nrows(), rows.ncols());
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return rows.to_owned();
    }
    let mut unit = rows.to_owned();
    kernels::normalise_rows(&mut unit);
    let mut sums = vec![0.0f64; n * d];
    let mut candidates: Vec<(f64, usize)> = Vec::with_capacity(n);
    for start in (0..n).step_by(NEIGHBOUR_BLOCK) {
        let len = NEIGHBOUR_BLOCK.min(n - start);
        // n × len: column r holds the similarities of row start + r to every row.
        let sims = kernels::matmul(unit.as_ref(), unit.as_ref().subrows(start, len).transpose());
        for r in 0..len {
            let i = start + r;
            candidates.clear();
            candidates.extend(
                sims.col_as_slice(r)
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(j, s)| (s.to_f64(), j)),
            );
            let order = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
            candidates.select_nth_unstable_by(k - 1, order);
            for &(_, j) in &candidates[..k] {
                for col in 0..d {
                    sums[i + col * n] += rows[(j, col)].to_f64();
                }
            }
        }
    }
    let inv = 1.0 / k as f64;
    Mat::from_fn(n, d, |i, j| c::<T>(sums[i + j * n] * inv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::testing::{gaussian, max_diff, rng};

    fn relative(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
        kernels::squared_norm(difference(a, b).as_ref()).sqrt() / kernels::squared_norm(b).sqrt()
    }

    #[test]
    fn recovers_a_known_affine_action_from_noiseless_pairs() {
        let mut r = rng(101);
        let (m, d) = (60, 12);
        let x = gaussian(&mut r, m, d);
        let g = gaussian(&mut r, d, d);
        let f_true = Mat::from_fn(d, d, |i, j| if i == j { 1.0 } else { 0.0 } + 0.3 * g[(i, j)]);
        let c_true: Vec<f64> = gaussian(&mut r, 1, d).row(0).iter().copied().collect();
        let truth = OperatorAction::from_parts(f_true.clone(), c_true.clone()).unwrap();
        let fx = truth.apply(x.as_ref());
        let fitted = fit_action(x.as_ref(), fx.as_ref()).unwrap();
        let f_err = relative(fitted.f.as_ref(), f_true.as_ref());
        let c_err = relative(
            Mat::from_fn(1, d, |_, j| fitted.c[j]).as_ref(),
            Mat::from_fn(1, d, |_, j| c_true[j]).as_ref(),
        );
        assert!(f_err < 1e-6 && c_err < 1e-6, "F error {f_err:e}, c error {c_err:e}");
        assert!(fitted.r2 > 1.0 - 1e-10, "{}", fitted.r2);
        assert!(fitted.r2_offset < 0.9 && fitted.r2_identity < fitted.r2_offset, "{fitted:?}");
        assert_eq!((fitted.pairs, fitted.dim()), (m, d));
        // The chosen λ is at the least-squares end of the grid.
        let scale = kernels::squared_norm(kernels::centred(x.as_ref()).0.as_ref()) / d as f64;
        assert!(fitted.lambda <= 1e-6 * scale, "{} vs scale {scale}", fitted.lambda);
        // Fewer pairs than dimensions (the SVD route): held-out pairs leave the training span, so
        // the fit is only partial, but it beats doing nothing on the pairs.
        let few = x.as_ref().subrows(0, 8);
        let fitted = fit_action(few, truth.apply(few).as_ref()).unwrap();
        let before = max_diff(few, truth.apply(few).as_ref());
        let after = max_diff(fitted.apply(few).as_ref(), truth.apply(few).as_ref());
        assert!(after < 0.5 * before, "{after} vs {before}");
        assert!(fitted.r2.is_finite() && fitted.r2 <= 1.0 && fitted.r2 > fitted.r2_identity);
    }

    #[test]
    fn a_pure_offset_relation_picks_a_large_penalty() {
        let mut r = rng(102);
        let (m, d) = (50, 20);
        let x = gaussian(&mut r, m, d);
        let noise = gaussian(&mut r, m, d);
        let offset: Vec<f64> = gaussian(&mut r, 1, d).row(0).iter().copied().collect();
        let fx = Mat::from_fn(m, d, |i, j| x[(i, j)] + offset[j] + 0.3 * noise[(i, j)]);
        let fitted = fit_action(x.as_ref(), fx.as_ref()).unwrap();
        let scale = kernels::squared_norm(kernels::centred(x.as_ref()).0.as_ref()) / d as f64;
        assert!(fitted.lambda >= 10.0 * scale, "λ = {} (scale {scale})", fitted.lambda);
        assert!((fitted.r2 - fitted.r2_offset).abs() < 0.02, "{} vs {}", fitted.r2, fitted.r2_offset);
        assert!(fitted.r2_offset > 0.85, "{}", fitted.r2_offset);
        // The fitted linear part stays close to the identity, the offset close to the truth.
        assert!(max_diff(fitted.f.as_ref(), Mat::<f64>::identity(d, d).as_ref()) < 0.05);
        assert!(fitted.c.iter().zip(&offset).all(|(a, b)| (a - b).abs() < 0.25));
        // A noiseless pure offset: every penalty ties and the largest wins.
        let exact = Mat::from_fn(m, d, |i, j| x[(i, j)] + offset[j]);
        let fitted = fit_action(x.as_ref(), exact.as_ref()).unwrap();
        assert!((fitted.lambda - 1e4 * scale).abs() < 1e-6 * scale, "{}", fitted.lambda);
        assert!(fitted.r2 > 1.0 - 1e-12 && fitted.r2_offset > 1.0 - 1e-12);
    }

    #[test]
    fn a_noisy_linear_relation_beats_the_offset_model_out_of_sample() {
        let mut r = rng(103);
        let (m, d) = (200, 10);
        let x = gaussian(&mut r, m, d);
        let f_true = Mat::from_fn(d, d, |i, j| if i == j { -1.0 } else { 0.0 });
        let noise = gaussian(&mut r, m, d);
        let fx = Mat::from_fn(m, d, |i, j| -x[(i, j)] + 0.1 * noise[(i, j)]);
        let fitted = fit_action(x.as_ref(), fx.as_ref()).unwrap();
        assert!(fitted.r2 > 0.98 && fitted.r2_offset < 0.05, "{fitted:?}");
        assert!(max_diff(fitted.f.as_ref(), f_true.as_ref()) < 0.1);
        assert!(fitted.r2_identity < -2.0, "{}", fitted.r2_identity);
    }

    #[test]
    fn bad_operator_rows_are_reported() {
        let mut r = rng(104);
        let x = gaussian(&mut r, 6, 3);
        let err = fit_action(x.as_ref(), x.as_ref().subrows(0, 5)).unwrap_err();
        assert!(err.to_string().contains("inputs are 6 × 3, images 5 × 3"), "{err}");
        let err = fit_action(x.as_ref().subrows(0, 1), x.as_ref().subrows(0, 1)).unwrap_err();
        assert_eq!(err.to_string(), "an operator's action needs at least 2 paired rows, got 1");
        let mut bad = x.clone();
        bad[(2, 1)] = f64::NAN;
        let err = fit_action(x.as_ref(), bad.as_ref()).unwrap_err();
        assert!(err.to_string().contains("images hold a non-finite value (NaN) at row 2, column 1"), "{err}");
        assert!(OperatorAction::from_parts(Mat::<f64>::zeros(2, 3), vec![0.0; 2]).is_err());
        // Two pairs are enough (two folds of one pair: the offset model is all they can fit).
        let two = fit_action(x.as_ref().subrows(0, 2), x.as_ref().subrows(2, 2)).unwrap();
        assert!(two.f.as_ref().col_iter().flat_map(|c| c.iter().copied()).all(f64::is_finite));
    }

    #[test]
    fn neighbour_mean_averages_the_nearest_other_rows() {
        // Rows on a circle: the two nearest neighbours of each are its two adjacent points.
        let n = 12;
        let rows = Mat::from_fn(n, 2, |i, j| {
            let angle = std::f64::consts::TAU * i as f64 / n as f64;
            if j == 0 {
                angle.cos()
            } else {
                angle.sin()
            }
        });
        let mean = neighbour_mean(rows.as_ref(), 2);
        for i in 0..n {
            let (prev, next) = ((i + n - 1) % n, (i + 1) % n);
            for j in 0..2 {
                assert!((mean[(i, j)] - 0.5 * (rows[(prev, j)] + rows[(next, j)])).abs() < 1e-12);
            }
        }
        // Brute force on random rows, with blocks (n > 256) and k capped at n − 1.
        let mut r = rng(105);
        let x = gaussian(&mut r, 300, 5);
        let mean = neighbour_mean(x.as_ref(), 3);
        let norm = |i: usize| (0..5).map(|j| x[(i, j)] * x[(i, j)]).sum::<f64>().sqrt();
        for i in [0, 137, 299] {
            let mut sims: Vec<(f64, usize)> = (0..300)
                .filter(|&j| j != i)
                .map(|j| ((0..5).map(|c| x[(i, c)] * x[(j, c)]).sum::<f64>() / (norm(i) * norm(j)), j))
                .collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0));
            for c in 0..5 {
                let expected = sims[..3].iter().map(|&(_, j)| x[(j, c)]).sum::<f64>() / 3.0;
                assert!((mean[(i, c)] - expected).abs() < 1e-12);
            }
        }
        let two = x.as_ref().subrows(0, 2);
        let swapped = neighbour_mean(two, 10);
        assert!(max_diff(swapped.as_ref().subrows(0, 1), two.subrows(1, 1)) < 1e-15);
        assert_eq!(neighbour_mean(x.as_ref().subrows(0, 1), 3), x.as_ref().subrows(0, 1).to_owned());
    }
}
