//! MUSE-style refinement around any estimator: induce a dictionary of mutual CSLS nearest neighbours
//! between mapped source and target rows, refit on seeds ∪ induced pairs, repeat until the
//! dictionary stops changing.
//!
//! The estimator is a closure from anchor pairs to a fitted [`Alignment`], so refinement wraps
//! least squares, Procrustes, CCA or the functional method alike. The CSLS neighbourhoods come from
//! the blocked passes of [`crate::metrics`] (bounded memory).
//!
//! **Stopping and selection, without labels.** Each round measures MUSE's criterion — the mean
//! cosine between the candidate source rows and their CSLS translations — on the map that induced
//! it. Refinement stops when the induced dictionary changes by at most `tolerance` (a share of its
//! pairs) from one round to the next, or after `iterations` refits; the map returned is, by
//! default, the one with the best criterion among all rounds (the seed fit included), as MUSE
//! selects its model. No test item or label takes part.

use crate::metrics::{csls_matches, Blocks};
use crate::{AlignError, Alignment};
use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Which of the rounds' maps refinement returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The map with the best label-free criterion (MUSE's mean CSLS-translation cosine).
    #[default]
    Criterion,
    /// The last map fitted.
    Last,
}

/// How to refine an alignment (`refine = { … }` on an edge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RefineSpec {
    /// Most refits: induce a dictionary, refit on it. Refinement usually stops earlier, when the
    /// dictionary stops changing (`tolerance`). Default 30.
    pub iterations: usize,
    /// Stop when the induced dictionary differs from the previous round's by at most this share
    /// of its pairs (pairs in one but not the other, over the larger of the two); 0 stops only
    /// when it is identical. Default 0.01.
    pub tolerance: f64,
    /// Which round's map to return: `criterion` (the best label-free criterion) or `last`.
    /// Default `criterion`.
    pub select: Selection,
    /// Neighbourhood size of the CSLS hubness penalties. Default 10.
    pub k: usize,
    /// Only the first `max-rank` rows of each side (the most frequent words, when rows are sorted by
    /// frequency) take part in dictionary induction and in the criterion; 0 means all rows. Default
    /// 15000.
    pub max_rank: usize,
    /// Keep the seed anchors in every refit (induced pairs that reuse a seed's source or target row
    /// are dropped). When false, refits use the induced pairs only. Default true.
    pub keep_seeds: bool,
}

impl RefineSpec {
    /// Checks the settings' ranges: `iterations` and `k` at least 1, `tolerance` a finite share
    /// in [0, 1].
    pub fn validate(&self) -> Result<(), AlignError> {
        let invalid = |field: &str, detail: String| {
            Err(AlignError::InvalidParameter { field: format!("refine.{field}"), detail })
        };
        if self.iterations == 0 {
            return invalid(
                "iterations",
                "must be at least 1 (leave `refine` out for no refinement)".to_owned(),
            );
        }
        if self.k == 0 {
            return invalid("k", "must be at least 1".to_owned());
        }
        if !(self.tolerance.is_finite() && (0.0..=1.0).contains(&self.tolerance)) {
            return invalid("tolerance", format!("must be a share in [0, 1], got {}", self.tolerance));
        }
        Ok(())
    }
}

impl Default for RefineSpec {
    fn default() -> Self {
        Self {
            iterations: 30,
            tolerance: 0.01,
            select: Selection::Criterion,
            k: 10,
            max_rank: 15000,
            keep_seeds: true,
        }
    }
}

/// One round of refinement: the dictionary a map induced, and that map's criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefineRound {
    /// Mutual CSLS nearest-neighbour pairs found with this round's map.
    pub induced: usize,
    /// Pairs the next map is (or would be) fitted on: seeds kept plus induced pairs not clashing
    /// with them.
    pub dictionary: usize,
    /// Induced pairs that were also in the previous round's induced dictionary.
    pub kept_from_previous: usize,
    /// Share of pairs that differ from the previous round's induced dictionary (1 in round 0).
    pub changed: f64,
    /// MUSE's criterion of this round's map: mean cosine between candidate source rows and their
    /// CSLS translations.
    pub criterion: f64,
}

