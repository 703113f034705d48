//! Zero-anchor starts: seed dictionaries of (source row, target row) pairs found from two spaces
//! that share no paired rows, so that alignment and refinement can begin from 0 anchors.
//!
//! Both methods look only at the first `vocabulary` rows of each side (rows are assumed sorted
//! most-frequent-first, so these are the most frequent items), normalise them VecMap-style (unit
//! length, centre, unit length), and use structure that an isometry (a rotation, a reflection)
//! leaves unchanged: similarities between rows of the same space. They therefore recover pairs only
//! when the two spaces are (close to) isometric and their distributions have features to match: if
//! every row looks alike from inside its own space — isotropic Gaussian noise, whose similarity
//! distributions concentrate to the same shape for every row as the dimension grows — no
//! within-space statistic can tell rows apart, and any method of this kind returns chance pairs.
//!
//! # Similarity-distribution matching ([`StartSpec::SimilarityDistribution`])
//! VecMap's unsupervised initialisation (Artetxe et al., ACL 2018). With `m = min(vocabulary, n_s,
//! n_t)` rows per side, each side's `m × m` matrix `M = (X Xᵀ)^{1/2} = U S Uᵀ` (thin SVD
//! `X = U S Vᵀ`) has its rows sorted ascending: a sorted row is the distribution of one item's
//! similarities to the others, which does not depend on the coordinates, the width or the order of
//! the rows. Sorted rows are normalised again (unit, centre, unit), so the two sides' `m × m`
//! matrices live in one space, and each source row is paired with its CSLS-best target row and each
//! target row with its CSLS-best source row (the union is returned). Cost: one thin SVD per side,
//! `m²` sorted values per side (2 · 4 · m² bytes: 128 MB at m = 4000, at most [`MAX_VOCABULARY`]),
//! and two tiled passes over the `m × m` cross product (`2 m³` flops, a few seconds at m = 4000).
//! Limits: the two vocabularies must largely describe the same items (the sorted rows of items
//! without a counterpart match something anyway); near-duplicate similarity profiles (items in the
//! same dense region) are confused with one another; noise that differs between the spaces blurs
//! the profiles quickly, so the precision of real word spaces is low (VecMap's paper relies on
//! self-learning to go from a poor start to a good map) — treat the pairs as a seed, not a result.
//! The result does not depend on the seed.
//!
//! # Cluster matching ([`StartSpec::Clusters`])
//! After mini-vec2vec (Dar, 2025). Each side is clustered by seeded spherical k-means (greedy
//! k-means++ initialisation, the best of `restarts` runs by inertia). Clusters are matched across
//! spaces as a quadratic assignment problem on the centroids' within-space cosine matrices (maximise
//! `Σ S_s[a, b] · S_t[π a, π b]`): starting from a Hungarian assignment on the centroids'
//! sorted-similarity signatures (the method above, applied to centroids) and from a few random
//! permutations, each improved by pairwise swaps, the best objective wins. Each row is then
//! described by its cosines to the matched centroids (a relative representation, in the same
//! coordinates on both sides whatever the widths), and every source row is paired with its nearest
//! target row inside the matched target cluster. `refinements` rounds then fit an orthogonal
//! Procrustes map on the mutual pairs (rectangular, `d_s × d_t`, when the widths differ: the map
//! has orthonormal rows or columns, so it projects the wider side) and re-pair rows inside matched
//! clusters by cosine under that map. Each source cluster contributes at most `pairs_per_cluster`
//! pairs, mutual pairs first, most confident (highest cosine) first. Limits: k-means must find
//! corresponding clusters on both sides, which needs real cluster structure and similar
//! vocabularies; when the cluster structure is weak, the QAP has many near-optimal solutions and
//! the matching, hence the pairs, are wrong (the report's `cluster_agreement`, the correlation of
//! the matched centroid similarities, says how well the structures agreed); rows near cluster
//! boundaries may fall in non-matching clusters and are then paired wrongly.
//!
//! # The operators alone ([`StartSpec::Operators`])
//! No pairs at all: the first fit is a functional one whose only cross-space signal is the edge's
//! corresponding operators (a relation's displacement in one space should map onto the same
//! relation's displacement in the other; an operator's action should commute with the map).
//! [`unsupervised_pairs`] returns no pairs for it; the host fits only the methods that read
//! operators (`functional`) from it, and refinement or self-learning then induce a dictionary
//! from that map. Its control is the same fit with the operators' pairing shuffled
//! (`shuffle-operators = true`): with no pairs there is nothing for a permutation null to permute.
//! Limits: `K` operator pairs pin at most a `K`-dimensional part of the map in the offset form, so
//! the first map retrieves poorly whenever `K` is small against the widths; whether the induced
//! dictionary then takes off is what an experiment measures.
//!
//! # Measured (the tests' 1000 × 30 twelve-component mixture, target a rotated, permuted copy)
//! With Gaussian noise of 0.02 per coordinate (about 3 % of a row's norm), similarity-distribution
//! pairs are 97 % correct (also 97 % when the target is projected to 20 principal axes) and
//! cluster-matching pairs 100 %; Procrustes on either gives P@1 = 1.00. At 0.05 (about 7 %) they
//! fall to about 62 % and 99 %, at 0.1 to about 25 % and 19 % (the cluster structures then no
//! longer agree). Against an unrelated space both give chance pairs (≤ 0.2 %).

