//! Dense kernels shared by the alignment methods: checks, products, means, symmetric and singular
//! decompositions (thin wrappers over `faer` that turn its failures into [`AlignError`]s).

use super::error::{AlignError, Space};
use super::scalar::Real;
use faer::linalg::matmul::triangular::BlockStructure;
use faer::{Accum, Mat, MatRef, Par, Side};

/// The parallelism set for `faer` (its global setting).
pub fn par() -> Par {
    faer::get_global_parallelism()
}

/// `T` from an `f64` constant.
pub fn c<T: Real>(value: f64) -> T {
    T::from_f64(value)
}

/// Fails on the first NaN or infinity, naming its position.
pub fn check_finite<T: Real>(x: MatRef<'_, T>, space: Space) -> Result<(), AlignError> {
    for j in 0..x.ncols() {
        if let Some(i) = x.col(j).iter().position(|v| !v.finite()) {
            return Err(AlignError::NonFinite {
                space,
                row: i,
                col: j,
                value: format!("{:?}", x[(i, j)].to_f64()),
            });
        }
    }
    Ok(())
}

/// Fails on the first NaN or infinity in `x` (source) or `y` (target).
pub fn check_pair_finite<T: Real>(x: MatRef<'_, T>, y: MatRef<'_, T>) -> Result<(), AlignError> {
    check_finite(x, Space::Source)?;
    check_finite(y, Space::Target)
}

/// Checks that a small matrix computed from the rows (a product such as `XᵀY`, or a fitted map) is
/// finite. Non-finite input always makes such a product non-finite, so methods that only touch
/// the rows through products check those instead of scanning the n × d rows first; when one is
/// not finite, the rows are scanned to name the bad value, and if they are finite the products
/// overflowed.
pub fn check_product<T: Real>(
    product: MatRef<'_, T>,
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    what: &str,
) -> Result<(), AlignError> {
    if (0..product.ncols()).all(|j| product.col(j).iter().all(|v| v.finite())) {
        return Ok(());
    }
    check_pair_finite(x, y)?;
    Err(AlignError::Singular {
        what: what.to_owned(),
        detail: "products of the rows overflow".to_owned(),
        hint: "scale the rows down (e.g. preprocess.unit-norm) or fit in f64".to_owned(),
    })
}

/// `a · b`.
pub fn matmul<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> Mat<T> {
    let mut out = Mat::<T>::zeros(a.nrows(), b.ncols());
    faer::linalg::matmul::matmul(out.as_mut(), Accum::Replace, a, b, c::<T>(1.0), par());
    out
}

/// `aᵀ · b`.
pub fn tmatmul<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> Mat<T> {
    matmul(a.transpose(), b)
}

/// The Gram matrix `aᵀ a`, computing one triangle (half the products) and mirroring it.
pub fn gram<T: Real>(a: MatRef<'_, T>) -> Mat<T> {
    let d = a.ncols();
    let mut out = Mat::<T>::zeros(d, d);
    faer::linalg::matmul::triangular::matmul(
        out.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        a.transpose(),
        BlockStructure::Rectangular,
        a,
        BlockStructure::Rectangular,
        c::<T>(1.0),
        par(),
    );
    for j in 0..d {
        for i in 0..j {
            out[(i, j)] = out[(j, i)];
        }
    }
    out
}

/// Column means of `x` (the mean row).
pub fn column_means<T: Real>(x: MatRef<'_, T>) -> Vec<T> {
    let n = c::<T>(x.nrows().max(1) as f64);
    (0..x.ncols())
        .map(|j| {
            let mut sum = c::<T>(0.0);
            for v in x.col(j).iter() {
                sum += *v;
            }
            sum / n
        })
        .collect()
}

/// Subtracts `row` from every row of `x`, in place.
pub fn subtract_row<T: Real>(x: &mut Mat<T>, row: &[T]) {
    for (j, m) in row.iter().enumerate() {
        for v in x.col_as_slice_mut(j) {
            *v -= *m;
        }
    }
}

/// Adds `row` to every row of `x`, in place.
pub fn add_row<T: Real>(x: &mut Mat<T>, row: &[T]) {
    for (j, m) in row.iter().enumerate() {
        for v in x.col_as_slice_mut(j) {
            *v += *m;
        }
    }
}

/// `x` with its column means subtracted, and the means.
pub fn centred<T: Real>(x: MatRef<'_, T>) -> (Mat<T>, Vec<T>) {
    let mean = column_means(x);
    let mut out = x.to_owned();
    subtract_row(&mut out, &mean);
    (out, mean)
}

/// Scales every row of `x` to unit Euclidean norm, in place (all-zero rows stay zero).
pub fn normalise_rows<T: Real>(x: &mut Mat<T>) {
    let mut norms = vec![c::<T>(0.0); x.nrows()];
    for j in 0..x.ncols() {
        for (s, v) in norms.iter_mut().zip(x.col_as_slice(j)) {
            *s += *v * *v;
        }
    }
    let inv: Vec<T> = norms
        .into_iter()
        .map(|s| {
            let norm = s.to_f64().sqrt();
            c::<T>(if norm > 0.0 { 1.0 / norm } else { 1.0 })
        })
        .collect();
    for j in 0..x.ncols() {
        for (v, s) in x.col_as_slice_mut(j).iter_mut().zip(&inv) {
            *v *= *s;
        }
    }
}

