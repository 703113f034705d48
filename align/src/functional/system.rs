//! The normal equations of functional alignment: operators prepared once (shifted, kept low-rank
//! where they are), the anchors' Gram matrices, the assembled system and its cross terms.

use super::*;

/// A square matrix, dense or as a low-rank product `l rᵀ`.
#[derive(Clone, Debug)]
pub(super) enum Op<T: Real> {
    Dense(Mat<T>),
    LowRank { l: Mat<T>, r: Mat<T> },
}

/// `out (+)= alpha · a · b`.
pub(super) fn gemm<T: Real>(
    out: MatMut<'_, T>,
    accum: Accum,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    alpha: T,
    par: Par,
) {
    faer::linalg::matmul::matmul(out, accum, a, b, alpha, par);
}

/// `a · b`, with parallelism `par`.
pub(super) fn product<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, par: Par) -> Mat<T> {
    let mut out = zeros(a.nrows(), b.ncols());
    gemm(out.as_mut(), Accum::Replace, a, b, c::<T>(1.0), par);
    out
}

impl<T: Real> Op<T> {
    /// `uᵀ M u` (a change of basis by the orthogonal `u`).
    pub(super) fn rotated(&self, u: MatRef<'_, T>) -> Op<T> {
        match self {
            Op::Dense(m) => Op::Dense(kernels::matmul(kernels::tmatmul(u, m.as_ref()).as_ref(), u)),
            Op::LowRank { l, r } => {
                Op::LowRank { l: kernels::tmatmul(u, l.as_ref()), r: kernels::tmatmul(u, r.as_ref()) }
            }
        }
    }

    /// Multiply-adds of [`rotated`](Self::rotated).
    pub(super) fn rotation_cost(&self) -> f64 {
        match self {
            Op::Dense(m) => 2.0 * (m.nrows() as f64).powi(3),
            Op::LowRank { l, .. } => 2.0 * (l.nrows() as f64).powi(2) * l.ncols() as f64,
        }
    }

    /// `MᵀM`.
    pub(super) fn gram(&self) -> Mat<T> {
        match self {
            Op::Dense(m) => kernels::gram(m.as_ref()),
            Op::LowRank { l, r } => {
                let inner = kernels::gram(l.as_ref());
                kernels::matmul(kernels::matmul(r.as_ref(), inner.as_ref()).as_ref(), r.as_ref().transpose())
            }
        }
    }

    /// `M Mᵀ`.
    pub(super) fn outer(&self) -> Mat<T> {
        match self {
            Op::Dense(m) => kernels::gram(m.as_ref().transpose()),
            Op::LowRank { l, r } => {
                let inner = kernels::gram(r.as_ref());
                kernels::matmul(kernels::matmul(l.as_ref(), inner.as_ref()).as_ref(), l.as_ref().transpose())
            }
        }
    }

    pub(super) fn dense(&self) -> Mat<T> {
        match self {
            Op::Dense(m) => copy(m.as_ref()),
            Op::LowRank { l, r } => kernels::matmul(l.as_ref(), r.as_ref().transpose()),
        }
    }
}

/// `F − s I`.
pub(super) fn shifted<T: Real>(f: &Mat<T>, s: f64) -> Mat<T> {
    let mut out = copy(f.as_ref());
    kernels::add_diagonal(&mut out, c::<T>(-s));
    out
}

