//! VecMap's mapping step (Artetxe et al., ACL 2018): whitening, orthogonal mapping, re-weighting and
//! de-whitening, mapping both sides into a common space.

use super::error::{AlignError, Space};
use super::kernels::{self, c};
use super::linear::{AffineMap, LinearMap};
use super::scalar::Real;
use faer::{Mat, MatRef};

/// The settings of the `vecmap` method (see [`MethodSpec::Vecmap`](super::MethodSpec::Vecmap)).
#[derive(Clone, Copy, Debug)]
pub(crate) struct VecmapOptions {
    pub whiten: bool,
    pub src_reweight: f64,
    pub trg_reweight: f64,
    pub dewhiten: bool,
}

/// The symmetric pseudo-inverse square root `W = (AᵀA)^{+1/2}` of a side's Gram matrix and its
/// pseudo-inverse `W⁺ = (AᵀA)^{1/2}` restricted to the same kept eigen-directions.
struct Whitening<T: Real> {
    inv_sqrt: Mat<T>,
    sqrt: Mat<T>,
}

/// Whitening of the rows `a` (n × d), from an eigendecomposition of `AᵀA`; eigenvalues below
/// `max(n, d) · ε · λ_max` are dropped (from both matrices).
fn whitening<T: Real>(a: MatRef<'_, T>, space: Space, what: &str) -> Result<Whitening<T>, AlignError> {
    let (n, d) = (a.nrows(), a.ncols());
    let eig = kernels::sym_eigen(kernels::gram(a).as_ref(), what)?;
    let top = eig.values.first().map_or(0.0, |v| v.to_f64());
    let rel_tol = (n.max(d) as f64) * T::EPSILON;
    let kept: Vec<usize> =
        if top > 0.0 { (0..d).filter(|&i| eig.values[i].to_f64() > rel_tol * top).collect() } else { vec![] };
    if kept.is_empty() {
        return Err(AlignError::Singular {
            what: what.to_owned(),
            detail: format!("the {space} rows are all zero, so they cannot be whitened"),
            hint: "check the anchors and the preprocessing, or use whiten = false".to_owned(),
        });
    }
    let q = Mat::from_fn(d, kept.len(), |i, j| eig.vectors[(i, kept[j])]);
    let scaled = |power: f64| {
        let s =
            Mat::from_fn(d, kept.len(), |i, j| q[(i, j)] * c::<T>(eig.values[kept[j]].to_f64().powf(power)));
        kernels::matmul(s.as_ref(), q.as_ref().transpose())
    };
    Ok(Whitening { inv_sqrt: scaled(-0.5), sqrt: scaled(0.5) })
}

