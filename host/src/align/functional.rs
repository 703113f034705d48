//! Functional alignment: the map `T` (d_a × d_b) that fits the anchor pairs and commutes with
//! corresponding operators of the two spaces — its objective, the normalisation of its weights,
//! its two solvers (exact and preconditioned conjugate gradient), the optional orthogonality
//! projection, and the cross-validation of its weights on the anchors.
//!
//! # The problem
//! Anchors `X` (n × d_a) and `Y` (n × d_b), preprocessed; `K` pairs of corresponding operators,
//! whose affine actions `x ↦ x F_k + a_k` (source) and `y ↦ y G_k + b_k` (target) were fitted
//! from within-space pairs ([`fit_action`](super::fit_action)). `T` minimises
//!
//! `L(T) = ‖X T − Y‖² + Σ_k λ_k (‖F_k T − T G_k‖²_F + ‖a_k T − b_k‖²) + μ ‖T‖²_F`.
//!
//! With rows as items, `f_B(x T) = x T G_k + b_k` and `f_A(x) T = x F_k T + a_k T`: the map commutes
//! with the operator pair exactly when `F_k T = T G_k` and `a_k T = b_k`. Setting the gradient to
//! zero gives the normal equations
//!
//! `S_A T + T S_B − Σ_k λ_k (F_kᵀ T G_k + F_k T G_kᵀ) = XᵀY + Σ_k λ_k a_kᵀ b_k`, with
//! `S_A = XᵀX + μI + Σ_k λ_k (F_kᵀF_k + a_kᵀa_k)` and `S_B = Σ_k λ_k G_k G_kᵀ`.
//!
//! Since `(F − sI) T − T (G − sI) = F T − T G` for any scalar `s`, the solvers use shifted
//! operators: `F − I` and `G − I` when an operator's action is of low rank (fitted from few pairs,
//! kept factored), otherwise the shift `s = (tr F + tr G) / (d_a + d_b)` that makes the Sylvester
//! part `S_A T + T S_B` smallest. The solution is the same; the preconditioner is much better (an
//! operator close to the identity no longer puts `2λ_k I` into it).
//!
//! # Normalisation of the weights
//! `lambda` and `mu` are relative. With `‖X‖²_F` the anchors' squared norm (`1` if it is zero):
//! - `λ_k = lambda · d_b ‖X‖²_F / (K' · e_k)`, where `e_k = d_b ‖F_k − I‖²_F + d_a ‖G_k − I‖²_F −
//!   2 tr(F_k − I) tr(G_k − I) + d_b ‖a_k‖²` is the mean of the k-th operator term over random maps
//!   `T` with independent standard normal entries (the trace of its quadratic form), `d_b ‖X‖²_F`
//!   the same for the anchor term, and `K'` the number of operator pairs with `e_k > 0` (an
//!   operator pair with `e_k = 0` — both identities, no offset — carries no information and gets
//!   weight 0). So `lambda = 1` means the operators together weigh as much as the anchors, each
//!   operator pair `1/K'` of that, on a random map.
//! - `μ_abs = mu · ‖X‖²_F / d_a`: `mu` is relative to the anchors' mean squared norm per source
//!   dimension (with unit-normalised rows, `n / d_a`), as in `ridge`.
//!
//! # Choosing the weights
//! [`solve_cv`] chooses an unset `lambda` from [`LAMBDA_GRID`] and an unset `mu` from [`MU_GRID`] by
//! `min(5, n)`-fold cross-validation on the anchors (folds from a seeded shuffle), maximising the mean
//! cosine similarity between held-out `x T` and `y` (ties keep the earlier grid point, `lambda`
//! ascending then `mu` ascending). Each fold normalises the weights by its own training anchors,
//! exactly as a fit on them would. The operators' actions are fitted without anchors, so they are
//! shared by every fold. With fewer than 3 anchors there is nothing to hold out: unset weights take
//! [`DEFAULT_LAMBDA`] and [`DEFAULT_MU`]. Cost: 10 grid points × 5 folds solves plus the final one;
//! with `cg`, one eigendecomposition of `S_A` per fold and `lambda` (another `mu` only shifts its
//! eigenvalues, and starts from the previous `mu`'s solution).
//!
//! # Solvers
//! - `exact`: the `(d_a·d_b)²` system `(I ⊗ S_A + S_B ⊗ I − Σ_k λ_k (G_kᵀ ⊗ F_kᵀ + G_k ⊗ F_k)) vec T
//!   = vec R` (column-major `vec`), by a Cholesky factorisation. `auto` uses it when
//!   `d_a · d_b ≤ 2500` ([`EXACT_LIMIT`]).
//! - `cg`: conjugate gradient on matrices, preconditioned by the Sylvester part, which is inverted
//!   exactly through the eigendecompositions `S_A = U_A diag(α) U_Aᵀ`, `S_B = U_B diag(β) U_Bᵀ`:
//!   the iteration runs in those eigenbases, where the preconditioner is the entry-wise division by
//!   `α_i + β_j` and each product with the system costs four matrix products per operator pair.
//!   An action fitted from `m` pairs with `3 (m + 5) ≤ d` has `F − I` of rank at most `m`: it is
//!   kept factored (found by a seeded randomised range finder and checked to reproduce `F − I` to
//!   `√ε / 100`), and all factored pairs are applied together, stacked, in `O(Σ_k (r_k + r'_k)
//!   d_a d_b)`. It stops when the relative residual `‖R − A(T)‖_F / ‖R‖_F` is at most the
//!   tolerance (`1e-10` in `f64`, `1e-5` in `f32`), checked on the recomputed residual, or after
//!   `max_iterations` (500). Cross-validation uses `cg` (unless `exact` is asked for) at
//!   tolerance `1e-6` (`1e-4` in `f32`).
//!
//! Measured (2 shared cores, test profile): `cg` at `d_a = d_b = 1024` with two dense operator
//! pairs converges to `1e-10` in 29 iterations, about 10 s. With ten operators fitted from 30
//! pairs each and 20 anchors, cross-validation plus the final solve take about 3 s at `d = 384`
//! and 25 s at `d = 768` (one solve with set weights: 0.5 s and 3 s): set `lambda` and `mu` to
//! skip cross-validation in large sweeps.

use super::error::{AlignError, Space};
use super::kernels::{self, c};
use super::method::Solver;
use super::operator::{select_rows, OperatorAction};
use super::scalar::Real;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatMut, MatRef, Side};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The values of `lambda` tried by cross-validation when it is unset.
pub const LAMBDA_GRID: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];
/// The values of `mu` tried by cross-validation when it is unset.
pub const MU_GRID: [f64; 2] = [1e-3, 1e-1];
/// `lambda` when it is unset and there are fewer than 3 anchors (operators dominate).
pub const DEFAULT_LAMBDA: f64 = 10.0;
/// `mu` when it is unset and there are fewer than 3 anchors.
pub const DEFAULT_MU: f64 = 1e-3;
/// `solver = "auto"` solves the vectorised system exactly up to this many unknowns (`d_a · d_b`).
pub const EXACT_LIMIT: usize = 2500;
/// Default iteration limit of the conjugate gradient.
pub const DEFAULT_MAX_ITERATIONS: usize = 500;
/// Folds of the cross-validation on the anchors (fewer when there are fewer anchors).
pub const CV_FOLDS: usize = 5;

