//! MUSE-style refinement around any estimator: induce a dictionary of mutual CSLS nearest neighbours
//! between mapped source and target rows, refit on seeds ∪ induced pairs, repeat.
//!
//! The estimator is a closure from anchor pairs to a fitted [`Alignment`], so refinement wraps
//! least squares, Procrustes, CCA or the functional method alike. The CSLS neighbourhoods come from
//! the blocked passes of [`crate::metrics`] (bounded memory).

use crate::align::Alignment;
use crate::metrics::{mutual_csls_pairs, Blocks};
use faer::MatRef;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// How to refine an alignment (`refine = { … }` in an edge's method).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RefineSpec {
    /// Refit rounds: induce a dictionary, refit on it. Stops early when the dictionary no longer
    /// changes. Default 5.
    pub iterations: usize,
    /// Neighbourhood size of the CSLS hubness penalties. Default 10.
    pub k: usize,
    /// Only the first `max-rank` rows of each side (the most frequent words, when rows are sorted by
    /// frequency) take part in dictionary induction; 0 means all rows. Default 15000.
    pub max_rank: usize,
    /// Keep the seed anchors in every refit (induced pairs that reuse a seed's source or target row
    /// are dropped). When false, refits use the induced pairs only. Default true.
    pub keep_seeds: bool,
}

impl Default for RefineSpec {
    fn default() -> Self {
        Self { iterations: 5, k: 10, max_rank: 15000, keep_seeds: true }
    }
}

/// One round of refinement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefineRound {
    /// Mutual CSLS nearest-neighbour pairs found with the previous round's map.
    pub induced: usize,
    /// Pairs the map was refitted on (seeds kept plus induced pairs not clashing with them).
    pub dictionary: usize,
    /// Induced pairs that were also in the previous round's induced dictionary.
    pub kept_from_previous: usize,
}

/// What refinement did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefineReport {
    /// Seed anchors given.
    pub seeds: usize,
    /// Rows of each side taking part in induction (after `max-rank`).
    pub candidates_source: usize,
    /// Rows of the target side taking part in induction.
    pub candidates_target: usize,
    /// One entry per refit, in order.
    pub rounds: Vec<RefineRound>,
    /// Whether it stopped before `iterations` because the dictionary stopped changing.
    pub converged: bool,
}

/// A fitting function: anchor pairs (source row, target row) to a fitted alignment.
pub type FitFn<'a, E> = dyn Fn(&[(usize, usize)]) -> Result<Box<dyn Alignment>, E> + 'a;

/// Fits on `seeds`, then refines (see [`refine_from`]).
pub fn refine<E>(
    fit: &FitFn<'_, E>,
    source: MatRef<'_, f32>,
    target: MatRef<'_, f32>,
    seeds: &[(usize, usize)],
    spec: &RefineSpec,
) -> Result<(Box<dyn Alignment>, RefineReport), E> {
    let initial = fit(seeds)?;
    refine_from(initial, fit, source, target, seeds, spec)
}

