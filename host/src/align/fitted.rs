//! `FittedMap` and `fit`: preprocessing plus a method, fitted on raw paired rows, applied to any
//! later rows; the `Alignment` the rest of the host uses.

use super::error::{AlignError, Space};
use super::kernels;
use super::linear::{self, LinearMap};
use super::method::MethodSpec;
use super::preprocess::{FittedPreprocess, Preprocess};
use super::scalar::Real;
use super::Alignment;
use faer::{Mat, MatRef};

/// A fitted alignment: each space's fitted preprocessing followed by the method's maps.
///
/// `T` is the precision it was fitted and is applied in; as an [`Alignment`] it takes and returns
/// `f32` rows whatever `T` is.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedMap<T: Real = f64> {
    /// The method it was fitted with.
    pub spec: MethodSpec,
    /// The source space's preprocessing, fitted on the source rows.
    pub source_preprocess: FittedPreprocess<T>,
    /// The target space's preprocessing, fitted on the target rows.
    pub target_preprocess: FittedPreprocess<T>,
    /// The method's maps on preprocessed rows.
    pub map: LinearMap<T>,
}

impl<T: Real> FittedMap<T> {
    /// Dimension of the source rows it accepts.
    pub fn source_dim(&self) -> usize {
        self.source_preprocess.dim_in()
    }

    /// Dimension of the target rows it accepts.
    pub fn target_dim(&self) -> usize {
        self.target_preprocess.dim_in()
    }

    /// Dimension of the comparison space (where mapped source rows and target rows meet).
    pub fn output_dim(&self) -> usize {
        self.map.dim_out()
    }

    /// Maps source rows (n × `source_dim`) into the comparison space.
    pub fn try_map_source(&self, x: MatRef<'_, T>) -> Result<Mat<T>, AlignError> {
        if x.ncols() != self.source_dim() {
            return Err(AlignError::DimensionMismatch {
                space: Space::Source,
                expected: self.source_dim(),
                got: x.ncols(),
            });
        }
        if self.source_preprocess.is_identity() {
            return Ok(self.map.source.apply(x));
        }
        let z = self.source_preprocess.apply(x)?;
        Ok(self.map.source.apply(z.as_ref()))
    }

    /// Maps target rows (n × `target_dim`) into the comparison space.
    pub fn try_map_target(&self, y: MatRef<'_, T>) -> Result<Mat<T>, AlignError> {
        let z = self.target_preprocess.apply(y)?;
        Ok(match &self.map.target {
            Some(target) => target.apply(z.as_ref()),
            None => z,
        })
    }

    /// Fits `spec` on new pairs, keeping this map's fitted preprocessing (so that the spaces do not
    /// move between fits, as refinement needs). Rows are raw, as given to [`fit_map`].
    pub fn refit(&self, spec: &MethodSpec, x: MatRef<'_, T>, y: MatRef<'_, T>) -> Result<Self, AlignError> {
        fit_map_with(spec, self.source_preprocess.clone(), self.target_preprocess.clone(), x, y)
    }
}

/// Fits `pre` on each side's rows, then `spec` on the preprocessed pairs, all in precision `T`.
///
/// `x` (n × d_a) and `y` (n × d_b) are paired by row; `d_a` and `d_b` may differ.
pub fn fit_map<T: Real>(
    spec: &MethodSpec,
    pre: &Preprocess,
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
) -> Result<FittedMap<T>, AlignError> {
    linear::check_pairs(spec, x, y)?;
    if !pre.is_identity() {
        // Preprocessing statistics need finite rows; without it, the method checks.
        kernels::check_pair_finite(x, y)?;
    }
    let (source_preprocess, xp) = FittedPreprocess::fit_transform(pre, x, Space::Source)?;
    let (target_preprocess, yp) = FittedPreprocess::fit_transform(pre, y, Space::Target)?;
    let xr = xp.as_ref().map_or(x, |m| m.as_ref());
    let yr = yp.as_ref().map_or(y, |m| m.as_ref());
    let map = linear::fit_checked(spec, xr, yr)?;
    Ok(FittedMap { spec: spec.clone(), source_preprocess, target_preprocess, map })
}