/// One pair of corresponding operators: the action of `f_A` on the source space and of `f_B` on
/// the target space.
#[derive(Clone, Copy, Debug)]
pub struct OperatorPair<'a, T: Real = f64> {
    /// The source operator's action (on d_a-dimensional rows).
    pub source: &'a OperatorAction<T>,
    /// The corresponding target operator's action (on d_b-dimensional rows).
    pub target: &'a OperatorAction<T>,
}

/// How [`solve`] and [`solve_cv`] solve the system.
#[derive(Clone, Debug, PartialEq)]
pub struct SolveOptions {
    /// Which solver (`auto`: exact up to [`EXACT_LIMIT`] unknowns).
    pub solver: Solver,
    /// Replace `T` by its polar factor (nearest matrix with orthonormal columns, or rows when
    /// `d_a < d_b`) after solving.
    pub orthogonal: bool,
    /// Relative residual at which the conjugate gradient stops; `None`: `1e-10` in `f64`, `1e-5`
    /// in `f32`.
    pub tolerance: Option<f64>,
    /// Iteration limit of the conjugate gradient.
    pub max_iterations: usize,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            solver: Solver::Auto,
            orthogonal: false,
            tolerance: None,
            max_iterations: DEFAULT_MAX_ITERATIONS,
        }
    }
}

/// A solved functional map and how it was obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionalSolution<T: Real = f64> {
    /// The map, d_a × d_b (`x ↦ x T`); the polar factor when `orthogonal` was asked for.
    pub t: Mat<T>,
    /// The relative operator weight used.
    pub lambda: f64,
    /// The relative ridge used.
    pub mu: f64,
    /// The absolute weight `λ_k` of each operator pair, in the order given.
    pub weights: Vec<f64>,
    /// The absolute ridge `μ`.
    pub mu_absolute: f64,
    /// The solver that ran (`Exact` or `Cg`).
    pub solver: Solver,
    /// Conjugate-gradient iterations (0 for the exact solver).
    pub iterations: usize,
    /// Relative residual `‖R − A(T)‖_F / ‖R‖_F` of the normal equations, before the orthogonality
    /// projection.
    pub residual: f64,
    /// Whether the residual reached the tolerance (always true for the exact solver).
    pub converged: bool,
}

/// What cross-validation did.
#[derive(Clone, Debug, PartialEq)]
pub struct CvReport {
    /// Folds used; 0 when nothing was cross-validated (both weights set, or fewer than 3 anchors).
    pub folds: usize,
    /// Every grid point tried: `(lambda, mu, mean held-out cosine)`.
    pub scores: Vec<(f64, f64, f64)>,
    /// The chosen point's mean held-out cosine (`NaN` when nothing was cross-validated).
    pub score: f64,
    /// Conjugate-gradient iterations spent on the folds, all grid points together.
    pub iterations: usize,
}

fn default_tolerance<T: Real>() -> f64 {
    if T::EPSILON < 1e-10 {
        1e-10
    } else {
        1e-5
    }
}

fn cv_tolerance<T: Real>() -> f64 {
    if T::EPSILON < 1e-10 {
        1e-6
    } else {
        1e-4
    }
}

/// A square matrix, dense or as a low-rank product `l rᵀ`.
#[derive(Clone, Debug)]
enum Op<T: Real> {
    Dense(Mat<T>),
    LowRank { l: Mat<T>, r: Mat<T> },
}

/// `out (+)= alpha · a · b`.
fn gemm<T: Real>(out: MatMut<'_, T>, accum: Accum, a: MatRef<'_, T>, b: MatRef<'_, T>, alpha: T) {
    faer::linalg::matmul::matmul(out, accum, a, b, alpha, kernels::par());
}

impl<T: Real> Op<T> {
    /// `uᵀ M u` (a change of basis by the orthogonal `u`).
    fn rotated(&self, u: MatRef<'_, T>) -> Op<T> {
        match self {
            Op::Dense(m) => Op::Dense(kernels::matmul(kernels::tmatmul(u, m.as_ref()).as_ref(), u)),
            Op::LowRank { l, r } => {
                Op::LowRank { l: kernels::tmatmul(u, l.as_ref()), r: kernels::tmatmul(u, r.as_ref()) }
            }
        }
    }

    /// `M t`, or `Mᵀ t` when `transpose`.
    fn left(&self, t: MatRef<'_, T>, transpose: bool) -> Mat<T> {
        match self {
            Op::Dense(m) => {
                if transpose {
                    kernels::tmatmul(m.as_ref(), t)
                } else {
                    kernels::matmul(m.as_ref(), t)
                }
            }
            Op::LowRank { l, r } => {
                let (outer, inner) = if transpose { (r, l) } else { (l, r) };
                kernels::matmul(outer.as_ref(), kernels::tmatmul(inner.as_ref(), t).as_ref())
            }
        }
    }

    /// `out += alpha · t M`, or `alpha · t Mᵀ` when `transpose`.
    fn right_add(&self, out: MatMut<'_, T>, t: MatRef<'_, T>, transpose: bool, alpha: T) {
        match self {
            Op::Dense(m) => {
                let m = if transpose { m.as_ref().transpose() } else { m.as_ref() };
                gemm(out, Accum::Add, t, m, alpha);
            }
            Op::LowRank { l, r } => {
                let (first, second) = if transpose { (r, l) } else { (l, r) };
                let inner = kernels::matmul(t, first.as_ref());
                gemm(out, Accum::Add, inner.as_ref(), second.as_ref().transpose(), alpha);
            }
        }
    }

    /// `MᵀM`.
    fn gram(&self) -> Mat<T> {
        match self {
            Op::Dense(m) => kernels::gram(m.as_ref()),
            Op::LowRank { l, r } => {
                let inner = kernels::gram(l.as_ref());
                kernels::matmul(kernels::matmul(r.as_ref(), inner.as_ref()).as_ref(), r.as_ref().transpose())
            }
        }
    }

    /// `M Mᵀ`.
    fn outer(&self) -> Mat<T> {
        match self {
            Op::Dense(m) => kernels::gram(m.as_ref().transpose()),
            Op::LowRank { l, r } => {
                let inner = kernels::gram(r.as_ref());
                kernels::matmul(kernels::matmul(l.as_ref(), inner.as_ref()).as_ref(), l.as_ref().transpose())
            }
        }
    }

