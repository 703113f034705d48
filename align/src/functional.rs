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
//! [`DEFAULT_LAMBDA`] and [`DEFAULT_MU`]. Cost: 30 grid points × 5 folds solves plus the final
//! one, the folds in parallel (faer's global parallelism), each fold's solves in grid order, each
//! starting from the previous one's solution. With `cg`, either one eigendecomposition of `S_A`
//! per fold and `lambda` (another `mu` only shifts its eigenvalues), or — in `f64`, with `mu > 0`,
//! when estimated cheaper, i.e. with few anchors — a single eigendecomposition of the operators'
//! part `Σ_k λ_k (F_kᵀF_k + a_kᵀa_k)` shared by all folds and weights (it depends on the weights
//! only through a common factor), the training anchors entering each fold's system and
//! preconditioner by the Woodbury identity with small capacitance matrices; the final solve then
//! reuses that basis too. Cross-validation only ranks grid points, so its solves stop at a looser
//! tolerance (see Solvers) and after at most [`CV_MAX_ITERATIONS`] iterations.

//! # Solvers
//! - `exact`: the `(d_a·d_b)²` system `(I ⊗ S_A + S_B ⊗ I − Σ_k λ_k (G_kᵀ ⊗ F_kᵀ + G_k ⊗ F_k)) vec T
//!   = vec R` (column-major `vec`), by a Cholesky factorisation. `auto` uses it when
//!   `d_a · d_b ≤ 2500` ([`EXACT_LIMIT`]).
//! - `cg`: conjugate gradient on matrices, preconditioned by the Sylvester part, which is inverted
//!   exactly through the eigendecompositions `S_A = U_A diag(α) U_Aᵀ`, `S_B = U_B diag(β) U_Bᵀ`:
//!   the iteration runs in those eigenbases, where the preconditioner is the entry-wise division by
//!   `α_i + β_j`. The cross terms of an operator pair are applied with each product associated the
//!   cheapest way: an action fitted from `m` pairs has `F − I` of rank at most `m`, and is kept
//!   factored where that makes the cross terms cheaper (found by a seeded randomised range finder
//!   and checked to reproduce `F − I` to `√ε / 100`, so never an approximation); the pairs of each
//!   kind (factored or dense on either side) are applied together, stacked. It stops when the
//!   relative residual `‖R − A(T)‖_F / ‖R‖_F` is at most the tolerance (`1e-10` in `f64`, `1e-5`
//!   in `f32`), checked on the recomputed residual, or after `max_iterations` (500).
//!   Cross-validation uses `cg` (unless `exact` is asked for) and stops when the residual is
//!   `3e-4` of the right-hand side's in the preconditioner's inverse norm (about the relative
//!   error in the energy norm: directions the system barely determines, where held-out
//!   predictions are most sensitive, count more than in the plain residual); the held-out
//!   cosines are then within about `1e-4` of the exact ones on the experiments' shapes.
//!
//! Measured (2 shared cores, test profile = dev: this crate at opt-level 1, dependencies at 2;
//! the machine otherwise idle): `cg` at `d_a = d_b = 1024` with two dense operator pairs
//! converges to `1e-10` in 29 iterations. With 50 anchors, cross-validation plus the final solve
//! (operator actions fitted beforehand) take about 0.8 s for 300 → 136 with 3 operators fitted from
//! 65 pairs each, 1.6 s for 384 → 50 with 19 operators of 10 to 3000 pairs, and 0.9 s for
//! 300 → 50 with 2 operators of 500 and 2000 pairs; one solve with set weights 0.1–0.2 s. Set
//! `lambda` and `mu` to skip cross-validation in large sweeps.

use super::error::{AlignError, Space};
use super::kernels::{self, c};
use super::method::Solver;
use super::operator::{copy, parallel_map, select_rows, zeros, OperatorAction};
use super::scalar::Real;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The values of `lambda` tried by cross-validation when it is unset. Wide enough that the word
/// experiments' choices (all at 0.1, the lowest of an earlier, narrower grid) fall inside it; the
/// report flags choices at either end.
pub const LAMBDA_GRID: [f64; 6] = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0];
/// The values of `mu` tried by cross-validation when it is unset (the word experiments chose 0.1,
/// the highest of an earlier grid, then 1, the highest of the next).
pub const MU_GRID: [f64; 5] = [1e-3, 1e-2, 1e-1, 1.0, 10.0];
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
/// Iteration limit of the conjugate gradient in cross-validation (or `max_iterations`, if
/// smaller).
pub const CV_MAX_ITERATIONS: usize = 100;
/// Iterations per solve assumed when choosing how cross-validation builds its bases.
const CV_ITERATIONS_ESTIMATE: f64 = 15.0;
/// Iterations assumed for the final solve when choosing whether it reuses cross-validation's basis.
const FINAL_ITERATIONS_ESTIMATE: f64 = 40.0;

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
    /// in `f32`. Cross-validation's solves stop at the larger of this and its own tolerance (see
    /// the [module docs](self)).
    pub tolerance: Option<f64>,
    /// Iteration limit of the conjugate gradient (in cross-validation, at most
    /// [`CV_MAX_ITERATIONS`]).
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

/// Relative residual, in the preconditioner's inverse norm ([`Stop::Energy`]), at which
/// cross-validation's solves stop: it only ranks grid points, and the held-out cosines are then
/// within about `1e-4` of the exact ones (measured on the shapes the experiments use).
const CV_TOLERANCE: f64 = 3e-4;

/// A square matrix, dense or as a low-rank product `l rᵀ`.
#[derive(Clone, Debug)]
enum Op<T: Real> {
    Dense(Mat<T>),
    LowRank { l: Mat<T>, r: Mat<T> },
}

/// `out (+)= alpha · a · b`.
fn gemm<T: Real>(out: MatMut<'_, T>, accum: Accum, a: MatRef<'_, T>, b: MatRef<'_, T>, alpha: T, par: Par) {
    faer::linalg::matmul::matmul(out, accum, a, b, alpha, par);
}

/// `a · b`, with parallelism `par`.
fn product<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, par: Par) -> Mat<T> {
    let mut out = zeros(a.nrows(), b.ncols());
    gemm(out.as_mut(), Accum::Replace, a, b, c::<T>(1.0), par);
    out
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

    /// Multiply-adds of [`rotated`](Self::rotated).
    fn rotation_cost(&self) -> f64 {
        match self {
            Op::Dense(m) => 2.0 * (m.nrows() as f64).powi(3),
            Op::LowRank { l, .. } => 2.0 * (l.nrows() as f64).powi(2) * l.ncols() as f64,
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
            Op::Dense(m) => copy(m.as_ref()),
            Op::LowRank { l, r } => kernels::matmul(l.as_ref(), r.as_ref().transpose()),
        }
    }
}

