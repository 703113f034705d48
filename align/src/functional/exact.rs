//! The exact solver: Cholesky of the vectorised `(d_a·d_b)²` system, for small maps.

use super::*;

/// The exact solver: Cholesky of the vectorised system (column-major `vec`).
pub(super) fn solve_exact<T: Real>(system: &System<T>, prepared: &Prepared<T>) -> Result<Mat<T>, AlignError> {
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
