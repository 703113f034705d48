//! Operator actions: the affine map `x ↦ x·F + c` by which an operator of one space ("plural",
//! "transpose +2") acts on that space's embeddings, fitted from within-space pairs by ridge
//! regression towards the identity with a cross-validated penalty; and [`neighbour_mean`], the
//! kNN-averaging operator behind the `laplacian` method.

use super::error::AlignError;
use super::kernels::{self, c};
use super::scalar::Real;
use faer::linalg::solvers::Solve;
use faer::utils::thread::{join_raw, parallelism_degree};
use faer::{Mat, MatRef, Par};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

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
    /// The offset-only model's displacement: the mean of image − input over the pairs (for an
    /// action built from parts, `c`).
    pub displacement: Vec<T>,
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
            displacement: c.clone(),
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

/// An `r × c` matrix of zeros (faster than `Mat::zeros` when this crate is built without full
/// optimisation).
pub(crate) fn zeros<T: Real>(r: usize, c: usize) -> Mat<T> {
    let mut out = Mat::new();
    out.resize_with(r, c, |_, _| T::default());
    out
}

/// A copy of `x` with contiguous columns (faster than `to_owned` or `clone` when this crate is
/// built without full optimisation).
pub(crate) fn copy<T: Real>(x: MatRef<'_, T>) -> Mat<T> {
    let mut out = zeros(x.nrows(), x.ncols());
    for j in 0..x.ncols() {
        let dst = out.col_as_slice_mut(j);
        match x.col(j).try_as_col_major() {
            Some(col) => dst.copy_from_slice(col.as_slice()),
            None => {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = x[(i, j)];
                }
            }
        }
    }
    out
}

/// `f(item, Par::Seq)` over `items`, on the threads of `par`, each taking the next item when it is
/// done with one (so give the costliest first); `f(item, par)` one after the other when `par`
/// has a single thread. The results are in the items' order whatever the parallelism.
pub(crate) fn parallel_map<I: Send, R: Send, F: Fn(I, Par) -> R + Sync>(
    items: Vec<I>,
    f: &F,
    par: Par,
) -> Vec<R> {
    let threads = parallelism_degree(par).min(items.len());
    if threads <= 1 {
        return items.into_iter().map(|item| f(item, par)).collect();
    }
    let slots: Vec<Mutex<(Option<I>, Option<R>)>> =
        items.into_iter().map(|i| Mutex::new((Some(i), None))).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        while let Some(slot) = slots.get(next.fetch_add(1, Ordering::Relaxed)) {
            let item = lock(slot).0.take();
            if let Some(item) = item {
                let result = f(item, Par::Seq);
                lock(slot).1 = Some(result);
            }
        }
    };
    run_workers(threads, &work, par);
    slots.into_iter().filter_map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner).1).collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `work` on `workers` threads of `par` at once.
fn run_workers(workers: usize, work: &(dyn Fn() + Sync), par: Par) {
    if workers <= 1 {
        work();
        return;
    }
    join_raw(|p| run_workers(workers / 2, work, p), |p| run_workers(workers - workers / 2, work, p), par);
}

/// The rows of `x` listed in `rows`, gathered column by column.
pub(crate) fn select_rows<T: Real>(x: MatRef<'_, T>, rows: &[usize]) -> Mat<T> {
    let mut out = zeros(rows.len(), x.ncols());
    for j in 0..x.ncols() {
        let dst = out.col_as_slice_mut(j);
        match x.col(j).try_as_col_major() {
            Some(col) => {
                let src = col.as_slice();
                for (d, &i) in dst.iter_mut().zip(rows) {
                    *d = src[i];
                }
            }
            None => {
                for (d, &i) in dst.iter_mut().zip(rows) {
                    *d = x[(i, j)];
                }
            }
        }
    }
    out
}

/// Column sums of `x`, accumulated in `f64`.
fn column_sums<T: Real>(x: &Mat<T>) -> Vec<f64> {
    (0..x.ncols()).map(|j| x.col_as_slice(j).iter().map(|v| v.to_f64()).sum()).collect()
}

