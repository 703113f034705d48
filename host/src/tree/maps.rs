//! The tree analyses' maps: affine ridge regressions between two spaces, fitted with a
//! cross-validated penalty, composed along paths, and judged by R² on held-out rows.
//!
//! The analyses need maps that land in the target space's own coordinates (to compose them, to
//! move a parent by a child's change, to compare a prediction with the truth), so they use one
//! estimator throughout rather than the edges' methods: `x ↦ x W + b`,
//! `W = argmin ‖X_c W − Y_c‖² + λ ‖W‖²` on centred rows, with `λ = λ_rel · ‖X_c‖²_F / d_in`
//! (a multiple of the mean eigenvalue of `X_cᵀ X_c`, so that one `λ_rel` means the same for spaces
//! of any scale and size). Without a fixed `λ_rel`, it is chosen from [`LAMBDA_GRID`] by 5-fold
//! cross-validation on the anchors.

use crate::align::kernels;
use crate::align::{AlignError, Fit, MethodSpec};
use faer::{Mat, MatRef};

/// The relative penalties tried by cross-validation.
pub const LAMBDA_GRID: [f64; 7] = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0];

/// The relative penalty used when there are too few anchors to cross-validate (fewer than 10).
pub const SMALL_SAMPLE_LAMBDA: f64 = 1e-2;

/// An affine map `x ↦ x W + b` between two spaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    /// The linear part, `d_in × d_out`.
    pub w: Mat<f64>,
    /// The bias, `d_out`.
    pub b: Vec<f64>,
    /// The relative penalty it was fitted with (`NaN` for a composition).
    pub lambda: f64,
}

impl Map {
    /// Maps rows (`n × d_in`).
    pub fn apply(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let mut out = kernels::matmul(x, self.w.as_ref());
        kernels::add_row(&mut out, &self.b);
        out
    }

    /// Maps displacements (`n × d_in`): the linear part only.
    pub fn displace(&self, dx: MatRef<'_, f64>) -> Mat<f64> {
        kernels::matmul(dx, self.w.as_ref())
    }

    /// This map followed by `next`: `x ↦ (x W₁ + b₁) W₂ + b₂`.
    pub fn then(&self, next: &Map) -> Map {
        let w = kernels::matmul(self.w.as_ref(), next.w.as_ref());
        let b1 = Mat::from_fn(1, self.b.len(), |_, j| self.b[j]);
        let b = next.apply(b1.as_ref());
        Map { w, b: (0..b.ncols()).map(|j| b[(0, j)]).collect(), lambda: f64::NAN }
    }

    /// The Moore–Penrose pseudo-inverse of the linear part (`d_out × d_in`): the minimum-norm
    /// input displacement that produces a given output displacement. Singular values below
    /// `1e-3 · σ_max` count as zero: embeddings are `f32` and fitted maps are noisy, so smaller
    /// ones are noise, and inverting them would blow a displacement up.
    pub fn pseudo_inverse(&self) -> Result<Mat<f64>, AlignError> {
        let svd = kernels::thin_svd(self.w.as_ref(), "pseudo-inverse of a tree map")?;
        let top = svd.s.first().copied().unwrap_or(0.0);
        let (d_in, d_out) = (self.w.nrows(), self.w.ncols());
        let kept: Vec<usize> = (0..svd.s.len()).filter(|&k| svd.s[k] > 1e-3 * top).collect();
        // W = U S Vᵀ  ⇒  W⁺ = V S⁻¹ Uᵀ.
        let vs = Mat::from_fn(d_out, kept.len(), |i, k| svd.v[(i, kept[k])] / svd.s[kept[k]]);
        let ut = Mat::from_fn(kept.len(), d_in, |k, j| svd.u[(j, kept[k])]);
        Ok(kernels::matmul(vs.as_ref(), ut.as_ref()))
    }
}