/// `F − I` as a factored product `l rᵀ` when it has rank at most `bound` (an action fitted from
/// `m` pairs has rank at most `m`): a randomised range finder with `bound + 5` seeded test
/// vectors, `l = Q` from a QR of `(F − I) Ω`, `r = (F − I)ᵀ Q`, kept only if it reproduces
/// `F − I` to `√ε / 100` relative (so it is exact up to rounding, never an approximation).
pub(super) fn low_rank<T: Real>(f: &Mat<T>, bound: usize) -> Option<Op<T>> {
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
pub(super) fn cross_cost(d_a: usize, d_b: usize, r: Option<usize>, s: Option<usize>) -> f64 {
    let (a, b) = (d_a as f64, d_b as f64);
    2.0 * match (r.map(|r| r as f64), s.map(|s| s as f64)) {
        (Some(r), Some(s)) => r * a * b + r * b * s + a * r * s + a * s * b,
        (Some(r), None) => 2.0 * r * a * b + r * b * b,
        (None, Some(s)) => 2.0 * a * b * s + a * a * s,
        (None, None) => a * a * b + a * b * b,
    }
}

/// One prepared operator pair: shifted operators and the normalising coefficient.
pub(super) struct PreparedPair<T: Real> {
    pub(super) source: Op<T>,
    pub(super) target: Op<T>,
    /// `d_b / (K' e_k)` (0 when `e_k = 0`): `λ_k = lambda · ‖X‖²_F · coefficient`.
    pub(super) coefficient: f64,
}

/// The operator pairs, prepared once for any anchors and weights.
pub(super) struct Prepared<T: Real> {
    pub(super) pairs: Vec<PreparedPair<T>>,
    /// `Σ_k coefficient_k (D_kᵀ D_k + a_kᵀ a_k)` (d_a × d_a).
    pub(super) omega_a: Mat<T>,
    /// `Σ_k coefficient_k E_k E_kᵀ` (d_b × d_b).
    pub(super) omega_b: Mat<T>,
    /// `Σ_k coefficient_k a_kᵀ b_k` (d_a × d_b).
    pub(super) rho: Mat<T>,
    /// The cross terms of the (unrotated) pairs, with weights `coefficient_k`.
    pub(super) cross: Cross<T>,
}

impl<T: Real> Prepared<T> {
    pub(super) fn coefficients(&self) -> Vec<f64> {
        self.pairs.iter().map(|p| p.coefficient).collect()
    }
}

pub(super) fn check_action<T: Real>(
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

pub(super) fn trace_minus_identity<T: Real>(f: &Mat<T>) -> f64 {
    kernels::trace(f.as_ref()) - f.nrows() as f64
}

pub(super) fn prepare<T: Real>(
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
pub(super) fn add_scaled<T: Real>(out: &mut Mat<T>, m: MatRef<'_, T>, scale: f64) {
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
pub(super) struct System<T: Real> {
    pub(super) s_a: Mat<T>,
    /// `S_B / (lambda ‖X‖²)`: `omega_b`, whose eigendecomposition is shared by all weights.
    pub(super) scale_b: f64,
    pub(super) rhs: Mat<T>,
    /// Absolute `λ_k`.
    pub(super) weights: Vec<f64>,
    pub(super) mu_absolute: f64,
}

pub(super) fn anchor_norm<T: Real>(x: MatRef<'_, T>) -> f64 {
    let norm = kernels::squared_norm(x);
    if norm > 0.0 && norm.is_finite() {
        norm
    } else {
        1.0
    }
}

pub(super) fn assemble<T: Real>(
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
pub(super) struct Gram<T: Real> {
    pub(super) xx: Mat<T>,
    pub(super) xy: Mat<T>,
    pub(super) norm: f64,
}

impl<T: Real> Gram<T> {
    pub(super) fn new(x: MatRef<'_, T>, y: MatRef<'_, T>) -> Result<Self, AlignError> {
        let xx = kernels::gram(x);
        let xy = kernels::tmatmul(x, y);
        kernels::check_product(xx.as_ref(), x, y, "functional")?;
        kernels::check_product(xy.as_ref(), x, y, "functional")?;
        Ok(Gram { xx, xy, norm: anchor_norm(x) })
    }

    pub(super) fn system(&self, prepared: &Prepared<T>, lambda: f64, mu: f64) -> System<T> {
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
pub(super) fn apply_system<T: Real>(system: &System<T>, prepared: &Prepared<T>, t: MatRef<'_, T>) -> Mat<T> {
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
pub(super) fn concatenate<T: Real>(rows: usize, parts: &[&Mat<T>]) -> (Mat<T>, Vec<usize>) {
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
pub(super) struct Factors<T: Real> {
    pub(super) l: Mat<T>,
    pub(super) r: Mat<T>,
    pub(super) offsets: Vec<usize>,
}

impl<T: Real> Factors<T> {
    pub(super) fn new(rows: usize, parts: &[(&Mat<T>, &Mat<T>)]) -> Self {
        let (l, offsets) = concatenate(rows, &parts.iter().map(|p| p.0).collect::<Vec<_>>());
        let (r, _) = concatenate(rows, &parts.iter().map(|p| p.1).collect::<Vec<_>>());
        Factors { l, r, offsets }
    }

    /// Columns of operator `k`: `(start, width)`.
    pub(super) fn span(&self, k: usize) -> (usize, usize) {
        (self.offsets[k], self.offsets[k + 1] - self.offsets[k])
    }

    pub(super) fn width(&self) -> usize {
        self.offsets[self.offsets.len() - 1]
    }
}

/// The pairs of one kind (by which of `D_k`, `E_k` are factored), in order, with their
/// coefficients and the factors of their low-rank operators.
pub(super) struct Group<T: Real> {
    pub(super) pairs: Vec<usize>,
    pub(super) coefficients: Vec<f64>,
    pub(super) source: Option<Factors<T>>,
    pub(super) target: Option<Factors<T>>,
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
pub(super) struct Cross<T: Real> {
    pub(super) both: Option<Group<T>>,
    pub(super) source_only: Option<Group<T>>,
    pub(super) target_only: Option<Group<T>>,
    pub(super) dense: Vec<(usize, f64)>,
}

impl<T: Real> Cross<T> {
    pub(super) fn new(source: &[&Op<T>], target: &[&Op<T>], coefficients: &[f64]) -> Self {
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
    pub(super) fn apply(
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
pub(super) fn dot<T: Real>(a: &Mat<T>, b: &Mat<T>) -> f64 {
    (0..a.ncols())
        .map(|j| {
            a.col_as_slice(j).iter().zip(b.col_as_slice(j)).map(|(x, y)| x.to_f64() * y.to_f64()).sum::<f64>()
        })
        .sum()
}

/// `y += alpha · x` (same shape).
pub(super) fn axpy<T: Real>(y: &mut Mat<T>, alpha: f64, x: &Mat<T>) {
    let a = c::<T>(alpha);
    for j in 0..y.ncols() {
        for (v, w) in y.col_as_slice_mut(j).iter_mut().zip(x.col_as_slice(j)) {
            *v += a * *w;
        }
    }
}

/// The entry-wise product of `t` with `factors` (`d_a × d_b`, column-major).
pub(super) fn scaled<T: Real>(t: &Mat<T>, factors: &[T]) -> Mat<T> {
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

pub(super) fn singular(detail: String) -> AlignError {
    AlignError::Singular {
        what: "functional".to_owned(),
        detail,
        hint: "set functional.mu > 0 (or give more anchors)".to_owned(),
    }
}