/// Fits `spec` on raw pairs, preprocessing them with already-fitted preprocessing (e.g. fitted on
/// all rows of each space, not only the anchors).
pub fn fit_map_with<T: Real>(
    spec: &MethodSpec,
    source_preprocess: FittedPreprocess<T>,
    target_preprocess: FittedPreprocess<T>,
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
) -> Result<FittedMap<T>, AlignError> {
    linear::check_pairs(spec, x, y)?;
    kernels::check_pair_finite(x, y)?;
    let xp = source_preprocess.apply(x)?;
    let yp = target_preprocess.apply(y)?;
    let map = linear::fit_checked(spec, xp.as_ref(), yp.as_ref())?;
    Ok(FittedMap { spec: spec.clone(), source_preprocess, target_preprocess, map })
}

/// Fits an alignment on `f32` embeddings, computing in `f64` (see the module docs of
/// [`align`](super) for why), and returns it as an [`Alignment`].
pub fn fit(
    spec: &MethodSpec,
    pre: &Preprocess,
    x: MatRef<'_, f32>,
    y: MatRef<'_, f32>,
) -> Result<Box<dyn Alignment>, AlignError> {
    let map = fit_map::<f64>(spec, pre, to_precision(x).as_ref(), to_precision(y).as_ref())?;
    Ok(Box::new(map))
}

/// Converts `f32` rows to precision `T`.
pub fn to_precision<T: Real>(x: MatRef<'_, f32>) -> Mat<T> {
    Mat::from_fn(x.nrows(), x.ncols(), |i, j| T::from_f32(x[(i, j)]))
}

/// Converts rows of precision `T` to `f32`.
pub fn to_f32<T: Real>(x: MatRef<'_, T>) -> Mat<f32> {
    Mat::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)].to_f32())
}