/// `F − s I`.
fn shifted<T: Real>(f: &Mat<T>, s: f64) -> Mat<T> {
    let mut out = copy(f.as_ref());
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
    let mut error = copy(delta.as_ref());
    gemm(error.as_mut(), Accum::Add, l.as_ref(), r.as_ref().transpose(), c::<T>(-1.0), kernels::par());
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
    let mut l = kernels::matmul(l.as_ref(), svd.v.as_ref().subcols(0, rank));
    for j in 0..rank {
        let s = svd.s[j];
        for v in l.col_as_slice_mut(j) {
            *v *= s;
        }
    }
    let r = copy(svd.u.as_ref().subcols(0, rank));
    Some(Op::LowRank { l, r })
}

/// Multiply-adds of one application of a pair's cross terms `Dᵀ T E + D T Eᵀ` (T is d_a × d_b),
/// with the source operator `D` of rank `r` and the target operator `E` of rank `s` (`None`:
/// dense), each product associated the cheapest way (see [`Cross`]).
fn cross_cost(d_a: usize, d_b: usize, r: Option<usize>, s: Option<usize>) -> f64 {
    let (a, b) = (d_a as f64, d_b as f64);
    2.0 * match (r.map(|r| r as f64), s.map(|s| s as f64)) {
        (Some(r), Some(s)) => r * a * b + r * b * s + a * r * s + a * s * b,
        (Some(r), None) => 2.0 * r * a * b + r * b * b,
        (None, Some(s)) => 2.0 * a * b * s + a * a * s,
        (None, None) => a * a * b + a * b * b,
    }
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
    /// The cross terms of the (unrotated) pairs, with weights `coefficient_k`.
    cross: Cross<T>,
}

impl<T: Real> Prepared<T> {
    fn coefficients(&self) -> Vec<f64> {
        self.pairs.iter().map(|p| p.coefficient).collect()
    }
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
    let finite = action.c.iter().all(|v| v.finite())
        && (0..dim).all(|j| action.f.col_as_slice(j).iter().all(|v| v.finite()));
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
    let mut omega_a = zeros(d_a, d_a);
    let mut omega_b = zeros(d_b, d_b);
    let mut rho = zeros(d_a, d_b);
    let mut prepared_pairs = Vec::with_capacity(pairs.len());
    for (pair, e) in pairs.iter().zip(traces) {
        let coefficient = if e > 0.0 && e.is_finite() { d_b as f64 / (active as f64 * e) } else { 0.0 };
        // Fitted from m pairs, F − I has rank at most m: keep it factored where that makes the
        // cross terms cheaper (then the shift must be 1).
        let bound = |a: &OperatorAction<T>, d: usize| (a.pairs >= 2 && a.pairs + 5 < d).then_some(a.pairs);
        let (rs, rt) = (bound(pair.source, d_a), bound(pair.target, d_b));
        let mut best = (f64::INFINITY, None, None);
        for s in [rs, None] {
            for t in [rt, None] {
                let cost = cross_cost(d_a, d_b, s, t);
                if cost < best.0 {
                    best = (cost, s, t);
                }
            }
        }
        let source = best.1.and_then(|b| low_rank(&pair.source.f, b));
        let target = best.2.and_then(|b| low_rank(&pair.target.f, b));
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
            add_scaled(&mut omega_a, source.gram().as_ref(), coefficient);
            gemm(omega_a.as_mut(), Accum::Add, a.as_ref().transpose(), a.as_ref(), w, Par::Seq);
            add_scaled(&mut omega_b, target.outer().as_ref(), coefficient);
            gemm(rho.as_mut(), Accum::Add, a.as_ref().transpose(), b.as_ref(), w, Par::Seq);
        }
        prepared_pairs.push(PreparedPair { source, target, coefficient });
    }
    let coefficients: Vec<f64> = prepared_pairs.iter().map(|p| p.coefficient).collect();
    let source: Vec<&Op<T>> = prepared_pairs.iter().map(|p| &p.source).collect();
    let target: Vec<&Op<T>> = prepared_pairs.iter().map(|p| &p.target).collect();
    let cross = Cross::new(&source, &target, &coefficients);
    Ok(Prepared { pairs: prepared_pairs, omega_a, omega_b, rho, cross })
}