/// Subtracts `row` from every row of `x`, in place.
fn subtract<T: Real>(x: &mut Mat<T>, row: &[f64]) {
    for (j, &m) in row.iter().enumerate() {
        let m = c::<T>(m);
        for v in x.col_as_slice_mut(j) {
            *v -= m;
        }
    }
}

/// `a − b` (same shape), column by column.
fn minus<T: Real>(a: &Mat<T>, b: &Mat<T>) -> Mat<T> {
    let mut out = copy(a.as_ref());
    for j in 0..out.ncols() {
        for (o, v) in out.col_as_slice_mut(j).iter_mut().zip(b.col_as_slice(j)) {
            *o -= *v;
        }
    }
    out
}

/// `out += alpha · u vᵀ`.
fn rank_one<T: Real>(out: &mut Mat<T>, alpha: f64, u: &[f64], v: &[f64]) {
    for (j, &vj) in v.iter().enumerate() {
        let s = alpha * vj;
        for (o, &ui) in out.col_as_slice_mut(j).iter_mut().zip(u) {
            *o += c::<T>(s * ui);
        }
    }
}

fn squared<T: Real>(x: &Mat<T>) -> f64 {
    (0..x.ncols()).map(|j| x.col_as_slice(j).iter().map(|v| v.to_f64() * v.to_f64()).sum::<f64>()).sum()
}