use super::error::{AlignError, Space};
use super::kernels;
use super::procrustes;
use faer::{Mat, MatRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The largest `vocabulary` accepted (memory of the similarity-distribution method grows as
/// `8 · vocabulary²` bytes: 800 MB here).
pub const MAX_VOCABULARY: usize = 10_000;

/// The largest number of clusters accepted (the cluster matching costs `O(clusters³)` per start).
pub const MAX_CLUSTERS: usize = 1024;

/// Random starts of the cluster matching, besides the one from the centroid signatures.
const RANDOM_MATCHING_STARTS: usize = 16;

/// Rows of one tile of the `m × m` cross product (memory: `m × TILE × 4` bytes).
const TILE: usize = 256;

fn default_vocabulary() -> usize {
    4000
}
fn default_csls_k() -> usize {
    10
}
fn default_clusters() -> usize {
    32
}
fn default_kmeans_iterations() -> usize {
    30
}
fn default_restarts() -> usize {
    3
}
fn default_pairs_per_cluster() -> usize {
    50
}
fn default_refinements() -> usize {
    3
}

/// How to find a seed dictionary without anchors (`start = { kind = "…", … }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StartSpec {
    /// VecMap's unsupervised initialisation: rows matched by the sorted distribution of their
    /// within-space similarities, with CSLS, in both directions.
    #[serde(rename_all = "kebab-case")]
    SimilarityDistribution {
        /// Rows of each side taking part (the first ones: the most frequent). The method uses
        /// `m = min(vocabulary, source rows, target rows)` rows of each side; at most
        /// [`MAX_VOCABULARY`]. Default 4000.
        #[serde(default = "default_vocabulary")]
        vocabulary: usize,
        /// Neighbourhood size of the CSLS hubness penalties; 0 means plain cosine. Default 10.
        #[serde(default = "default_csls_k")]
        k: usize,
    },
    /// mini-vec2vec-style cluster matching: k-means on each side, clusters matched by the structure
    /// of their centroids, rows paired inside matched clusters.
    #[serde(rename_all = "kebab-case")]
    Clusters {
        /// Clusters per side (k of k-means), at least 2 and at most [`MAX_CLUSTERS`]; each side
        /// needs at least this many rows. Default 32.
        #[serde(default = "default_clusters")]
        clusters: usize,
        /// Rows of each side taking part (the first ones: the most frequent), at most
        /// [`MAX_VOCABULARY`]. Default 4000.
        #[serde(default = "default_vocabulary")]
        vocabulary: usize,
        /// Most k-means iterations per run (a run stops earlier when its assignment is stable).
        /// Default 30.
        #[serde(default = "default_kmeans_iterations")]
        iterations: usize,
        /// k-means runs per side (different k-means++ seeds); the lowest inertia is kept.
        /// Default 3.
        #[serde(default = "default_restarts")]
        restarts: usize,
        /// Most pairs a source cluster contributes (mutual pairs first, then by cosine).
        /// Default 50.
        #[serde(default = "default_pairs_per_cluster")]
        pairs_per_cluster: usize,
        /// Rounds of: fit orthogonal Procrustes on the mutual pairs, re-pair rows inside matched
        /// clusters under that map. 0 keeps the pairs of the relative representations. Default 3.
        #[serde(default = "default_refinements")]
        refinements: usize,
    },
    /// No pairs: the first fit reads only the edge's operators (see the module docs); for
    /// functional methods.
    #[serde(rename_all = "kebab-case")]
    Operators {
        /// Runs of self-learning from this start (its `restarts`, in place of the edge's), the
        /// run with the highest objective kept; at least 1. Default: the edge's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restarts: Option<usize>,
    },
}

impl StartSpec {
    /// The method's `kind` as written in the experiment (`similarity-distribution`, `clusters`,
    /// `operators`).
    pub fn kind(&self) -> &'static str {
        match self {
            StartSpec::SimilarityDistribution { .. } => "similarity-distribution",
            StartSpec::Clusters { .. } => "clusters",
            StartSpec::Operators { .. } => "operators",
        }
    }

    /// Whether the start gives no pairs and leaves the first fit to the edge's operators.
    pub fn from_operators(&self) -> bool {
        matches!(self, StartSpec::Operators { .. })
    }

    /// Runs of self-learning from this start, when it sets them (in place of the edge's).
    pub fn restarts(&self) -> Option<usize> {
        match *self {
            StartSpec::Operators { restarts } => restarts,
            _ => None,
        }
    }
}

/// What a zero-anchor start found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartReport {
    /// Pairs returned.
    pub pairs: usize,
    /// Source rows taking part (the first ones, after `vocabulary`).
    pub candidates_source: usize,
    /// Target rows taking part.
    pub candidates_target: usize,
    /// Returned pairs that are mutual: each row is the other's best match (similarity distribution:
    /// over all candidates; clusters: inside the matched cluster pair, under the last map).
    pub mutual: usize,
    /// Mean score of the returned pairs: CSLS of the sorted-similarity rows (similarity
    /// distribution; plain cosine when `k = 0`), or cosine under the last map, or of the relative
    /// representations with no refinement (clusters). NaN when no pair is returned.
    pub mean_score: f64,
    /// Clusters only: Pearson correlation between the matched centroids' within-space cosines
    /// (off-diagonal). Near 1 when the two cluster structures agree; the matching maximises it, so
    /// unrelated spaces score well above 0 too (about 0.66 for the unrelated 12-cluster mixtures of
    /// the tests, against 1.00 for a noisy isometric copy).
    pub cluster_agreement: Option<f64>,
    /// Clusters only: source clusters that contributed at least one pair.
    pub clusters_used: Option<usize>,
}

impl StartSpec {
    /// Checks the settings' ranges (not the data), as [`unsupervised_pairs`] does before it
    /// starts: `vocabulary` 1…10,000, `clusters` 2…1024, `iterations`, `restarts` and
    /// `pairs-per-cluster` at least 1.
    pub fn validate(&self) -> Result<(), AlignError> {
        match *self {
            StartSpec::SimilarityDistribution { vocabulary, .. } => check_vocabulary(vocabulary),
            StartSpec::Clusters {
                clusters,
                vocabulary,
                iterations,
                restarts,
                pairs_per_cluster,
                refinements,
            } => {
                check_vocabulary(vocabulary)?;
                ClusterOptions { clusters, iterations, restarts, pairs_per_cluster, refinements }.check()
            }
            StartSpec::Operators { restarts: Some(0) } => Err(invalid(
                "restarts",
                "must be at least 1 (runs of self-learning from this start)".to_owned(),
            )),
            StartSpec::Operators { .. } => Ok(()),
        }
    }
}