/// `out += scale · m`.
fn add_scaled<T: Real>(out: &mut Mat<T>, m: MatRef<'_, T>, scale: f64) {
    let s = c::<T>(scale);
    for j in 0..out.ncols() {
        let o = out.col_as_slice_mut(j);
        match m.col(j).try_as_col_major() {
            Some(col) => {
                for (o, v) in o.iter_mut().zip(col.as_slice()) {
                    *o += s * *v;
                }
            }
            None => {
                for (i, o) in o.iter_mut().enumerate() {
                    *o += s * m[(i, j)];
                }
            }
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
    let anchors = Gram::new(x, y)?;
    Ok(anchors.system(prepared, lambda, mu))
}

/// The anchors' part of the normal equations: `XᵀX`, `XᵀY` and `‖X‖²_F` (for the weights).
struct Gram<T: Real> {
    xx: Mat<T>,
    xy: Mat<T>,
    norm: f64,
}

impl<T: Real> Gram<T> {
    fn new(x: MatRef<'_, T>, y: MatRef<'_, T>) -> Result<Self, AlignError> {
        let xx = kernels::gram(x);
        let xy = kernels::tmatmul(x, y);
        kernels::check_product(xx.as_ref(), x, y, "functional")?;
        kernels::check_product(xy.as_ref(), x, y, "functional")?;
        Ok(Gram { xx, xy, norm: anchor_norm(x) })
    }

    fn system(&self, prepared: &Prepared<T>, lambda: f64, mu: f64) -> System<T> {
        let d_a = self.xx.nrows();
        let scale = lambda * self.norm;
        let mu_absolute = mu * self.norm / d_a as f64;
        let mut s_a = copy(self.xx.as_ref());
        let mut rhs = copy(self.xy.as_ref());
        kernels::add_diagonal(&mut s_a, c::<T>(mu_absolute));
        add_scaled(&mut s_a, prepared.omega_a.as_ref(), scale);
        add_scaled(&mut rhs, prepared.rho.as_ref(), scale);
        let weights = prepared.pairs.iter().map(|p| p.coefficient * scale).collect();
        System { s_a, scale_b: scale, rhs, weights, mu_absolute }
    }
}

/// `A(T) = S_A T + T S_B − Σ_k λ_k (D_kᵀ T E_k + D_k T E_kᵀ)` in the original basis.
fn apply_system<T: Real>(system: &System<T>, prepared: &Prepared<T>, t: MatRef<'_, T>) -> Mat<T> {
    let mut out = kernels::matmul(system.s_a.as_ref(), t);
    let par = kernels::par();
    gemm(out.as_mut(), Accum::Add, t, prepared.omega_b.as_ref(), c::<T>(system.scale_b), par);
    let source: Vec<&Op<T>> = prepared.pairs.iter().map(|p| &p.source).collect();
    let target: Vec<&Op<T>> = prepared.pairs.iter().map(|p| &p.target).collect();
    prepared.cross.apply(&mut out, t, (&source, &target), system.scale_b, par);
    out
}

/// Copies the columns of `parts` side by side; returns the copy and where each part starts (and,
/// last, the total width).
fn concatenate<T: Real>(rows: usize, parts: &[&Mat<T>]) -> (Mat<T>, Vec<usize>) {
    let mut offsets = vec![0];
    for part in parts {
        offsets.push(offsets[offsets.len() - 1] + part.ncols());
    }
    let mut out = zeros(rows, offsets[offsets.len() - 1]);
    for (part, &start) in parts.iter().zip(&offsets) {
        for j in 0..part.ncols() {
            out.col_as_slice_mut(start + j).copy_from_slice(part.col_as_slice(j));
        }
    }
    (out, offsets)
}

/// The low-rank factors `l`, `r` of some operators, side by side: operator `k` of the group owns
/// columns `offsets[k]..offsets[k + 1]`.
struct Factors<T: Real> {
    l: Mat<T>,
    r: Mat<T>,
    offsets: Vec<usize>,
}

impl<T: Real> Factors<T> {
    fn new(rows: usize, parts: &[(&Mat<T>, &Mat<T>)]) -> Self {
        let (l, offsets) = concatenate(rows, &parts.iter().map(|p| p.0).collect::<Vec<_>>());
        let (r, _) = concatenate(rows, &parts.iter().map(|p| p.1).collect::<Vec<_>>());
        Factors { l, r, offsets }
    }

    /// Columns of operator `k`: `(start, width)`.
    fn span(&self, k: usize) -> (usize, usize) {
        (self.offsets[k], self.offsets[k + 1] - self.offsets[k])
    }

    fn width(&self) -> usize {
        self.offsets[self.offsets.len() - 1]
    }
}

/// The pairs of one kind (by which of `D_k`, `E_k` are factored), in order, with their
/// coefficients and the factors of their low-rank operators.
struct Group<T: Real> {
    pairs: Vec<usize>,
    coefficients: Vec<f64>,
    source: Option<Factors<T>>,
    target: Option<Factors<T>>,
}

/// How the cross terms `Σ_k w_k (D_kᵀ t E_k + D_k t E_kᵀ)` (t is d_a × d_b) are applied, each
/// product associated the cheapest way and the pairs of a kind stacked, so that the wide
/// products are one call each:
/// - both factored (`D = L Rᵀ`, `E = L' R'ᵀ`): `Dᵀ t E = R (Lᵀ t L') R'ᵀ`;
/// - source factored, target dense: `Dᵀ t E = R ((Lᵀ t) E)`;
/// - source dense, target factored: `Dᵀ t E = (Dᵀ (t L')) R'ᵀ`;
/// - both dense: `Dᵀ (t E)`;
///
/// and likewise `D t Eᵀ` with the factors' roles swapped. Weights are `scale · coefficient_k`.
struct Cross<T: Real> {
    both: Option<Group<T>>,
    source_only: Option<Group<T>>,
    target_only: Option<Group<T>>,
    dense: Vec<(usize, f64)>,
}

impl<T: Real> Cross<T> {
    fn new(source: &[&Op<T>], target: &[&Op<T>], coefficients: &[f64]) -> Self {
        let mut kinds: [Vec<usize>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let mut dense = Vec::new();
        for (k, &w) in coefficients.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            match (source[k], target[k]) {
                (Op::LowRank { .. }, Op::LowRank { .. }) => kinds[0].push(k),
                (Op::LowRank { .. }, Op::Dense(_)) => kinds[1].push(k),
                (Op::Dense(_), Op::LowRank { .. }) => kinds[2].push(k),
                (Op::Dense(_), Op::Dense(_)) => dense.push((k, w)),
            }
        }
        let factors = |ops: &[&Op<T>], pairs: &[usize]| {
            let parts: Vec<(&Mat<T>, &Mat<T>)> = pairs
                .iter()
                .filter_map(|&k| match ops[k] {
                    Op::LowRank { l, r } => Some((l, r)),
                    Op::Dense(_) => None,
                })
                .collect();
            parts.first().map(|first| Factors::new(first.0.nrows(), &parts))
        };
        let group = |pairs: &Vec<usize>, with_source: bool, with_target: bool| {
            (!pairs.is_empty()).then(|| Group {
                pairs: pairs.clone(),
                coefficients: pairs.iter().map(|&k| coefficients[k]).collect(),
                source: if with_source { factors(source, pairs) } else { None },
                target: if with_target { factors(target, pairs) } else { None },
            })
        };
        Cross {
            both: group(&kinds[0], true, true),
            source_only: group(&kinds[1], true, false),
            target_only: group(&kinds[2], false, true),
            dense,
        }
    }

    /// `out −= scale · Σ_k coefficient_k (D_kᵀ t E_k + D_k t E_kᵀ)`, with the operators `source`
    /// and `target` this was built from (only their dense ones are read).
    fn apply(
        &self,
        out: &mut Mat<T>,
        t: MatRef<'_, T>,
        (source, target): (&[&Op<T>], &[&Op<T>]),
        scale: f64,
        par: Par,
    ) {
        let (d_a, d_b) = (t.nrows(), t.ncols());
        let minus = c::<T>(-scale);
        if let Some(Group { coefficients, source: Some(s), target: Some(e), .. }) = &self.both {
            // Dᵀ t E = R (Lᵀ t L') R'ᵀ, then D t Eᵀ = L (Rᵀ t R') L'ᵀ.
            for (first, outer, inner, last) in [(&s.l, &s.r, &e.l, &e.r), (&s.r, &s.l, &e.r, &e.l)] {
                let projected = product(first.as_ref().transpose(), t, par);
                let mut middle = zeros::<T>(d_a, e.width());
                for (k, &w) in coefficients.iter().enumerate() {
                    let ((rs, rl), (cs, cl)) = (s.span(k), e.span(k));
                    let core =
                        product(projected.as_ref().subrows(rs, rl), inner.as_ref().subcols(cs, cl), par);
                    gemm(
                        middle.as_mut().subcols_mut(cs, cl),
                        Accum::Replace,
                        outer.as_ref().subcols(rs, rl),
                        core.as_ref(),
                        c::<T>(w),
                        par,
                    );
                }
                gemm(out.as_mut(), Accum::Add, middle.as_ref(), last.as_ref().transpose(), minus, par);
            }
        }
        if let Some(Group { pairs, coefficients, source: Some(s), .. }) = &self.source_only {
            // Dᵀ t E = R ((Lᵀ t) E), then D t Eᵀ = L ((Rᵀ t) Eᵀ).
            for (first, outer, transpose) in [(&s.l, &s.r, false), (&s.r, &s.l, true)] {
                let projected = product(first.as_ref().transpose(), t, par);
                let mut middle = zeros::<T>(s.width(), d_b);
                for (k, (&pair, &w)) in pairs.iter().zip(coefficients).enumerate() {
                    let Op::Dense(e) = target[pair] else { continue };
                    let e = if transpose { e.as_ref().transpose() } else { e.as_ref() };
                    let (rs, rl) = s.span(k);
                    gemm(
                        middle.as_mut().subrows_mut(rs, rl),
                        Accum::Replace,
                        projected.as_ref().subrows(rs, rl),
                        e,
                        c::<T>(w),
                        par,
                    );
                }
                gemm(out.as_mut(), Accum::Add, outer.as_ref(), middle.as_ref(), minus, par);
            }
        }
        if let Some(Group { pairs, coefficients, target: Some(e), .. }) = &self.target_only {
            // Dᵀ t E = (Dᵀ (t L')) R'ᵀ, then D t Eᵀ = (D (t R')) L'ᵀ.
            for (first, last, transpose) in [(&e.l, &e.r, true), (&e.r, &e.l, false)] {
                let projected = product(t, first.as_ref(), par);
                let mut middle = zeros::<T>(d_a, e.width());
                for (k, (&pair, &w)) in pairs.iter().zip(coefficients).enumerate() {
                    let Op::Dense(d) = source[pair] else { continue };
                    let d = if transpose { d.as_ref().transpose() } else { d.as_ref() };
                    let (cs, cl) = e.span(k);
                    gemm(
                        middle.as_mut().subcols_mut(cs, cl),
                        Accum::Replace,
                        d,
                        projected.as_ref().subcols(cs, cl),
                        c::<T>(w),
                        par,
                    );
                }
                gemm(out.as_mut(), Accum::Add, middle.as_ref(), last.as_ref().transpose(), minus, par);
            }
        }
        for &(k, w) in &self.dense {
            let (Op::Dense(d), Op::Dense(e)) = (source[k], target[k]) else { continue };
            let w = c::<T>(-scale * w);
            let te = product(t, e.as_ref(), par);
            gemm(out.as_mut(), Accum::Add, d.as_ref().transpose(), te.as_ref(), w, par);
            let te = product(t, e.as_ref().transpose(), par);
            gemm(out.as_mut(), Accum::Add, d.as_ref(), te.as_ref(), w, par);
        }
    }
}

/// `Σ a ∘ b` over contiguous columns, in `f64`.
fn dot<T: Real>(a: &Mat<T>, b: &Mat<T>) -> f64 {
    (0..a.ncols())
        .map(|j| {
            a.col_as_slice(j).iter().zip(b.col_as_slice(j)).map(|(x, y)| x.to_f64() * y.to_f64()).sum::<f64>()
        })
        .sum()
}

/// `y += alpha · x` (same shape).
fn axpy<T: Real>(y: &mut Mat<T>, alpha: f64, x: &Mat<T>) {
    let a = c::<T>(alpha);
    for j in 0..y.ncols() {
        for (v, w) in y.col_as_slice_mut(j).iter_mut().zip(x.col_as_slice(j)) {
            *v += a * *w;
        }
    }
}

/// The entry-wise product of `t` with `factors` (`d_a × d_b`, column-major).
fn scaled<T: Real>(t: &Mat<T>, factors: &[T]) -> Mat<T> {
    let mut out = zeros(t.nrows(), t.ncols());
    let rows = t.nrows();
    for j in 0..t.ncols() {
        let f = &factors[j * rows..(j + 1) * rows];
        for ((o, v), s) in out.col_as_slice_mut(j).iter_mut().zip(t.col_as_slice(j)).zip(f) {
            *o = *v * *s;
        }
    }
    out
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

/// The source side in the eigenbasis of a symmetric matrix (a system's `S_A`, or `omega_a`
/// when the anchors are handled separately), with the source operators rotated into it and the
/// cross terms prepared for those and the target basis's operators.
struct SourceBasis<T: Real> {
    u: Mat<T>,
    /// Eigenvalues, largest first (clamped at 0).
    values: Vec<f64>,
    rotated: Vec<Op<T>>,
    cross: Cross<T>,
}

fn source_basis<T: Real>(
    matrix: &Mat<T>,
    prepared: &Prepared<T>,
    target: &TargetBasis<T>,
) -> Result<SourceBasis<T>, AlignError> {
    let eig = kernels::sym_eigen(matrix.as_ref(), "functional (source system)")?;
    let values = eig.values.iter().map(|v| v.to_f64().max(0.0)).collect();
    let rotated: Vec<Op<T>> = prepared.pairs.iter().map(|p| p.source.rotated(eig.vectors.as_ref())).collect();
    let cross = Cross::new(
        &rotated.iter().collect::<Vec<_>>(),
        &target.rotated.iter().collect::<Vec<_>>(),
        &prepared.coefficients(),
    );
    Ok(SourceBasis { u: eig.vectors, values, rotated, cross })
}

/// Rough cost, in multiply-adds, of a symmetric eigendecomposition of a `d × d` matrix with
/// `faer` (measured at about 30 matrix products' worth for d = 136…384), plus rotating the
/// source operators into its basis.
fn basis_cost<T: Real>(d: usize, prepared: &Prepared<T>) -> f64 {
    30.0 * (d as f64).powi(3) + prepared.pairs.iter().map(|p| p.source.rotation_cost()).sum::<f64>()
}

/// Multiply-adds of the anchors' part of a [`Rotated`] system with `n` anchors: setting up the
/// capacitance matrices, and `iterations` products and preconditioner applications.
fn anchors_cost(n: usize, d_a: usize, d_b: usize, iterations: f64) -> f64 {
    let (n, a, b) = (n as f64, d_a as f64, d_b as f64);
    b * a * n * (n + 1.0) / 2.0 + b * n.powi(3) * 1.5 + iterations * 4.0 * n * a * b
}

/// Relative change of the target side's eigenvalues `β_j` within which columns share a
/// capacitance matrix in the preconditioner (see [`Anchors`]).
const CAPACITANCE_SPREAD: f64 = 0.1;

/// Consecutive columns (of `β`, non-increasing) whose `floor + β_j` are within a factor
/// `(1 + spread)²`: `(start, end, β̃)`, with `floor + β̃` the geometric mean of the range's ends, so
/// `|β_j − β̃| ≤ spread · (floor + β_j)`. With `spread = 0`, equal values only.
fn spread_groups(beta: &[f64], floor: f64, spread: f64) -> Vec<(usize, usize, f64)> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < beta.len() {
        let high = floor + beta[start];
        let mut end = start + 1;
        while end < beta.len() && high <= (1.0 + spread).powi(2) * (floor + beta[end]) {
            end += 1;
        }
        let low = floor + beta[end - 1];
        groups.push((start, end, (high * low).sqrt() - floor));
        start = end;
    }
    groups
}

/// The anchors of a system in a basis where they are not diagonal: `Z = X U_A` (n × d_a), and
/// the Cholesky factors of the capacitance matrices `C = I + Z M⁻¹ Zᵀ` of the preconditioner,
/// where `M = diag(a_i + β̃)` is the rest of the Sylvester part for a group of columns of the
/// target basis whose eigenvalues `β_j` are within [`CAPACITANCE_SPREAD`] of `β̃`: the
/// preconditioner is the exact inverse of the Sylvester part with `β_j` replaced by `β̃` (so it is
/// positive definite and within that relative spread of exact), and costs one capacitance
/// matrix per group instead of per column.
struct Anchors<T: Real> {
    z: Mat<T>,
    /// `(start, end, factor)`: columns `start..end` use the capacitance factor.
    groups: Vec<(usize, usize, faer::linalg::solvers::Llt<T>)>,
}

impl<T: Real> Anchors<T> {
    /// `inv` holds `1 / m_i` for each group (`d_a` values each, in order).
    fn new(z: Mat<T>, inv: &[T], spans: &[(usize, usize)], par: Par) -> Result<Self, AlignError> {
        let (n, d_a) = (z.nrows(), z.ncols());
        // Row (p, q), p ≤ q, of `products` holds z_pi z_qi in column i; times 1 / m_i summed over
        // i, it is (Z M⁻¹ Zᵀ)_pq.
        let pairs = n * (n + 1) / 2;
        let mut products = zeros::<T>(pairs, d_a);
        for i in 0..d_a {
            let zi = z.col_as_slice(i);
            let column = products.col_as_slice_mut(i);
            let mut k = 0;
            for p in 0..n {
                for &zq in &zi[p..] {
                    column[k] = zi[p] * zq;
                    k += 1;
                }
            }
        }
        let inv = MatRef::from_column_major_slice(inv, d_a, spans.len());
        let sums = product(products.as_ref(), inv, par);
        let mut groups = Vec::with_capacity(spans.len());
        let mut capacitance = vec![T::default(); n * n];
        for (g, &(start, end)) in spans.iter().enumerate() {
            let column = sums.col_as_slice(g);
            let mut k = 0;
            for p in 0..n {
                for q in p..n {
                    let v = column[k] + if p == q { c::<T>(1.0) } else { c::<T>(0.0) };
                    capacitance[p + q * n] = v;
                    capacitance[q + p * n] = v;
                    k += 1;
                }
            }
            let llt = MatRef::from_column_major_slice(&capacitance, n, n)
                .llt(Side::Lower)
                .map_err(|_| singular("a capacitance matrix is not positive definite".to_owned()))?;
            groups.push((start, end, llt));
        }
        Ok(Anchors { z, groups })
    }
}

/// When conjugate gradient stops.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// Relative residual `‖b − A t‖_F / ‖b‖_F` at most this.
    Residual(f64),
    /// Relative residual in the preconditioner's inverse norm, `√(rᵀ P⁻¹ r) / √(bᵀ P⁻¹ b)`, at
    /// most this: with `P ≈ A` the relative error in the energy norm, so directions the system
    /// barely determines (where the held-out predictions are most sensitive) count more than in
    /// the plain residual.
    Energy(f64),
}

/// A system in a source basis and the target basis, where conjugate gradient runs:
/// `A(t) = m ∘ t + Zᵀ Z t − cross(t)`, with `m_ij = a_i + β_j` (`a`: the source side's diagonal,
/// `β = scale · omega_b`'s eigenvalues) and the anchors' `Zᵀ Z` only when they are not part of `a`.
/// The preconditioner inverts the Sylvester part `m ∘ t + Zᵀ Z t` exactly: entry-wise division,
/// corrected by the Woodbury identity with the anchors.
struct Rotated<'b, T: Real> {
    source: &'b SourceBasis<T>,
    target: &'b TargetBasis<T>,
    /// Weights of the cross terms: `scale · coefficient_k`.
    scale: f64,
    /// `m_ij` at `i + j d_a`.
    diag: Vec<T>,
    /// `1 / m_ij`, floored (with anchors, `β_j` replaced by its group's `β̃`).
    inv: Vec<T>,
    anchors: Option<Anchors<T>>,
    /// Parallelism of its products.
    par: Par,
}