    fn dense(&self) -> Mat<T> {
        match self {
            Op::Dense(m) => m.clone(),
            Op::LowRank { l, r } => kernels::matmul(l.as_ref(), r.as_ref().transpose()),
        }
    }
}

/// `F − s I`.
fn shifted<T: Real>(f: &Mat<T>, s: f64) -> Mat<T> {
    let mut out = f.clone();
    kernels::add_diagonal(&mut out, c::<T>(-s));
    out
}

/// `F − I` as a factored product `l rᵀ` when it has rank at most `bound` (an action fitted from
/// `m` pairs has rank at most `m`): a randomised range finder with `bound + 5` seeded test
/// vectors, `l = Q` from a QR of `(F − I) Ω`, `r = (F − I)ᵀ Q`, kept only if it reproduces
/// `F − I` to `√ε / 100` relative (so it is exact up to rounding, never an approximation).
fn low_rank<T: Real>(f: &Mat<T>, bound: usize) -> Option<Op<T>> {
    let d = f.nrows();
    let q = (bound + 5).min(d);
    let delta = shifted(f, 1.0);
    let mut rng = ChaCha8Rng::seed_from_u64(0x00f0_ca70_12a1_0001);
    let omega = Mat::from_fn(d, q, |_, _| c::<T>(2.0 * rand::Rng::random::<f64>(&mut rng) - 1.0));
    let sample = kernels::matmul(delta.as_ref(), omega.as_ref());
    let l = sample.qr().compute_thin_Q();
    let r = kernels::tmatmul(delta.as_ref(), l.as_ref());
    let mut error = delta.clone();
    gemm(error.as_mut(), Accum::Add, l.as_ref(), r.as_ref().transpose(), c::<T>(-1.0));
    let tolerance = T::EPSILON.sqrt() / 100.0;
    let scale = kernels::squared_norm(delta.as_ref()).sqrt();
    if kernels::squared_norm(error.as_ref()).sqrt() > tolerance * scale {
        return None;
    }
    // Drop the oversampling: with r = U S Vᵀ (thin), l rᵀ = (l V S) Uᵀ, keeping the singular
    // values above the same relative tolerance.
    let svd = kernels::thin_svd(r.as_ref(), "functional operator").ok()?;
    let top = svd.s.first().map_or(0.0, |v| v.to_f64());
    let rank = svd.s.iter().take_while(|v| v.to_f64() > tolerance * top).count();
    let lv = kernels::matmul(l.as_ref(), svd.v.as_ref().subcols(0, rank));
    let l = Mat::from_fn(d, rank, |i, j| lv[(i, j)] * svd.s[j]);
    let r = svd.u.as_ref().subcols(0, rank).to_owned();
    Some(Op::LowRank { l, r })
}

/// One prepared operator pair: shifted operators and the normalising coefficient.
struct PreparedPair<T: Real> {
    source: Op<T>,
    target: Op<T>,
    /// `d_b / (K' e_k)` (0 when `e_k = 0`): `λ_k = lambda · ‖X‖²_F · coefficient`.
    coefficient: f64,
}

/// The operator pairs, prepared once for any anchors and weights.
struct Prepared<T: Real> {
    pairs: Vec<PreparedPair<T>>,
    /// `Σ_k coefficient_k (D_kᵀ D_k + a_kᵀ a_k)` (d_a × d_a).
    omega_a: Mat<T>,
    /// `Σ_k coefficient_k E_k E_kᵀ` (d_b × d_b).
    omega_b: Mat<T>,
    /// `Σ_k coefficient_k a_kᵀ b_k` (d_a × d_b).
    rho: Mat<T>,
}

fn check_action<T: Real>(
    action: &OperatorAction<T>,
    dim: usize,
    space: Space,
    k: usize,
) -> Result<(), AlignError> {
    if action.f.nrows() != action.f.ncols() || action.f.nrows() != action.c.len() {
        return Err(AlignError::InvalidParameter {
            field: format!("{space} operator {k}"),
            detail: format!(
                "the action's linear part is {} × {} and its offset has {} entries",
                action.f.nrows(),
                action.f.ncols(),
                action.c.len()
            ),
        });
    }
    if action.dim() != dim {
        return Err(AlignError::DimensionMismatch { space, expected: dim, got: action.dim() });
    }
    let finite =
        action.c.iter().all(|v| v.finite()) && (0..dim).all(|j| action.f.col(j).iter().all(|v| v.finite()));
    if !finite {
        return Err(AlignError::InvalidParameter {
            field: format!("{space} operator {k}"),
            detail: "the action holds a non-finite value".to_owned(),
        });
    }
    Ok(())
}

fn trace_minus_identity<T: Real>(f: &Mat<T>) -> f64 {
    kernels::trace(f.as_ref()) - f.nrows() as f64
}