/// A seed dictionary for `source` and `target` (rows: items, sorted most-frequent-first), found
/// without any paired rows by the method of `spec`; pairs (source row, target row) are sorted and
/// distinct. `seed` drives the random choices (k-means++ and matching starts of `clusters`; the
/// similarity-distribution method is deterministic). The widths of the two sides may differ.
///
/// Errors: [`AlignError::InvalidParameter`] for out-of-range settings, [`AlignError::MissingInput`]
/// when a side has too few rows or no columns, [`AlignError::NonFinite`] for NaN or infinities in
/// the rows taking part, [`AlignError::NoConvergence`] if a decomposition fails.
pub fn unsupervised_pairs(
    spec: &StartSpec,
    source: MatRef<'_, f32>,
    target: MatRef<'_, f32>,
    seed: u64,
) -> Result<(Vec<(usize, usize)>, StartReport), AlignError> {
    match *spec {
        StartSpec::SimilarityDistribution { vocabulary, k } => {
            similarity_distribution(source, target, vocabulary, k)
        }
        StartSpec::Clusters {
            clusters,
            vocabulary,
            iterations,
            restarts,
            pairs_per_cluster,
            refinements,
        } => {
            let options = ClusterOptions { clusters, iterations, restarts, pairs_per_cluster, refinements };
            cluster_matching(source, target, vocabulary, &options, seed)
        }
        StartSpec::Operators { .. } => Ok((
            Vec::new(),
            StartReport {
                pairs: 0,
                candidates_source: 0,
                candidates_target: 0,
                mutual: 0,
                mean_score: f64::NAN,
                cluster_agreement: None,
                clusters_used: None,
            },
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks and shared helpers

fn invalid(field: &str, detail: String) -> AlignError {
    AlignError::InvalidParameter { field: format!("start.{field}"), detail }
}

fn check_vocabulary(vocabulary: usize) -> Result<(), AlignError> {
    if vocabulary == 0 || vocabulary > MAX_VOCABULARY {
        return Err(invalid(
            "vocabulary",
            format!("must be between 1 and {MAX_VOCABULARY} rows, got {vocabulary}"),
        ));
    }
    Ok(())
}

/// Checks one side (enough rows, some columns, finite) and returns how many rows take part.
fn check_side(
    x: MatRef<'_, f32>,
    space: Space,
    vocabulary: usize,
    needed: usize,
    what: &str,
) -> Result<usize, AlignError> {
    if x.nrows() < needed {
        return Err(AlignError::MissingInput {
            what: format!("the {what} start"),
            needed: format!("at least {needed} {space} rows"),
            got: format!("the {space} has {} rows", x.nrows()),
        });
    }
    if x.ncols() == 0 {
        return Err(AlignError::MissingInput {
            what: format!("the {what} start"),
            needed: format!("{space} rows with at least one column"),
            got: format!("the {space} rows have no columns"),
        });
    }
    let m = vocabulary.min(x.nrows());
    kernels::check_finite(x.subrows(0, m), space)?;
    Ok(m)
}

/// The first `m` rows of `x` in `f64`, normalised VecMap-style: unit length, centred (column means
/// subtracted), unit length.
fn normalised_head(x: MatRef<'_, f32>, m: usize) -> Mat<f64> {
    let mut out = Mat::<f64>::from_fn(m, x.ncols(), |i, j| f64::from(x[(i, j)]));
    kernels::normalise_rows(&mut out);
    let mean = kernels::column_means(out.as_ref());
    kernels::subtract_row(&mut out, &mean);
    kernels::normalise_rows(&mut out);
    out
}

fn unit(v: &mut [f64]) {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Scales every column of `a` to unit length (columns of zeros stay zero).
fn unit_columns(a: &mut Mat<f32>) {
    for j in 0..a.ncols() {
        let col = a.col_as_slice_mut(j);
        let norm = col.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
        if norm > 0.0 {
            let inv = (1.0 / norm) as f32;
            col.iter_mut().for_each(|x| *x *= inv);
        }
    }
}

/// Signatures of the rows of `x` (m × d, normalised): column i of the result is row i of
/// `(X Xᵀ)^{1/2}` sorted ascending, then the columns are normalised (unit, centred across
/// columns, unit). `m × m`, `f32`.
fn sorted_similarity_signatures(x: MatRef<'_, f64>, what: &str) -> Result<Mat<f32>, AlignError> {
    let m = x.nrows();
    let svd = kernels::thin_svd(x, what)?;
    let r = svd.s.len();
    let us = Mat::<f64>::from_fn(m, r, |i, j| svd.u[(i, j)] * svd.s[j]);
    let mut sig = Mat::<f32>::zeros(m, m);
    let mut scratch = vec![0.0f64; m];
    let mut start = 0;
    while start < m {
        let b = TILE.min(m - start);
        // Columns of U S Uᵀ (symmetric): column c is row `start + c`.
        let block = kernels::matmul(svd.u.as_ref(), us.as_ref().subrows(start, b).transpose());
        for c in 0..b {
            scratch.copy_from_slice(block.col_as_slice(c));
            scratch.sort_unstable_by(f64::total_cmp);
            unit(&mut scratch);
            for (dst, src) in sig.col_as_slice_mut(start + c).iter_mut().zip(&scratch) {
                *dst = *src as f32;
            }
        }
        start += b;
    }
    // Centre: subtract the mean signature, then unit length again.
    let mut mean = vec![0.0f64; m];
    for j in 0..m {
        for (acc, v) in mean.iter_mut().zip(sig.col_as_slice(j)) {
            *acc += f64::from(*v);
        }
    }
    let mean: Vec<f32> = mean.iter().map(|v| (v / m as f64) as f32).collect();
    for j in 0..m {
        for (v, mu) in sig.col_as_slice_mut(j).iter_mut().zip(&mean) {
            *v -= *mu;
        }
    }
    unit_columns(&mut sig);
    Ok(sig)
}

/// The `k` largest values seen per item, kept unsorted with their running minimum.
struct TopMeans {
    k: usize,
    values: Vec<f32>,
    minimum: Vec<f32>,
}

impl TopMeans {
    fn new(n: usize, k: usize) -> Self {
        Self { k, values: vec![f32::NEG_INFINITY; n * k], minimum: vec![f32::NEG_INFINITY; n] }
    }

    fn push(&mut self, i: usize, v: f32) {
        if self.k == 0 || v <= self.minimum[i] {
            return;
        }
        let list = &mut self.values[i * self.k..(i + 1) * self.k];
        let mut slot = 0;
        for (t, x) in list.iter().enumerate() {
            if *x < list[slot] {
                slot = t;
            }
        }
        list[slot] = v;
        self.minimum[i] = list.iter().copied().fold(f32::INFINITY, f32::min);
    }

    fn means(&self) -> Vec<f32> {
        if self.k == 0 {
            return vec![0.0; self.minimum.len()];
        }
        self.values
            .chunks_exact(self.k)
            .map(|list| {
                let kept: Vec<f32> = list.iter().copied().filter(|v| v.is_finite()).collect();
                if kept.is_empty() {
                    0.0
                } else {
                    kept.iter().sum::<f32>() / kept.len() as f32
                }
            })
            .collect()
    }
}

/// A best match: the other side's index and its score.
type Best = (usize, f32);

/// The best CSLS match of every column of `a` among the columns of `b` and vice versa (columns
/// unit-normalised; `k = 0`: plain cosine), from two tiled passes over `aᵀ b`. Returns
/// (forward: best b-column and score per a-column, backward: best a-column and score per
/// b-column); ties go to the smaller index.
fn csls_best_columns(a: MatRef<'_, f32>, b: MatRef<'_, f32>, k: usize) -> (Vec<Best>, Vec<Best>) {
    let (na, nb) = (a.ncols(), b.ncols());
    let tiles = |visit: &mut dyn FnMut(usize, &Mat<f32>)| {
        let mut start = 0;
        while start < na {
            let w = TILE.min(na - start);
            // nb × w: column c holds the similarities of a-column `start + c` to every b-column.
            let tile = kernels::matmul(b.transpose(), a.subcols(start, w));
            visit(start, &tile);
            start += w;
        }
    };
    let (k_a, k_b) = (k.min(nb), k.min(na));
    let mut top_a = TopMeans::new(na, k_a);
    let mut top_b = TopMeans::new(nb, k_b);
    if k > 0 {
        tiles(&mut |start, tile| {
            for c in 0..tile.ncols() {
                for (j, &v) in tile.col_as_slice(c).iter().enumerate() {
                    top_a.push(start + c, v);
                    top_b.push(j, v);
                }
            }
        });
    }
    let (r_a, r_b) = (top_a.means(), top_b.means());
    let mut forward = vec![(0usize, f32::NEG_INFINITY); na];
    let mut backward = vec![(0usize, f32::NEG_INFINITY); nb];
    tiles(&mut |start, tile| {
        for c in 0..tile.ncols() {
            let i = start + c;
            let best = &mut forward[i];
            for (j, &v) in tile.col_as_slice(c).iter().enumerate() {
                let score = 2.0 * v - r_a[i] - r_b[j];
                if score > best.1 {
                    *best = (j, score);
                }
                if score > backward[j].1 {
                    backward[j] = (i, score);
                }
            }
        }
    });
    (forward, backward)
}

// ---------------------------------------------------------------------------------------------
// Similarity-distribution matching

fn similarity_distribution(
    source: MatRef<'_, f32>,
    target: MatRef<'_, f32>,
    vocabulary: usize,
    k: usize,
) -> Result<(Vec<(usize, usize)>, StartReport), AlignError> {
    const WHAT: &str = "similarity-distribution";
    check_vocabulary(vocabulary)?;
    let ms = check_side(source, Space::Source, vocabulary, 2, WHAT)?;
    let mt = check_side(target, Space::Target, vocabulary, 2, WHAT)?;
    let m = ms.min(mt);
    let xs = normalised_head(source, m);
    let xt = normalised_head(target, m);
    let sig_s = sorted_similarity_signatures(xs.as_ref(), WHAT)?;
    let sig_t = sorted_similarity_signatures(xt.as_ref(), WHAT)?;
    let (forward, backward) = csls_best_columns(sig_s.as_ref(), sig_t.as_ref(), k);
    let mut scored: Vec<((usize, usize), f32)> = forward
        .iter()
        .enumerate()
        .map(|(i, &(j, s))| ((i, j), s))
        .chain(backward.iter().enumerate().map(|(j, &(i, s))| ((i, j), s)))
        .collect();
    scored.sort_by_key(|x| x.0);
    scored.dedup_by(|x, y| x.0 == y.0);
    let mutual = forward.iter().enumerate().filter(|&(i, &(j, _))| backward[j].0 == i).count();
    let pairs: Vec<(usize, usize)> = scored.iter().map(|p| p.0).collect();
    let mean_score = scored.iter().map(|p| f64::from(p.1)).sum::<f64>() / scored.len() as f64;
    let report = StartReport {
        pairs: pairs.len(),
        candidates_source: m,
        candidates_target: m,
        mutual,
        mean_score,
        cluster_agreement: None,
        clusters_used: None,
    };
    Ok((pairs, report))
}

// ---------------------------------------------------------------------------------------------
// Cluster matching

struct ClusterOptions {
    clusters: usize,
    iterations: usize,
    restarts: usize,
    pairs_per_cluster: usize,
    refinements: usize,
}

impl ClusterOptions {
    fn check(&self) -> Result<(), AlignError> {
        if self.clusters < 2 || self.clusters > MAX_CLUSTERS {
            return Err(invalid(
                "clusters",
                format!("must be between 2 and {MAX_CLUSTERS}, got {}", self.clusters),
            ));
        }
        for (field, value) in [
            ("iterations", self.iterations),
            ("restarts", self.restarts),
            ("pairs-per-cluster", self.pairs_per_cluster),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be at least 1, got 0".to_owned()));
            }
        }
        Ok(())
    }
}

/// A spherical k-means solution.
struct Clustering {
    /// Unit centroids (k × d).
    centroids: Mat<f64>,
    /// Cluster of every row.
    assignment: Vec<usize>,
    /// Sum over rows of `1 − cos(row, centroid)`.
    inertia: f64,
}

fn draw_weighted(rng: &mut ChaCha8Rng, weights: &[f64]) -> Option<usize> {
    let total: f64 = weights.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let mut target = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return Some(i);
        }
        target -= w;
    }
    weights.iter().rposition(|w| *w > 0.0)
}

/// Best centroid and its cosine for every row (`x` and `centroids` unit rows).
fn nearest_centroids(x: MatRef<'_, f64>, centroids: MatRef<'_, f64>) -> Vec<(usize, f64)> {
    let sims = kernels::matmul(x, centroids.transpose());
    (0..x.nrows())
        .map(|i| {
            let mut best = (0, f64::NEG_INFINITY);
            for c in 0..sims.ncols() {
                if sims[(i, c)] > best.1 {
                    best = (c, sims[(i, c)]);
                }
            }
            best
        })
        .collect()
}

/// One seeded spherical k-means run: greedy k-means++ initialisation with cosine distance (each
/// new centre is the best of `2 + ln k` draws by the potential it leaves), then Lloyd iterations.
fn kmeans_run(x: MatRef<'_, f64>, k: usize, iterations: usize, rng: &mut ChaCha8Rng) -> Clustering {
    let (n, d) = (x.nrows(), x.ncols());
    let draws = 2 + (k as f64).ln().floor() as usize;
    let cosines_to = |c: usize| -> Vec<f64> {
        let column = kernels::matmul(x, x.subrows(c, 1).transpose());
        column.col_as_slice(0).to_vec()
    };
    let first = rng.random_range(0..n);
    let mut chosen: Vec<usize> = vec![first];
    let mut best_cos: Vec<f64> = cosines_to(first);
    while chosen.len() < k {
        let weights: Vec<f64> = best_cos.iter().map(|c| (1.0 - c).max(0.0)).collect();
        let mut pick: Option<(usize, f64, Vec<f64>)> = None;
        for _ in 0..draws {
            let Some(candidate) = draw_weighted(rng, &weights) else { break };
            let merged: Vec<f64> =
                cosines_to(candidate).iter().zip(&best_cos).map(|(a, b)| a.max(*b)).collect();
            let potential: f64 = merged.iter().map(|c| (1.0 - c).max(0.0)).sum();
            if pick.as_ref().is_none_or(|p| potential < p.1) {
                pick = Some((candidate, potential, merged));
            }
        }
        match pick {
            Some((candidate, _, merged)) => {
                chosen.push(candidate);
                best_cos = merged;
            }
            // Every row coincides with a centre: take any row not chosen yet.
            None => {
                let next = (0..n).find(|i| !chosen.contains(i)).unwrap_or(0);
                chosen.push(next);
            }
        }
    }
    let mut centroids = Mat::<f64>::from_fn(k, d, |c, j| x[(chosen[c], j)]);
    let mut assignment = vec![usize::MAX; n];
    let mut nearest = nearest_centroids(x, centroids.as_ref());
    for _ in 0..iterations {
        let next: Vec<usize> = nearest.iter().map(|p| p.0).collect();
        if next == assignment {
            break;
        }
        assignment = next;
        let mut counts = vec![0usize; k];
        let mut indicator = Mat::<f64>::zeros(n, k);
        for (i, &c) in assignment.iter().enumerate() {
            counts[c] += 1;
            indicator[(i, c)] = 1.0;
        }
        let mut sums = kernels::tmatmul(indicator.as_ref(), x);
        // Empty clusters take the rows worst served by their centroid.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| nearest[a].1.total_cmp(&nearest[b].1));
        let mut spare = order.into_iter();
        for c in 0..k {
            if counts[c] == 0 {
                if let Some(i) = spare.next() {
                    for j in 0..d {
                        sums[(c, j)] = x[(i, j)];
                    }
                }
            }
        }
        kernels::normalise_rows(&mut sums);
        centroids = sums;
        nearest = nearest_centroids(x, centroids.as_ref());
    }
    let assignment: Vec<usize> = nearest.iter().map(|p| p.0).collect();
    let inertia = nearest.iter().map(|p| 1.0 - p.1).sum();
    Clustering { centroids, assignment, inertia }
}

/// The best of `restarts` k-means runs by inertia.
fn kmeans(
    x: MatRef<'_, f64>,
    k: usize,
    iterations: usize,
    restarts: usize,
    rng: &mut ChaCha8Rng,
) -> Clustering {
    let mut best = kmeans_run(x, k, iterations, rng);
    for _ in 1..restarts {
        let run = kmeans_run(x, k, iterations, rng);
        if run.inertia < best.inertia {
            best = run;
        }
    }
    best
}

/// The assignment `row → column` maximising the total score of a square `n × n` matrix (Hungarian
/// algorithm with potentials, `O(n³)`).
fn hungarian_max(score: MatRef<'_, f64>) -> Vec<usize> {
    let n = score.nrows();
    let cost = |i: usize, j: usize| -score[(i, j)];
    // 1-based potentials; p[j]: row matched to column j (0: none).
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; n + 1];
    let mut p = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0usize; n];
    for j in 1..=n {
        if p[j] > 0 {
            assignment[p[j] - 1] = j - 1;
        }
    }
    assignment
}

