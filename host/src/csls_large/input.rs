//! The inputs of million-scale CSLS: rows copied from matrices, or generated block by block from a
//! seed ([`Synthetic`]), never held whole.

use super::*;

/// Rows generated per seeded block of [`Synthetic`]: row i depends only on the seed and `i / 256`.
pub const SYNTHETIC_BLOCK: usize = 256;

/// Which side of the comparison rows belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The queries (rows x).
    Queries,
    /// The gallery (rows y).
    Gallery,
}

/// Parameters of a [`Synthetic`] data set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    /// Number of queries (query i's partner is gallery row i).
    pub queries: usize,
    /// Number of gallery rows (at least `queries`; rows past the queries are distractors).
    pub gallery: usize,
    /// Width of every row.
    pub dim: usize,
    /// Noise level σ: the cosine of a true pair is about `1 / √(1 + σ²)`.
    pub noise: f32,
    /// Seed of every random draw.
    pub seed: u64,
}

/// Synthetic query and gallery rows, generated block by block from a seed.
///
/// With `x_i` and `n_i` vectors of independent uniform entries of unit variance (ChaCha8, streams
/// `2b` and `2b + 1` for block `b` of [`SYNTHETIC_BLOCK`] rows) and `Q` a random orthogonal
/// `dim × dim` matrix (Gram–Schmidt on Gaussian entries, stream `u64::MAX`):
/// query i is `x_i·Q` and gallery row i is `(x_i + σ n_i)·Q`, each L2-normalised. The rotation makes
/// the coordinates (sums of many uniforms) close to Gaussian at the cost of one small product per
/// block; it acts on both sides, as if the queries had already been mapped into the gallery's space
/// — a rotation between the two sides alone would leave cosine retrieval at chance.
#[derive(Debug, Clone)]
pub struct Synthetic {
    pub(super) spec: SyntheticSpec,
    pub(super) rotation: Mat<f32>,
}

impl Synthetic {
    /// The data set `spec` describes; an error when its sizes or noise make no sense.
    pub fn new(spec: SyntheticSpec) -> Result<Self, HostError> {
        if spec.dim == 0 || spec.queries == 0 {
            return Err(HostError::Usage(
                "synthetic CSLS data needs at least one query and one column".into(),
            ));
        }
        if spec.gallery < spec.queries {
            return Err(HostError::Usage(format!(
                "the gallery ({}) must have at least as many rows as the queries ({}): query i's partner is gallery row i",
                spec.gallery, spec.queries
            )));
        }
        check_index_range(spec.gallery)?;
        if !(spec.noise.is_finite() && spec.noise >= 0.0) {
            return Err(HostError::Usage(format!(
                "noise must be finite and not negative, not {}",
                spec.noise
            )));
        }
        Ok(Self { spec, rotation: random_rotation(spec.seed, spec.dim) })
    }

    /// The parameters.
    pub fn spec(&self) -> &SyntheticSpec {
        &self.spec
    }

    /// Rows `range` of `side`, not normalised (as a caller would pass them to [`super::retrieval`]).
    pub fn raw_rows(&self, side: Side, range: Range<usize>) -> Mat<f32> {
        self.collect(side, range, false)
    }

    /// Rows `range` of `side`, L2-normalised exactly as [`super::normalized_rows`] does.
    pub fn rows(&self, side: Side, range: Range<usize>) -> Mat<f32> {
        self.collect(side, range, true)
    }

