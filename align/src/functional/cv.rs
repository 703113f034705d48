//! Choosing `lambda` and `mu` by cross-validation on the anchors: folds, the held-out score, and
//! the shared bases that let every fold and grid point reuse one eigendecomposition.

use super::*;

/// Sum over rows of the cosine similarity between row i of `a` and row i of `b` (0 for a zero row).
pub(super) fn cosine_sum<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> f64 {
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
pub(super) fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut fold = vec![0; n];
    for (i, &row) in order.iter().enumerate() {
        fold[row] = i % k;
    }
    fold
}

/// Solves the functional problem, choosing an unset `lambda` (from [`LAMBDA_GRID`]) and an unset
/// `mu` (from [`MU_GRID`]) by cross-validation on the anchors (see the [module docs](super)); `seed`
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
        start: None,
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
pub(super) fn cv_exact<T: Real>(
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
pub(super) struct CvRun<T: Real> {
    pub(super) totals: Vec<f64>,
    pub(super) iterations: usize,
    pub(super) shared: Option<Shared<T>>,
}

/// The eigenbasis of `omega_a` that cross-validation shared between its folds and weights, with
/// the anchors in the two bases and the sum of the fold solutions at each grid point.
pub(super) struct Shared<T: Real> {
    pub(super) basis: SourceBasis<T>,
    /// `X U_A` (n × d_a).
    pub(super) xu: Mat<T>,
    /// `Y U_B` (n × d_b).
    pub(super) yu: Mat<T>,
    /// `U_Aᵀ ρ U_B`.
    pub(super) rho: Mat<T>,
    pub(super) sums: Vec<Option<Mat<T>>>,
}

impl<T: Real> Shared<T> {
    /// Whether solving on all `n` anchors in this basis is cheaper than a new eigenbasis.
    pub(super) fn pays_for(&self, n: usize) -> bool {
        let (d_a, d_b) = (self.xu.ncols(), self.yu.ncols());
        anchors_cost(n, d_a, d_b, FINAL_ITERATIONS_ESTIMATE) < 30.0 * (d_a as f64).powi(3)
    }
}

/// The diagonal of the source side in the shared basis: `μ_abs + λ ‖X‖² ω_i`.
pub(super) fn shared_diagonal(values: &[f64], mu_absolute: f64, scale: f64) -> Vec<f64> {
    values.iter().map(|w| mu_absolute + scale * w).collect()
}

/// The final solve in cross-validation's shared basis, the anchors handled by the Woodbury
/// identity, from `warm` (the mean of the fold solutions).
pub(super) fn solve_shared<T: Real>(
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
pub(super) fn shared_basis_pays<T: Real>(
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
pub(super) fn cv_cg<T: Real>(
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
pub(super) fn sequential_below_two(par: Par) -> Par {
    if faer::utils::thread::parallelism_degree(par) < 2 {
        Par::Seq
    } else {
        par
    }
}

/// One fold's part of cross-validation: the held-out cosine sum and (shared basis only) the
/// solution at each grid point, and the iterations spent.
pub(super) struct FoldRun<T: Real> {
    pub(super) totals: Vec<f64>,
    pub(super) iterations: usize,
    pub(super) solutions: Vec<Mat<T>>,
}

impl<T: Real> FoldRun<T> {
    pub(super) fn new(points: usize) -> Self {
        FoldRun { totals: vec![0.0; points], iterations: 0, solutions: Vec::with_capacity(points) }
    }
}

impl<T: Real> CvRun<T> {
    pub(super) fn add(&mut self, fold: &FoldRun<T>) {
        for (total, v) in self.totals.iter_mut().zip(&fold.totals) {
            *total += v;
        }
        self.iterations += fold.iterations;
    }
}

/// The summed cosine between the held-out anchors mapped by `t` (a solution in the system's
/// bases) and their targets: `h` the held-out sources in the source basis, `xh` the same in the
/// original basis (for the orthogonality projection), `yh` the targets in the target basis.
pub(super) fn held_out<T: Real>(
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
