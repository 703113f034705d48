//! Known-answer tests of the functional solver: recovery of a planted map from few anchors and
//! commuting operators, solver agreement, the orthogonality projection, the shuffle control and
//! cross-validation.

use super::cv::{cv_cg, folds};
use super::*;
use crate::method::MethodSpec;
use crate::operator::fit_action;
use crate::testing::{gaussian, max_diff, orthogonal, rng};
use faer::linalg::solvers::Solve;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn rel_err(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let diff = Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] - b[(i, j)]);
    kernels::squared_norm(diff.as_ref()).sqrt() / kernels::squared_norm(b).sqrt()
}

fn row(r: &mut ChaCha8Rng, d: usize) -> Vec<f64> {
    gaussian(r, 1, d).row(0).iter().copied().collect()
}

fn as_row(v: &[f64]) -> Mat<f64> {
    Mat::from_fn(1, v.len(), |_, j| v[j])
}

/// `a⁻¹ b`.
fn solve_left(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = b.to_owned();
    a.partial_piv_lu().solve_in_place(out.as_mut());
    out
}

/// Anchors, a planted map `T*` and operator pairs that commute with it exactly.
struct Planted {
    x: Mat<f64>,
    y: Mat<f64>,
    t: Mat<f64>,
    sources: Vec<OperatorAction<f64>>,
    targets: Vec<OperatorAction<f64>>,
}

impl Planted {
    fn pairs(&self) -> Vec<OperatorPair<'_, f64>> {
        self.sources
            .iter()
            .zip(&self.targets)
            .map(|(source, target)| OperatorPair { source, target })
            .collect()
    }

    /// The target operators paired with a derangement of the source operators.
    fn shuffled(&self, seed: u64) -> Vec<OperatorPair<'_, f64>> {
        let sigma = derangement(self.sources.len(), seed);
        (0..self.sources.len())
            .map(|k| OperatorPair { source: &self.sources[sigma[k]], target: &self.targets[k] })
            .collect()
    }

    fn with_noise(mut self, r: &mut ChaCha8Rng, level: f64) -> Self {
        let noise = gaussian(r, self.y.nrows(), self.y.ncols());
        let scale = level
            * (kernels::squared_norm(self.y.as_ref()) / (self.y.nrows() * self.y.ncols()) as f64).sqrt();
        self.y = Mat::from_fn(self.y.nrows(), self.y.ncols(), |i, j| self.y[(i, j)] + scale * noise[(i, j)]);
        self
    }
}

/// Square case: `G_k = T*⁻¹ F_k T*` with random `F_k` (distinct eigenvalues almost surely),
/// `b_k = a_k T*`; `n` anchors with `Y = X T*`.
fn square(seed: u64, d: usize, n: usize, k: usize) -> Planted {
    let mut r = rng(seed);
    let t = gaussian(&mut r, d, d);
    let mut sources = Vec::new();
    let mut targets = Vec::new();
    for _ in 0..k {
        let f = gaussian(&mut r, d, d);
        let g = solve_left(t.as_ref(), kernels::matmul(f.as_ref(), t.as_ref()).as_ref());
        let a = row(&mut r, d);
        let b: Vec<f64> = kernels::matmul(as_row(&a).as_ref(), t.as_ref()).row(0).iter().copied().collect();
        sources.push(OperatorAction::from_parts(f, a).unwrap());
        targets.push(OperatorAction::from_parts(g, b).unwrap());
    }
    let x = gaussian(&mut r, n, d);
    let y = kernels::matmul(x.as_ref(), t.as_ref());
    Planted { x, y, t, sources, targets }
}