    pub(super) fn collect(&self, side: Side, range: Range<usize>, normalise: bool) -> Mat<f32> {
        let d = self.spec.dim;
        let first = range.start / SYNTHETIC_BLOCK;
        let last = range.end.div_ceil(SYNTHETIC_BLOCK);
        // Each thread generates whole blocks and keeps the rows of `range` among them.
        let parts = par_ranges(last.saturating_sub(first), 1, &|blocks: Range<usize>| {
            let lo = ((first + blocks.start) * SYNTHETIC_BLOCK).max(range.start);
            let hi = ((first + blocks.end) * SYNTHETIC_BLOCK).min(range.end);
            let mut part = Mat::<f32>::zeros(hi.saturating_sub(lo), d);
            for b in blocks {
                let b = first + b;
                let mut block = self.raw_block(side, b);
                if normalise {
                    normalise_rows_in_place(&mut block);
                }
                let (from, to) = ((b * SYNTHETIC_BLOCK).max(lo), ((b + 1) * SYNTHETIC_BLOCK).min(hi));
                part.as_mut()
                    .subrows_mut(from - lo, to - from)
                    .copy_from(block.as_ref().subrows(from - b * SYNTHETIC_BLOCK, to - from));
            }
            part
        });
        if parts.len() == 1 {
            return parts.into_iter().next().unwrap_or_else(|| Mat::zeros(0, d));
        }
        let mut out = Mat::<f32>::zeros(range.len(), d);
        let mut at = 0;
        for part in &parts {
            out.as_mut().subrows_mut(at, part.nrows()).copy_from(part.as_ref());
            at += part.nrows();
        }
        out
    }

    /// The raw rows of generation block `b` of `side` (all [`SYNTHETIC_BLOCK`] of them): the block's
    /// uniforms fill `x` (and `n`) in column-major order.
    pub(super) fn raw_block(&self, side: Side, b: usize) -> Mat<f32> {
        let d = self.spec.dim;
        let mut bits = vec![0u32; SYNTHETIC_BLOCK * d];
        stream(self.spec.seed, 2 * b as u64).fill(&mut bits[..]);
        let mut e: Vec<f32> = bits.iter().map(|&r| uniform(r)).collect();
        if side == Side::Gallery && self.spec.noise > 0.0 {
            stream(self.spec.seed, 2 * b as u64 + 1).fill(&mut bits[..]);
            let noise = self.spec.noise;
            e.iter_mut().zip(&bits).for_each(|(x, &r)| *x += noise * uniform(r));
        }
        let e = MatRef::from_column_major_slice(&e, SYNTHETIC_BLOCK, d);
        let mut out = Mat::<f32>::zeros(SYNTHETIC_BLOCK, d);
        matmul(out.as_mut(), Accum::Replace, e, self.rotation.as_ref(), 1.0f32, Par::Seq);
        out
    }
}

/// Scales every row of `m` to unit L2 norm with exactly the arithmetic of [`normalized_rows`]
/// (squares summed in f64 in column order, one f32 scale per row), in place.
pub(super) fn normalise_rows_in_place(m: &mut Mat<f32>) {
    let mut norms = vec![0.0f64; m.nrows()];
    for j in 0..m.ncols() {
        for (n, &v) in norms.iter_mut().zip(m.col_as_slice(j)) {
            let v = f64::from(v);
            *n += v * v;
        }
    }
    let scale: Vec<f32> =
        norms.iter().map(|&n| if n > 0.0 { (1.0 / n.sqrt()) as f32 } else { 0.0 }).collect();
    for j in 0..m.ncols() {
        for (v, &s) in m.col_as_slice_mut(j).iter_mut().zip(&scale) {
            *v *= s;
        }
    }
}

pub(super) fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Uniform on (−√3, √3) from 24 random bits: zero mean, unit variance.
#[inline]
pub(super) fn uniform(bits: u32) -> f32 {
    const SCALE: f32 = 2.0 * 1.732_050_8 / (1u32 << 24) as f32;
    ((bits >> 8) as f32 + 0.5) * SCALE - 1.732_050_8
}