fn prepare<T: Real>(
    pairs: &[OperatorPair<'_, T>],
    d_a: usize,
    d_b: usize,
) -> Result<Prepared<T>, AlignError> {
    let mut traces = Vec::with_capacity(pairs.len());
    for (k, pair) in pairs.iter().enumerate() {
        check_action(pair.source, d_a, Space::Source, k)?;
        check_action(pair.target, d_b, Space::Target, k)?;
        let (f, g) = (&pair.source.f, &pair.target.f);
        let e = d_b as f64 * kernels::squared_norm(shifted(f, 1.0).as_ref())
            + d_a as f64 * kernels::squared_norm(shifted(g, 1.0).as_ref())
            - 2.0 * trace_minus_identity(f) * trace_minus_identity(g)
            + d_b as f64 * pair.source.c.iter().map(|v| v.to_f64() * v.to_f64()).sum::<f64>();
        traces.push(e);
    }
    let active = traces.iter().filter(|&&e| e > 0.0 && e.is_finite()).count().max(1);
    let mut prepared = Prepared {
        pairs: Vec::with_capacity(pairs.len()),
        omega_a: Mat::zeros(d_a, d_a),
        omega_b: Mat::zeros(d_b, d_b),
        rho: Mat::zeros(d_a, d_b),
    };
    for (pair, e) in pairs.iter().zip(traces) {
        let coefficient = if e > 0.0 && e.is_finite() { d_b as f64 / (active as f64 * e) } else { 0.0 };
        // Fitted from few pairs, F − I has low rank: keep it factored (then the shift must be 1).
        let few = |a: &OperatorAction<T>, d: usize| a.pairs >= 2 && 3 * (a.pairs + 5) <= d;
        let source = if few(pair.source, d_a) { low_rank(&pair.source.f, pair.source.pairs) } else { None };
        let target = if few(pair.target, d_b) { low_rank(&pair.target.f, pair.target.pairs) } else { None };
        let shift = if source.is_some() || target.is_some() {
            1.0
        } else {
            (kernels::trace(pair.source.f.as_ref()) + kernels::trace(pair.target.f.as_ref()))
                / (d_a + d_b) as f64
        };
        let source = source.unwrap_or_else(|| Op::Dense(shifted(&pair.source.f, shift)));
        let target = target.unwrap_or_else(|| Op::Dense(shifted(&pair.target.f, shift)));
        if coefficient > 0.0 {
            let w = c::<T>(coefficient);
            let a = Mat::from_fn(1, d_a, |_, j| pair.source.c[j]);
            let b = Mat::from_fn(1, d_b, |_, j| pair.target.c[j]);
            add_scaled(&mut prepared.omega_a, source.gram().as_ref(), coefficient);
            gemm(prepared.omega_a.as_mut(), Accum::Add, a.as_ref().transpose(), a.as_ref(), w);
            add_scaled(&mut prepared.omega_b, target.outer().as_ref(), coefficient);
            gemm(prepared.rho.as_mut(), Accum::Add, a.as_ref().transpose(), b.as_ref(), w);
        }
        prepared.pairs.push(PreparedPair { source, target, coefficient });
    }
    Ok(prepared)
}

/// `out += scale · m`.
fn add_scaled<T: Real>(out: &mut Mat<T>, m: MatRef<'_, T>, scale: f64) {
    let s = c::<T>(scale);
    for j in 0..out.ncols() {
        for (o, v) in out.col_as_slice_mut(j).iter_mut().zip(m.col(j).iter()) {
            *o += s * *v;
        }
    }
}

/// The normal equations for given anchors and weights.
struct System<T: Real> {
    s_a: Mat<T>,
    /// `S_B / (lambda ‖X‖²)`: `omega_b`, whose eigendecomposition is shared by all weights.
    scale_b: f64,
    rhs: Mat<T>,
    /// Absolute `λ_k`.
    weights: Vec<f64>,
    mu_absolute: f64,
}

fn anchor_norm<T: Real>(x: MatRef<'_, T>) -> f64 {
    let norm = kernels::squared_norm(x);
    if norm > 0.0 && norm.is_finite() {
        norm
    } else {
        1.0
    }
}

fn assemble<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    prepared: &Prepared<T>,
    lambda: f64,
    mu: f64,
) -> Result<System<T>, AlignError> {
    let d_a = x.ncols();
    let base = anchor_norm(x);
    let scale = lambda * base;
    let mu_absolute = mu * base / d_a as f64;
    let mut s_a = kernels::gram(x);
    let mut rhs = kernels::tmatmul(x, y);
    kernels::check_product(s_a.as_ref(), x, y, "functional")?;
    kernels::check_product(rhs.as_ref(), x, y, "functional")?;
    kernels::add_diagonal(&mut s_a, c::<T>(mu_absolute));
    add_scaled(&mut s_a, prepared.omega_a.as_ref(), scale);
    add_scaled(&mut rhs, prepared.rho.as_ref(), scale);
    let weights = prepared.pairs.iter().map(|p| p.coefficient * scale).collect();
    Ok(System { s_a, scale_b: scale, rhs, weights, mu_absolute })
}

/// `A(T) = S_A T + T S_B − Σ_k λ_k (D_kᵀ T E_k + D_k T E_kᵀ)` in the original basis.
fn apply_system<T: Real>(system: &System<T>, prepared: &Prepared<T>, t: MatRef<'_, T>) -> Mat<T> {
    let mut out = kernels::matmul(system.s_a.as_ref(), t);
    gemm(out.as_mut(), Accum::Add, t, prepared.omega_b.as_ref(), c::<T>(system.scale_b));
    let source: Vec<&Op<T>> = prepared.pairs.iter().map(|p| &p.source).collect();
    let target: Vec<&Op<T>> = prepared.pairs.iter().map(|p| &p.target).collect();
    Cross::new(&source, &target, &system.weights).apply(&mut out, t, &source, &target, &system.weights);
    out
}

/// The factors of the pairs whose operators are both low-rank, side by side: pair k owns columns
/// `source_offsets[k]..source_offsets[k + 1]` of `source_l` and `source_r` (and likewise on the
/// target side).
struct Stacked<T: Real> {
    source_l: Mat<T>,
    source_r: Mat<T>,
    target_l: Mat<T>,
    target_r: Mat<T>,
    source_offsets: Vec<usize>,
    target_offsets: Vec<usize>,
    weights: Vec<f64>,
}

/// Copies the columns of `parts` side by side.
fn concatenate<T: Real>(rows: usize, parts: &[&Mat<T>]) -> (Mat<T>, Vec<usize>) {
    let mut offsets = vec![0];
    for part in parts {
        offsets.push(offsets[offsets.len() - 1] + part.ncols());
    }
    let mut out = Mat::zeros(rows, offsets[offsets.len() - 1]);
    for (part, &start) in parts.iter().zip(&offsets) {
        for j in 0..part.ncols() {
            out.col_as_slice_mut(start + j).copy_from_slice(part.col_as_slice(j));
        }
    }
    (out, offsets)
}

/// How the cross terms `Σ_k w_k (D_kᵀ t E_k + D_k t E_kᵀ)` are applied: pairs whose operators are
/// both low-rank are stacked (`D_kᵀ t E_k = R_k (L_kᵀ t L'_k) R'_kᵀ`: per term one wide product by
/// all `L_k` at once, small per-pair cores, one wide product by all `R'_k`), the others one by one.
struct Cross<T: Real> {
    singles: Vec<usize>,
    stacked: Option<Stacked<T>>,
}