/// `Σ_k a[i, k] b[i, k]` for each row `i`.
fn row_dots<T: Real>(a: &Mat<T>, b: &Mat<T>) -> Vec<f64> {
    let mut out = vec![0.0; a.nrows()];
    for k in 0..a.ncols() {
        for ((o, x), y) in out.iter_mut().zip(a.col_as_slice(k)).zip(b.col_as_slice(k)) {
            *o += x.to_f64() * y.to_f64();
        }
    }
    out
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

/// One fold's held-out squared error as a function of the penalty, in a basis where the ridge
/// solution is `h Δ(λ) = a diag(w(λ)) b` with `w_i = 1 / (e_i + λ)`:
/// `‖e0 − a W b‖² = ‖e0‖² − 2 Σ_i w_i cross_i + Σ_ij w_i w_j product_ij`, with
/// `cross_i = (aᵀ e0 bᵀ)_ii` and `product = (aᵀa) ∘ (b bᵀ)`.
struct HeldOut {
    spectrum: Vec<f64>,
    cross: Vec<f64>,
    /// `r × r`.
    product: Mat<f64>,
    e0: f64,
}

impl HeldOut {
    fn new<T: Real>(spectrum: Vec<f64>, cross: Vec<f64>, ata: &Mat<T>, bbt: &Mat<T>, e0: f64) -> Self {
        let r = spectrum.len();
        let mut product = zeros::<f64>(r, r);
        for j in 0..r {
            for ((p, a), b) in
                product.col_as_slice_mut(j).iter_mut().zip(ata.col_as_slice(j)).zip(bbt.col_as_slice(j))
            {
                *p = a.to_f64() * b.to_f64();
            }
        }
        HeldOut { spectrum, cross, product, e0 }
    }

    /// Adds the held-out squared error at each penalty of `grid` to `sse` (the quadratic terms of
    /// all penalties as one product).
    fn accumulate(&self, grid: &[f64], sse: &mut [f64]) {
        let r = self.spectrum.len();
        let mut weights = zeros::<f64>(r, grid.len());
        for (l, &lambda) in grid.iter().enumerate() {
            for (w, &e) in weights.col_as_slice_mut(l).iter_mut().zip(&self.spectrum) {
                *w = 1.0 / (e + lambda);
            }
        }
        let mut products = zeros::<f64>(r, grid.len());
        faer::linalg::matmul::matmul(
            products.as_mut(),
            faer::Accum::Replace,
            self.product.as_ref(),
            weights.as_ref(),
            1.0,
            Par::Seq,
        );
        for (l, total) in sse.iter_mut().enumerate() {
            let w = weights.col_as_slice(l);
            let linear: f64 = w.iter().zip(&self.cross).map(|(w, c)| w * c).sum();
            let quadratic: f64 = w.iter().zip(products.col_as_slice(l)).map(|(w, p)| w * p).sum();
            *total += self.e0 - 2.0 * linear + quadratic;
        }
    }
}

/// Sums over a set of globally centred rows `x` and differences `d`: `Σ xᵀx`, `Σ xᵀd`, `Σ x`,
/// `Σ d`, `Σ ‖d‖²` and the count.
struct RowSums<T: Real> {
    xx: Mat<T>,
    xd: Mat<T>,
    x: Vec<f64>,
    d: Vec<f64>,
    dd: f64,
    n: usize,
}

impl<T: Real> RowSums<T> {
    fn new(xc: &Mat<T>, dc: &Mat<T>, rows: &[usize]) -> Self {
        let (x, d) = (select_rows(xc.as_ref(), rows), select_rows(dc.as_ref(), rows));
        RowSums {
            xx: kernels::gram(x.as_ref()),
            xd: kernels::tmatmul(x.as_ref(), d.as_ref()),
            x: column_sums(&x),
            d: column_sums(&d),
            dd: squared(&d),
            n: rows.len(),
        }
    }
}

/// Eigenvalues (clamped at 0) and eigenvectors of a symmetric matrix.
fn eigen<T: Real>(a: &Mat<T>) -> Result<(Vec<f64>, Mat<T>), AlignError> {
    let eig = kernels::sym_eigen(a.as_ref(), "operator action")?;
    Ok((eig.values.iter().map(|v| v.to_f64().max(0.0)).collect(), eig.vectors))
}

/// A fold with more training rows than dimensions, from the per-fold sums (globally centred
/// rows): one eigendecomposition of the training Gram matrix, then `O(d³)` products.
fn primal_fold<T: Real>(all: &RowSums<T>, held: &RowSums<T>, m: usize) -> Result<HeldOut, AlignError> {
    let (n_t, n_f) = (m - held.n, held.n as f64);
    let mean =
        |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| (a - b) / n_t as f64).collect() };
    let (x_bar, d_bar) = (mean(&all.x, &held.x), mean(&all.d, &held.d));
    // Training Gram and cross products about the training means.
    let mut gram = minus(&all.xx, &held.xx);
    rank_one(&mut gram, -(n_t as f64), &x_bar, &x_bar);
    let mut cross = minus(&all.xd, &held.xd);
    rank_one(&mut cross, -(n_t as f64), &x_bar, &d_bar);
    // Held out about the training means: h = x − x̄, e0 = d − d̄; H = hᵀh, M = hᵀe0.
    let mut hh = copy(held.xx.as_ref());
    rank_one(&mut hh, -1.0, &held.x, &x_bar);
    rank_one(&mut hh, -1.0, &x_bar, &held.x);
    rank_one(&mut hh, n_f, &x_bar, &x_bar);
    let mut he = copy(held.xd.as_ref());
    rank_one(&mut he, -1.0, &held.x, &d_bar);
    rank_one(&mut he, -1.0, &x_bar, &held.d);
    rank_one(&mut he, n_f, &x_bar, &d_bar);
    let dot = |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(a, b)| a * b).sum() };
    let e0 = held.dd - 2.0 * dot(&held.d, &d_bar) + n_f * dot(&d_bar, &d_bar);
    // Δ = V diag(w) B with B = Vᵀ C; a = h V, so aᵀa = Vᵀ H V and aᵀ e0 = Vᵀ M.
    let (spectrum, v) = eigen(&gram)?;
    let b = kernels::tmatmul(v.as_ref(), cross.as_ref());
    let ata = kernels::tmatmul(v.as_ref(), kernels::matmul(hh.as_ref(), v.as_ref()).as_ref());
    let ate = kernels::tmatmul(v.as_ref(), he.as_ref());
    let bbt = kernels::gram(b.as_ref().transpose());
    Ok(HeldOut::new(spectrum, row_dots(&ate, &b), &ata, &bbt, e0.max(0.0)))
}