/// Rectangular case (`d_a > d_b`): the source is the target plus `d_a − d_b` extra dimensions.
/// With `Q` orthogonal (d_a × d_a) and `R` invertible (d_b × d_b), `T* = Q [I; 0] R` and
/// `F_k = Q [[R G_k R⁻¹, C_k], [0, H_k]] Qᵀ`, so `F_k T* = T* G_k`; `a_k = [b_k R⁻¹, w_k] Qᵀ`, so
/// `a_k T* = b_k`.
fn rectangular(seed: u64, d_a: usize, d_b: usize, n: usize, k: usize) -> Planted {
    let mut r = rng(seed);
    let q = orthogonal(&mut r, d_a);
    let rr = gaussian(&mut r, d_b, d_b);
    let top = q.as_ref().subcols(0, d_b).to_owned();
    let t = kernels::matmul(top.as_ref(), rr.as_ref());
    let mut sources = Vec::new();
    let mut targets = Vec::new();
    for _ in 0..k {
        let g = gaussian(&mut r, d_b, d_b);
        // R G R⁻¹ = (R⁻ᵀ (R G)ᵀ)ᵀ.
        let rg = kernels::matmul(rr.as_ref(), g.as_ref());
        let rgr =
            solve_left(rr.as_ref().transpose(), rg.as_ref().transpose()).as_ref().transpose().to_owned();
        let extra = gaussian(&mut r, d_a, d_a);
        let block = Mat::from_fn(d_a, d_a, |i, j| {
            if i < d_b && j < d_b {
                rgr[(i, j)]
            } else if i >= d_b && j < d_b {
                0.0
            } else {
                extra[(i, j)]
            }
        });
        let f = kernels::matmul(kernels::matmul(q.as_ref(), block.as_ref()).as_ref(), q.as_ref().transpose());
        let b = row(&mut r, d_b);
        // b R⁻¹ = (R⁻ᵀ bᵀ)ᵀ.
        let br = solve_left(rr.as_ref().transpose(), as_row(&b).as_ref().transpose());
        let w = row(&mut r, d_a - d_b);
        let u = Mat::from_fn(1, d_a, |_, j| if j < d_b { br[(j, 0)] } else { w[j - d_b] });
        let a: Vec<f64> =
            kernels::matmul(u.as_ref(), q.as_ref().transpose()).row(0).iter().copied().collect();
        sources.push(OperatorAction::from_parts(f, a).unwrap());
        targets.push(OperatorAction::from_parts(g, b).unwrap());
    }
    let x = gaussian(&mut r, n, d_a);
    let y = kernels::matmul(x.as_ref(), t.as_ref());
    Planted { x, y, t, sources, targets }
}

fn least_squares_error(p: &Planted) -> f64 {
    let map = crate::Fit::new(&MethodSpec::LeastSquares {}).run(p.x.as_ref(), p.y.as_ref()).unwrap().map;
    rel_err(map.source.matrix.as_ref(), p.t.as_ref())
}

fn fixed(p: &Planted, pairs: &[OperatorPair<'_, f64>], options: &SolveOptions) -> FunctionalSolution<f64> {
    solve(p.x.as_ref(), p.y.as_ref(), pairs, 1e3, 1e-10, options).unwrap()
}

#[test]
fn recovers_a_planted_square_map_from_five_anchors() {
    let p = square(201, 20, 5, 3);
    let solution = fixed(&p, &p.pairs(), &SolveOptions::default());
    let functional = rel_err(solution.t.as_ref(), p.t.as_ref());
    let least_squares = least_squares_error(&p);
    eprintln!("square 20 → 20, 5 anchors: functional {functional:.2e}, least squares {least_squares:.3}");
    assert_eq!(solution.solver, Solver::Exact);
    assert!(functional <= 1e-5, "functional error {functional:e}");
    assert!(least_squares >= 0.5, "least squares error {least_squares}");
    for (a, b) in p.sources.iter().zip(&p.targets) {
        assert!(commutation_error(p.t.as_ref(), a, b) < 1e-12);
        assert!(commutation_error(solution.t.as_ref(), a, b) < 1e-5);
    }
    // Conjugate gradient finds the same map.
    let options = SolveOptions { solver: Solver::Cg, ..SolveOptions::default() };
    let cg = fixed(&p, &p.pairs(), &options);
    eprintln!("  cg: {} iterations, residual {:.1e}", cg.iterations, cg.residual);
    assert!(cg.converged && cg.residual <= 1e-10);
    assert!(rel_err(cg.t.as_ref(), p.t.as_ref()) <= 1e-5);
}

#[test]
fn recovers_a_planted_rectangular_map_from_five_anchors() {
    let p = rectangular(202, 30, 12, 5, 3);
    for (a, b) in p.sources.iter().zip(&p.targets) {
        assert!(commutation_error(p.t.as_ref(), a, b) < 1e-12, "the construction commutes");
        let offset = kernels::matmul(as_row(&a.c).as_ref(), p.t.as_ref());
        assert!(max_diff(offset.as_ref(), as_row(&b.c).as_ref()) < 1e-10);
    }
    let solution = fixed(&p, &p.pairs(), &SolveOptions::default());
    let functional = rel_err(solution.t.as_ref(), p.t.as_ref());
    let least_squares = least_squares_error(&p);
    eprintln!(
        "rectangular 30 → 12, 5 anchors: functional {functional:.2e}, least squares {least_squares:.3}"
    );
    assert_eq!((solution.t.nrows(), solution.t.ncols()), (30, 12));
    assert!(functional <= 1e-5, "functional error {functional:e}");
    assert!(least_squares >= 0.5, "least squares error {least_squares}");
    // And the other way round (12 → 30) needs no special case: transpose the roles.
    let wide = solve(
        p.y.as_ref(),
        p.x.as_ref(),
        &p.targets
            .iter()
            .zip(&p.sources)
            .map(|(source, target)| OperatorPair { source, target })
            .collect::<Vec<_>>(),
        1.0,
        1e-3,
        &SolveOptions { solver: Solver::Cg, ..SolveOptions::default() },
    )
    .unwrap();
    assert_eq!((wide.t.nrows(), wide.t.ncols()), (12, 30));
    assert!(wide.converged);
}

#[test]
fn with_noisy_anchors_functional_beats_least_squares_clearly() {
    let mut r = rng(203);
    let p = square(204, 20, 8, 3).with_noise(&mut r, 0.1);
    let (solution, cv) =
        solve_cv(p.x.as_ref(), p.y.as_ref(), &p.pairs(), None, None, &SolveOptions::default(), 7).unwrap();
    let functional = rel_err(solution.t.as_ref(), p.t.as_ref());
    let least_squares = least_squares_error(&p);
    eprintln!(
        "noisy 20 → 20, 8 anchors: functional {functional:.3} (λ = {}, μ = {}), least squares {least_squares:.3}",
        solution.lambda, solution.mu
    );
    assert!(functional < 0.25 * least_squares, "{functional} vs {least_squares}");
    assert!(functional < 0.1, "{functional}");
    assert_eq!(cv.folds, 5);
}

#[test]
fn shuffled_correspondences_lose_the_gain() {
    let p = square(201, 20, 5, 3);
    let shuffled = p.shuffled(11);
    for (k, pair) in shuffled.iter().enumerate() {
        assert!(!std::ptr::eq(pair.source, &p.sources[k]), "a derangement moves every operator");
    }
    let solution = fixed(&p, &shuffled, &SolveOptions::default());
    let error = rel_err(solution.t.as_ref(), p.t.as_ref());
    eprintln!("shuffled operators: error {error:.3}");
    assert!(error >= 0.3, "{error}");
    let p = rectangular(202, 30, 12, 5, 3);
    let solution = fixed(&p, &p.shuffled(12), &SolveOptions::default());
    let error = rel_err(solution.t.as_ref(), p.t.as_ref());
    eprintln!("shuffled operators (30 → 12): error {error:.3}");
    assert!(error >= 0.3, "{error}");
}

#[test]
fn derangements_have_no_fixed_points_and_depend_only_on_the_seed() {
    for k in 2..9 {
        for seed in 0..20 {
            let sigma = derangement(k, seed);
            let mut sorted = sigma.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..k).collect::<Vec<_>>());
            assert!(sigma.iter().enumerate().all(|(i, &s)| i != s), "{sigma:?}");
            assert_eq!(sigma, derangement(k, seed));
        }
    }
    assert_eq!(derangement(1, 3), vec![0]);
}

