//! Functional alignment: the map `T` (d_a × d_b) that fits the anchor pairs and commutes with
//! corresponding operators of the two spaces — its objective, the normalisation of its weights,
//! its two solvers (exact and preconditioned conjugate gradient), the optional orthogonality
//! projection, and the cross-validation of its weights on the anchors. This module has the
//! objective, its options and results, and [`solve`]; `system` assembles the normal equations,
//! `exact` and `cg` solve them, `cv` chooses the weights.
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

mod cg;
mod cv;
mod exact;
mod system;
#[cfg(test)]
mod tests;

use cg::*;
pub use cv::solve_cv;
use exact::*;
use system::*;

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
    /// Where the conjugate gradient starts (`d_a × d_b`; zero when `None` or of another shape): a
    /// solution of a nearby problem, such as the previous round of refinement (see
    /// [`crate::WarmStart`]). The solution is the same to the tolerance; only the iterations
    /// spent change. Not used by the exact solver or by cross-validation's fold solves.
    pub start: Option<Mat<f64>>,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            solver: Solver::Auto,
            orthogonal: false,
            tolerance: None,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            start: None,
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

/// The polar factor `U Vᵀ` of `t = U Σ Vᵀ` (thin SVD): the nearest matrix with orthonormal columns
/// (rows when `t` is wide).
fn polar<T: Real>(t: MatRef<'_, T>) -> Result<Mat<T>, AlignError> {
    let svd = kernels::thin_svd(t, "functional (orthogonal projection)")?;
    Ok(kernels::matmul(svd.u.as_ref(), svd.v.as_ref().transpose()))
}

fn check_inputs<T: Real>(x: MatRef<'_, T>, y: MatRef<'_, T>, lambda: f64, mu: f64) -> Result<(), AlignError> {
    crate::linear::check_shapes(x, y)?;
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
    let start = options
        .start
        .as_ref()
        .filter(|s| s.nrows() == d_a && s.ncols() == d_b)
        .map(|s| rotated.rotate_in(Mat::from_fn(d_a, d_b, |i, j| c::<T>(s[(i, j)])).as_ref()));
    let (t, iterations, converged) =
        rotated.pcg(&b, start, Stop::Residual(tolerance), options.max_iterations)?;
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