/// Eigenvalues of a kernel (Gram) matrix at or below this fraction of the largest are rounding
/// (their eigenvectors span the rows' null space) and are dropped.
fn kernel_floor<T: Real>(size: usize) -> f64 {
    100.0 * size.max(1) as f64 * T::EPSILON
}

/// The leading eigenpairs of the kernel `K` above [`kernel_floor`].
fn kernel_eigen<T: Real>(k: &Mat<T>) -> Result<(Vec<f64>, Mat<T>), AlignError> {
    let (spectrum, u) = eigen(k)?;
    let top = spectrum.first().copied().unwrap_or(0.0);
    let rank = spectrum.iter().take_while(|&&e| e > kernel_floor::<T>(k.nrows()) * top).count();
    Ok((spectrum[..rank].to_vec(), copy(u.as_ref().subcols(0, rank))))
}

/// A fold with at most as many training rows as dimensions, in the kernel form: with the
/// centred training rows `Xt`, `Dt` and `Xt Xtᵀ = U E Uᵀ`, `Δ = Xtᵀ U diag(w) Uᵀ Dt`, so
/// `h Δ = a diag(w) b` with `a = h Xtᵀ U`, `b = Uᵀ Dt`.
fn kernel_fold<T: Real>(
    xc: &Mat<T>,
    dc: &Mat<T>,
    train: &[usize],
    held: &[usize],
) -> Result<HeldOut, AlignError> {
    let (mut xt, mut dt) = (select_rows(xc.as_ref(), train), select_rows(dc.as_ref(), train));
    let n_t = train.len() as f64;
    let x_bar: Vec<f64> = column_sums(&xt).iter().map(|s| s / n_t).collect();
    let d_bar: Vec<f64> = column_sums(&dt).iter().map(|s| s / n_t).collect();
    subtract(&mut xt, &x_bar);
    subtract(&mut dt, &d_bar);
    let (mut h, mut e0) = (select_rows(xc.as_ref(), held), select_rows(dc.as_ref(), held));
    subtract(&mut h, &x_bar);
    subtract(&mut e0, &d_bar);
    let (spectrum, u) = kernel_eigen(&kernels::gram(xt.as_ref().transpose()))?;
    let hx = kernels::matmul(h.as_ref(), xt.as_ref().transpose());
    let a = kernels::matmul(hx.as_ref(), u.as_ref());
    let b = kernels::tmatmul(u.as_ref(), dt.as_ref());
    let ate = kernels::tmatmul(a.as_ref(), e0.as_ref());
    let (ata, bbt) = (kernels::gram(a.as_ref()), kernels::gram(b.as_ref().transpose()));
    Ok(HeldOut::new(spectrum, row_dots(&ate, &b), &ata, &bbt, squared(&e0)))
}