/// What refinement did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefineReport {
    /// Seed anchors given.
    pub seeds: usize,
    /// Rows of each side taking part in induction (after `max-rank`).
    pub candidates_source: usize,
    /// Rows of the target side taking part in induction.
    pub candidates_target: usize,
    /// One entry per map evaluated, in order: round 0 is the seed fit, round r the r-th refit.
    pub rounds: Vec<RefineRound>,
    /// Whether it stopped because the dictionary stopped changing (not at the cap).
    pub converged: bool,
    /// The round whose map was returned.
    pub chosen: usize,
}

impl RefineReport {
    /// Refits done (rounds after the seed fit).
    pub fn refits(&self) -> usize {
        self.rounds.len().saturating_sub(1)
    }
}

/// A fitting function: anchor pairs (source row, target row) to a fitted alignment.
pub type FitFn<'a, E> = dyn Fn(&[(usize, usize)]) -> Result<Box<dyn Alignment>, E> + 'a;

/// One side's candidate rows of refinement or self-learning: raw, and optionally also as a
/// preprocessing every refit shares turns them out (fitted once on a pool: the rows and its
/// [`FittedPreprocess::fingerprint`](crate::FittedPreprocess::fingerprint)). A map that starts
/// with that preprocessing maps the preprocessed rows ([`Alignment::map_preprocessed_source`]),
/// the same values without transforming thousands of rows at every round; any other map, the raw
/// rows.
#[derive(Clone, Copy, Debug)]
pub struct CandidateRows<'a> {
    /// The rows (n × d of the space), `f32`.
    pub raw: MatRef<'a, f32>,
    /// The same rows preprocessed (n × the preprocessing's width), with its fingerprint.
    pub preprocessed: Option<(u64, MatRef<'a, f64>)>,
}

impl<'a> From<MatRef<'a, f32>> for CandidateRows<'a> {
    fn from(raw: MatRef<'a, f32>) -> Self {
        CandidateRows { raw, preprocessed: None }
    }
}

impl CandidateRows<'_> {
    /// Rows available.
    pub fn nrows(&self) -> usize {
        self.raw.nrows()
    }

    /// The first `n` rows, mapped by `map` as source rows.
    pub fn map_source(&self, map: &dyn Alignment, n: usize) -> Mat<f32> {
        self.preprocessed
            .and_then(|(by, z)| map.map_preprocessed_source(z.subrows(0, n), by))
            .unwrap_or_else(|| map.map_source(self.raw.subrows(0, n)))
    }

    /// The first `n` rows, mapped by `map` as target rows.
    pub fn map_target(&self, map: &dyn Alignment, n: usize) -> Mat<f32> {
        self.preprocessed
            .and_then(|(by, z)| map.map_preprocessed_target(z.subrows(0, n), by))
            .unwrap_or_else(|| map.map_target(self.raw.subrows(0, n)))
    }
}

/// Fits on `seeds`, then refines (see [`refine_from`]).
pub fn refine<'r, E>(
    fit: &FitFn<'_, E>,
    source: impl Into<CandidateRows<'r>>,
    target: impl Into<CandidateRows<'r>>,
    seeds: &[(usize, usize)],
    spec: &RefineSpec,
) -> Result<(Box<dyn Alignment>, RefineReport), E> {
    let initial = fit(seeds)?;
    refine_from(initial, fit, source, target, seeds, spec)
}