#[test]
fn orthogonal_option_recovers_a_rotation_with_orthonormal_columns() {
    let mut r = rng(205);
    let d = 20;
    let q = orthogonal(&mut r, d);
    let mut sources = Vec::new();
    let mut targets = Vec::new();
    for _ in 0..3 {
        let f = gaussian(&mut r, d, d);
        let g = kernels::matmul(kernels::tmatmul(q.as_ref(), f.as_ref()).as_ref(), q.as_ref());
        let a = row(&mut r, d);
        let b = kernels::matmul(as_row(&a).as_ref(), q.as_ref()).row(0).iter().copied().collect();
        sources.push(OperatorAction::from_parts(f, a).unwrap());
        targets.push(OperatorAction::from_parts(g, b).unwrap());
    }
    let x = gaussian(&mut r, 5, d);
    let y = kernels::matmul(x.as_ref(), q.as_ref());
    let p = Planted { x, y, t: q.clone(), sources, targets };
    let options = SolveOptions { orthogonal: true, ..SolveOptions::default() };
    let solution = fixed(&p, &p.pairs(), &options);
    let gram = kernels::tmatmul(solution.t.as_ref(), solution.t.as_ref());
    let orthonormality = max_diff(gram.as_ref(), Mat::<f64>::identity(d, d).as_ref());
    let error = rel_err(solution.t.as_ref(), q.as_ref());
    eprintln!("orthogonal: ‖TᵀT − I‖_max {orthonormality:.1e}, error {error:.1e}");
    assert!(orthonormality < 1e-10 && error < 1e-5, "{orthonormality:e} {error:e}");
    // Rectangular: orthonormal columns (d_a > d_b) or rows (d_a < d_b).
    let p = rectangular(206, 30, 12, 5, 3);
    let tall = fixed(&p, &p.pairs(), &options);
    let gram = kernels::tmatmul(tall.t.as_ref(), tall.t.as_ref());
    assert!(max_diff(gram.as_ref(), Mat::<f64>::identity(12, 12).as_ref()) < 1e-10);
    let swapped: Vec<OperatorPair<'_, f64>> =
        p.targets.iter().zip(&p.sources).map(|(source, target)| OperatorPair { source, target }).collect();
    let wide = solve(p.y.as_ref(), p.x.as_ref(), &swapped, 1.0, 1e-2, &options).unwrap();
    let outer = kernels::matmul(wide.t.as_ref(), wide.t.as_ref().transpose());
    assert!(max_diff(outer.as_ref(), Mat::<f64>::identity(12, 12).as_ref()) < 1e-10);
}