/// `(A + λI)⁻¹ R` for a symmetric positive semi-definite `A`: by Cholesky in `f64`, otherwise
/// (or if it fails) through the eigendecomposition, whose eigenvalues at or below `floor` times
/// the largest are treated as zero.
fn ridge_solve<T: Real>(a: &Mat<T>, lambda: f64, rhs: Mat<T>, floor: f64) -> Result<Mat<T>, AlignError> {
    if T::EPSILON < 1e-10 {
        let mut shifted = copy(a.as_ref());
        kernels::add_diagonal(&mut shifted, c::<T>(lambda));
        if let Ok(llt) = shifted.llt(faer::Side::Lower) {
            let mut out = rhs;
            llt.solve_in_place(out.as_mut());
            return Ok(out);
        }
    }
    let (spectrum, v) = eigen(a)?;
    let top = spectrum.first().copied().unwrap_or(0.0);
    let projected = kernels::tmatmul(v.as_ref(), rhs.as_ref());
    let mut scaled = copy(v.as_ref());
    for (j, &e) in spectrum.iter().enumerate() {
        let w = if e > floor * top { c::<T>(1.0 / (e + lambda)) } else { c::<T>(0.0) };
        for value in scaled.col_as_slice_mut(j) {
            *value *= w;
        }
    }
    Ok(kernels::matmul(scaled.as_ref(), projected.as_ref()))
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
/// `1e-14 · Σ‖fx − mean(fx)‖²` of the best, the largest (simplest model) wins.
///
/// Each fold costs one symmetric eigendecomposition, after which every `λ` costs
/// `O(min(m, d)²)`: of the training Gram matrix `XtᵀXt` (d × d) when the fold has more training
/// pairs than dimensions — assembled, like the held-out terms, from per-fold sums of products
/// computed once — otherwise of the kernel `Xt Xtᵀ` (eigenvalues at rounding level dropped).
/// The final fit at the chosen `λ` is one Cholesky solve (in `f32`, an eigendecomposition).
///
/// Needs at least 2 pairs, the same shape on both sides and finite values. The folds run in
/// parallel (faer's global parallelism).
pub fn fit_action<T: Real>(x: MatRef<'_, T>, fx: MatRef<'_, T>) -> Result<OperatorAction<T>, AlignError> {
    fit_action_in(x, fx, kernels::par())
}

/// Rough cost of [`fit_action`] on `m` pairs of dimension `d`, for ordering work.
pub(crate) fn fit_action_cost(m: usize, d: usize) -> f64 {
    let (m, d) = (m as f64, d as f64);
    6.0 * 30.0 * m.min(d).powi(3) + 3.0 * m * d * d
}

/// [`fit_action`] with the folds on the threads of `par`.
pub(crate) fn fit_action_in<T: Real>(
    x: MatRef<'_, T>,
    fx: MatRef<'_, T>,
    par: Par,
) -> Result<OperatorAction<T>, AlignError> {
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
    let (x, fx) = (copy(x), copy(fx));
    for (name, rows) in [("inputs", &x), ("images", &fx)] {
        for j in 0..d {
            if let Some(i) = rows.col_as_slice(j).iter().position(|v| !v.finite()) {
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

    let x_mean: Vec<f64> = column_sums(&x).iter().map(|s| s / m as f64).collect();
    let fx_mean: Vec<f64> = column_sums(&fx).iter().map(|s| s / m as f64).collect();
    let mut xc = copy(x.as_ref());
    subtract(&mut xc, &x_mean);
    let mut fxc = copy(fx.as_ref());
    subtract(&mut fxc, &fx_mean);
    let total = squared(&fxc);
    let dc = minus(&fxc, &xc);
    let scale = {
        let s = squared(&xc) / d as f64;
        if s > 0.0 && s.is_finite() {
            s
        } else {
            1.0
        }
    };
    let grid: Vec<f64> = action_lambda_grid().into_iter().map(|l| l * scale).collect();

    let folds = ACTION_FOLDS.min(m);
    let fold_rows: Vec<Vec<usize>> = (0..folds).map(|f| (f..m).step_by(folds).collect()).collect();
    let largest_fold = fold_rows.iter().map(Vec::len).max().unwrap_or(0);
    // More training pairs than dimensions in every fold: the d × d form, from per-fold sums.
    let primal = m - largest_fold > d;
    let sums: Vec<RowSums<T>> = if primal {
        parallel_map(fold_rows.iter().collect(), &|rows: &Vec<usize>, _| RowSums::new(&xc, &dc, rows), par)
    } else {
        Vec::new()
    };
    let all = primal.then(|| {
        let mut all =
            RowSums { xx: zeros(d, d), xd: zeros(d, d), x: vec![0.0; d], d: vec![0.0; d], dd: 0.0, n: m };
        for s in &sums {
            all.xx = add(&all.xx, &s.xx);
            all.xd = add(&all.xd, &s.xd);
            for (a, b) in all.x.iter_mut().zip(&s.x) {
                *a += b;
            }
            for (a, b) in all.d.iter_mut().zip(&s.d) {
                *a += b;
            }
            all.dd += s.dd;
        }
        all
    });

    let fold = |(f, held): (usize, &Vec<usize>), _: Par| match &all {
        Some(all) => primal_fold(all, &sums[f], m),
        None => {
            let train: Vec<usize> = (0..m).filter(|i| i % folds != f).collect();
            kernel_fold(&xc, &dc, &train, held)
        }
    };
    let mut sse = vec![0.0; grid.len()];
    let mut sse_offset = 0.0;
    for fold in parallel_map(fold_rows.iter().enumerate().collect(), &fold, par) {
        let fold = fold?;
        sse_offset += fold.e0;
        fold.accumulate(&grid, &mut sse);
    }

    let best = sse.iter().copied().fold(f64::INFINITY, f64::min);
    let chosen = (0..grid.len()).rev().find(|&l| sse[l] <= best + 1e-14 * total).unwrap_or(0);
    let lambda = grid[chosen];

    let mut f = match &all {
        // Δ = (XcᵀXc + λI)⁻¹ XcᵀDc.
        Some(all) => ridge_solve(&all.xx, lambda, copy(all.xd.as_ref()), 0.0)?,
        // Δ = Xcᵀ (Xc Xcᵀ + λI)⁻¹ Dc.
        None => {
            let kernel = kernels::gram(xc.as_ref().transpose());
            let z = ridge_solve(&kernel, lambda, copy(dc.as_ref()), kernel_floor::<T>(m))?;
            kernels::tmatmul(xc.as_ref(), z.as_ref())
        }
    };
    kernels::add_diagonal(&mut f, c::<T>(1.0));
    let mean_row = Mat::from_fn(1, d, |_, j| c::<T>(x_mean[j]));
    let mapped_mean = kernels::matmul(mean_row.as_ref(), f.as_ref());
    let offset: Vec<T> = (0..d).map(|j| c::<T>(fx_mean[j]) - mapped_mean[(0, j)]).collect();
    let identity_sse = squared(&minus(&fx, &x));
    Ok(OperatorAction {
        f,
        c: offset,
        displacement: (0..d).map(|j| c::<T>(fx_mean[j] - x_mean[j])).collect(),
        lambda,
        pairs: m,
        r2: r_squared(sse[chosen].max(0.0), total),
        r2_offset: r_squared(sse_offset, total),
        r2_identity: r_squared(identity_sse, total),
    })
}

/// `a + b` (same shape), column by column.
fn add<T: Real>(a: &Mat<T>, b: &Mat<T>) -> Mat<T> {
    let mut out = copy(a.as_ref());
    for j in 0..out.ncols() {
        for (o, v) in out.col_as_slice_mut(j).iter_mut().zip(b.col_as_slice(j)) {
            *o += *v;
        }
    }
    out
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
    let rows = copy(rows);
    if k == 0 {
        return rows;
    }
    let mut unit = copy(rows.as_ref());
    kernels::normalise_rows(&mut unit);
    // The k neighbours of row i at i·k..(i + 1)·k.
    let mut neighbours = vec![0usize; n * k];
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
            for (slot, &(_, j)) in neighbours[i * k..(i + 1) * k].iter_mut().zip(&candidates[..k]) {
                *slot = j;
            }
        }
    }
    let inv = 1.0 / k as f64;
    let mut out = zeros(n, d);
    for col in 0..d {
        let source = rows.col_as_slice(col);
        for (o, list) in out.col_as_slice_mut(col).iter_mut().zip(neighbours.chunks_exact(k)) {
            *o = c::<T>(list.iter().map(|&j| source[j].to_f64()).sum::<f64>() * inv);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gaussian, max_diff, rng};

    fn relative(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
        kernels::squared_norm(minus(&a.to_owned(), &b.to_owned()).as_ref()).sqrt()
            / kernels::squared_norm(b).sqrt()
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