/// Fits VecMap's mapping on paired, preprocessed rows `x` (n × d_a) and `z` (n × d_b):
///
/// 1. whitening (when on): `W_x = (XᵀX)^{+1/2}`, `W_z = (ZᵀZ)^{+1/2}` (pseudo-inverse square roots);
/// 2. orthogonal mapping: the thin SVD `(X W_x)ᵀ (Z W_z) = U S Vᵀ`, so `x ↦ x W_x U`,
///    `z ↦ z W_z V` (both `min(d_a, d_b)`-dimensional);
/// 3. re-weighting: column j of the source map times `s_j^src_reweight`, of the target map times
///    `s_j^trg_reweight`;
/// 4. de-whitening (when on, and whitening on): the source map right-multiplied by `Uᵀ W_x⁺ U`,
///    the target map by `Vᵀ W_z⁺ V`.
///
/// Touches the rows only through `XᵀZ` (and the Gram matrices when whitening). Without whitening
/// and with re-weights 0 this is orthogonal Procrustes into a common space (`x ↦ x U`, `z ↦ z V`).
pub(crate) fn solve<T: Real>(
    x: MatRef<'_, T>,
    z: MatRef<'_, T>,
    options: VecmapOptions,
    what: &str,
) -> Result<LinearMap<T>, AlignError> {
    kernels::check_pair_finite(x, z)?;
    let cross = kernels::tmatmul(x, z);
    kernels::check_product(cross.as_ref(), x, z, what)?;
    let whitenings = if options.whiten {
        Some((whitening(x, Space::Source, what)?, whitening(z, Space::Target, what)?))
    } else {
        None
    };
    let m = match &whitenings {
        Some((wx, wz)) => kernels::matmul(
            kernels::matmul(wx.inv_sqrt.as_ref(), cross.as_ref()).as_ref(),
            wz.inv_sqrt.as_ref(),
        ),
        None => cross,
    };
    let svd = kernels::thin_svd(m.as_ref(), what)?;
    let (u, v) = (svd.u, svd.v);
    let (mut source, mut target) = match &whitenings {
        Some((wx, wz)) => (
            kernels::matmul(wx.inv_sqrt.as_ref(), u.as_ref()),
            kernels::matmul(wz.inv_sqrt.as_ref(), v.as_ref()),
        ),
        None => (u.clone(), v.clone()),
    };
    reweight(&mut source, &svd.s, options.src_reweight);
    reweight(&mut target, &svd.s, options.trg_reweight);
    if let (true, Some((wx, wz))) = (options.dewhiten, &whitenings) {
        let back = |w: &Mat<T>, basis: &Mat<T>| {
            kernels::matmul(kernels::tmatmul(basis.as_ref(), w.as_ref()).as_ref(), basis.as_ref())
        };
        source = kernels::matmul(source.as_ref(), back(&wx.sqrt, &u).as_ref());
        target = kernels::matmul(target.as_ref(), back(&wz.sqrt, &v).as_ref());
    }
    for map in [&source, &target] {
        if !(0..map.ncols()).all(|j| map.col(j).iter().all(|v| v.finite())) {
            return Err(AlignError::Singular {
                what: what.to_owned(),
                detail: "the fitted map is not finite".to_owned(),
                hint: "scale the rows (e.g. preprocess.unit-norm), fit in f64, or use whiten = false"
                    .to_owned(),
            });
        }
    }
    Ok(LinearMap {
        source: AffineMap::linear(source),
        target: Some(AffineMap::linear(target)),
        scale: None,
        correlations: None,
    })
}