fn or_panic(result: Result<Mat<f32>, AlignError>) -> Mat<f32> {
    match result {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

/// Panics if the rows have the wrong number of columns (use the `try_` methods to get an error).
impl Alignment for FittedMap<f32> {
    fn map_source(&self, x: MatRef<'_, f32>) -> Mat<f32> {
        or_panic(self.try_map_source(x))
    }
    fn map_target(&self, y: MatRef<'_, f32>) -> Mat<f32> {
        or_panic(self.try_map_target(y))
    }
}

/// Converts to `f64`, maps, converts back. Panics if the rows have the wrong number of columns
/// (use the `try_` methods to get an error).
impl Alignment for FittedMap<f64> {
    fn map_source(&self, x: MatRef<'_, f32>) -> Mat<f32> {
        or_panic(self.try_map_source(to_precision::<f64>(x).as_ref()).map(|m| to_f32(m.as_ref())))
    }
    fn map_target(&self, y: MatRef<'_, f32>) -> Mat<f32> {
        or_panic(self.try_map_target(to_precision::<f64>(y).as_ref()).map(|m| to_f32(m.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::testing::{f32s, gaussian, max_diff, orthogonal, rng};

    fn all_methods() -> Vec<MethodSpec> {
        vec![
            MethodSpec::LeastSquares {},
            MethodSpec::Ridge { lambda: 1.0 },
            MethodSpec::Procrustes { scaled: false },
            MethodSpec::Procrustes { scaled: true },
            MethodSpec::Cca { dim: None, reg: 1e-3 },
            MethodSpec::Affine { lambda: 0.0 },
            MethodSpec::Affine { lambda: 0.1 },
        ]
    }

    #[test]
    fn rectangular_maps_with_few_anchors_work_for_every_method() {
        let mut r = rng(61);
        let x = f32s(gaussian(&mut r, 12, 384).as_ref());
        let y = f32s(gaussian(&mut r, 12, 50).as_ref());
        let later = f32s(gaussian(&mut r, 3, 384).as_ref());
        let later_y = f32s(gaussian(&mut r, 3, 50).as_ref());
        for spec in all_methods() {
            for pre in [
                Preprocess::default(),
                Preprocess::none(),
                Preprocess { pca: Some(10), whiten: true, ..Preprocess::default() },
            ] {
                let map = fit(&spec, &pre, x.as_ref(), y.as_ref())
                    .unwrap_or_else(|e| panic!("{spec:?} {pre:?}: {e}"));
                let out = map.map_source(later.as_ref());
                let target = map.map_target(later_y.as_ref());
                let expected = match (&spec, pre.pca) {
                    (MethodSpec::Cca { .. }, Some(k)) => k,
                    (MethodSpec::Cca { .. }, None) => 11,
                    (_, Some(k)) => k,
                    (_, None) => 50,
                };
                assert_eq!((out.nrows(), out.ncols()), (3, expected), "{spec:?} {pre:?}");
                assert_eq!((target.nrows(), target.ncols()), (3, expected), "{spec:?} {pre:?}");
                assert!(out.col_iter().all(|c| c.iter().all(|v| v.is_finite())));
            }
        }
    }

    #[test]
    fn procrustes_through_fit_recovers_the_rotation_and_maps_later_rows() {
        let mut r = rng(62);
        let x = gaussian(&mut r, 80, 16);
        let q = orthogonal(&mut r, 16);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let spec = MethodSpec::Procrustes { scaled: false };
        let map = fit_map(&spec, &Preprocess::none(), x.as_ref(), y.as_ref()).unwrap();
        assert!(max_diff(map.map.source.matrix.as_ref(), q.as_ref()) < 1e-10);
        let later = gaussian(&mut r, 5, 16);
        let mapped = map.try_map_source(later.as_ref()).unwrap();
        let expected = kernels::matmul(later.as_ref(), q.as_ref());
        assert!(max_diff(mapped.as_ref(), expected.as_ref()) < 1e-10);
        // The f32 entry point agrees (it computes in f64).
        let boxed =
            fit(&spec, &Preprocess::none(), f32s(x.as_ref()).as_ref(), f32s(y.as_ref()).as_ref()).unwrap();
        let mapped32 = boxed.map_source(f32s(later.as_ref()).as_ref());
        let mapped32 = Mat::from_fn(5, 16, |i, j| f64::from(mapped32[(i, j)]));
        assert!(max_diff(mapped32.as_ref(), expected.as_ref()) < 1e-5);
    }

    #[test]
    fn preprocessing_is_stored_and_applied_identically() {
        let mut r = rng(63);
        let x = gaussian(&mut r, 40, 10);
        let y = gaussian(&mut r, 40, 7);
        let pre = Preprocess { pca: Some(5), whiten: true, ..Preprocess::default() };
        let map = fit_map(&MethodSpec::Ridge { lambda: 0.5 }, &pre, x.as_ref(), y.as_ref()).unwrap();
        let xp = map.source_preprocess.apply(x.as_ref()).unwrap();
        let yp = map.target_preprocess.apply(y.as_ref()).unwrap();
        let direct =
            linear::fit_linear(&MethodSpec::Ridge { lambda: 0.5 }, xp.as_ref(), yp.as_ref()).unwrap();
        assert!(max_diff(direct.source.matrix.as_ref(), map.map.source.matrix.as_ref()) < 1e-12);
        // Mapping a subset of rows gives the same rows as mapping them all.
        let all = map.try_map_source(x.as_ref()).unwrap();
        let some = map.try_map_source(x.as_ref().subrows(10, 3)).unwrap();
        assert!(max_diff(all.as_ref().subrows(10, 3), some.as_ref()) < 1e-12);
        assert_eq!(map.try_map_target(y.as_ref()).unwrap(), yp);
        // Refit keeps the preprocessing.
        let refit = map
            .refit(
                &MethodSpec::Procrustes { scaled: false },
                x.as_ref().subrows(0, 20),
                y.as_ref().subrows(0, 20),
            )
            .unwrap();
        assert_eq!(refit.source_preprocess, map.source_preprocess);
        assert_eq!(refit.output_dim(), 5);
    }

    #[test]
    fn bad_input_is_reported_for_every_method() {
        let mut r = rng(64);
        let x = gaussian(&mut r, 6, 4);
        let y = gaussian(&mut r, 6, 3);
        for spec in all_methods() {
            let err = fit_map(&spec, &Preprocess::none(), x.as_ref(), y.as_ref().subrows(0, 5)).unwrap_err();
            assert_eq!(err, AlignError::RowCountMismatch { source_rows: 6, target_rows: 5 }, "{spec:?}");
            for pre in [Preprocess::default(), Preprocess::none()] {
                let mut bad = y.clone();
                bad[(4, 2)] = f64::INFINITY;
                let err = fit_map(&spec, &pre, x.as_ref(), bad.as_ref()).unwrap_err();
                assert!(
                    matches!(err, AlignError::NonFinite { space: Space::Target, row: 4, col: 2, .. }),
                    "{spec:?} {err}"
                );
                assert!(err.to_string().contains("inf"), "{err}");
                let mut bad = x.clone();
                bad[(0, 3)] = f64::NAN;
                let err = fit_map(&spec, &pre, bad.as_ref(), y.as_ref()).unwrap_err();
                assert!(
                    matches!(err, AlignError::NonFinite { space: Space::Source, row: 0, col: 3, .. }),
                    "{spec:?} {err}"
                );
                let err = linear::fit_linear(&spec, bad.as_ref(), y.as_ref()).unwrap_err();
                assert!(matches!(err, AlignError::NonFinite { space: Space::Source, .. }), "{spec:?} {err}");
            }
            let err = fit_map(&spec, &Preprocess::none(), x.as_ref().subrows(0, 0), y.as_ref().subrows(0, 0))
                .unwrap_err();
            assert!(matches!(err, AlignError::TooFewPairs { got: 0, .. }), "{spec:?} {err}");
            let err = fit_map(&spec, &Preprocess::none(), x.as_ref().subcols(0, 0), y.as_ref()).unwrap_err();
            assert!(matches!(err, AlignError::InvalidParameter { .. }), "{spec:?} {err}");
            let map = fit_map(&spec, &Preprocess::none(), x.as_ref(), y.as_ref()).unwrap();
            let err = map.try_map_source(y.as_ref()).unwrap_err();
            assert_eq!(err, AlignError::DimensionMismatch { space: Space::Source, expected: 4, got: 3 });
            let err = map.try_map_target(x.as_ref()).unwrap_err();
            assert_eq!(err, AlignError::DimensionMismatch { space: Space::Target, expected: 3, got: 4 });
        }
        // Too few pairs names the need.
        let one = (x.as_ref().subrows(0, 1), y.as_ref().subrows(0, 1));
        let err =
            fit_map(&MethodSpec::Affine { lambda: 0.0 }, &Preprocess::none(), one.0, one.1).unwrap_err();
        assert_eq!(err.to_string(), "affine needs at least 2 paired rows, got 1");
        let err =
            fit_map(&MethodSpec::Cca { dim: Some(6), reg: 0.1 }, &Preprocess::none(), x.as_ref(), y.as_ref())
                .unwrap_err();
        assert_eq!(err.to_string(), "cca with dim = 6 needs at least 7 paired rows, got 6");
        // A singular problem suggests what to change.
        let zeros = Mat::<f64>::zeros(6, 4);
        let err = fit_map(&MethodSpec::LeastSquares {}, &Preprocess::none(), zeros.as_ref(), y.as_ref())
            .unwrap_err();
        assert!(matches!(err, AlignError::Singular { .. }), "{err}");
        let (x4, y4) = (x.as_ref().subrows(0, 4), y.as_ref().subrows(0, 4));
        let err = fit_map(&MethodSpec::Cca { dim: None, reg: 0.0 }, &Preprocess::none(), x4, y4).unwrap_err();
        assert!(err.to_string().contains("raise cca.reg"), "{err}");
        let err = fit_map(&MethodSpec::Ridge { lambda: -1.0 }, &Preprocess::none(), x.as_ref(), y.as_ref())
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid ridge.lambda"), "{err}");
    }

    #[test]
    fn overflowing_f32_products_are_reported() {
        let x = Mat::from_fn(4, 2, |i, j| if i == j { 3e20f32 } else { 1.0 });
        let y = Mat::from_fn(4, 2, |i, j| if i == j { 3e20f32 } else { 1.0 });
        for spec in [MethodSpec::Procrustes { scaled: false }, MethodSpec::Ridge { lambda: 1.0 }] {
            let err = fit_map(&spec, &Preprocess::none(), x.as_ref(), y.as_ref()).unwrap_err();
            assert!(err.to_string().contains("overflow"), "{err}");
        }
        // The same rows are fine in f64.
        assert!(fit(&MethodSpec::Procrustes { scaled: false }, &Preprocess::none(), x.as_ref(), y.as_ref())
            .is_ok());
    }

    #[test]
    #[should_panic(expected = "source rows have 3 columns")]
    fn the_alignment_trait_panics_on_the_wrong_dimension() {
        let mut r = rng(65);
        let x = f32s(gaussian(&mut r, 6, 4).as_ref());
        let y = f32s(gaussian(&mut r, 6, 3).as_ref());
        let map =
            fit(&MethodSpec::Ridge { lambda: 1.0 }, &Preprocess::default(), x.as_ref(), y.as_ref()).unwrap();
        map.map_source(y.as_ref());
    }

    #[test]
    fn f32_fits_run_in_f32() {
        let mut r = rng(66);
        let x = f32s(gaussian(&mut r, 50, 8).as_ref());
        let y = f32s(gaussian(&mut r, 50, 8).as_ref());
        for spec in all_methods() {
            let map: FittedMap<f32> = fit_map(&spec, &Preprocess::default(), x.as_ref(), y.as_ref()).unwrap();
            let boxed: Box<dyn Alignment> = Box::new(map);
            assert_eq!(boxed.map_source(x.as_ref()).nrows(), 50);
        }
    }
}