/// Fits `x ↦ x W + b` on paired rows with relative penalty `lambda`, or one chosen by 5-fold
/// cross-validation when `None`.
pub fn fit(x: MatRef<'_, f64>, y: MatRef<'_, f64>, lambda: Option<f64>) -> Result<Map, AlignError> {
    let lambda = match lambda {
        Some(l) => l,
        None if x.nrows() < 10 => SMALL_SAMPLE_LAMBDA,
        None => cross_validate(x, y)?,
    };
    fit_fixed(x, y, lambda)
}

fn fit_fixed(x: MatRef<'_, f64>, y: MatRef<'_, f64>, lambda: f64) -> Result<Map, AlignError> {
    let (xc, _) = kernels::centred(x);
    let scale = kernels::squared_norm(xc.as_ref()) / x.ncols().max(1) as f64;
    // A space whose anchors are all equal has nothing to regress on: the penalty then only
    // needs to be positive.
    let absolute = lambda * if scale > 0.0 { scale } else { 1.0 };
    let spec = MethodSpec::Affine { lambda: absolute };
    let source = Fit::new(&spec).run(x, y)?.map.source;
    let b = source.bias.unwrap_or_else(|| vec![0.0; source.matrix.ncols()]);
    Ok(Map { w: source.matrix, b, lambda })
}

/// The relative penalty of [`LAMBDA_GRID`] with the smallest 5-fold held-out squared error
/// (folds are contiguous: the caller's rows are already in a random order).
fn cross_validate(x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<f64, AlignError> {
    let n = x.nrows();
    let folds = 5;
    let mut best = (f64::INFINITY, SMALL_SAMPLE_LAMBDA);
    for &lambda in &LAMBDA_GRID {
        let mut error = 0.0;
        for f in 0..folds {
            let (lo, hi) = (f * n / folds, (f + 1) * n / folds);
            let train: Vec<usize> = (0..n).filter(|&i| i < lo || i >= hi).collect();
            let held: Vec<usize> = (lo..hi).collect();
            let map = fit_fixed(rows(x, &train).as_ref(), rows(y, &train).as_ref(), lambda)?;
            let pred = map.apply(rows(x, &held).as_ref());
            error += squared_distance(pred.as_ref(), rows(y, &held).as_ref());
        }
        if error < best.0 {
            best = (error, lambda);
        }
    }
    Ok(best.1)
}

/// Rows of `m` at `index`, in that order.
pub fn rows(m: MatRef<'_, f64>, index: &[usize]) -> Mat<f64> {
    Mat::from_fn(index.len(), m.ncols(), |i, j| m[(index[i], j)])
}

/// `Σ ‖a_i − b_i‖²` over rows.
pub fn squared_distance(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            let d = a[(i, j)] - b[(i, j)];
            s += d * d;
        }
    }
    s
}

/// The total variance of the rows: `Σ ‖x_i − x̄‖²` (not divided by n).
pub fn total_variation(x: MatRef<'_, f64>) -> f64 {
    let (xc, _) = kernels::centred(x);
    kernels::squared_norm(xc.as_ref())
}

/// `1 − Σ ‖pred_i − truth_i‖² / Σ ‖truth_i − mean(truth)‖²`: the share of the truth's variance
/// the prediction accounts for (1 exact; 0 as good as predicting the mean; negative worse).
pub fn r2(pred: MatRef<'_, f64>, truth: MatRef<'_, f64>) -> f64 {
    let total = total_variation(truth);
    if total <= 0.0 {
        return f64::NAN;
    }
    1.0 - squared_distance(pred, truth) / total
}

/// `a − b`, entrywise.
pub fn difference(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] - b[(i, j)])
}

/// `a + b`, entrywise.
pub fn sum(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] + b[(i, j)])
}