impl<T: Real> Cross<T> {
    fn new(source: &[&Op<T>], target: &[&Op<T>], weights: &[f64]) -> Self {
        let mut singles = Vec::new();
        let mut parts = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, &w) in weights.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            match (source[k], target[k]) {
                (Op::LowRank { l, r }, Op::LowRank { l: tl, r: tr }) => {
                    parts.0.push(l);
                    parts.1.push(r);
                    parts.2.push(tl);
                    parts.3.push(tr);
                    parts.4.push(w);
                }
                _ => singles.push(k),
            }
        }
        let stacked = parts.0.first().map(|first| {
            let (d_a, d_b) = (first.nrows(), parts.2[0].nrows());
            let (source_l, source_offsets) = concatenate(d_a, &parts.0);
            let (source_r, _) = concatenate(d_a, &parts.1);
            let (target_l, target_offsets) = concatenate(d_b, &parts.2);
            let (target_r, _) = concatenate(d_b, &parts.3);
            Stacked {
                source_l,
                source_r,
                target_l,
                target_r,
                source_offsets,
                target_offsets,
                weights: parts.4,
            }
        });
        Cross { singles, stacked }
    }

    /// `out −= Σ_k w_k (D_kᵀ t E_k + D_k t E_kᵀ)`.
    fn apply(
        &self,
        out: &mut Mat<T>,
        t: MatRef<'_, T>,
        source: &[&Op<T>],
        target: &[&Op<T>],
        weights: &[f64],
    ) {
        for &k in &self.singles {
            let (d, e, minus) = (source[k], target[k], c::<T>(-weights[k]));
            let left = d.left(t, true);
            e.right_add(out.as_mut(), left.as_ref(), false, minus);
            let left = d.left(t, false);
            e.right_add(out.as_mut(), left.as_ref(), true, minus);
        }
        let Some(s) = &self.stacked else {
            return;
        };
        let (so, to) = (&s.source_offsets, &s.target_offsets);
        // Dᵀ t E = R (Lᵀ t L') R'ᵀ, then D t Eᵀ = L (Rᵀ t R') L'ᵀ.
        for (first, outer, inner, last) in [
            (&s.source_l, &s.source_r, &s.target_l, &s.target_r),
            (&s.source_r, &s.source_l, &s.target_r, &s.target_l),
        ] {
            let projected = kernels::tmatmul(first.as_ref(), t);
            let mut middle = Mat::<T>::zeros(t.nrows(), to[to.len() - 1]);
            for (k, &w) in s.weights.iter().enumerate() {
                let (rs, rl) = (so[k], so[k + 1] - so[k]);
                let (cs, cl) = (to[k], to[k + 1] - to[k]);
                let core =
                    kernels::matmul(projected.as_ref().subrows(rs, rl), inner.as_ref().subcols(cs, cl));
                gemm(
                    middle.as_mut().subcols_mut(cs, cl),
                    Accum::Replace,
                    outer.as_ref().subcols(rs, rl),
                    core.as_ref(),
                    c::<T>(w),
                );
            }
            gemm(out.as_mut(), Accum::Add, middle.as_ref(), last.as_ref().transpose(), c::<T>(-1.0));
        }
    }
}

fn dot<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> f64 {
    (0..a.ncols())
        .map(|j| a.col(j).iter().zip(b.col(j).iter()).map(|(x, y)| x.to_f64() * y.to_f64()).sum::<f64>())
        .sum()
}

fn singular(detail: String) -> AlignError {
    AlignError::Singular {
        what: "functional".to_owned(),
        detail,
        hint: "set functional.mu > 0 (or give more anchors)".to_owned(),
    }
}

/// The exact solver: Cholesky of the vectorised system (column-major `vec`).
fn solve_exact<T: Real>(system: &System<T>, prepared: &Prepared<T>) -> Result<Mat<T>, AlignError> {
    let (d_a, d_b) = (system.rhs.nrows(), system.rhs.ncols());
    let n = d_a * d_b;
    let s_b = Mat::from_fn(d_b, d_b, |i, j| prepared.omega_b[(i, j)] * c::<T>(system.scale_b));
    /// One weighted operator pair, dense, with `Dᵀ` stored for contiguous columns.
    struct Term<T: Real> {
        d: Mat<T>,
        dt: Mat<T>,
        e: Mat<T>,
        w: f64,
    }
    let ops: Vec<Term<T>> = prepared
        .pairs
        .iter()
        .zip(&system.weights)
        .filter(|(_, &w)| w != 0.0)
        .map(|(p, &w)| {
            let d = p.source.dense();
            let dt = d.as_ref().transpose().to_owned();
            Term { d, dt, e: p.target.dense(), w }
        })
        .collect();
    // Block (j, l) (rows j·d_a.., columns l·d_a..) is δ_jl S_A + S_B[l, j] I
    // − Σ_k λ_k (E_k[l, j] D_kᵀ + E_k[j, l] D_k).
    let mut m = Mat::<T>::zeros(n, n);
    for l in 0..d_b {
        for k in 0..d_a {
            let q = k + l * d_a;
            let col = m.col_as_slice_mut(q);
            for j in 0..d_b {
                let block = &mut col[j * d_a..(j + 1) * d_a];
                if j == l {
                    for (v, s) in block.iter_mut().zip(system.s_a.col_as_slice(k)) {
                        *v += *s;
                    }
                }
                block[k] += s_b[(l, j)];
                for Term { d, dt, e, w } in &ops {
                    let (first, second) = (c::<T>(w * e[(l, j)].to_f64()), c::<T>(w * e[(j, l)].to_f64()));
                    for ((v, a), b) in block.iter_mut().zip(dt.col_as_slice(k)).zip(d.col_as_slice(k)) {
                        *v -= first * *a + second * *b;
                    }
                }
            }
        }
    }
    let llt = m.llt(Side::Lower).map_err(|_| {
        singular(format!(
            "the {n} × {n} system is not numerically positive definite (mu = {:e} absolute)",
            system.mu_absolute
        ))
    })?;
    let mut rhs = Mat::from_fn(n, 1, |p, _| system.rhs[(p % d_a, p / d_a)]);
    llt.solve_in_place(rhs.as_mut());
    Ok(Mat::from_fn(d_a, d_b, |i, j| rhs[(i + j * d_a, 0)]))
}

/// The target side in the eigenbasis of `omega_b`, shared by every solve with the same operators.
struct TargetBasis<T: Real> {
    u: Mat<T>,
    values: Vec<f64>,
    rotated: Vec<Op<T>>,
}

fn target_basis<T: Real>(prepared: &Prepared<T>) -> Result<TargetBasis<T>, AlignError> {
    let eig = kernels::sym_eigen(prepared.omega_b.as_ref(), "functional (target operators)")?;
    let rotated = prepared.pairs.iter().map(|p| p.target.rotated(eig.vectors.as_ref())).collect();
    let values = eig.values.iter().map(|v| v.to_f64().max(0.0)).collect();
    Ok(TargetBasis { u: eig.vectors, values, rotated })
}

/// A system in the eigenbases of its `S_A` and of the shared `S_B`, where conjugate gradient runs:
/// there the Sylvester part is the entry-wise product with `α_i + β_j`.
struct EigenSystem<'b, T: Real> {
    basis: &'b TargetBasis<T>,
    u_a: Mat<T>,
    /// Eigenvalues of `S_A`, largest first.
    alpha: Vec<f64>,
    /// Eigenvalues of `S_B`, largest first.
    beta: Vec<f64>,
    /// Smallest value of `α_i + β_j` the preconditioner divides by.
    floor: f64,
    /// `α_i + β_j` at `i + j d_a`.
    diag: Vec<T>,
    /// The preconditioner: `1 / (α_i + β_j)`, floored.
    inv: Vec<T>,
    /// The source operators in the eigenbasis of `S_A`.
    source: Vec<Op<T>>,
    weights: Vec<f64>,
    cross: Cross<T>,
}