/// `Σ_ab A[a, b] · B[π a, π b]`.
fn qap_objective(a: MatRef<'_, f64>, b: MatRef<'_, f64>, perm: &[usize]) -> f64 {
    let n = perm.len();
    let mut total = 0.0;
    for x in 0..n {
        for y in 0..n {
            total += a[(x, y)] * b[(perm[x], perm[y])];
        }
    }
    total
}

/// Improves `perm` by swapping pairs of assignments while some swap raises the QAP objective
/// (`a`, `b` symmetric).
fn two_opt(a: MatRef<'_, f64>, b: MatRef<'_, f64>, perm: &mut [usize]) {
    let n = perm.len();
    for _sweep in 0..100 {
        let mut improved = false;
        for x in 0..n {
            for y in x + 1..n {
                let (p, q) = (perm[x], perm[y]);
                let mut delta = (a[(x, x)] - a[(y, y)]) * (b[(q, q)] - b[(p, p)]);
                for (i, &pi) in perm.iter().enumerate() {
                    if i != x && i != y {
                        delta += 2.0 * (a[(x, i)] - a[(y, i)]) * (b[(q, pi)] - b[(p, pi)]);
                    }
                }
                if delta > 1e-12 {
                    perm.swap(x, y);
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// Matches the clusters of the two sides (unit centroids `ca`, `cb`; their cosine matrices `a`,
/// `b`, k × k): the best QAP solution over a start from the centroids' sorted-similarity signatures
/// and random starts, each improved by pairwise swaps.
fn match_clusters(
    ca: MatRef<'_, f64>,
    cb: MatRef<'_, f64>,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    rng: &mut ChaCha8Rng,
    what: &str,
) -> Result<Vec<usize>, AlignError> {
    let k = a.nrows();
    let sig_a = sorted_similarity_signatures(ca, what)?;
    let sig_b = sorted_similarity_signatures(cb, what)?;
    let sims = kernels::matmul(sig_a.as_ref().transpose(), sig_b.as_ref());
    let sims = Mat::<f64>::from_fn(k, k, |i, j| f64::from(sims[(i, j)]));
    let mut best = hungarian_max(sims.as_ref());
    two_opt(a, b, &mut best);
    let mut best_value = qap_objective(a, b, &best);
    for _ in 0..RANDOM_MATCHING_STARTS {
        let mut perm: Vec<usize> = (0..k).collect();
        for i in (1..k).rev() {
            perm.swap(i, rng.random_range(0..=i));
        }
        two_opt(a, b, &mut perm);
        let value = qap_objective(a, b, &perm);
        if value > best_value + 1e-9 {
            best = perm;
            best_value = value;
        }
    }
    Ok(best)
}

/// Pearson correlation of the off-diagonal entries `A[x, y]` and `B[π x, π y]`.
fn agreement(a: MatRef<'_, f64>, b: MatRef<'_, f64>, perm: &[usize]) -> f64 {
    let n = perm.len();
    let mut pairs = Vec::with_capacity(n * n);
    for x in 0..n {
        for y in 0..n {
            if x != y {
                pairs.push((a[(x, y)], b[(perm[x], perm[y])]));
            }
        }
    }
    let len = pairs.len() as f64;
    let (ma, mb) =
        (pairs.iter().map(|p| p.0).sum::<f64>() / len, pairs.iter().map(|p| p.1).sum::<f64>() / len);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in &pairs {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa > 0.0 && sbb > 0.0 {
        sab / (saa * sbb).sqrt()
    } else {
        0.0
    }
}

/// A candidate pair found inside a matched cluster pair.
#[derive(Clone, Copy)]
struct Candidate {
    source: usize,
    target: usize,
    cluster: usize,
    score: f64,
    mutual: bool,
}

/// For every source cluster `c` and its matched target cluster `perm[c]`: each member source row's
/// most similar member target row by cosine of the features (`fs`, `ft`: unit rows of one width).
fn within_cluster_matches(
    fs: MatRef<'_, f64>,
    ft: MatRef<'_, f64>,
    members_s: &[Vec<usize>],
    members_t: &[Vec<usize>],
    perm: &[usize],
) -> Vec<Candidate> {
    let gather = |f: MatRef<'_, f64>, rows: &[usize]| {
        Mat::<f64>::from_fn(rows.len(), f.ncols(), |i, j| f[(rows[i], j)])
    };
    let mut out = Vec::new();
    for (c, rows_s) in members_s.iter().enumerate() {
        let rows_t = &members_t[perm[c]];
        if rows_s.is_empty() || rows_t.is_empty() {
            continue;
        }
        let sims = kernels::matmul(gather(fs, rows_s).as_ref(), gather(ft, rows_t).as_ref().transpose());
        let best_of_target: Vec<usize> = (0..rows_t.len())
            .map(|t| {
                (0..rows_s.len()).fold(0, |best, s| if sims[(s, t)] > sims[(best, t)] { s } else { best })
            })
            .collect();
        for (s, &row) in rows_s.iter().enumerate() {
            let t =
                (0..rows_t.len()).fold(0, |best, t| if sims[(s, t)] > sims[(s, best)] { t } else { best });
            out.push(Candidate {
                source: row,
                target: rows_t[t],
                cluster: c,
                score: sims[(s, t)],
                mutual: best_of_target[t] == s,
            });
        }
    }
    out
}

fn cluster_matching(
    source: MatRef<'_, f32>,
    target: MatRef<'_, f32>,
    vocabulary: usize,
    options: &ClusterOptions,
    seed: u64,
) -> Result<(Vec<(usize, usize)>, StartReport), AlignError> {
    const WHAT: &str = "clusters";
    check_vocabulary(vocabulary)?;
    options.check()?;
    let k = options.clusters;
    let ms = check_side(source, Space::Source, vocabulary, k, WHAT)?;
    let mt = check_side(target, Space::Target, vocabulary, k, WHAT)?;
    if ms < k || mt < k {
        return Err(AlignError::MissingInput {
            what: format!("the {WHAT} start with {k} clusters"),
            needed: format!("at least {k} rows of each side within the vocabulary"),
            got: format!("{} source and {} target rows (vocabulary = {vocabulary})", ms, mt),
        });
    }
    let xs = normalised_head(source, ms);
    let xt = normalised_head(target, mt);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cs = kmeans(xs.as_ref(), k, options.iterations, options.restarts, &mut rng);
    let ct = kmeans(xt.as_ref(), k, options.iterations, options.restarts, &mut rng);
    let gram_s = kernels::matmul(cs.centroids.as_ref(), cs.centroids.as_ref().transpose());
    let gram_t = kernels::matmul(ct.centroids.as_ref(), ct.centroids.as_ref().transpose());
    let perm = match_clusters(
        cs.centroids.as_ref(),
        ct.centroids.as_ref(),
        gram_s.as_ref(),
        gram_t.as_ref(),
        &mut rng,
        WHAT,
    )?;
    let cluster_agreement = agreement(gram_s.as_ref(), gram_t.as_ref(), &perm);

    let members = |assignment: &[usize]| {
        let mut out = vec![Vec::new(); k];
        for (i, &c) in assignment.iter().enumerate() {
            out[c].push(i);
        }
        out
    };
    let (members_s, members_t) = (members(&cs.assignment), members(&ct.assignment));

    // Relative representations: cosines to the matched centroids, in source-cluster order.
    let matched_t = Mat::<f64>::from_fn(k, xt.ncols(), |c, j| ct.centroids[(perm[c], j)]);
    let relative = |x: &Mat<f64>, centroids: MatRef<'_, f64>| {
        let mut r = kernels::matmul(x.as_ref(), centroids.transpose());
        kernels::normalise_rows(&mut r);
        let mean = kernels::column_means(r.as_ref());
        kernels::subtract_row(&mut r, &mean);
        kernels::normalise_rows(&mut r);
        r
    };
    let rs = relative(&xs, cs.centroids.as_ref());
    let rt = relative(&xt, matched_t.as_ref());
    let mut candidates = within_cluster_matches(rs.as_ref(), rt.as_ref(), &members_s, &members_t, &perm);

    for _ in 0..options.refinements {
        let mutual: Vec<&Candidate> = candidates.iter().filter(|c| c.mutual).collect();
        if mutual.len() < 2 {
            break;
        }
        let px = Mat::<f64>::from_fn(mutual.len(), xs.ncols(), |i, j| xs[(mutual[i].source, j)]);
        let py = Mat::<f64>::from_fn(mutual.len(), xt.ncols(), |i, j| xt[(mutual[i].target, j)]);
        let (w, _) = procrustes::solve(px.as_ref(), py.as_ref(), false, WHAT)?;
        let mut mapped = kernels::matmul(xs.as_ref(), w.as_ref());
        kernels::normalise_rows(&mut mapped);
        candidates = within_cluster_matches(mapped.as_ref(), xt.as_ref(), &members_s, &members_t, &perm);
    }

    // Per source cluster: mutual pairs first, then by score; at most `pairs_per_cluster`.
    candidates.sort_by(|x, y| {
        x.cluster.cmp(&y.cluster).then(y.mutual.cmp(&x.mutual)).then(y.score.total_cmp(&x.score))
    });
    let mut chosen: Vec<Candidate> = Vec::new();
    let mut used = vec![0usize; k];
    for cand in candidates {
        if used[cand.cluster] < options.pairs_per_cluster {
            used[cand.cluster] += 1;
            chosen.push(cand);
        }
    }
    chosen.sort_by_key(|x| (x.source, x.target));
    chosen.dedup_by(|x, y| (x.source, x.target) == (y.source, y.target));
    let pairs: Vec<(usize, usize)> = chosen.iter().map(|c| (c.source, c.target)).collect();
    let mean_score = chosen.iter().map(|c| c.score).sum::<f64>() / chosen.len() as f64;
    let report = StartReport {
        pairs: pairs.len(),
        candidates_source: ms,
        candidates_target: mt,
        mutual: chosen.iter().filter(|c| c.mutual).count(),
        mean_score,
        cluster_agreement: Some(cluster_agreement),
        clusters_used: Some(used.iter().filter(|&&u| u > 0).count()),
    };
    Ok((pairs, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{retrieval, Scoring};
    use crate::testing::{f32s, gaussian, orthogonal, rng};

    /// A Gaussian mixture with features to match: `components` clusters of unequal weights and
    /// spreads, around means drawn with a decaying (non-isotropic) spectrum, `0.85^j` along axis j.
    fn mixture(seed: u64, n: usize, d: usize, components: usize) -> Mat<f64> {
        let mut r = rng(seed);
        let scale: Vec<f64> = (0..d).map(|j| 0.85f64.powi(j as i32)).collect();
        let means = gaussian(&mut r, components, d);
        let spreads: Vec<f64> = (0..components).map(|_| 0.15 + 0.45 * r.random::<f64>()).collect();
        let weights: Vec<f64> = (0..components).map(|c| 1.0 / (c as f64 + 2.0)).collect();
        let noise = gaussian(&mut r, n, d);
        let mut out = Mat::<f64>::zeros(n, d);
        for i in 0..n {
            let c = draw_weighted(&mut r, &weights).unwrap();
            for j in 0..d {
                out[(i, j)] = (2.0 * means[(c, j)] + spreads[c] * noise[(i, j)]) * scale[j];
            }
        }
        out
    }

    /// A random permutation: source row i is target row `perm[i]`.
    fn permutation(seed: u64, n: usize) -> Vec<usize> {
        let mut r = rng(seed);
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, r.random_range(0..=i));
        }
        perm
    }

    /// The rows of `x` moved to `perm`, plus `noise` times standard normal entries.
    fn permuted(x: MatRef<'_, f64>, perm: &[usize], noise: f64, seed: u64) -> Mat<f64> {
        let e = gaussian(&mut rng(seed), x.nrows(), x.ncols());
        let mut y = Mat::<f64>::zeros(x.nrows(), x.ncols());
        for (i, &t) in perm.iter().enumerate() {
            for j in 0..x.ncols() {
                y[(t, j)] = x[(i, j)] + noise * e[(t, j)];
            }
        }
        y
    }

    /// The rows of `y` projected on its first `dim` principal axes (the mean is projected too, so the
    /// projection is linear).
    fn pca(y: MatRef<'_, f64>, dim: usize) -> Mat<f64> {
        let (yc, _) = kernels::centred(y);
        let svd = kernels::thin_svd(yc.as_ref(), "test").unwrap();
        kernels::matmul(y, svd.v.as_ref().subcols(0, dim))
    }

    fn accuracy(pairs: &[(usize, usize)], perm: &[usize]) -> f64 {
        pairs.iter().filter(|&&(i, j)| perm[i] == j).count() as f64 / pairs.len().max(1) as f64
    }

    /// P@1 over all rows of an orthogonal Procrustes map fitted on `pairs`.
    fn procrustes_p_at_1(
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        pairs: &[(usize, usize)],
        perm: &[usize],
    ) -> f64 {
        let px = Mat::<f64>::from_fn(pairs.len(), x.ncols(), |i, j| x[(pairs[i].0, j)]);
        let py = Mat::<f64>::from_fn(pairs.len(), y.ncols(), |i, j| y[(pairs[i].1, j)]);
        let (w, _) = procrustes::solve(px.as_ref(), py.as_ref(), false, "test").unwrap();
        let mapped = f32s(kernels::matmul(x, w.as_ref()).as_ref());
        let truth: Vec<Option<usize>> = perm.iter().map(|&t| Some(t)).collect();
        retrieval(mapped.as_ref(), f32s(y).as_ref(), &truth, Scoring::Nn).unwrap().p_at_1
    }

    const N: usize = 1000;
    const D: usize = 30;

    fn similarity_spec() -> StartSpec {
        StartSpec::SimilarityDistribution { vocabulary: 4000, k: 10 }
    }

    fn cluster_spec() -> StartSpec {
        clusters_with(|_, _, _| {})
    }

    /// The test's cluster spec with (clusters, iterations, pairs-per-cluster) edited by `set`.
    fn clusters_with(set: impl FnOnce(&mut usize, &mut usize, &mut usize)) -> StartSpec {
        let (mut clusters, mut iterations, mut pairs_per_cluster) = (12, 30, 50);
        set(&mut clusters, &mut iterations, &mut pairs_per_cluster);
        StartSpec::Clusters {
            clusters,
            vocabulary: 4000,
            iterations,
            restarts: 3,
            pairs_per_cluster,
            refinements: 3,
        }
    }

    /// Source, permuted rotated copy (with a little noise), and the permutation.
    fn isometric_copy() -> (Mat<f64>, Mat<f64>, Vec<usize>) {
        let x = mixture(1, N, D, 12);
        let q = orthogonal(&mut rng(2), D);
        let perm = permutation(3, N);
        let y = permuted(kernels::matmul(x.as_ref(), q.as_ref()).as_ref(), &perm, 0.02, 4);
        (x, y, perm)
    }

    #[test]
    fn similarity_distribution_recovers_a_permuted_isometric_copy() {
        let (x, y, perm) = isometric_copy();
        let (pairs, report) =
            unsupervised_pairs(&similarity_spec(), f32s(x.as_ref()).as_ref(), f32s(y.as_ref()).as_ref(), 0)
                .unwrap();
        let acc = accuracy(&pairs, &perm);
        let p1 = procrustes_p_at_1(x.as_ref(), y.as_ref(), &pairs, &perm);
        eprintln!("similarity-distribution: accuracy {acc:.3}, Procrustes P@1 {p1:.3}, {report:?}");
        assert!(acc >= 0.9, "accuracy {acc}, {report:?}");
        assert!(p1 >= 0.95, "P@1 {p1}");
        assert_eq!((report.candidates_source, report.candidates_target, report.pairs), (N, N, pairs.len()));
        assert!(pairs.len() >= N && pairs.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn cluster_matching_recovers_a_permuted_isometric_copy() {
        let (x, y, perm) = isometric_copy();
        let (pairs, report) =
            unsupervised_pairs(&cluster_spec(), f32s(x.as_ref()).as_ref(), f32s(y.as_ref()).as_ref(), 7)
                .unwrap();
        let acc = accuracy(&pairs, &perm);
        let p1 = procrustes_p_at_1(x.as_ref(), y.as_ref(), &pairs, &perm);
        eprintln!("clusters: accuracy {acc:.3}, Procrustes P@1 {p1:.3}, {report:?}");
        assert!(acc >= 0.7, "accuracy {acc}, {report:?}");
        assert!(p1 >= 0.95, "P@1 {p1}");
        assert!(report.cluster_agreement.unwrap() > 0.9);
        assert!(pairs.len() <= 12 * 50 && pairs.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn an_unrelated_target_gives_chance_pairs() {
        let x = mixture(1, N, D, 12);
        let y = mixture(99, N, D, 12);
        let perm = permutation(3, N);
        for spec in [similarity_spec(), cluster_spec()] {
            let (pairs, report) =
                unsupervised_pairs(&spec, f32s(x.as_ref()).as_ref(), f32s(y.as_ref()).as_ref(), 7).unwrap();
            let acc = accuracy(&pairs, &perm);
            eprintln!("unrelated, {}: accuracy {acc:.4}, {report:?}", spec.kind());
            assert!(!pairs.is_empty() && acc < 0.02, "{}: accuracy {acc}", spec.kind());
            // Few pairs are mutual, and the cluster structures do not agree as a copy's do.
            assert!(report.mutual * 4 < report.pairs, "{report:?}");
            assert!(report.cluster_agreement.is_none_or(|a| a < 0.9), "{report:?}");
        }
    }

    #[test]
    fn similarity_distribution_works_across_widths() {
        let (x, y, perm) = isometric_copy();
        let y20 = pca(y.as_ref(), 20);
        let (pairs, report) =
            unsupervised_pairs(&similarity_spec(), f32s(x.as_ref()).as_ref(), f32s(y20.as_ref()).as_ref(), 0)
                .unwrap();
        let acc = accuracy(&pairs, &perm);
        eprintln!("similarity-distribution, 30 -> 20 columns: accuracy {acc:.3}, {report:?}");
        assert!(acc >= 0.8, "accuracy {acc}, {report:?}");
    }

    #[test]
    fn spec_reads_kebab_case_with_defaults_and_rejects_unknown_keys() {
        let spec: StartSpec = serde_json::from_str(r#"{"kind": "similarity-distribution"}"#).unwrap();
        assert_eq!(spec, StartSpec::SimilarityDistribution { vocabulary: 4000, k: 10 });
        let spec: StartSpec =
            serde_json::from_str(r#"{"kind": "clusters", "pairs-per-cluster": 7, "clusters": 16}"#).unwrap();
        assert_eq!(
            spec,
            StartSpec::Clusters {
                clusters: 16,
                vocabulary: 4000,
                iterations: 30,
                restarts: 3,
                pairs_per_cluster: 7,
                refinements: 3
            }
        );
        let back: StartSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
        let text = serde_json::to_string(&spec).unwrap();
        assert!(text.contains(r#""kind":"clusters""#) && text.contains("pairs-per-cluster"), "{text}");
        assert!(serde_json::from_str::<StartSpec>(r#"{"kind": "clusters", "pairs_per_cluster": 7}"#).is_err());
        assert!(serde_json::from_str::<StartSpec>(r#"{"kind": "similarity-distribution", "kk": 3}"#).is_err());
        assert!(serde_json::from_str::<StartSpec>(r#"{"kind": "vecmap"}"#).is_err());
        let operators: StartSpec = toml::from_str("kind = \"operators\"").unwrap();
        assert_eq!(operators, StartSpec::Operators { restarts: None });
        assert!(operators.from_operators() && !spec.from_operators());
        let restarted: StartSpec = toml::from_str("kind = \"operators\"\nrestarts = 4").unwrap();
        assert_eq!(restarted.restarts(), Some(4));
        assert!(StartSpec::Operators { restarts: Some(0) }.validate().is_err());
        assert!(toml::from_str::<StartSpec>("kind = \"operators\"\nvocabulary = 5").is_err());
        let toml_spec: StartSpec =
            toml::from_str("kind = \"similarity-distribution\"\nvocabulary = 500").unwrap();
        assert_eq!(toml_spec, StartSpec::SimilarityDistribution { vocabulary: 500, k: 10 });
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let x = f32s(mixture(1, 50, 5, 3).as_ref());
        let empty = Mat::<f32>::zeros(0, 5);
        let one = Mat::<f32>::zeros(1, 5);
        let no_columns = Mat::<f32>::zeros(50, 0);
        let mut nan = x.clone();
        nan[(3, 2)] = f32::NAN;
        for spec in [similarity_spec(), cluster_spec()] {
            for (a, b) in [
                (empty.as_ref(), x.as_ref()),
                (x.as_ref(), empty.as_ref()),
                (one.as_ref(), x.as_ref()),
                (x.as_ref(), no_columns.as_ref()),
            ] {
                let err = unsupervised_pairs(&spec, a, b, 0).unwrap_err();
                assert!(matches!(err, AlignError::MissingInput { .. }), "{err}");
                assert!(err.to_string().contains("rows"), "{err}");
            }
            let err = unsupervised_pairs(&spec, x.as_ref(), nan.as_ref(), 0).unwrap_err();
            assert!(
                matches!(err, AlignError::NonFinite { space: Space::Target, row: 3, col: 2, .. }),
                "{err}"
            );
        }
        let small = clusters_with(|c, _, _| *c = 60);
        let err = unsupervised_pairs(&small, x.as_ref(), x.as_ref(), 0).unwrap_err();
        assert!(err.to_string().contains("at least 60"), "{err}");
        for bad in [
            StartSpec::SimilarityDistribution { vocabulary: 0, k: 10 },
            StartSpec::SimilarityDistribution { vocabulary: MAX_VOCABULARY + 1, k: 10 },
            clusters_with(|c, _, _| *c = 1),
            clusters_with(|_, i, _| *i = 0),
            clusters_with(|_, _, p| *p = 0),
        ] {
            let err = unsupervised_pairs(&bad, x.as_ref(), x.as_ref(), 0).unwrap_err();
            assert!(matches!(err, AlignError::InvalidParameter { .. }), "{err}");
        }
        // Two rows are enough for the similarity distribution, and the result is well formed.
        let (pairs, _) = unsupervised_pairs(&similarity_spec(), x.subrows(0, 2), x.subrows(0, 2), 0).unwrap();
        assert!(!pairs.is_empty() && pairs.iter().all(|&(i, j)| i < 2 && j < 2));
    }

    #[test]
    fn hungarian_finds_the_best_assignment() {
        let n = 6;
        let s = gaussian(&mut rng(5), n, n);
        let best = hungarian_max(s.as_ref());
        let total = |p: &[usize]| p.iter().enumerate().map(|(i, &j)| s[(i, j)]).sum::<f64>();
        let mut brute = f64::NEG_INFINITY;
        let mut perm: Vec<usize> = (0..n).collect();
        permute_all(&mut perm, 0, &mut |p| brute = brute.max(total(p)));
        assert!((total(&best) - brute).abs() < 1e-12, "{} vs {brute}", total(&best));
    }

    #[test]
    fn cluster_matching_recovers_a_planted_permutation_of_centroids() {
        let c = f32s(mixture(8, 10, 6, 10).as_ref());
        let c = normalised_head(c.as_ref(), 10);
        let a = kernels::matmul(c.as_ref(), c.as_ref().transpose());
        let planted = permutation(9, 10);
        // b[planted[x], planted[y]] = a[x, y].
        let mut b = Mat::<f64>::zeros(10, 10);
        for x in 0..10 {
            for y in 0..10 {
                b[(planted[x], planted[y])] = a[(x, y)];
            }
        }
        let mut r = rng(10);
        let found = match_clusters(
            c.as_ref(),
            permuted(c.as_ref(), &planted, 0.0, 0).as_ref(),
            a.as_ref(),
            b.as_ref(),
            &mut r,
            "test",
        )
        .unwrap();
        assert_eq!(found, planted);
        assert!((agreement(a.as_ref(), b.as_ref(), &found) - 1.0).abs() < 1e-9);
    }

    fn permute_all(p: &mut Vec<usize>, at: usize, f: &mut dyn FnMut(&[usize])) {
        if at == p.len() {
            f(p);
            return;
        }
        for i in at..p.len() {
            p.swap(at, i);
            permute_all(p, at + 1, f);
            p.swap(at, i);
        }
    }
}