/// A random `d × d` orthogonal matrix: modified Gram–Schmidt, in f64, on Gaussian columns.
pub(super) fn random_rotation(seed: u64, d: usize) -> Mat<f32> {
    let mut rng = stream(seed, u64::MAX);
    let mut gaussian = move || {
        let u: f64 = rng.random::<f64>().max(1e-300);
        let v: f64 = rng.random();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(d);
    while q.len() < d {
        let mut v: Vec<f64> = (0..d).map(|_| gaussian()).collect();
        for u in &q {
            let p: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(x, y)| *x -= p * y);
        }
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 1e-6 {
            v.iter_mut().for_each(|x| *x /= n);
            q.push(v);
        }
    }
    Mat::from_fn(d, d, |i, j| q[j][i] as f32)
}

pub(super) fn check_index_range(n: usize) -> Result<(), HostError> {
    if n > u32::MAX as usize {
        Err(HostError::Usage(format!("{n} rows: at most {} rows per side", u32::MAX)))
    } else {
        Ok(())
    }
}

/// Where the rows of a large CSLS comparison come from.
#[derive(Debug, Clone)]
pub enum CslsInput {
    /// Matrices held in memory (L2-normalised copies).
    Matrices {
        /// Normalised queries.
        queries: Mat<f32>,
        /// Normalised gallery.
        gallery: Mat<f32>,
    },
    /// Rows generated from a seed as they are needed.
    Synthetic(Synthetic),
}

impl CslsInput {
    /// Queries and gallery from matrices (one item per row; rows normalised inside); query i's
    /// partner is gallery row i, so the gallery needs at least as many rows as the queries.
    pub fn from_matrices(queries: MatRef<'_, f32>, gallery: MatRef<'_, f32>) -> Result<Self, HostError> {
        if queries.ncols() != gallery.ncols() {
            return Err(HostError::Usage(format!(
                "csls: width mismatch, {} columns vs {} columns",
                queries.ncols(),
                gallery.ncols()
            )));
        }
        if gallery.nrows() < queries.nrows() {
            return Err(HostError::Usage(format!(
                "csls: {} queries but {} gallery rows; query i's partner is gallery row i",
                queries.nrows(),
                gallery.nrows()
            )));
        }
        check_index_range(gallery.nrows())?;
        Ok(Self::Matrices { queries: normalized_rows(queries), gallery: normalized_rows(gallery) })
    }

    /// Number of queries.
    pub fn queries(&self) -> usize {
        match self {
            Self::Matrices { queries, .. } => queries.nrows(),
            Self::Synthetic(s) => s.spec.queries,
        }
    }

    /// Number of gallery rows.
    pub fn gallery(&self) -> usize {
        match self {
            Self::Matrices { gallery, .. } => gallery.nrows(),
            Self::Synthetic(s) => s.spec.gallery,
        }
    }

    /// Width of the rows.
    pub fn dim(&self) -> usize {
        match self {
            Self::Matrices { queries, .. } => queries.ncols(),
            Self::Synthetic(s) => s.spec.dim,
        }
    }

    /// What the rows are, in words (recorded in state files, so that shards of different data
    /// never merge).
    pub fn describe(&self) -> String {
        match self {
            Self::Matrices { .. } => "matrices".to_owned(),
            Self::Synthetic(s) => {
                format!(
                    "synthetic(seed = {}, noise = {}, block = {SYNTHETIC_BLOCK})",
                    s.spec.seed, s.spec.noise
                )
            }
        }
    }

    /// Normalised rows `range` of `side`.
    pub fn rows(&self, side: Side, range: Range<usize>) -> Mat<f32> {
        match (self, side) {
            (Self::Matrices { queries, .. }, Side::Queries) => {
                queries.as_ref().subrows(range.start, range.len()).to_owned()
            }
            (Self::Matrices { gallery, .. }, Side::Gallery) => {
                gallery.as_ref().subrows(range.start, range.len()).to_owned()
            }
            (Self::Synthetic(s), side) => s.rows(side, range),
        }
    }

    /// The job these rows make with `plan` (what state files record).
    pub fn job(&self, plan: &CslsPlan) -> Job {
        Job {
            input: self.describe(),
            queries: self.queries(),
            gallery: self.gallery(),
            dim: self.dim(),
            k: plan.k.max(1),
        }
    }
}