impl<'b, T: Real> Rotated<'b, T> {
    /// `a` is the source side's diagonal (d_a values); the target side's is `scale` times the
    /// target basis's eigenvalues; `z`: anchors not in `a`, in the source basis.
    fn new(
        source: &'b SourceBasis<T>,
        target: &'b TargetBasis<T>,
        a: &[f64],
        scale: f64,
        z: Option<Mat<T>>,
        par: Par,
    ) -> Result<Self, AlignError> {
        let (d_a, d_b) = (a.len(), target.values.len());
        let beta: Vec<f64> = target.values.iter().map(|v| v * scale).collect();
        let largest = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let top = largest(a) + largest(&beta);
        if !(top > 0.0 && top.is_finite()) {
            return Err(singular(format!("the Sylvester part of the normal equations is {top:e}")));
        }
        // The preconditioner only needs to be positive definite: directions where the Sylvester
        // part vanishes (mu = 0 and rank-deficient anchors) are floored, not rejected.
        let floor = top * 1e3 * (d_a.max(d_b) as f64) * T::EPSILON;
        let mut diag = Vec::with_capacity(d_a * d_b);
        for b in &beta {
            diag.extend(a.iter().map(|a| c::<T>(a + b)));
        }
        let inverse = |b: f64| a.iter().map(move |a| c::<T>(1.0 / (a + b).max(floor)));
        let (inv, anchors) = match z {
            Some(z) if z.nrows() > 0 => {
                let smallest = a.iter().copied().fold(f64::INFINITY, f64::min).max(floor);
                let groups = spread_groups(&beta, smallest, CAPACITANCE_SPREAD);
                let mut inv = Vec::with_capacity(d_a * d_b);
                let mut per_group = Vec::with_capacity(d_a * groups.len());
                for &(start, end, b) in &groups {
                    per_group.extend(inverse(b));
                    for _ in start..end {
                        inv.extend(inverse(b));
                    }
                }
                let spans: Vec<(usize, usize)> = groups.iter().map(|g| (g.0, g.1)).collect();
                (inv, Some(Anchors::new(z, &per_group, &spans, par)?))
            }
            _ => {
                let mut inv = Vec::with_capacity(d_a * d_b);
                for &b in &beta {
                    inv.extend(inverse(b));
                }
                (inv, None)
            }
        };
        Ok(Rotated { source, target, scale, diag, inv, anchors, par })
    }