/// Rows side by side: `[a | b | …]`.
pub fn concat_columns(parts: &[MatRef<'_, f64>]) -> Mat<f64> {
    let n = parts.first().map_or(0, |p| p.nrows());
    let d: usize = parts.iter().map(|p| p.ncols()).sum();
    let mut out = Mat::zeros(n, d);
    let mut at = 0;
    for p in parts {
        for j in 0..p.ncols() {
            for i in 0..n {
                out[(i, at + j)] = p[(i, j)];
            }
        }
        at += p.ncols();
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Standard normal entries (Box–Muller), seeded.
    pub(crate) fn gaussian(n: usize, d: usize, seed: u64) -> Mat<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Mat::from_fn(n, d, |_, _| {
            let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
    }

    #[test]
    fn an_affine_map_is_recovered_and_its_r2_is_one() {
        let x = gaussian(200, 6, 1);
        let w = gaussian(6, 4, 2);
        let b = vec![1.0, -2.0, 0.5, 3.0];
        let truth = Map { w: w.clone(), b: b.clone(), lambda: 0.0 };
        let y = truth.apply(x.as_ref());
        let fitted = fit(x.as_ref(), y.as_ref(), Some(1e-12)).unwrap();
        for (i, j) in (0..6).flat_map(|i| (0..4).map(move |j| (i, j))) {
            assert!((fitted.w[(i, j)] - w[(i, j)]).abs() < 1e-6);
        }
        for (got, want) in fitted.b.iter().zip(&b) {
            assert!((got - want).abs() < 1e-6);
        }
        let test = gaussian(50, 6, 3);
        assert!(
            (r2(fitted.apply(test.as_ref()).as_ref(), truth.apply(test.as_ref()).as_ref()) - 1.0).abs()
                < 1e-9
        );
    }

    #[test]
    fn cross_validation_prefers_little_penalty_on_clean_data_and_more_on_noise() {
        let x = gaussian(100, 40, 4);
        let w = gaussian(40, 3, 5);
        let clean = kernels::matmul(x.as_ref(), w.as_ref());
        assert!(cross_validate(x.as_ref(), clean.as_ref()).unwrap() <= 1e-3);
        // Targets unrelated to the inputs: the best prediction is the mean, i.e. heavy shrinkage.
        let noise = gaussian(100, 3, 6);
        assert!(cross_validate(x.as_ref(), noise.as_ref()).unwrap() >= 1.0);
    }

    #[test]
    fn composing_maps_equals_applying_them_in_turn() {
        let a = Map { w: gaussian(5, 4, 7), b: vec![0.1, 0.2, 0.3, 0.4], lambda: 0.0 };
        let b = Map { w: gaussian(4, 3, 8), b: vec![-1.0, 0.0, 1.0], lambda: 0.0 };
        let x = gaussian(10, 5, 9);
        let composed = a.then(&b).apply(x.as_ref());
        let stepwise = b.apply(a.apply(x.as_ref()).as_ref());
        assert!(squared_distance(composed.as_ref(), stepwise.as_ref()) < 1e-20);
    }

    #[test]
    fn the_pseudo_inverse_gives_the_minimum_norm_preimage() {
        // A 6 → 3 map: many inputs give one output; W⁺ picks the one in W's row space.
        let m = Map { w: gaussian(6, 3, 10), b: vec![0.0; 3], lambda: 0.0 };
        let pinv = m.pseudo_inverse().unwrap();
        let dy = gaussian(4, 3, 11);
        let dx = kernels::matmul(dy.as_ref(), pinv.as_ref());
        let back = m.displace(dx.as_ref());
        assert!(squared_distance(back.as_ref(), dy.as_ref()) < 1e-18, "W⁺ then W is the identity on outputs");
        // Adding a null-space direction of W keeps the output but lengthens the input.
        let wwt_pinv = kernels::matmul(pinv.as_ref(), m.w.as_ref());
        assert!((0..3).all(|i| (0..3).all(|j| (wwt_pinv[(i, j)] - f64::from(u8::from(i == j))).abs() < 1e-9)));
    }

    #[test]
    fn r2_is_zero_for_the_mean_and_negative_when_worse() {
        let y = gaussian(30, 2, 12);
        let mean = kernels::column_means(y.as_ref());
        let constant = Mat::from_fn(30, 2, |_, j| mean[j]);
        assert!(r2(constant.as_ref(), y.as_ref()).abs() < 1e-12);
        let negated = Mat::from_fn(30, 2, |i, j| 2.0 * mean[j] - y[(i, j)]);
        assert!((r2(negated.as_ref(), y.as_ref()) + 3.0).abs() < 1e-9);
    }
}