/// Multiplies column j of `map` by `s[j]^power` (`s^0 = 1`, also for `s = 0`).
fn reweight<T: Real>(map: &mut Mat<T>, s: &[T], power: f64) {
    if power == 0.0 {
        return;
    }
    for (j, value) in s.iter().enumerate().take(map.ncols()) {
        let factor = c::<T>(value.to_f64().max(0.0).powf(power));
        for entry in map.col_as_slice_mut(j) {
            *entry *= factor;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{f32s, gaussian, max_diff, orthogonal, rng};
    use crate::MethodSpec;

    fn options(whiten: bool, src_reweight: f64, trg_reweight: f64, dewhiten: bool) -> VecmapOptions {
        VecmapOptions { whiten, src_reweight, trg_reweight, dewhiten }
    }

    /// `map_source(x)` and `map_target(y)` on the given rows.
    fn both(map: &LinearMap<f64>, x: &Mat<f64>, y: &Mat<f64>) -> (Mat<f64>, Mat<f64>) {
        let target = map.target.as_ref().expect("vecmap maps the target side");
        (map.source.apply(x.as_ref()), target.apply(y.as_ref()))
    }

    #[test]
    fn without_whitening_or_reweighting_a_random_orthogonal_map_is_recovered() {
        let mut r = rng(61);
        let (n, d) = (80, 16);
        let x = gaussian(&mut r, n, d);
        let q = orthogonal(&mut r, d);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        for dewhiten in [false, true] {
            let map = solve(x.as_ref(), y.as_ref(), options(false, 0.0, 0.0, dewhiten), "vecmap").unwrap();
            let held_out = gaussian(&mut r, 30, d);
            let (a, b) = both(&map, &held_out, &kernels::matmul(held_out.as_ref(), q.as_ref()));
            assert!(max_diff(a.as_ref(), b.as_ref()) < 1e-8, "{}", max_diff(a.as_ref(), b.as_ref()));
            // Procrustes into a common space: the source map is orthogonal, and source map · its
            // target-map transpose is the Procrustes rotation Q.
            let u = &map.source.matrix;
            let v = &map.target.as_ref().unwrap().matrix;
            let utu = kernels::tmatmul(u.as_ref(), u.as_ref());
            assert!(max_diff(utu.as_ref(), Mat::<f64>::identity(d, d).as_ref()) < 1e-10);
            let w = kernels::matmul(u.as_ref(), v.as_ref().transpose());
            assert!(max_diff(w.as_ref(), q.as_ref()) < 1e-8);
        }
    }

    #[test]
    fn whitening_recovers_an_invertible_non_orthogonal_map() {
        let mut r = rng(62);
        let (n, d) = (120, 12);
        let x = gaussian(&mut r, n, d);
        // A well-conditioned but far from orthogonal map.
        let mut a = gaussian(&mut r, d, d);
        kernels::add_diagonal(&mut a, 4.0);
        let y = kernels::matmul(x.as_ref(), a.as_ref());
        let held_out = gaussian(&mut r, 40, d);
        let held_y = kernels::matmul(held_out.as_ref(), a.as_ref());
        for (src, trg) in [(0.0, 0.0), (0.5, 0.5), (1.0, 0.25)] {
            let map = solve(x.as_ref(), y.as_ref(), options(true, src, trg, false), "vecmap").unwrap();
            let (p, q) = both(&map, &held_out, &held_y);
            assert!(
                max_diff(p.as_ref(), q.as_ref()) < 1e-6,
                "{src} {trg}: {}",
                max_diff(p.as_ref(), q.as_ref())
            );
        }
        // Procrustes (no whitening) cannot fit a non-orthogonal map exactly.
        let plain = solve(x.as_ref(), y.as_ref(), options(false, 0.0, 0.0, false), "vecmap").unwrap();
        let (p, q) = both(&plain, &held_out, &held_y);
        assert!(max_diff(p.as_ref(), q.as_ref()) > 1e-2);
    }

    #[test]
    fn dewhitening_keeps_an_orthogonal_map_exact_and_restores_each_sides_geometry() {
        let mut r = rng(63);
        let (n, d) = (100, 10);
        // Anisotropic rows, so that whitening changes the geometry.
        let scales = Mat::from_fn(d, d, |i, j| if i == j { 1.0 + i as f64 } else { 0.0 });
        let x = kernels::matmul(gaussian(&mut r, n, d).as_ref(), scales.as_ref());
        let q = orthogonal(&mut r, d);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let map = solve(x.as_ref(), y.as_ref(), options(true, 0.0, 0.0, true), "vecmap").unwrap();
        let held_out = gaussian(&mut r, 25, d);
        let (p, s) = both(&map, &held_out, &kernels::matmul(held_out.as_ref(), q.as_ref()));
        assert!(max_diff(p.as_ref(), s.as_ref()) < 1e-8, "{}", max_diff(p.as_ref(), s.as_ref()));
        // Whitening then de-whitening (no re-weighting) is a rotation of the source space.
        let m = &map.source.matrix;
        let mtm = kernels::tmatmul(m.as_ref(), m.as_ref());
        assert!(max_diff(mtm.as_ref(), Mat::<f64>::identity(d, d).as_ref()) < 1e-8);
    }

    #[test]
    fn fewer_pairs_than_dimensions_give_a_finite_map() {
        let mut r = rng(64);
        let (n, d) = (10, 50);
        let x = gaussian(&mut r, n, d);
        let y = gaussian(&mut r, n, d - 5);
        for opts in
            [options(true, 0.5, 0.5, true), options(true, 0.0, 1.0, false), options(false, 0.5, 0.5, true)]
        {
            let map = solve(x.as_ref(), y.as_ref(), opts, "vecmap").unwrap();
            assert_eq!((map.source.dim_in(), map.source.dim_out()), (d, d - 5));
            let target = map.target.as_ref().unwrap();
            assert_eq!((target.dim_in(), target.dim_out()), (d - 5, d - 5));
            let (p, s) = both(&map, &gaussian(&mut r, 7, d), &gaussian(&mut r, 7, d - 5));
            let finite = |m: &Mat<f64>| (0..m.ncols()).all(|j| m.col(j).iter().all(|v| v.is_finite()));
            assert!(finite(&p) && finite(&s));
            // The anchors still pair up after whitening (their whitened images agree up to the
            // correlation structure): at least the maps are not all zero.
            assert!(kernels::squared_norm(map.source.apply(x.as_ref()).as_ref()) > 0.0);
        }
    }

    #[test]
    fn f32_agrees_with_f64_and_bad_rows_are_errors() {
        let mut r = rng(65);
        let x = gaussian(&mut r, 200, 16);
        let q = orthogonal(&mut r, 16);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let opts = options(true, 0.5, 0.5, true);
        let m64 = solve(x.as_ref(), y.as_ref(), opts, "vecmap").unwrap();
        let m32 = solve(f32s(x.as_ref()).as_ref(), f32s(y.as_ref()).as_ref(), opts, "vecmap").unwrap();
        let h = gaussian(&mut r, 10, 16);
        let (p64, _) = both(&m64, &h, &h);
        let p32 = m32.source.apply(f32s(h.as_ref()).as_ref());
        let p32 = Mat::from_fn(10, 16, |i, j| f64::from(p32[(i, j)]));
        // The map is determined up to the SVD's freedom (S ≈ I here), so compare similarities.
        let g64 = kernels::matmul(p64.as_ref(), p64.as_ref().transpose());
        let g32 = kernels::matmul(p32.as_ref(), p32.as_ref().transpose());
        assert!(max_diff(g64.as_ref(), g32.as_ref()) < 1e-3, "{}", max_diff(g64.as_ref(), g32.as_ref()));
        let zeros = Mat::<f64>::zeros(5, 4);
        let err = solve(zeros.as_ref(), gaussian(&mut r, 5, 4).as_ref(), opts, "vecmap").unwrap_err();
        assert!(matches!(err, AlignError::Singular { .. }), "{err}");
        let mut bad = gaussian(&mut r, 5, 4);
        bad[(2, 1)] = f64::NAN;
        let err = solve(bad.as_ref(), gaussian(&mut r, 5, 4).as_ref(), opts, "vecmap").unwrap_err();
        assert!(matches!(err, AlignError::NonFinite { space: Space::Source, row: 2, col: 1, .. }), "{err}");
    }

    #[test]
    fn spec_reads_kebab_case_with_defaults_and_rejects_unknown_keys() {
        let spec: MethodSpec = serde_json::from_str(r#"{"kind":"vecmap"}"#).unwrap();
        assert_eq!(
            spec,
            MethodSpec::Vecmap { whiten: true, src_reweight: 0.5, trg_reweight: 0.5, dewhiten: true }
        );
        let spec: MethodSpec =
            serde_json::from_str(r#"{"kind":"vecmap","src-reweight":1,"dewhiten":false}"#).unwrap();
        assert_eq!(
            spec,
            MethodSpec::Vecmap { whiten: true, src_reweight: 1.0, trg_reweight: 0.5, dewhiten: false }
        );
        assert_eq!(spec.kind(), "vecmap");
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["src-reweight"], 1.0);
        assert_eq!(serde_json::from_value::<MethodSpec>(json).unwrap(), spec);
        let toml_spec: MethodSpec = toml::from_str(
            "kind = \"vecmap\"\nwhiten = false\nsrc-reweight = 0.0\ntrg-reweight = 0.0\ndewhiten = false",
        )
        .unwrap();
        assert_eq!(
            toml_spec,
            MethodSpec::Vecmap { whiten: false, src_reweight: 0.0, trg_reweight: 0.0, dewhiten: false }
        );
        for bad in [r#"{"kind":"vecmap","src_reweight":1}"#, r#"{"kind":"vecmap","whitening":true}"#] {
            let err = serde_json::from_str::<MethodSpec>(bad).unwrap_err().to_string();
            assert!(err.contains("unknown field"), "{err}");
        }
        let negative =
            MethodSpec::Vecmap { whiten: true, src_reweight: -1.0, trg_reweight: 0.5, dewhiten: true };
        assert!(matches!(negative.validate(), Err(AlignError::InvalidParameter { .. })));
    }

    #[test]
    fn fit_dispatches_vecmap_with_both_sides_mapped() {
        let mut r = rng(66);
        let x = f32s(gaussian(&mut r, 50, 8).as_ref());
        let y = f32s(gaussian(&mut r, 50, 6).as_ref());
        let spec = MethodSpec::Vecmap { whiten: true, src_reweight: 0.5, trg_reweight: 0.5, dewhiten: true };
        use crate::Alignment;
        let map = crate::Fit::new(&spec).run_f32(x.as_ref(), y.as_ref()).unwrap();
        let (p, s) = (map.map_source(x.as_ref()), map.map_target(y.as_ref()));
        assert_eq!((p.ncols(), s.ncols()), (6, 6));
    }
}