/// `A(T) − R` written out with the unshifted operators, independently of the solver's code.
fn normal_equation_residual(
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    pairs: &[OperatorPair<'_, f64>],
    weights: &[f64],
    mu: f64,
    t: MatRef<'_, f64>,
) -> f64 {
    let mut lhs = kernels::matmul(kernels::tmatmul(x, x).as_ref(), t);
    let mut rhs = kernels::tmatmul(x, y);
    let add = |m: &mut Mat<f64>, other: Mat<f64>, s: f64| {
        for j in 0..m.ncols() {
            for i in 0..m.nrows() {
                m[(i, j)] += s * other[(i, j)];
            }
        }
    };
    add(&mut lhs, t.to_owned(), mu);
    for (pair, &w) in pairs.iter().zip(weights) {
        let (f, g) = (pair.source.f.as_ref(), pair.target.f.as_ref());
        let (a, b) = (as_row(&pair.source.c), as_row(&pair.target.c));
        let ft = kernels::matmul(f, t);
        let tg = kernels::matmul(t, g);
        add(&mut lhs, kernels::tmatmul(f, ft.as_ref()), w);
        add(&mut lhs, kernels::tmatmul(a.as_ref(), kernels::matmul(a.as_ref(), t).as_ref()), w);
        add(&mut lhs, kernels::matmul(tg.as_ref(), g.transpose()), w);
        add(&mut lhs, kernels::tmatmul(f, tg.as_ref()), -w);
        add(&mut lhs, kernels::matmul(ft.as_ref(), g.transpose()), -w);
        add(&mut rhs, kernels::tmatmul(a.as_ref(), b.as_ref()), w);
    }
    rel_err(lhs.as_ref(), rhs.as_ref())
}

/// Anchors `x`, `y`, then source and target actions.
type Problem = (Mat<f64>, Mat<f64>, Vec<OperatorAction<f64>>, Vec<OperatorAction<f64>>);

/// A random problem: anchors unrelated to the operators, operators near the identity.
fn random_problem(seed: u64, n: usize, d_a: usize, d_b: usize, k: usize) -> Problem {
    let mut r = rng(seed);
    let x = gaussian(&mut r, n, d_a);
    let y = gaussian(&mut r, n, d_b);
    let near_identity = |r: &mut ChaCha8Rng, d: usize| {
        let g = gaussian(r, d, d);
        let scale = 0.5 / (d as f64).sqrt();
        Mat::from_fn(d, d, |i, j| if i == j { 1.0 } else { 0.0 } + scale * g[(i, j)])
    };
    let mut sources = Vec::new();
    let mut targets = Vec::new();
    for _ in 0..k {
        let (f, a) = (near_identity(&mut r, d_a), row(&mut r, d_a));
        let (g, b) = (near_identity(&mut r, d_b), row(&mut r, d_b));
        sources.push(OperatorAction::from_parts(f, a).unwrap());
        targets.push(OperatorAction::from_parts(g, b).unwrap());
    }
    (x, y, sources, targets)
}

#[test]
fn exact_and_conjugate_gradient_solvers_agree() {
    let (x, y, sources, targets) = random_problem(207, 30, 15, 10, 2);
    let pairs: Vec<OperatorPair<'_, f64>> =
        sources.iter().zip(&targets).map(|(source, target)| OperatorPair { source, target }).collect();
    let exact = SolveOptions { solver: Solver::Exact, ..SolveOptions::default() };
    let cg = SolveOptions { solver: Solver::Cg, ..SolveOptions::default() };
    for (lambda, mu) in [(1.0, 1e-2), (100.0, 1e-3), (0.0, 0.1)] {
        let a = solve(x.as_ref(), y.as_ref(), &pairs, lambda, mu, &exact).unwrap();
        let b = solve(x.as_ref(), y.as_ref(), &pairs, lambda, mu, &cg).unwrap();
        let diff = rel_err(b.t.as_ref(), a.t.as_ref());
        let residual =
            normal_equation_residual(x.as_ref(), y.as_ref(), &pairs, &a.weights, a.mu_absolute, a.t.as_ref());
        eprintln!(
            "λ = {lambda}, μ = {mu}: exact vs cg {diff:.1e} ({} iterations), exact residual {residual:.1e}",
            b.iterations
        );
        assert!(diff < 1e-8, "{diff:e}");
        assert!(residual < 1e-10, "{residual:e}");
        assert_eq!((a.iterations, b.solver), (0, Solver::Cg));
    }
    // Operators fitted from few pairs are kept factored (low rank); the answer is the same.
    let mut r = rng(208);
    let fit = |r: &mut ChaCha8Rng, d: usize| {
        let input = gaussian(r, 4, d);
        let output = gaussian(r, 4, d);
        fit_action(input.as_ref(), output.as_ref()).unwrap()
    };
    let (x, y) = (gaussian(&mut r, 30, 45), gaussian(&mut r, 30, 30));
    let sources: Vec<_> = (0..3).map(|_| fit(&mut r, 45)).collect();
    let targets: Vec<_> = (0..3).map(|_| fit(&mut r, 30)).collect();
    let pairs: Vec<OperatorPair<'_, f64>> =
        sources.iter().zip(&targets).map(|(source, target)| OperatorPair { source, target }).collect();
    let prepared = prepare(&pairs, 45, 30).unwrap();
    assert!(prepared
        .pairs
        .iter()
        .all(|p| matches!((&p.source, &p.target), (Op::LowRank { .. }, Op::LowRank { .. }))));
    // Rank 3 (4 centred pairs) up to rounding: the range finder's oversampling (4 + 5) is dropped.
    for p in &prepared.pairs {
        let (Op::LowRank { l, .. }, Op::LowRank { l: tl, .. }) = (&p.source, &p.target) else {
            unreachable!()
        };
        assert!(
            (3..=4).contains(&l.ncols()) && (3..=4).contains(&tl.ncols()),
            "{} {}",
            l.ncols(),
            tl.ncols()
        );
    }
    let a = solve(x.as_ref(), y.as_ref(), &pairs, 10.0, 1e-3, &exact).unwrap();
    let b = solve(x.as_ref(), y.as_ref(), &pairs, 10.0, 1e-3, &cg).unwrap();
    let diff = rel_err(b.t.as_ref(), a.t.as_ref());
    eprintln!("low-rank operators: exact vs cg {diff:.1e} ({} iterations)", b.iterations);
    assert!(diff < 1e-8, "{diff:e}");
    // The stacked application of the cross terms agrees with the written-out sum, for every kind
    // of pair (factored or dense on either side).
    let source: Vec<Op<f64>> = prepared.pairs.iter().map(|p| p.source.clone()).collect();
    let target: Vec<Op<f64>> = prepared.pairs.iter().map(|p| p.target.clone()).collect();
    let kinds = [
        (source[0].clone(), target[0].clone()),
        (source[1].clone(), Op::Dense(target[1].dense())),
        (Op::Dense(source[2].dense()), target[2].clone()),
        (Op::Dense(source[0].dense()), Op::Dense(target[1].dense())),
        (source[1].clone(), target[2].clone()),
    ];
    let source: Vec<&Op<f64>> = kinds.iter().map(|k| &k.0).collect();
    let target: Vec<&Op<f64>> = kinds.iter().map(|k| &k.1).collect();
    let coefficients = [1.0, 0.5, 2.5, 0.0, 3.0];
    let cross = Cross::new(&source, &target, &coefficients);
    assert!(cross.both.is_some() && cross.source_only.is_some() && cross.target_only.is_some());
    assert!(cross.dense.is_empty(), "a pair with coefficient 0 is skipped");
    let t = gaussian(&mut r, 45, 30);
    let mut stacked = Mat::<f64>::zeros(45, 30);
    cross.apply(&mut stacked, t.as_ref(), (&source, &target), 2.0, Par::Seq);
    let mut expected = Mat::<f64>::zeros(45, 30);
    for ((s, e), w) in source.iter().zip(&target).zip(coefficients) {
        let (d, e) = (s.dense(), e.dense());
        let first = kernels::matmul(kernels::tmatmul(d.as_ref(), t.as_ref()).as_ref(), e.as_ref());
        let second =
            kernels::matmul(kernels::matmul(d.as_ref(), t.as_ref()).as_ref(), e.as_ref().transpose());
        add_scaled(&mut expected, first.as_ref(), -2.0 * w);
        add_scaled(&mut expected, second.as_ref(), -2.0 * w);
    }
    assert!(rel_err(stacked.as_ref(), expected.as_ref()) < 1e-13);
    let dense = [(Op::Dense(source[0].dense()), Op::Dense(target[0].dense()))];
    let cross = Cross::new(&[&dense[0].0], &[&dense[0].1], &[1.5]);
    let mut one = Mat::<f64>::zeros(45, 30);
    cross.apply(&mut one, t.as_ref(), (&[&dense[0].0], &[&dense[0].1]), 2.0, Par::Seq);
    let mut two = Mat::<f64>::zeros(45, 30);
    let cross = Cross::new(&source[..1], &target[..1], &[1.5]);
    cross.apply(&mut two, t.as_ref(), (&source[..1], &target[..1]), 2.0, Par::Seq);
    assert!(rel_err(one.as_ref(), two.as_ref()) < 1e-13);
    let residual =
        normal_equation_residual(x.as_ref(), y.as_ref(), &pairs, &b.weights, b.mu_absolute, b.t.as_ref());
    assert!(residual < 1e-9, "{residual:e}");
}

#[test]
fn weights_follow_the_documented_normalisation() {
    let (x, y, sources, targets) = random_problem(209, 12, 6, 4, 2);
    let pairs: Vec<OperatorPair<'_, f64>> =
        sources.iter().zip(&targets).map(|(source, target)| OperatorPair { source, target }).collect();
    let solution = solve(x.as_ref(), y.as_ref(), &pairs, 2.0, 0.5, &SolveOptions::default()).unwrap();
    let norm = kernels::squared_norm(x.as_ref());
    assert!((solution.mu_absolute - 0.5 * norm / 6.0).abs() < 1e-12 * norm);
    // Σ_k λ_k e_k = lambda · d_b ‖X‖², with e_k the mean of the k-th term over random maps,
    // estimated here by Monte Carlo.
    let mut r = rng(210);
    let samples = 4000;
    let mut total = 0.0;
    for _ in 0..samples {
        let t = gaussian(&mut r, 6, 4);
        for (pair, w) in pairs.iter().zip(&solution.weights) {
            let ft = kernels::matmul(pair.source.f.as_ref(), t.as_ref());
            let tg = kernels::matmul(t.as_ref(), pair.target.f.as_ref());
            let at = kernels::matmul(as_row(&pair.source.c).as_ref(), t.as_ref());
            let d = Mat::from_fn(6, 4, |i, j| ft[(i, j)] - tg[(i, j)]);
            total += w * (kernels::squared_norm(d.as_ref()) + kernels::squared_norm(at.as_ref()));
        }
    }
    let ratio = total / samples as f64 / (2.0 * 4.0 * norm);
    eprintln!("Σ λ_k E‖term_k‖² / (lambda d_b ‖X‖²) = {ratio:.3}");
    assert!((ratio - 1.0).abs() < 0.05, "{ratio}");
    // An operator pair that carries nothing (identities, no offset) gets weight 0.
    let identity_a = OperatorAction::from_parts(Mat::<f64>::identity(6, 6), vec![0.0; 6]).unwrap();
    let identity_b = OperatorAction::from_parts(Mat::<f64>::identity(4, 4), vec![0.0; 4]).unwrap();
    let with_identity = [pairs[0], OperatorPair { source: &identity_a, target: &identity_b }];
    let solution2 =
        solve(x.as_ref(), y.as_ref(), &with_identity, 2.0, 0.5, &SolveOptions::default()).unwrap();
    assert_eq!(solution2.weights[1], 0.0);
    assert!((solution2.weights[0] - 2.0 * solution.weights[0]).abs() < 1e-9 * solution.weights[0]);
}

#[test]
fn cross_validation_picks_grid_points_deterministically() {
    let mut r = rng(211);
    let p = square(212, 12, 10, 2).with_noise(&mut r, 0.2);
    let run = |seed| {
        solve_cv(p.x.as_ref(), p.y.as_ref(), &p.pairs(), None, None, &SolveOptions::default(), seed).unwrap()
    };
    let (a, report) = run(3);
    let (b, again) = run(3);
    assert_eq!(a, b);
    assert_eq!(report, again);
    assert!(LAMBDA_GRID.contains(&a.lambda) && MU_GRID.contains(&a.mu), "{} {}", a.lambda, a.mu);
    assert_eq!(report.scores.len(), LAMBDA_GRID.len() * MU_GRID.len());
    assert_eq!(report.folds, 5);
    let best = report.scores.iter().map(|s| s.2).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(report.score, best);
    assert!(report.scores.iter().all(|s| s.2.is_finite() && s.2 <= 1.0));
    // With correct operators, more operator weight is better than almost none.
    let score = |l: f64| report.scores.iter().find(|s| s.0 == l && s.1 == 1e-3).map(|s| s.2).unwrap();
    assert!(score(100.0) > score(0.1), "{:?}", report.scores);
    // A set weight is kept; only the other is searched.
    let (c, report) =
        solve_cv(p.x.as_ref(), p.y.as_ref(), &p.pairs(), Some(5.0), None, &SolveOptions::default(), 3)
            .unwrap();
    assert_eq!(c.lambda, 5.0);
    assert_eq!(report.scores.len(), MU_GRID.len());
    // Fewer than 3 anchors: the defaults, no folds.
    let (d, report) = solve_cv(
        p.x.as_ref().subrows(0, 2),
        p.y.as_ref().subrows(0, 2),
        &p.pairs(),
        None,
        None,
        &SolveOptions::default(),
        3,
    )
    .unwrap();
    assert_eq!((d.lambda, d.mu, report.folds), (DEFAULT_LAMBDA, DEFAULT_MU, 0));
    assert!(report.score.is_nan());
}

#[test]
fn bad_input_is_reported() {
    let p = square(213, 6, 5, 1);
    let pairs = p.pairs();
    let options = SolveOptions::default();
    let err = solve(p.x.as_ref(), p.y.as_ref().subrows(0, 4), &pairs, 1.0, 0.1, &options).unwrap_err();
    assert_eq!(err, AlignError::RowCountMismatch { source_rows: 5, target_rows: 4 });
    let err = solve(p.x.as_ref(), p.y.as_ref(), &pairs, -1.0, 0.1, &options).unwrap_err();
    assert!(err.to_string().starts_with("invalid functional.lambda"), "{err}");
    let err = solve(p.x.as_ref(), p.y.as_ref().subcols(0, 5), &pairs, 1.0, 0.1, &options).unwrap_err();
    assert_eq!(err, AlignError::DimensionMismatch { space: Space::Target, expected: 5, got: 6 });
    let mut bad = p.x.clone();
    bad[(1, 2)] = f64::NAN;
    let err = solve(bad.as_ref(), p.y.as_ref(), &pairs, 1.0, 0.1, &options).unwrap_err();
    assert!(matches!(err, AlignError::NonFinite { space: Space::Source, row: 1, col: 2, .. }), "{err}");
    // No anchor information and no ridge: the exact solver reports a singular system.
    let zeros = Mat::<f64>::zeros(5, 6);
    let exact = SolveOptions { solver: Solver::Exact, ..options };
    let err = solve(zeros.as_ref(), zeros.as_ref(), &[], 1.0, 0.0, &exact).unwrap_err();
    assert!(matches!(err, AlignError::Singular { .. }) && err.to_string().contains("functional.mu"), "{err}");
}

#[test]
fn commutation_error_is_scale_free_and_detects_non_commuting_maps() {
    let p = square(214, 10, 5, 1);
    let (a, b) = (&p.sources[0], &p.targets[0]);
    assert!(commutation_error(p.t.as_ref(), a, b) < 1e-12);
    let scaled = Mat::from_fn(10, 10, |i, j| 1e6 * p.t[(i, j)]);
    assert!(commutation_error(scaled.as_ref(), a, b) < 1e-12);
    let mut r = rng(215);
    let random = gaussian(&mut r, 10, 10);
    let e = commutation_error(random.as_ref(), a, b);
    assert!(e > 0.3, "{e}");
    assert!(commutation_error(random.as_ref().subcols(0, 9), a, b).is_nan());
    assert_eq!(commutation_error(Mat::<f64>::zeros(10, 10).as_ref(), a, b), 0.0);
}

/// A grid whose points are far enough apart for this problem to have a clear winner (the default
/// grid's neighbouring `mu` values tie here to 1e-4, below the loose tolerance's resolution).
const SPARSE_GRID: ([f64; 5], [f64; 2]) = ([0.1, 1.0, 10.0, 100.0, 1000.0], [1e-3, 1e-1]);

/// Mean held-out cosine of each grid point (`lambdas` × `mus`) from [`cv_cg`] at `tolerance`,
/// with or without the shared basis, folds seeded by `seed`.
#[allow(clippy::too_many_arguments)]
fn cv_scores(
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    pairs: &[OperatorPair<'_, f64>],
    (lambdas, mus): (&[f64], &[f64]),
    tolerance: f64,
    shared: bool,
    seed: u64,
) -> Vec<f64> {
    let prepared = prepare(pairs, x.ncols(), y.ncols()).unwrap();
    let mut context = Context { prepared: &prepared, target: None };
    let grid: Vec<(f64, f64)> = lambdas.iter().flat_map(|&l| mus.iter().map(move |&m| (l, m))).collect();
    let n = x.nrows();
    let k = CV_FOLDS.min(n);
    let fold_of = folds(n, k, seed);
    let held: Vec<Vec<usize>> = (0..k).map(|f| (0..n).filter(|&i| fold_of[i] == f).collect()).collect();
    let options =
        SolveOptions { tolerance: Some(tolerance), max_iterations: 5000, ..SolveOptions::default() };
    let run = cv_cg(x, y, &mut context, &grid, &held, &options, shared).unwrap();
    run.totals.iter().map(|t| t / n as f64).collect()
}

/// Index of the first largest value.
fn argmax(values: &[f64]) -> usize {
    (0..values.len()).fold(0, |best, i| if values[i] > values[best] { i } else { best })
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

#[test]
fn loose_cross_validation_picks_the_same_grid_point_as_tight() {
    let mut r = rng(217);
    let p = rectangular(218, 40, 24, 15, 3).with_noise(&mut r, 0.3);
    let pairs = p.pairs();
    let (x, y) = (p.x.as_ref(), p.y.as_ref());
    let sparse = (&SPARSE_GRID.0[..], &SPARSE_GRID.1[..]);
    let tight = cv_scores(x, y, &pairs, sparse, 1e-10, true, 7);
    let per_fold = cv_scores(x, y, &pairs, sparse, 1e-10, false, 7);
    eprintln!("tight: {tight:.5?}");
    // Both ways of cross-validating solve the same systems.
    assert!(max_abs_diff(&tight, &per_fold) < 1e-7, "{tight:?} vs {per_fold:?}");
    let best = argmax(&tight);
    let mut sorted = tight.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    assert!(sorted[0] - sorted[1] > 1e-3, "no clear winner: {sorted:?}");
    for shared in [true, false] {
        let loose = cv_scores(x, y, &pairs, sparse, CV_TOLERANCE, shared, 7);
        let diff = max_abs_diff(&loose, &tight);
        eprintln!("loose (shared basis: {shared}): largest score change {diff:.1e}: {loose:.5?}");
        assert_eq!(argmax(&loose), best, "{loose:?} vs {tight:?}");
        assert!(diff < 2e-3, "{diff:e}");
    }
    // And solve_cv (loose tolerance, the default grid) chooses a grid point whose tight score is
    // within the loose tolerance's resolution of the best.
    let full = (&LAMBDA_GRID[..], &MU_GRID[..]);
    let tight_full = cv_scores(x, y, &pairs, full, 1e-10, true, 7);
    let (solution, report) = solve_cv(x, y, &pairs, None, None, &SolveOptions::default(), 7).unwrap();
    let chosen = LAMBDA_GRID.iter().position(|&l| l == solution.lambda).unwrap() * MU_GRID.len()
        + MU_GRID.iter().position(|&m| m == solution.mu).unwrap();
    let best_full = tight_full[argmax(&tight_full)];
    assert!(best_full - tight_full[chosen] < 2e-3, "{chosen}: {tight_full:?}");
    assert!((report.score - best_full).abs() < 2e-3);
}

/// Conjugate gradient on a d × d problem with two dense operator pairs; checks the normal
/// equations independently and returns (iterations, seconds).
fn large_cg(d: usize) -> (usize, f64) {
    let (x, y, sources, targets) = random_problem(216, 200, d, d, 2);
    let pairs: Vec<OperatorPair<'_, f64>> =
        sources.iter().zip(&targets).map(|(source, target)| OperatorPair { source, target }).collect();
    let options = SolveOptions { solver: Solver::Cg, ..SolveOptions::default() };
    let start = Instant::now();
    let solution = solve(x.as_ref(), y.as_ref(), &pairs, 1.0, 1e-2, &options).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let residual = normal_equation_residual(
        x.as_ref(),
        y.as_ref(),
        &pairs,
        &solution.weights,
        solution.mu_absolute,
        solution.t.as_ref(),
    );
    eprintln!(
        "cg d = {d}, K = 2: {} iterations, {seconds:.1} s, residual {:.1e} (independent check {residual:.1e})",
        solution.iterations, solution.residual
    );
    assert!(solution.converged && solution.residual <= 1e-10, "{solution:?}");
    assert!(residual <= 1e-8, "{residual:e}");
    (solution.iterations, seconds)
}

#[test]
fn conjugate_gradient_converges_at_d_1024() {
    let (iterations, _) = large_cg(1024);
    assert!(iterations < 100, "{iterations}");
}

#[test]
fn a_warm_start_from_a_nearby_solve_reaches_the_same_map_in_fewer_iterations() {
    // A refinement round: the previous map was solved on 30 of the 40 anchors now given.
    let p = rectangular(17, 60, 50, 40, 3).with_noise(&mut rng(18), 0.1);
    let options = SolveOptions { solver: Solver::Cg, ..SolveOptions::default() };
    let on = |n: usize, options: &SolveOptions| {
        solve(p.x.as_ref().subrows(0, n), p.y.as_ref().subrows(0, n), &p.pairs(), 1.0, 0.01, options).unwrap()
    };
    let previous = on(30, &options);
    let cold = on(40, &options);
    let warm = on(40, &SolveOptions { start: Some(previous.t.clone()), ..options.clone() });
    eprintln!("cold {} iterations, warm {}", cold.iterations, warm.iterations);
    assert!(cold.converged && warm.converged);
    assert!(
        rel_err(warm.t.as_ref(), cold.t.as_ref()) < 1e-8,
        "{:e}",
        rel_err(warm.t.as_ref(), cold.t.as_ref())
    );
    assert!(warm.iterations < cold.iterations, "{} vs {}", warm.iterations, cold.iterations);
    // The solution itself is a start that needs no iteration; one of another shape is ignored.
    let again = on(40, &SolveOptions { start: Some(cold.t.clone()), ..options.clone() });
    assert!(again.iterations <= 1, "{}", again.iterations);
    let wrong = on(40, &SolveOptions { start: Some(Mat::zeros(50, 60)), ..options.clone() });
    assert_eq!(wrong.iterations, cold.iterations);
    assert!(rel_err(wrong.t.as_ref(), cold.t.as_ref()) < 1e-12);
}