    /// `U_Aᵀ t U_B`.
    fn rotate_in(&self, t: MatRef<'_, T>) -> Mat<T> {
        let inner = product(self.source.u.as_ref().transpose(), t, self.par);
        product(inner.as_ref(), self.target.u.as_ref(), self.par)
    }

    /// `U_A t U_Bᵀ`.
    fn rotate_out(&self, t: MatRef<'_, T>) -> Mat<T> {
        let inner = product(self.source.u.as_ref(), t, self.par);
        product(inner.as_ref(), self.target.u.as_ref().transpose(), self.par)
    }

    /// The system applied to `t` (in the bases).
    fn apply(&self, t: &Mat<T>) -> Mat<T> {
        let mut out = scaled(t, &self.diag);
        if let Some(anchors) = &self.anchors {
            let zt = product(anchors.z.as_ref(), t.as_ref(), self.par);
            let one = c::<T>(1.0);
            gemm(out.as_mut(), Accum::Add, anchors.z.as_ref().transpose(), zt.as_ref(), one, self.par);
        }
        let source: Vec<&Op<T>> = self.source.rotated.iter().collect();
        let target: Vec<&Op<T>> = self.target.rotated.iter().collect();
        self.source.cross.apply(&mut out, t.as_ref(), (&source, &target), self.scale, self.par);
        out
    }