impl<'b, T: Real> EigenSystem<'b, T> {
    fn new(
        system: &System<T>,
        prepared: &Prepared<T>,
        basis: &'b TargetBasis<T>,
    ) -> Result<Self, AlignError> {
        let d_a = system.s_a.nrows();
        let d_b = basis.u.nrows();
        let eig = kernels::sym_eigen(system.s_a.as_ref(), "functional (source system)")?;
        let alpha: Vec<f64> = eig.values.iter().map(|v| v.to_f64().max(0.0)).collect();
        let beta: Vec<f64> = basis.values.iter().map(|v| v * system.scale_b).collect();
        let top = alpha.first().copied().unwrap_or(0.0) + beta.first().copied().unwrap_or(0.0);
        if !(top > 0.0 && top.is_finite()) {
            return Err(singular(format!("the Sylvester part of the normal equations is {top:e}")));
        }
        // The preconditioner only needs to be positive definite: directions where the Sylvester
        // part vanishes (mu = 0 and rank-deficient anchors) are floored, not rejected.
        let floor = top * 1e3 * (d_a.max(d_b) as f64) * T::EPSILON;
        let source: Vec<Op<T>> =
            prepared.pairs.iter().map(|p| p.source.rotated(eig.vectors.as_ref())).collect();
        let cross = Cross::new(
            &source.iter().collect::<Vec<_>>(),
            &basis.rotated.iter().collect::<Vec<_>>(),
            &system.weights,
        );
        let mut eigen = EigenSystem {
            basis,
            u_a: eig.vectors,
            alpha,
            beta,
            floor,
            diag: Vec::new(),
            inv: Vec::new(),
            source,
            weights: system.weights.clone(),
            cross,
        };
        eigen.shift(0.0);
        Ok(eigen)
    }

    /// Sets the Sylvester part to that of `S_A + shift · I` (another `mu`: same eigenvectors).
    fn shift(&mut self, shift: f64) {
        let sums: Vec<f64> =
            self.beta.iter().flat_map(|b| self.alpha.iter().map(move |a| a + shift + b)).collect();
        self.inv = sums.iter().map(|p| c::<T>(1.0 / p.max(self.floor))).collect();
        self.diag = sums.iter().map(|&p| c::<T>(p)).collect();
    }

    fn dims(&self) -> (usize, usize) {
        (self.u_a.nrows(), self.basis.u.nrows())
    }

    /// `U_Aᵀ t U_B`.
    fn rotate_in(&self, t: MatRef<'_, T>) -> Mat<T> {
        kernels::matmul(kernels::tmatmul(self.u_a.as_ref(), t).as_ref(), self.basis.u.as_ref())
    }

    /// `U_A t U_Bᵀ`.
    fn rotate_out(&self, t: MatRef<'_, T>) -> Mat<T> {
        kernels::matmul(kernels::matmul(self.u_a.as_ref(), t).as_ref(), self.basis.u.as_ref().transpose())
    }

    /// The system applied to `t` (in the eigenbases).
    fn apply(&self, t: &Mat<T>) -> Mat<T> {
        let d_a = t.nrows();
        let mut out = Mat::from_fn(d_a, t.ncols(), |i, j| self.diag[i + j * d_a] * t[(i, j)]);
        let source: Vec<&Op<T>> = self.source.iter().collect();
        let target: Vec<&Op<T>> = self.basis.rotated.iter().collect();
        self.cross.apply(&mut out, t.as_ref(), &source, &target, &self.weights);
        out
    }

    fn precondition(&self, r: &Mat<T>) -> Mat<T> {
        let d_a = r.nrows();
        Mat::from_fn(d_a, r.ncols(), |i, j| self.inv[i + j * d_a] * r[(i, j)])
    }

    /// Preconditioned conjugate gradient for `apply(t) = b` (both in the eigenbases), from `warm`
    /// or zero. Returns the solution, the iterations and whether the recomputed relative residual
    /// reached `tolerance`.
    fn pcg(
        &self,
        b: &Mat<T>,
        warm: Option<Mat<T>>,
        tolerance: f64,
        max_iterations: usize,
    ) -> Result<(Mat<T>, usize, bool), AlignError> {
        let (d_a, d_b) = self.dims();
        let b_norm = kernels::squared_norm(b.as_ref()).sqrt();
        if b_norm == 0.0 {
            return Ok((Mat::zeros(d_a, d_b), 0, true));
        }
        let axpy = |y: &mut Mat<T>, a: f64, x: &Mat<T>| {
            let a = c::<T>(a);
            for j in 0..d_b {
                for (v, w) in y.col_as_slice_mut(j).iter_mut().zip(x.col_as_slice(j)) {
                    *v += a * *w;
                }
            }
        };
        let residual_of = |x: &Mat<T>| {
            let mut r = b.clone();
            axpy(&mut r, -1.0, &self.apply(x));
            r
        };
        let (mut x, mut r) = match warm {
            Some(x) => {
                let r = residual_of(&x);
                (x, r)
            }
            None => (Mat::zeros(d_a, d_b), b.clone()),
        };
        // Whether `r` was computed from `x` directly (not updated by the recursion).
        let mut fresh = true;
        let mut z = self.precondition(&r);
        let mut p = z.clone();
        let mut rz = dot(r.as_ref(), z.as_ref());
        let mut iterations = 0;
        let mut restarts = 0;
        loop {
            if kernels::squared_norm(r.as_ref()).sqrt() / b_norm <= tolerance {
                if fresh {
                    return Ok((x, iterations, true));
                }
                // Confirm on the recomputed residual; restart from it if rounding has drifted.
                r = residual_of(&x);
                if kernels::squared_norm(r.as_ref()).sqrt() / b_norm <= tolerance {
                    return Ok((x, iterations, true));
                }
                restarts += 1;
                if restarts > 5 {
                    return Ok((x, iterations, false));
                }
                z = self.precondition(&r);
                p = z.clone();
                rz = dot(r.as_ref(), z.as_ref());
            }
            if iterations >= max_iterations {
                return Ok((x, iterations, false));
            }
            let q = self.apply(&p);
            let pq = dot(p.as_ref(), q.as_ref());
            if pq.is_nan() || pq <= 0.0 {
                if pq.is_finite() {
                    // No curvature left along p: the system is singular there; stop where we are.
                    return Ok((x, iterations, false));
                }
                return Err(singular("the conjugate gradient met a non-finite curvature".to_owned()));
            }
            let step = rz / pq;
            axpy(&mut x, step, &p);
            axpy(&mut r, -step, &q);
            fresh = false;
            z = self.precondition(&r);
            let rz_next = dot(r.as_ref(), z.as_ref());
            let beta = c::<T>(rz_next / rz);
            rz = rz_next;
            for j in 0..d_b {
                for (pv, zv) in p.col_as_slice_mut(j).iter_mut().zip(z.col_as_slice(j)) {
                    *pv = *zv + beta * *pv;
                }
            }
            iterations += 1;
        }
    }
}

