//! The conjugate-gradient solver: the system rotated into the eigenbases of its Sylvester part,
//! which preconditions it exactly, with the anchors handled by a low-rank capacitance correction.

use super::*;

/// The target side in the eigenbasis of `omega_b`, shared by every solve with the same operators.
pub(super) struct TargetBasis<T: Real> {
    pub(super) u: Mat<T>,
    pub(super) values: Vec<f64>,
    pub(super) rotated: Vec<Op<T>>,
}

pub(super) fn target_basis<T: Real>(prepared: &Prepared<T>) -> Result<TargetBasis<T>, AlignError> {
    let eig = kernels::sym_eigen(prepared.omega_b.as_ref(), "functional (target operators)")?;
    let rotated = prepared.pairs.iter().map(|p| p.target.rotated(eig.vectors.as_ref())).collect();
    let values = eig.values.iter().map(|v| v.to_f64().max(0.0)).collect();
    Ok(TargetBasis { u: eig.vectors, values, rotated })
}

/// The source side in the eigenbasis of a symmetric matrix (a system's `S_A`, or `omega_a`
/// when the anchors are handled separately), with the source operators rotated into it and the
/// cross terms prepared for those and the target basis's operators.
pub(super) struct SourceBasis<T: Real> {
    pub(super) u: Mat<T>,
    /// Eigenvalues, largest first (clamped at 0).
    pub(super) values: Vec<f64>,
    pub(super) rotated: Vec<Op<T>>,
    pub(super) cross: Cross<T>,
}

pub(super) fn source_basis<T: Real>(
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
pub(super) fn basis_cost<T: Real>(d: usize, prepared: &Prepared<T>) -> f64 {
    30.0 * (d as f64).powi(3) + prepared.pairs.iter().map(|p| p.source.rotation_cost()).sum::<f64>()
}

/// Multiply-adds of the anchors' part of a [`Rotated`] system with `n` anchors: setting up the
/// capacitance matrices, and `iterations` products and preconditioner applications.
pub(super) fn anchors_cost(n: usize, d_a: usize, d_b: usize, iterations: f64) -> f64 {
    let (n, a, b) = (n as f64, d_a as f64, d_b as f64);
    b * a * n * (n + 1.0) / 2.0 + b * n.powi(3) * 1.5 + iterations * 4.0 * n * a * b
}

/// Relative change of the target side's eigenvalues `β_j` within which columns share a
/// capacitance matrix in the preconditioner (see [`Anchors`]).
pub(super) const CAPACITANCE_SPREAD: f64 = 0.1;

/// Consecutive columns (of `β`, non-increasing) whose `floor + β_j` are within a factor
/// `(1 + spread)²`: `(start, end, β̃)`, with `floor + β̃` the geometric mean of the range's ends, so
/// `|β_j − β̃| ≤ spread · (floor + β_j)`. With `spread = 0`, equal values only.
pub(super) fn spread_groups(beta: &[f64], floor: f64, spread: f64) -> Vec<(usize, usize, f64)> {
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
pub(super) struct Anchors<T: Real> {
    pub(super) z: Mat<T>,
    /// `(start, end, factor)`: columns `start..end` use the capacitance factor.
    pub(super) groups: Vec<(usize, usize, faer::linalg::solvers::Llt<T>)>,
}

impl<T: Real> Anchors<T> {
    /// `inv` holds `1 / m_i` for each group (`d_a` values each, in order).
    pub(super) fn new(z: Mat<T>, inv: &[T], spans: &[(usize, usize)], par: Par) -> Result<Self, AlignError> {
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
pub(super) enum Stop {
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
pub(super) struct Rotated<'b, T: Real> {
    pub(super) source: &'b SourceBasis<T>,
    pub(super) target: &'b TargetBasis<T>,
    /// Weights of the cross terms: `scale · coefficient_k`.
    pub(super) scale: f64,
    /// `m_ij` at `i + j d_a`.
    pub(super) diag: Vec<T>,
    /// `1 / m_ij`, floored (with anchors, `β_j` replaced by its group's `β̃`).
    pub(super) inv: Vec<T>,
    pub(super) anchors: Option<Anchors<T>>,
    /// Parallelism of its products.
    pub(super) par: Par,
}

impl<'b, T: Real> Rotated<'b, T> {
    /// `a` is the source side's diagonal (d_a values); the target side's is `scale` times the
    /// target basis's eigenvalues; `z`: anchors not in `a`, in the source basis.
    pub(super) fn new(
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
    pub(super) fn rotate_in(&self, t: MatRef<'_, T>) -> Mat<T> {
        let inner = product(self.source.u.as_ref().transpose(), t, self.par);
        product(inner.as_ref(), self.target.u.as_ref(), self.par)
    }

    /// `U_A t U_Bᵀ`.
    pub(super) fn rotate_out(&self, t: MatRef<'_, T>) -> Mat<T> {
        let inner = product(self.source.u.as_ref(), t, self.par);
        product(inner.as_ref(), self.target.u.as_ref().transpose(), self.par)
    }

    /// The system applied to `t` (in the bases).
    pub(super) fn apply(&self, t: &Mat<T>) -> Mat<T> {
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
    pub(super) fn precondition(&self, r: &Mat<T>) -> Mat<T> {
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
    pub(super) fn pcg(
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