/// Adds `value` to the diagonal of a square matrix, in place.
pub fn add_diagonal<T: Real>(a: &mut Mat<T>, value: T) {
    for i in 0..a.nrows().min(a.ncols()) {
        a[(i, i)] += value;
    }
}

/// Sum of the diagonal.
pub fn trace<T: Real>(a: MatRef<'_, T>) -> f64 {
    (0..a.nrows().min(a.ncols())).map(|i| a[(i, i)].to_f64()).sum()
}

/// Squared Frobenius norm.
pub fn squared_norm<T: Real>(a: MatRef<'_, T>) -> f64 {
    (0..a.ncols()).flat_map(|j| a.col(j).iter().map(|v| v.to_f64() * v.to_f64())).sum()
}

/// Flips the sign of each column so that its entry of largest magnitude is positive (makes
/// eigenvector and singular-vector signs deterministic). Applies the same flips to `partner`'s
/// columns when given (the paired singular vectors).
pub fn fix_signs<T: Real>(a: &mut Mat<T>, mut partner: Option<&mut Mat<T>>) {
    for j in 0..a.ncols() {
        let col = a.col_as_slice(j);
        let mut best = c::<T>(0.0);
        let mut best_abs = 0.0;
        for v in col {
            if v.to_f64().abs() > best_abs {
                best_abs = v.to_f64().abs();
                best = *v;
            }
        }
        if best < c::<T>(0.0) {
            for v in a.col_as_slice_mut(j) {
                *v = c::<T>(0.0) - *v;
            }
            if let Some(p) = partner.as_deref_mut() {
                if j < p.ncols() {
                    for v in p.col_as_slice_mut(j) {
                        *v = c::<T>(0.0) - *v;
                    }
                }
            }
        }
    }
}

/// A symmetric eigendecomposition with eigenvalues in non-increasing order.
pub struct SymEigen<T: Real> {
    /// Eigenvalues, largest first.
    pub values: Vec<T>,
    /// Eigenvectors as columns, in the order of `values`.
    pub vectors: Mat<T>,
}

/// Eigendecomposition of the symmetric matrix `a` (its lower triangle is read).
pub fn sym_eigen<T: Real>(a: MatRef<'_, T>, what: &str) -> Result<SymEigen<T>, AlignError> {
    let evd = a.self_adjoint_eigen(Side::Lower).map_err(|_| AlignError::NoConvergence {
        what: what.to_owned(),
        decomposition: "eigendecomposition",
    })?;
    let d = a.nrows();
    let s = evd.S().column_vector();
    let u = evd.U();
    let values = (0..d).rev().map(|i| s[i]).collect();
    let vectors = Mat::from_fn(d, d, |i, j| u[(i, d - 1 - j)]);
    Ok(SymEigen { values, vectors })
}

/// A singular value decomposition `a = U diag(s) Vᵀ`, singular values non-increasing.
pub struct Svd<T: Real> {
    /// Left singular vectors (columns).
    pub u: Mat<T>,
    /// Singular values, largest first.
    pub s: Vec<T>,
    /// Right singular vectors (columns).
    pub v: Mat<T>,
}

/// Thin SVD of `a` (`min(m, n)` singular triplets).
pub fn thin_svd<T: Real>(a: MatRef<'_, T>, what: &str) -> Result<Svd<T>, AlignError> {
    let svd = a
        .thin_svd()
        .map_err(|_| AlignError::NoConvergence { what: what.to_owned(), decomposition: "SVD" })?;
    let s = svd.S().column_vector().iter().copied().collect();
    Ok(Svd { u: svd.U().to_owned(), s, v: svd.V().to_owned() })
}

/// The (pseudo-)inverse square root of a symmetric positive semi-definite matrix:
/// `Q diag(λ^{-1/2}) Qᵀ` over the eigenvalues above `rel_tol · λ_max`, and the number kept.
pub fn inv_sqrt_psd<T: Real>(
    a: MatRef<'_, T>,
    rel_tol: f64,
    what: &str,
) -> Result<(Mat<T>, usize, SymEigen<T>), AlignError> {
    let eig = sym_eigen(a, what)?;
    let top = eig.values.first().map_or(0.0, |v| v.to_f64());
    let d = a.nrows();
    let kept: Vec<usize> = if top > 0.0 {
        (0..d).filter(|&i| eig.values[i].to_f64() > rel_tol * top).collect()
    } else {
        Vec::new()
    };
    // Q_k diag(λ^{-1/2}) then times Q_kᵀ.
    let q = Mat::from_fn(d, kept.len(), |i, j| eig.vectors[(i, kept[j])]);
    let scaled =
        Mat::from_fn(d, kept.len(), |i, j| q[(i, j)] * c::<T>(1.0 / eig.values[kept[j]].to_f64().sqrt()));
    let out = matmul(scaled.as_ref(), q.as_ref().transpose());
    Ok((out, kept.len(), eig))
}
