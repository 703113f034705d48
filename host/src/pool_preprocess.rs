//! `PoolPreprocess`: an edge's preprocessing fitted once per repeat on each side's anchor pool
//! (`fit-on = "pool"`), and the pool's rows transformed by it once, which every fit of the repeat
//! reads instead of transforming its own pairs and candidates again.

use crate::align::refine::CandidateRows;
use crate::align::{to_precision, AlignError, FittedPreprocess, Preprocess, Space};
use faer::{Mat, MatRef};

/// One side's fitted preprocessing and its pool, transformed.
#[derive(Debug)]
pub struct PoolSide {
    /// Fitted on the side's pool rows.
    pub preprocess: FittedPreprocess<f64>,
    /// Its fingerprint ([`FittedPreprocess::fingerprint`]).
    pub fingerprint: u64,
    /// The pool rows (in the order they were given), transformed.
    pub rows: Mat<f64>,
}

impl PoolSide {
    /// Fits `pre` on `rows` (the side's pool) and transforms them.
    fn fit(pre: &Preprocess, rows: MatRef<'_, f32>, space: Space) -> Result<Self, AlignError> {
        let rows = to_precision::<f64>(rows);
        let preprocess = FittedPreprocess::fit(pre, rows.as_ref(), space)?;
        let rows = preprocess.apply(rows.as_ref())?;
        Ok(PoolSide { fingerprint: preprocess.fingerprint(), preprocess, rows })
    }

    /// Rows `index` of the transformed pool, as a fit on those pairs would transform them.
    pub fn rows(&self, index: &[usize]) -> Mat<f64> {
        crate::runner::rows(self.rows.as_ref(), index)
    }

    /// The pool as candidate rows of refinement and self-learning (`raw`: the same rows,
    /// untransformed, for maps that do not start with this preprocessing).
    pub fn candidates<'a>(&'a self, raw: MatRef<'a, f32>) -> CandidateRows<'a> {
        CandidateRows { raw, preprocessed: Some((self.fingerprint, self.rows.as_ref())) }
    }
}

/// Both sides' preprocessing, fitted on their pools.
#[derive(Debug)]
pub struct PoolPreprocess {
    /// The parent's (source) side.
    pub source: PoolSide,
    /// The child's (target) side.
    pub target: PoolSide,
}

impl PoolPreprocess {
    /// Fits `pre` on each side's pool rows (`cx`, `cy`; each on its own, unpaired) and
    /// transforms them.
    pub fn fit(pre: &Preprocess, cx: MatRef<'_, f32>, cy: MatRef<'_, f32>) -> Result<Self, AlignError> {
        Ok(PoolPreprocess {
            source: PoolSide::fit(pre, cx, Space::Source)?,
            target: PoolSide::fit(pre, cy, Space::Target)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::{Alignment, Fit, MethodSpec};

    /// A fit on transformed pool rows is the fit on the raw pairs with the pool's preprocessing,
    /// bit for bit, and maps the transformed candidates as it maps the raw ones.
    #[test]
    fn transformed_pool_rows_give_the_fit_and_maps_of_the_raw_rows() {
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let cx = Mat::<f32>::from_fn(300, 40, |_, _| next());
        let cy = Mat::<f32>::from_fn(300, 24, |_, _| next());
        let pre = Preprocess { pca: Some(16), ..Preprocess::default() };
        let pool = PoolPreprocess::fit(&pre, cx.as_ref(), cy.as_ref()).unwrap();
        let pairs: Vec<usize> = (0..60).map(|i| (i * 37 + 11) % 300).collect();
        let gather = |m: &Mat<f32>| crate::runner::rows(m.as_ref(), &pairs);
        let spec = MethodSpec::Ridge { lambda: 0.1 };
        let fit =
            || Fit::new(&spec).preprocessed(pool.source.preprocess.clone(), pool.target.preprocess.clone());
        let direct = fit().run_f32(gather(&cx).as_ref(), gather(&cy).as_ref()).unwrap();
        let (xp, yp) = (pool.source.rows(&pairs), pool.target.rows(&pairs));
        let transformed = fit().run_transformed(xp.as_ref(), yp.as_ref()).unwrap();
        assert_eq!(direct, transformed);
        let (sx, sy) = (pool.source.candidates(cx.as_ref()), pool.target.candidates(cy.as_ref()));
        assert_eq!(sx.map_source(&transformed, 300), transformed.map_source(cx.as_ref()));
        assert_eq!(sy.map_target(&transformed, 250), transformed.map_target(cy.as_ref().subrows(0, 250)));
        // A map with another preprocessing maps the raw rows.
        let other =
            Fit::new(&spec).preprocess(&pre).run_f32(gather(&cx).as_ref(), gather(&cy).as_ref()).unwrap();
        assert_eq!(sx.map_source(&other, 300), other.map_source(cx.as_ref()));
        assert!(other.map_preprocessed_source(pool.source.rows.as_ref(), pool.source.fingerprint).is_none());
    }
}