/// Refines an already fitted alignment: each round maps the first `max-rank` rows of `source` and
/// `target`, induces the mutual CSLS nearest-neighbour pairs between them, and refits with `fit` on
/// the seeds (when kept) plus the induced pairs. Returns the last map and a report of dictionary
/// sizes. Errors of `fit` are passed through. A width mismatch between the mapped spaces ends
/// refinement with the map it has.
pub fn refine_from<E>(
    initial: Box<dyn Alignment>,
    fit: &FitFn<'_, E>,
    source: MatRef<'_, f32>,
    target: MatRef<'_, f32>,
    seeds: &[(usize, usize)],
    spec: &RefineSpec,
) -> Result<(Box<dyn Alignment>, RefineReport), E> {
    let limit = |n: usize| if spec.max_rank == 0 { n } else { n.min(spec.max_rank) };
    let (ns, nt) = (limit(source.nrows()), limit(target.nrows()));
    let mut report = RefineReport {
        seeds: seeds.len(),
        candidates_source: ns,
        candidates_target: nt,
        rounds: Vec::new(),
        converged: false,
    };
    let seed_sources: HashSet<usize> = seeds.iter().map(|p| p.0).collect();
    let seed_targets: HashSet<usize> = seeds.iter().map(|p| p.1).collect();
    let mut map = initial;
    let mut previous: Option<Vec<(usize, usize)>> = None;
    for _ in 0..spec.iterations {
        let mapped_source = map.map_source(source.subrows(0, ns));
        let mapped_target = map.map_target(target.subrows(0, nt));
        let Ok(induced) =
            mutual_csls_pairs(mapped_source.as_ref(), mapped_target.as_ref(), spec.k, Blocks::default())
        else {
            break;
        };
        if previous.as_ref() == Some(&induced) {
            report.converged = true;
            break;
        }
        let mut dictionary: Vec<(usize, usize)> = Vec::new();
        if spec.keep_seeds {
            dictionary.extend_from_slice(seeds);
            dictionary.extend(
                induced
                    .iter()
                    .filter(|(s, t)| !seed_sources.contains(s) && !seed_targets.contains(t))
                    .copied(),
            );
        } else {
            dictionary.extend_from_slice(&induced);
        }
        let kept_from_previous = previous.as_ref().map_or(0, |p| {
            let before: HashSet<&(usize, usize)> = p.iter().collect();
            induced.iter().filter(|pair| before.contains(pair)).count()
        });
        report.rounds.push(RefineRound {
            induced: induced.len(),
            dictionary: dictionary.len(),
            kept_from_previous,
        });
        map = fit(&dictionary)?;
        previous = Some(induced);
    }
    Ok((map, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{retrieval, Scoring};
    use faer::{Mat, MatRef};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Mat<f32> {
        Mat::from_fn(n, d, |_, _| {
            let u: f64 = rand::Rng::random::<f64>(rng).max(1e-300);
            let v: f64 = rand::Rng::random(rng);
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
    }

    /// A linear map W (d × d) applied on the source side; the target is left as is.
    struct Linear(Mat<f32>);

    impl Alignment for Linear {
        fn map_source(&self, x: MatRef<'_, f32>) -> Mat<f32> {
            x * &self.0
        }
        fn map_target(&self, y: MatRef<'_, f32>) -> Mat<f32> {
            y.to_owned()
        }
    }

    /// Ridge-regularised least squares: W = (XᵀX + λI)⁻¹ XᵀY on the listed pairs.
    fn least_squares(x: MatRef<'_, f32>, y: MatRef<'_, f32>, pairs: &[(usize, usize)]) -> Mat<f32> {
        use faer::linalg::solvers::Solve;
        let d = x.ncols();
        let xs = Mat::<f64>::from_fn(pairs.len(), d, |i, j| f64::from(x[(pairs[i].0, j)]));
        let ys = Mat::<f64>::from_fn(pairs.len(), y.ncols(), |i, j| f64::from(y[(pairs[i].1, j)]));
        let mut gram = xs.transpose() * &xs;
        for i in 0..d {
            gram[(i, i)] += 1e-2;
        }
        let w = gram.llt(faer::Side::Lower).map(|c| c.solve(xs.transpose() * &ys));
        match w {
            Ok(w) => Mat::from_fn(d, y.ncols(), |i, j| w[(i, j)] as f32),
            Err(_) => Mat::zeros(d, y.ncols()),
        }
    }

    #[test]
    fn refinement_improves_a_few_seed_map() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (n, d) = (1500, 20);
        let x = gaussian(&mut rng, n, d);
        let q = {
            let g = gaussian(&mut rng, d, d);
            g.qr().compute_Q()
        };
        let y = &x * &q + gaussian(&mut rng, n, d) * faer::Scale(0.3f32);
        let seeds: Vec<(usize, usize)> = (0..24).map(|i| (i * 7, i * 7)).collect();
        let fit = |pairs: &[(usize, usize)]| -> Result<Box<dyn Alignment>, std::convert::Infallible> {
            Ok(Box::new(Linear(least_squares(x.as_ref(), y.as_ref(), pairs))))
        };
        let truth: Vec<Option<usize>> = (0..n).map(Some).collect();
        let p_at_1 = |m: &dyn Alignment| {
            retrieval(
                m.map_source(x.as_ref()).as_ref(),
                m.map_target(y.as_ref()).as_ref(),
                &truth,
                Scoring::Nn,
            )
            .map(|s| s.p_at_1)
            .unwrap_or(0.0)
        };
        let Ok(start) = fit(&seeds);
        let before = p_at_1(start.as_ref());
        let spec = RefineSpec { max_rank: 1000, ..RefineSpec::default() };
        let Ok((refined, report)) = refine(&fit, x.as_ref(), y.as_ref(), &seeds, &spec);
        let after = p_at_1(refined.as_ref());
        assert!(after > before + 0.1, "P@1 {before} -> {after}, {report:?}");
        assert!(!report.rounds.is_empty() && report.rounds.len() <= 5);
        assert!(report
            .rounds
            .iter()
            .all(|r| r.dictionary >= seeds.len() && r.dictionary <= 1000 + seeds.len()));
        assert_eq!((report.seeds, report.candidates_source), (24, 1000));
    }

    #[test]
    fn spec_reads_kebab_case_with_defaults_and_rejects_unknown_keys() {
        let spec: RefineSpec = serde_json::from_str(r#"{"max-rank": 5000, "keep-seeds": false}"#).unwrap();
        assert_eq!(spec, RefineSpec { max_rank: 5000, keep_seeds: false, ..RefineSpec::default() });
        assert!(serde_json::from_str::<RefineSpec>(r#"{"iteration": 3}"#).is_err());
        let back: RefineSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }
}