    /// The inverse of the Sylvester part (for anchors not in `a`, the preconditioner of
    /// [`Anchors`]) applied to `r`.
    fn precondition(&self, r: &Mat<T>) -> Mat<T> {
        let mut out = scaled(r, &self.inv);
        if let Some(Anchors { z, groups }) = &self.anchors {
            let mut w = product(z.as_ref(), out.as_ref(), self.par);
            for (start, end, llt) in groups {
                llt.solve_in_place(w.as_mut().subcols_mut(*start, end - start));
            }
            let correction = scaled(&product(z.as_ref().transpose(), w.as_ref(), self.par), &self.inv);
            axpy(&mut out, -1.0, &correction);
        }
        out
    }

    /// Preconditioned conjugate gradient for `apply(t) = b` (both in the bases), from `warm` or
    /// zero, until `stop` holds (checked on a recomputed residual) or after `max_iterations`.
    /// Returns the solution, the iterations and whether `stop` was reached.
    fn pcg(
        &self,
        b: &Mat<T>,
        warm: Option<Mat<T>>,
        stop: Stop,
        max_iterations: usize,
    ) -> Result<(Mat<T>, usize, bool), AlignError> {
        let (d_a, d_b) = (b.nrows(), b.ncols());
        let b_norm = dot(b, b).sqrt();
        if b_norm == 0.0 {
            return Ok((zeros(d_a, d_b), 0, true));
        }
        let (tolerance, scale) = match stop {
            Stop::Residual(tolerance) => (tolerance, b_norm),
            Stop::Energy(tolerance) => (tolerance, dot(b, &self.precondition(b)).sqrt()),
        };
        // ‖r‖ or √(rᵀ P⁻¹ r) relative to the same for b.
        let done = |r: &Mat<T>, rz: f64| {
            let size = match stop {
                Stop::Residual(_) => dot(r, r).sqrt(),
                Stop::Energy(_) => rz.max(0.0).sqrt(),
            };
            size <= tolerance * scale
        };
        let residual_of = |x: &Mat<T>| {
            let mut r = copy(b.as_ref());
            axpy(&mut r, -1.0, &self.apply(x));
            r
        };
        let (mut x, mut r) = match warm {
            Some(x) => {
                let r = residual_of(&x);
                (x, r)
            }
            None => (zeros(d_a, d_b), copy(b.as_ref())),
        };
        // Whether `r` was computed from `x` directly (not updated by the recursion).
        let mut fresh = true;
        let mut z = self.precondition(&r);
        let mut p = copy(z.as_ref());
        let mut rz = dot(&r, &z);
        let mut iterations = 0;
        let mut restarts = 0;
        loop {
            if done(&r, rz) {
                if fresh {
                    return Ok((x, iterations, true));
                }
                // Confirm on the recomputed residual; restart from it if rounding has drifted.
                r = residual_of(&x);
                z = self.precondition(&r);
                rz = dot(&r, &z);
                if done(&r, rz) {
                    return Ok((x, iterations, true));
                }
                restarts += 1;
                if restarts > 5 {
                    return Ok((x, iterations, false));
                }
                p = copy(z.as_ref());
            }
            if iterations >= max_iterations {
                return Ok((x, iterations, false));
            }
            let q = self.apply(&p);
            let pq = dot(&p, &q);
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
            let rz_next = dot(&r, &z);
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
    target: Option<TargetBasis<T>>,
}

impl<T: Real> Context<'_, T> {
    fn target(&mut self) -> Result<&TargetBasis<T>, AlignError> {
        if self.target.is_none() {
            self.target = Some(target_basis(self.prepared)?);
        }
        self.target.as_ref().ok_or_else(|| singular("no target basis".to_owned()))
    }
}

/// The solution from `t` (original basis): the residual of the normal equations, the optional
/// orthogonality projection, and the weights.
fn finish<T: Real>(
    system: System<T>,
    prepared: &Prepared<T>,
    t: Mat<T>,
    (lambda, mu): (f64, f64),
    (solver, iterations, converged): (Solver, usize, bool),
    options: &SolveOptions,
) -> Result<FunctionalSolution<T>, AlignError> {
    let rhs_norm = kernels::squared_norm(system.rhs.as_ref()).sqrt();
    let mut r = copy(system.rhs.as_ref());
    add_scaled(&mut r, apply_system(&system, prepared, t.as_ref()).as_ref(), -1.0);
    let residual = if rhs_norm > 0.0 { kernels::squared_norm(r.as_ref()).sqrt() / rhs_norm } else { 0.0 };
    if !residual.is_finite() {
        return Err(singular("the solution is not finite".to_owned()));
    }
    let mapped = if options.orthogonal { polar(t.as_ref())? } else { t };
    Ok(FunctionalSolution {
        t: mapped,
        lambda,
        mu,
        weights: system.weights,
        mu_absolute: system.mu_absolute,
        solver,
        iterations,
        residual,
        converged,
    })
}

/// Solves for given weights: exactly, or by conjugate gradient in the eigenbases of `S_A` and
/// `S_B`.
fn solve_prepared<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    context: &mut Context<'_, T>,
    lambda: f64,
    mu: f64,
    options: &SolveOptions,
) -> Result<FunctionalSolution<T>, AlignError> {
    let (d_a, d_b) = (x.ncols(), y.ncols());
    let prepared = context.prepared;
    let system = assemble(x, y, prepared, lambda, mu)?;
    let exact = match options.solver {
        Solver::Exact => true,
        Solver::Cg => false,
        Solver::Auto => d_a * d_b <= EXACT_LIMIT,
    };
    let tolerance = options.tolerance.unwrap_or_else(default_tolerance::<T>);
    if exact {
        let t = solve_exact(&system, prepared)?;
        return finish(system, prepared, t, (lambda, mu), (Solver::Exact, 0, true), options);
    }
    let target = context.target()?;
    let source = source_basis(&system.s_a, prepared, target)?;
    let rotated = Rotated::new(&source, target, &source.values, system.scale_b, None, kernels::par())?;
    let b = rotated.rotate_in(system.rhs.as_ref());
    let (t, iterations, converged) =
        rotated.pcg(&b, None, Stop::Residual(tolerance), options.max_iterations)?;
    let t = rotated.rotate_out(t.as_ref());
    finish(system, prepared, t, (lambda, mu), (Solver::Cg, iterations, converged), options)
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
    let mut context = Context { prepared: &prepared, target: None };
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
    let mut context = Context { prepared: &prepared, target: None };
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
    let tolerance = options.tolerance.unwrap_or(0.0).max(CV_TOLERANCE);
    let cv_options = SolveOptions {
        tolerance: Some(tolerance),
        max_iterations: options.max_iterations.min(CV_MAX_ITERATIONS),
        ..options.clone()
    };
    let run = if options.solver == Solver::Exact {
        CvRun { totals: cv_exact(x, y, &mut context, &grid, &held, options)?, iterations: 0, shared: None }
    } else {
        let shared = shared_basis_pays(&prepared, (n, x.ncols(), y.ncols()), &grid, &held);
        cv_cg(x, y, &mut context, &grid, &held, &cv_options, shared)?
    };
    let scores: Vec<(f64, f64, f64)> =
        grid.iter().zip(&run.totals).map(|(&(l, m), &total)| (l, m, total / n as f64)).collect();
    let mut best = 0;
    for (g, score) in scores.iter().enumerate() {
        if score.2 > scores[best].2 {
            best = g;
        }
    }
    let (l, m, score) = scores[best];
    let exact = match options.solver {
        Solver::Exact => true,
        Solver::Cg => false,
        Solver::Auto => x.ncols() * y.ncols() <= EXACT_LIMIT,
    };
    let solution = match run.shared {
        Some(shared) if !exact && shared.pays_for(n) => {
            let warm = shared.sums[best].as_ref().map(|sum| {
                let mut mean = copy(sum.as_ref());
                for j in 0..mean.ncols() {
                    for v in mean.col_as_slice_mut(j) {
                        *v *= c::<T>(1.0 / k as f64);
                    }
                }
                mean
            });
            solve_shared(x, y, &mut context, &shared, (l, m), options, warm)?
        }
        _ => solve_prepared(x, y, &mut context, l, m, options)?,
    };
    Ok((solution, CvReport { folds: k, scores, score, iterations: run.iterations }))
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

/// What cross-validation found: the summed held-out cosine of each grid point, the iterations
/// spent, and what the final solve may reuse.
struct CvRun<T: Real> {
    totals: Vec<f64>,
    iterations: usize,
    shared: Option<Shared<T>>,
}

/// The eigenbasis of `omega_a` that cross-validation shared between its folds and weights, with
/// the anchors in the two bases and the sum of the fold solutions at each grid point.
struct Shared<T: Real> {
    basis: SourceBasis<T>,
    /// `X U_A` (n × d_a).
    xu: Mat<T>,
    /// `Y U_B` (n × d_b).
    yu: Mat<T>,
    /// `U_Aᵀ ρ U_B`.
    rho: Mat<T>,
    sums: Vec<Option<Mat<T>>>,
}

impl<T: Real> Shared<T> {
    /// Whether solving on all `n` anchors in this basis is cheaper than a new eigenbasis.
    fn pays_for(&self, n: usize) -> bool {
        let (d_a, d_b) = (self.xu.ncols(), self.yu.ncols());
        anchors_cost(n, d_a, d_b, FINAL_ITERATIONS_ESTIMATE) < 30.0 * (d_a as f64).powi(3)
    }
}

/// The diagonal of the source side in the shared basis: `μ_abs + λ ‖X‖² ω_i`.
fn shared_diagonal(values: &[f64], mu_absolute: f64, scale: f64) -> Vec<f64> {
    values.iter().map(|w| mu_absolute + scale * w).collect()
}

/// The final solve in cross-validation's shared basis, the anchors handled by the Woodbury
/// identity, from `warm` (the mean of the fold solutions).
fn solve_shared<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    context: &mut Context<'_, T>,
    shared: &Shared<T>,
    (lambda, mu): (f64, f64),
    options: &SolveOptions,
    warm: Option<Mat<T>>,
) -> Result<FunctionalSolution<T>, AlignError> {
    let prepared = context.prepared;
    let system = assemble(x, y, prepared, lambda, mu)?;
    let target = context.target()?;
    let mut b = kernels::tmatmul(shared.xu.as_ref(), shared.yu.as_ref());
    add_scaled(&mut b, shared.rho.as_ref(), system.scale_b);
    let a = shared_diagonal(&shared.basis.values, system.mu_absolute, system.scale_b);
    let z = Some(copy(shared.xu.as_ref()));
    let rotated = Rotated::new(&shared.basis, target, &a, system.scale_b, z, kernels::par())?;
    let tolerance = options.tolerance.unwrap_or_else(default_tolerance::<T>);
    let (t, iterations, converged) =
        rotated.pcg(&b, warm, Stop::Residual(tolerance), options.max_iterations)?;
    let t = rotated.rotate_out(t.as_ref());
    finish(system, prepared, t, (lambda, mu), (Solver::Cg, iterations, converged), options)
}