/// Refines an already fitted alignment: each round maps the first `max-rank` rows of `source` and
/// `target`, measures the criterion, induces the mutual CSLS nearest-neighbour pairs between them,
/// and — unless the dictionary has stopped changing or `iterations` refits are done — refits with
/// `fit` on the seeds (when kept) plus the induced pairs. Returns the map chosen by
/// `spec.select` and a report of every round. Errors of `fit` are passed through. A width mismatch
/// between the mapped spaces ends refinement with the maps it has.
pub fn refine_from<'r, E>(
    initial: Box<dyn Alignment>,
    fit: &FitFn<'_, E>,
    source: impl Into<CandidateRows<'r>>,
    target: impl Into<CandidateRows<'r>>,
    seeds: &[(usize, usize)],
    spec: &RefineSpec,
) -> Result<(Box<dyn Alignment>, RefineReport), E> {
    let (source, target) = (source.into(), target.into());
    let limit = |n: usize| if spec.max_rank == 0 { n } else { n.min(spec.max_rank) };
    let (ns, nt) = (limit(source.nrows()), limit(target.nrows()));
    let mut report = RefineReport {
        seeds: seeds.len(),
        candidates_source: ns,
        candidates_target: nt,
        rounds: Vec::new(),
        converged: false,
        chosen: 0,
    };
    let seed_sources: HashSet<usize> = seeds.iter().map(|p| p.0).collect();
    let seed_targets: HashSet<usize> = seeds.iter().map(|p| p.1).collect();
    let mut current = initial;
    let mut best: Option<(f64, Box<dyn Alignment>)> = None;
    let mut previous: Option<HashSet<(usize, usize)>> = None;
    for round in 0..=spec.iterations {
        let mapped_source = source.map_source(current.as_ref(), ns);
        let mapped_target = target.map_target(current.as_ref(), nt);
        let Ok(matches) =
            csls_matches(mapped_source.as_ref(), mapped_target.as_ref(), spec.k, Blocks::default())
        else {
            break;
        };
        let criterion = matches.mean_forward_cosine();
        let induced = matches.mutual();
        let induced_set: HashSet<(usize, usize)> = induced.iter().copied().collect();
        let kept_from_previous = previous.as_ref().map_or(0, |p| induced_set.intersection(p).count());
        let changed = previous.as_ref().map_or(1.0, |p| {
            let differing = induced_set.len() + p.len() - 2 * kept_from_previous;
            let larger = induced_set.len().max(p.len());
            if larger == 0 {
                0.0
            } else {
                differing as f64 / larger as f64
            }
        });
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
        report.rounds.push(RefineRound {
            induced: induced.len(),
            dictionary: dictionary.len(),
            kept_from_previous,
            changed,
            criterion,
        });
        let converged = round > 0 && changed <= spec.tolerance;
        report.converged = converged;
        let next = if converged || round == spec.iterations { None } else { Some(fit(&dictionary)?) };
        let better = match (&best, spec.select) {
            (_, Selection::Last) | (None, _) => true,
            (Some((b, _)), Selection::Criterion) => criterion > *b || (b.is_nan() && !criterion.is_nan()),
        };
        match next {
            Some(map) => {
                let old = std::mem::replace(&mut current, map);
                if better {
                    report.chosen = round;
                    best = Some((criterion, old));
                }
            }
            None => {
                return Ok(match best {
                    Some((_, map)) if !better => (map, report),
                    _ => {
                        report.chosen = round;
                        (current, report)
                    }
                });
            }
        }
        previous = Some(induced_set);
    }
    // Only reached when the mapped spaces cannot be compared (a width mismatch): the best map so
    // far, or the one it has.
    Ok(match best {
        Some((_, map)) => (map, report),
        None => (current, report),
    })
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
        assert!(report.converged, "the dictionary settles well before the cap: {report:?}");
        assert!(report.refits() >= 2 && report.refits() < spec.iterations, "{report:?}");
        assert!(report
            .rounds
            .iter()
            .all(|r| r.dictionary >= seeds.len() && r.dictionary <= 1000 + seeds.len()));
        assert_eq!((report.seeds, report.candidates_source), (24, 1000));
        let last = report.rounds.last().unwrap();
        assert!(last.changed <= spec.tolerance);
        assert!(last.dictionary > report.rounds[0].dictionary, "the dictionary grows");
        // The criterion rises with the dictionary, and the chosen round has the best criterion.
        let best = report.rounds.iter().map(|r| r.criterion).fold(f64::MIN, f64::max);
        assert_eq!(report.rounds[report.chosen].criterion, best);
        assert!(best > report.rounds[0].criterion);
    }

    #[test]
    fn spec_reads_kebab_case_with_defaults_and_rejects_unknown_keys() {
        let spec: RefineSpec =
            serde_json::from_str(r#"{"max-rank": 5000, "keep-seeds": false, "select": "last"}"#).unwrap();
        assert_eq!(
            spec,
            RefineSpec {
                max_rank: 5000,
                keep_seeds: false,
                select: Selection::Last,
                ..RefineSpec::default()
            }
        );
        assert!(serde_json::from_str::<RefineSpec>(r#"{"iteration": 3}"#).is_err());
        let back: RefineSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }
}