/// The polar factor `U Vᵀ` of `t = U Σ Vᵀ` (thin SVD): the nearest matrix with orthonormal columns
/// (rows when `t` is wide).
fn polar<T: Real>(t: MatRef<'_, T>) -> Result<Mat<T>, AlignError> {
    let svd = kernels::thin_svd(t, "functional (orthogonal projection)")?;
    Ok(kernels::matmul(svd.u.as_ref(), svd.v.as_ref().transpose()))
}

fn check_inputs<T: Real>(x: MatRef<'_, T>, y: MatRef<'_, T>, lambda: f64, mu: f64) -> Result<(), AlignError> {
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
    for (field, value) in [("functional.lambda", lambda), ("functional.mu", mu)] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(AlignError::InvalidParameter {
                field: field.to_owned(),
                detail: format!("must be a finite number ≥ 0, got {value}"),
            });
        }
    }
    kernels::check_pair_finite(x, y)
}

/// Everything a solve needs that does not depend on the anchors or the weights.
struct Context<'p, T: Real> {
    prepared: &'p Prepared<T>,
    basis: Option<TargetBasis<T>>,
}

/// Solves for given weights.
fn solve_prepared<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    context: &mut Context<'_, T>,
    lambda: f64,
    mu: f64,
    options: &SolveOptions,
) -> Result<FunctionalSolution<T>, AlignError> {
    let (d_a, d_b) = (x.ncols(), y.ncols());
    let system = assemble(x, y, context.prepared, lambda, mu)?;
    let exact = match options.solver {
        Solver::Exact => true,
        Solver::Cg => false,
        Solver::Auto => d_a * d_b <= EXACT_LIMIT,
    };
    let tolerance = options.tolerance.unwrap_or_else(default_tolerance::<T>);
    let (t, iterations, converged) = if exact {
        (solve_exact(&system, context.prepared)?, 0, true)
    } else {
        if context.basis.is_none() {
            context.basis = Some(target_basis(context.prepared)?);
        }
        let Some(basis) = context.basis.as_ref() else {
            return Err(singular("no target basis".to_owned()));
        };
        let eigen = EigenSystem::new(&system, context.prepared, basis)?;
        let b = eigen.rotate_in(system.rhs.as_ref());
        let (t, iterations, converged) = eigen.pcg(&b, None, tolerance, options.max_iterations)?;
        (eigen.rotate_out(t.as_ref()), iterations, converged)
    };
    let rhs_norm = kernels::squared_norm(system.rhs.as_ref()).sqrt();
    let mut r = system.rhs.clone();
    add_scaled(&mut r, apply_system(&system, context.prepared, t.as_ref()).as_ref(), -1.0);
    let residual = if rhs_norm > 0.0 { kernels::squared_norm(r.as_ref()).sqrt() / rhs_norm } else { 0.0 };
    if !residual.is_finite() {
        return Err(singular("the solution is not finite".to_owned()));
    }
    let mapped = if options.orthogonal { polar(t.as_ref())? } else { t };
    let solution = FunctionalSolution {
        t: mapped,
        lambda,
        mu,
        weights: system.weights,
        mu_absolute: system.mu_absolute,
        solver: if exact { Solver::Exact } else { Solver::Cg },
        iterations,
        residual,
        converged,
    };
    Ok(solution)
}

/// Solves the functional problem (see the [module docs](self)) for given relative weights
/// `lambda` and `mu`, on preprocessed anchors `x` (n × d_a), `y` (n × d_b) and operator pairs
/// (source actions on d_a, target actions on d_b). `n = 0` anchors is allowed when the operators
/// and `mu` determine `T`.
pub fn solve<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    pairs: &[OperatorPair<'_, T>],
    lambda: f64,
    mu: f64,
    options: &SolveOptions,
) -> Result<FunctionalSolution<T>, AlignError> {
    check_inputs(x, y, lambda, mu)?;
    let prepared = prepare(pairs, x.ncols(), y.ncols())?;
    let mut context = Context { prepared: &prepared, basis: None };
    solve_prepared(x, y, &mut context, lambda, mu, options)
}

/// Sum over rows of the cosine similarity between row i of `a` and row i of `b` (0 for a zero row).
fn cosine_sum<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> f64 {
    (0..a.nrows())
        .map(|i| {
            let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
            for j in 0..a.ncols() {
                let (u, v) = (a[(i, j)].to_f64(), b[(i, j)].to_f64());
                ab += u * v;
                aa += u * u;
                bb += v * v;
            }
            if aa > 0.0 && bb > 0.0 {
                ab / (aa * bb).sqrt()
            } else {
                0.0
            }
        })
        .sum()
}

/// Fold of each anchor: a seeded shuffle, then anchor `order[i]` goes to fold `i mod k`.
fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut fold = vec![0; n];
    for (i, &row) in order.iter().enumerate() {
        fold[row] = i % k;
    }
    fold
}

/// A derangement of `0..k` (no fixed point) from `seed`: a seeded permutation `p`, then
/// `σ(p[i]) = p[(i + s) mod k]` for a seeded shift `1 ≤ s < k`. The identity for `k < 2`.
pub fn derangement(k: usize, seed: u64) -> Vec<usize> {
    if k < 2 {
        return (0..k).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0f0e_7a70_75e5);
    let mut p: Vec<usize> = (0..k).collect();
    p.shuffle(&mut rng);
    let shift = 1 + rand::Rng::random_range(&mut rng, 0..k - 1);
    let mut sigma = vec![0; k];
    for i in 0..k {
        sigma[p[i]] = p[(i + shift) % k];
    }
    sigma
}