/// Whether cross-validation should share one source basis between its folds and weights (see
/// [`cv_cg`]): only in `f64` (the capacitance matrices can be ill-conditioned) and with `mu > 0`
/// at every grid point, and when estimated cheaper than an eigendecomposition per fold and value
/// of `lambda`.
fn shared_basis_pays<T: Real>(
    prepared: &Prepared<T>,
    (n, d_a, d_b): (usize, usize, usize),
    grid: &[(f64, f64)],
    held: &[Vec<usize>],
) -> bool {
    let lambdas = 1 + grid.windows(2).filter(|w| w[0].0 != w[1].0).count();
    let largest_train = n - held.iter().map(Vec::len).min().unwrap_or(0);
    let basis = basis_cost(d_a, prepared);
    let per_fold = lambdas as f64 * basis;
    let woodbury = grid.len() as f64 * anchors_cost(largest_train, d_a, d_b, CV_ITERATIONS_ESTIMATE);
    T::EPSILON < 1e-10
        && grid.iter().all(|&(_, m)| m > 0.0)
        && basis + held.len() as f64 * woodbury < held.len() as f64 * per_fold
}

/// Cross-validation with conjugate gradient, in one of two ways:
/// - `shared`: one eigendecomposition of `omega_a` for all folds and weights; the training
///   anchors enter each fold's system and preconditioner through the Woodbury identity (see
///   [`Anchors`]), so no fold needs an eigendecomposition of its own — best with few anchors;
/// - otherwise, per fold and value of `lambda`: one eigendecomposition of the fold's `S_A`
///   (another `mu` only shifts its eigenvalues).
///
/// Within a fold each solve starts from the previous grid point's solution; the folds run in
/// parallel (faer's global parallelism). Returns the summed held-out cosine of each grid point
/// (in grid order: `lambda` outer, `mu` inner), the iterations spent and, for the shared basis,
/// what the final solve may reuse.
fn cv_cg<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    context: &mut Context<'_, T>,
    grid: &[(f64, f64)],
    held: &[Vec<usize>],
    options: &SolveOptions,
    shared: bool,
) -> Result<CvRun<T>, AlignError> {
    let (n, d_a, d_b) = (x.nrows(), x.ncols(), y.ncols());
    let prepared = context.prepared;
    let tolerance = options.tolerance.unwrap_or(CV_TOLERANCE);
    let stop = Stop::Energy(tolerance);
    let target = context.target()?;
    let train_of = |rows: &[usize]| -> Vec<usize> { (0..n).filter(|i| !rows.contains(i)).collect() };
    let folds: Vec<&Vec<usize>> = held.iter().collect();
    let mut run = CvRun { totals: vec![0.0; grid.len()], iterations: 0, shared: None };
    if shared {
        let basis = source_basis(&prepared.omega_a, prepared, target)?;
        let xu = kernels::matmul(x, basis.u.as_ref());
        let yu = kernels::matmul(y, target.u.as_ref());
        let rho = kernels::matmul(
            kernels::tmatmul(basis.u.as_ref(), prepared.rho.as_ref()).as_ref(),
            target.u.as_ref(),
        );
        let fold = |rows: &Vec<usize>, par: Par| -> Result<FoldRun<T>, AlignError> {
            let par = sequential_below_two(par);
            let train = train_of(rows);
            let z = select_rows(xu.as_ref(), &train);
            let base = kernels::tmatmul(z.as_ref(), select_rows(yu.as_ref(), &train).as_ref());
            let (h, yh) = (select_rows(xu.as_ref(), rows), select_rows(yu.as_ref(), rows));
            let xh = select_rows(x, rows);
            let norm = anchor_norm(select_rows(x, &train).as_ref());
            let mut out = FoldRun::new(grid.len());
            let mut b = zeros::<T>(d_a, d_b);
            for (g, &(lambda, mu)) in grid.iter().enumerate() {
                let scale = lambda * norm;
                if g == 0 || grid[g - 1].0 != lambda {
                    b = copy(base.as_ref());
                    add_scaled(&mut b, rho.as_ref(), scale);
                }
                let a = shared_diagonal(&basis.values, mu * norm / d_a as f64, scale);
                let system = Rotated::new(&basis, target, &a, scale, Some(copy(z.as_ref())), par)?;
                let warm = out.solutions.last().map(|t| copy(t.as_ref()));
                let (t, spent, _) = system.pcg(&b, warm, stop, options.max_iterations)?;
                out.iterations += spent;
                out.totals[g] = held_out(&system, &t, (&h, &xh, &yh), options.orthogonal)?;
                out.solutions.push(t);
            }
            Ok(out)
        };
        let mut sums: Vec<Option<Mat<T>>> = vec![None; grid.len()];
        for result in parallel_map(folds, &fold, kernels::par()) {
            let result = result?;
            run.add(&result);
            for (sum, t) in sums.iter_mut().zip(&result.solutions) {
                match sum {
                    Some(sum) => axpy(sum, 1.0, t),
                    slot => *slot = Some(copy(t.as_ref())),
                }
            }
        }
        run.shared = Some(Shared { basis, xu, yu, rho, sums });
        return Ok(run);
    }
    let fold = |rows: &Vec<usize>, par: Par| -> Result<FoldRun<T>, AlignError> {
        let par = sequential_below_two(par);
        let train = train_of(rows);
        let anchors = Gram::new(select_rows(x, &train).as_ref(), select_rows(y, &train).as_ref())?;
        let xh = select_rows(x, rows);
        // Held-out targets in the eigenbasis of S_B: cosines are unchanged by it.
        let yh = kernels::matmul(select_rows(y, rows).as_ref(), target.u.as_ref());
        let mu_scale = anchors.norm / d_a as f64;
        let mut out = FoldRun::new(grid.len());
        let mut g = 0;
        while g < grid.len() {
            let (lambda, first_mu) = grid[g];
            let system = anchors.system(prepared, lambda, first_mu);
            let basis = source_basis(&system.s_a, prepared, target)?;
            let b = kernels::matmul(
                kernels::tmatmul(basis.u.as_ref(), system.rhs.as_ref()).as_ref(),
                target.u.as_ref(),
            );
            let h = kernels::matmul(xh.as_ref(), basis.u.as_ref());
            let mut warm: Option<Mat<T>> = None;
            while g < grid.len() && grid[g].0 == lambda {
                let shift = (grid[g].1 - first_mu) * mu_scale;
                let a: Vec<f64> = basis.values.iter().map(|v| v + shift).collect();
                let rotated = Rotated::new(&basis, target, &a, system.scale_b, None, par)?;
                let (t, spent, _) = rotated.pcg(&b, warm.take(), stop, options.max_iterations)?;
                out.iterations += spent;
                out.totals[g] = held_out(&rotated, &t, (&h, &xh, &yh), options.orthogonal)?;
                warm = Some(t);
                g += 1;
            }
        }
        Ok(out)
    };
    for result in parallel_map(folds, &fold, kernels::par()) {
        run.add(&result?);
    }
    Ok(run)
}

/// `Par::Seq` for a single thread (`Par::Rayon(1)` only adds overhead).
fn sequential_below_two(par: Par) -> Par {
    if faer::utils::thread::parallelism_degree(par) < 2 {
        Par::Seq
    } else {
        par
    }
}

/// One fold's part of cross-validation: the held-out cosine sum and (shared basis only) the
/// solution at each grid point, and the iterations spent.
struct FoldRun<T: Real> {
    totals: Vec<f64>,
    iterations: usize,
    solutions: Vec<Mat<T>>,
}

impl<T: Real> FoldRun<T> {
    fn new(points: usize) -> Self {
        FoldRun { totals: vec![0.0; points], iterations: 0, solutions: Vec::with_capacity(points) }
    }
}

impl<T: Real> CvRun<T> {
    fn add(&mut self, fold: &FoldRun<T>) {
        for (total, v) in self.totals.iter_mut().zip(&fold.totals) {
            *total += v;
        }
        self.iterations += fold.iterations;
    }
}

/// The summed cosine between the held-out anchors mapped by `t` (a solution in the system's
/// bases) and their targets: `h` the held-out sources in the source basis, `xh` the same in the
/// original basis (for the orthogonality projection), `yh` the targets in the target basis.
fn held_out<T: Real>(
    system: &Rotated<'_, T>,
    t: &Mat<T>,
    (h, xh, yh): (&Mat<T>, &Mat<T>, &Mat<T>),
    orthogonal: bool,
) -> Result<f64, AlignError> {
    let predicted = if orthogonal {
        let projected = polar(system.rotate_out(t.as_ref()).as_ref())?;
        let predicted = kernels::matmul(xh.as_ref(), projected.as_ref());
        kernels::matmul(predicted.as_ref(), system.target.u.as_ref())
    } else {
        kernels::matmul(h.as_ref(), t.as_ref())
    };
    Ok(cosine_sum(predicted.as_ref(), yh.as_ref()))
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