/// Solves the functional problem, choosing an unset `lambda` (from [`LAMBDA_GRID`]) and an unset
/// `mu` (from [`MU_GRID`]) by cross-validation on the anchors (see the [module docs](self)); `seed`
/// fixes the folds. With fewer than 3 anchors, unset weights take [`DEFAULT_LAMBDA`] and
/// [`DEFAULT_MU`]. Returns the solution on all anchors and what cross-validation did.
pub fn solve_cv<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    pairs: &[OperatorPair<'_, T>],
    lambda: Option<f64>,
    mu: Option<f64>,
    options: &SolveOptions,
    seed: u64,
) -> Result<(FunctionalSolution<T>, CvReport), AlignError> {
    check_inputs(x, y, lambda.unwrap_or(0.0), mu.unwrap_or(0.0))?;
    let prepared = prepare(pairs, x.ncols(), y.ncols())?;
    let mut context = Context { prepared: &prepared, basis: None };
    let n = x.nrows();
    let lambdas = lambda.map_or(LAMBDA_GRID.to_vec(), |l| vec![l]);
    let mus = mu.map_or(MU_GRID.to_vec(), |m| vec![m]);
    let no_cv = CvReport { folds: 0, scores: Vec::new(), score: f64::NAN, iterations: 0 };
    if lambdas.len() * mus.len() == 1 || n < 3 {
        let (l, m) = (lambda.unwrap_or(DEFAULT_LAMBDA), mu.unwrap_or(DEFAULT_MU));
        let solution = solve_prepared(x, y, &mut context, l, m, options)?;
        return Ok((solution, no_cv));
    }
    let grid: Vec<(f64, f64)> = lambdas.iter().flat_map(|&l| mus.iter().map(move |&m| (l, m))).collect();
    let k = CV_FOLDS.min(n);
    let fold_of = folds(n, k, seed);
    let held: Vec<Vec<usize>> = (0..k).map(|f| (0..n).filter(|&i| fold_of[i] == f).collect()).collect();
    let tolerance = options.tolerance.unwrap_or(0.0).max(cv_tolerance::<T>());
    let (totals, iterations) = if options.solver == Solver::Exact {
        (cv_exact(x, y, &mut context, &grid, &held, options)?, 0)
    } else {
        cv_cg(x, y, &mut context, &grid, &held, options, tolerance)?
    };
    let scores: Vec<(f64, f64, f64)> =
        grid.iter().zip(&totals).map(|(&(l, m), &total)| (l, m, total / n as f64)).collect();
    let mut best = 0;
    for (g, score) in scores.iter().enumerate() {
        if score.2 > scores[best].2 {
            best = g;
        }
    }
    let (l, m, score) = scores[best];
    let solution = solve_prepared(x, y, &mut context, l, m, options)?;
    Ok((solution, CvReport { folds: k, scores, score, iterations }))
}

/// Cross-validation with the exact solver: one factorisation per fold and grid point. Returns the
/// summed held-out cosine of each grid point.
fn cv_exact<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    context: &mut Context<'_, T>,
    grid: &[(f64, f64)],
    held: &[Vec<usize>],
    options: &SolveOptions,
) -> Result<Vec<f64>, AlignError> {
    let n = x.nrows();
    let mut totals = vec![0.0; grid.len()];
    for rows in held {
        let train: Vec<usize> = (0..n).filter(|i| !rows.contains(i)).collect();
        let (xt, yt) = (select_rows(x, &train), select_rows(y, &train));
        let (xh, yh) = (select_rows(x, rows), select_rows(y, rows));
        for (g, &(l, m)) in grid.iter().enumerate() {
            let solution = solve_prepared(xt.as_ref(), yt.as_ref(), context, l, m, options)?;
            let predicted = kernels::matmul(xh.as_ref(), solution.t.as_ref());
            totals[g] += cosine_sum(predicted.as_ref(), yh.as_ref());
        }
    }
    Ok(totals)
}

/// Cross-validation with conjugate gradient. Per fold and value of `lambda`: one eigendecomposition
/// of the fold's `S_A` (another `mu` only shifts its eigenvalues, so the grid's `mu` values share
/// it, each solve starting from the previous `mu`'s solution). Returns the summed held-out cosine
/// of each grid point (in grid order: `lambda` outer, `mu` inner) and the iterations spent.
fn cv_cg<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    context: &mut Context<'_, T>,
    grid: &[(f64, f64)],
    held: &[Vec<usize>],
    options: &SolveOptions,
    tolerance: f64,
) -> Result<(Vec<f64>, usize), AlignError> {
    if context.basis.is_none() {
        context.basis = Some(target_basis(context.prepared)?);
    }
    let Some(basis) = context.basis.as_ref() else {
        return Err(singular("no target basis".to_owned()));
    };
    let n = x.nrows();
    let mut totals = vec![0.0; grid.len()];
    let mut iterations = 0;
    for rows in held {
        let train: Vec<usize> = (0..n).filter(|i| !rows.contains(i)).collect();
        let (xt, yt) = (select_rows(x, &train), select_rows(y, &train));
        let xh = select_rows(x, rows);
        // Held-out targets in the eigenbasis of S_B: cosines are unchanged by it.
        let yh = kernels::matmul(select_rows(y, rows).as_ref(), basis.u.as_ref());
        let mu_scale = anchor_norm(xt.as_ref()) / x.ncols() as f64;
        let mut g = 0;
        while g < grid.len() {
            let (lambda, first_mu) = grid[g];
            let system = assemble(xt.as_ref(), yt.as_ref(), context.prepared, lambda, first_mu)?;
            let mut eigen = EigenSystem::new(&system, context.prepared, basis)?;
            let b = eigen.rotate_in(system.rhs.as_ref());
            let h = kernels::matmul(xh.as_ref(), eigen.u_a.as_ref());
            let mut warm: Option<Mat<T>> = None;
            while g < grid.len() && grid[g].0 == lambda {
                eigen.shift((grid[g].1 - first_mu) * mu_scale);
                let (t, spent, _) = eigen.pcg(&b, warm.take(), tolerance, options.max_iterations)?;
                iterations += spent;
                let predicted = if options.orthogonal {
                    let projected = polar(eigen.rotate_out(t.as_ref()).as_ref())?;
                    let predicted = kernels::matmul(xh.as_ref(), projected.as_ref());
                    kernels::matmul(predicted.as_ref(), basis.u.as_ref())
                } else {
                    kernels::matmul(h.as_ref(), t.as_ref())
                };
                totals[g] += cosine_sum(predicted.as_ref(), yh.as_ref());
                warm = Some(t);
                g += 1;
            }
        }
    }
    Ok((totals, iterations))
}

/// How far `T` is from commuting with an operator pair: `‖F T − T G‖_F / max(‖F T‖_F, ‖T G‖_F, ε)`,
/// with `F` the source action's linear part (d_a × d_a), `G` the target's (d_b × d_b) and `T`
/// d_a × d_b. 0 when `f_B(x T) = f_A(x) T` up to the offsets, about 1 or more when the map ignores
/// the operators; scale-free (multiplying `T` changes nothing). The offsets are not included.
/// `NaN` when the shapes do not match.
pub fn commutation_error<T: Real>(t: MatRef<'_, T>, a: &OperatorAction<T>, b: &OperatorAction<T>) -> f64 {
    let (d_a, d_b) = (t.nrows(), t.ncols());
    if a.f.nrows() != d_a || a.f.ncols() != d_a || b.f.nrows() != d_b || b.f.ncols() != d_b {
        return f64::NAN;
    }
    let ft = kernels::matmul(a.f.as_ref(), t);
    let tg = kernels::matmul(t, b.f.as_ref());
    let mut diff = ft.clone();
    add_scaled(&mut diff, tg.as_ref(), -1.0);
    let scale = kernels::squared_norm(ft.as_ref())
        .sqrt()
        .max(kernels::squared_norm(tg.as_ref()).sqrt())
        .max(f64::MIN_POSITIVE);
    kernels::squared_norm(diff.as_ref()).sqrt() / scale
}

#[cfg(test)]
mod tests;
