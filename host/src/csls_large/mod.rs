//! Million-scale CSLS retrieval (P@1 and friends) in bounded memory: queries against a gallery that
//! is streamed block by block — copied from matrices or generated from a seed, never held whole —
//! in two passes that split into shards by query range and merge exactly through state files.
//!
//! `CSLS(x, y) = 2 cos(x, y) − r_q(x) − r_g(y)`, with `r_q(x)` the mean cosine of query x to its k
//! nearest gallery rows and `r_g(y)` that of gallery row y to its k nearest queries (Conneau et al.
//! 2018; k = 10). Query i's true partner is gallery row i.
//!
//! - **Pass 1** (per query range): tiles of queries × gallery ([`super::Blocks`], the same sweep as
//!   [`super::retrieval`]) feed streaming top-k lists: each query's k best gallery rows (→ `r_q`) and
//!   each gallery row's k best queries *of the range*. A shard writes its queries' `r_q` and its
//!   partial gallery lists (`n_g × k` scores).
//! - **Merge 1**: the partial gallery lists merge elementwise (the k largest of their union) into
//!   `r_g`. The k largest scores of a set do not depend on how the set was split, and means are
//!   summed in sorted order, so `r_g` is bit-identical however the queries were sharded.
//! - **Pass 2** (per query range): the truth scores `2 cos(x_i, y_i) − r_g(y_i)` and, tile by tile,
//!   how many other gallery rows score strictly above it (`r_q(x)` is the same along a query's row
//!   and changes no rank). Rank 1 is a hit, ties going to the truth, exactly as in
//!   [`super::retrieval`]; a shard writes its hit counts, and merge 2 sums them.
//!
//! Memory is `O((n_q + n_g)·k)` for the lists plus one query block, one gallery chunk and one tile
//! per thread ([`CslsPlan::memory`]); a shard holds `n_g·k` gallery lists and its own queries' lists.
//! With [`Synthetic`] rows nothing of the inputs is resident beyond those blocks: each gallery chunk
//! is regenerated from the seed for every query block. A generated row costs about `2·dim²` flops
//! (its rotation) against `2·dim` per query of the block for the product, so regenerating adds about
//! `dim / query block` to the product's cost: 12 % for 2,500-query shards at d = 300, 2 % for the
//! default 16,384-query blocks.

use crate::shard::Shard;
use crate::HostError;
use commute_align::metrics::blocked::{
    count_above, normalized_rows, par_ranges, top_k_sweep, Blocks, TopKSweep,
};
use commute_align::metrics::topk::TopK;
use commute_align::metrics::Rank;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Read as _, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

mod input;
mod passes;
mod state;

pub use input::*;
pub use passes::*;
pub use state::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{csls_radii, retrieval, Scoring};

    const NONE: &(dyn Fn(u64) + Sync) = &|_| {};

    fn synthetic(n: usize, gallery: usize, noise: f32) -> Synthetic {
        Synthetic::new(SyntheticSpec { queries: n, gallery, dim: 300, noise, seed: 7 }).unwrap()
    }

    fn small_plan() -> CslsPlan {
        CslsPlan { k: 10, blocks: Blocks { rows: 64, cols: 300 }, query_block: 450, gallery_chunk: 700 }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn synthetic_rows_depend_only_on_seed_and_index() {
        let s = synthetic(600, 700, 1.0);
        let all = s.rows(Side::Gallery, 0..700);
        let part = s.rows(Side::Gallery, 255..513);
        for i in 0..258 {
            for j in 0..300 {
                assert_eq!(part[(i, j)].to_bits(), all[(255 + i, j)].to_bits());
            }
        }
        // Normalised exactly as the other metrics normalise.
        let raw = s.raw_rows(Side::Gallery, 0..700);
        assert_eq!(normalized_rows(raw.as_ref()), all);
        // Unit rows; true pairs at cosine ≈ 1/√(1 + σ²); other pairs near 0.
        let q = s.rows(Side::Queries, 0..600);
        let cos = |i: usize, j: usize| dot(q.as_ref(), i, all.as_ref(), j);
        assert!((dot(q.as_ref(), 5, q.as_ref(), 5) - 1.0).abs() < 1e-5);
        let truth: f64 = (0..600).map(|i| f64::from(cos(i, i))).sum::<f64>() / 600.0;
        let other: f64 = (0..600).map(|i| f64::from(cos(i, (i + 1) % 600))).sum::<f64>() / 600.0;
        assert!((truth - 1.0 / 2f64.sqrt()).abs() < 0.01, "{truth}");
        assert!(other.abs() < 0.01, "{other}");
        // Another seed, other rows.
        let t = Synthetic::new(SyntheticSpec { seed: 8, ..*s.spec() }).unwrap();
        assert_ne!(t.rows(Side::Queries, 0..1), s.rows(Side::Queries, 0..1));
    }

    #[test]
    fn the_rotation_is_orthogonal() {
        let q = random_rotation(3, 40);
        for a in 0..40 {
            for b in 0..40 {
                let p: f64 = (0..40).map(|i| f64::from(q[(i, a)]) * f64::from(q[(i, b)])).sum();
                assert!((p - f64::from(u8::from(a == b))).abs() < 1e-5);
            }
        }
    }

    /// The known answer: the exact, in-memory `retrieval` (CSLS, k = 10) and `csls_radii` on the
    /// same 3000 × 3000 rows; the blocked computation, whole and in 3 shards merged through state
    /// files, must agree exactly.
    #[test]
    fn shards_merged_through_files_equal_the_exact_retrieval() {
        let n = 3000;
        let s = synthetic(n, n, 4.5);
        let (raw_q, raw_g) = (s.raw_rows(Side::Queries, 0..n), s.raw_rows(Side::Gallery, 0..n));
        let truth: Vec<Option<usize>> = (0..n).map(Some).collect();
        let exact = retrieval(raw_q.as_ref(), raw_g.as_ref(), &truth, Scoring::CSLS10).unwrap();
        assert!(exact.p_at_1 > 0.2 && exact.p_at_1 < 0.8, "P@1 = {} should be informative", exact.p_at_1);
        let (r_q, r_g) = csls_radii(raw_q.as_ref(), raw_g.as_ref(), 10, Blocks::default()).unwrap();

        let input = CslsInput::Synthetic(s.clone());
        let whole = csls_large(&input, &CslsPlan::default(), NONE).unwrap();
        assert_eq!(bits(&whole.radii.r_query), bits(&r_q));
        assert_eq!(bits(&whole.radii.r_gallery), bits(&r_g));
        let h = whole.hits;
        assert_eq!(
            (h.p_at_1(), h.p_at_5(), h.p_at_10(), h.mrr()),
            (exact.p_at_1, exact.p_at_5, exact.p_at_10, exact.mrr)
        );
        assert_eq!(h.queries, n as u64);

        // The same rows from memory, with other tiles and chunks.
        let from_memory = CslsInput::from_matrices(raw_q.as_ref(), raw_g.as_ref()).unwrap();
        assert_eq!(csls_large(&from_memory, &small_plan(), NONE).unwrap(), whole);

        // 3 shards of each pass, through files.
        let dir = tempfile::tempdir().unwrap();
        let plan = small_plan();
        let job = input.job(&plan);
        for i in [3, 1, 2] {
            let shard = Shard::new(i, 3).unwrap();
            let part = pass1(&input, &plan, shard.range(n), NONE).unwrap();
            write_pass1(dir.path(), &job, shard, &part).unwrap();
        }
        let (radii, report) = merge_pass1_files(dir.path(), &job, false).unwrap();
        assert_eq!(report, MergeReport { files: 3, shards: 3, complete: true });
        assert_eq!(radii, whole.radii);
        assert_eq!(read_radii(dir.path(), &job).unwrap(), whole.radii);
        for i in 1..=3 {
            let shard = Shard::new(i, 3).unwrap();
            let r = read_radii(dir.path(), &job).unwrap();
            let hits = pass2(&input, &plan, shard.range(n), &r.r_gallery, NONE).unwrap();
            write_pass2(dir.path(), &job, shard, &hits, r.complete).unwrap();
        }
        let (total, report) = merge_pass2_files(dir.path(), &job).unwrap();
        assert!(report.complete);
        assert_eq!(
            (total.queries, total.at_1, total.at_5, total.at_10),
            (h.queries, h.at_1, h.at_5, h.at_10)
        );
        assert_eq!(total.p_at_1(), exact.p_at_1);
        assert!((total.mrr() - exact.mrr).abs() < 1e-12);
    }

    #[test]
    fn uneven_shards_smaller_than_k_merge_exactly() {
        // 7 shards (some smaller than k) of 40 queries against 53 gallery rows, tiny tiles.
        let s = synthetic(40, 53, 10.0);
        let input = CslsInput::Synthetic(s);
        let plan = CslsPlan { k: 10, blocks: Blocks { rows: 3, cols: 5 }, query_block: 4, gallery_chunk: 9 };
        let whole = csls_large(&input, &CslsPlan::default(), NONE).unwrap();
        let mut merger = RadiiMerger::new(40, 53, 10);
        let mut hits = Hits::default();
        for i in (1..=7).rev() {
            let range = Shard::new(i, 7).unwrap().range(40);
            merger.add(&pass1(&input, &plan, range, NONE).unwrap()).unwrap();
        }
        let radii = merger.finish(false).unwrap();
        assert_eq!(radii, whole.radii);
        for i in 1..=7 {
            let range = Shard::new(i, 7).unwrap().range(40);
            hits.add(&pass2(&input, &plan, range, &radii.r_gallery, NONE).unwrap());
        }
        assert_eq!((hits.at_1, hits.at_5, hits.queries), (whole.hits.at_1, whole.hits.at_5, 40));
        assert!(whole.hits.at_1 < 40.0 && whole.hits.at_1 > 0.0, "{:?}", whole.hits);
    }

    #[test]
    fn merges_refuse_missing_foreign_and_damaged_shards() {
        let s = synthetic(30, 30, 1.0);
        let input = CslsInput::Synthetic(s);
        let plan = CslsPlan::default();
        let job = input.job(&plan);
        let dir = tempfile::tempdir().unwrap();
        let write = |i: u32| {
            let shard = Shard::new(i, 3).unwrap();
            let part = pass1(&input, &plan, shard.range(30), NONE).unwrap();
            write_pass1(dir.path(), &job, shard, &part).unwrap()
        };
        write(1);
        let last = write(3);
        let err = merge_pass1_files(dir.path(), &job, false).unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains(": 2 of 3"), "{err}");
        let (partial, report) = merge_pass1_files(dir.path(), &job, true).unwrap();
        assert!(!partial.complete && !report.complete);
        assert!(!read_radii(dir.path(), &job).unwrap().complete);
        write(2);
        assert!(merge_pass1_files(dir.path(), &job, false).unwrap().0.complete);

        let other = Job { k: 5, ..job.clone() };
        let err = merge_pass1_files(dir.path(), &other, false).unwrap_err();
        assert!(matches!(err, HostError::Format { .. }) && err.to_string().contains("another job"), "{err}");

        let bytes = std::fs::read(&last).unwrap();
        std::fs::write(&last, &bytes[..bytes.len() - 4]).unwrap();
        let err = merge_pass1_files(dir.path(), &job, false).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        std::fs::write(&last, b"not json\n").unwrap();
        assert!(matches!(merge_pass1_files(dir.path(), &job, false), Err(HostError::Format { .. })));

        let empty = tempfile::tempdir().unwrap();
        assert!(merge_pass2_files(empty.path(), &job).unwrap_err().to_string().contains("no pass-2"));
    }

    #[test]
    fn the_mean_radius_skips_the_queries_a_partial_merge_left_without_one() {
        assert_eq!(mean_radius(&[0.25, f32::NAN, 0.75]), 0.5);
        assert_eq!(mean_radius(&[0.25, 0.75]), 0.5);
        assert!(mean_radius(&[f32::NAN]).is_nan() && mean_radius(&[]).is_nan());
    }

    #[test]
    fn impossible_synthetic_data_is_refused() {
        assert!(
            Synthetic::new(SyntheticSpec { queries: 5, gallery: 4, dim: 3, noise: 1.0, seed: 1 }).is_err()
        );
        assert!(Synthetic::new(SyntheticSpec { queries: 5, gallery: 5, dim: 3, noise: f32::NAN, seed: 1 })
            .is_err());
    }

    #[test]
    fn the_memory_plan_does_not_grow_with_the_product() {
        let s = Synthetic::new(SyntheticSpec {
            queries: 2_500_000,
            gallery: 2_500_000,
            dim: 300,
            noise: 3.0,
            seed: 1,
        })
        .unwrap();
        let input = CslsInput::Synthetic(s);
        let plan = CslsPlan::default();
        let whole = plan.memory(&input, Step::Whole, 2_500_000, 2);
        // Lists: 5M × (10 × 8 + 8) bytes = 440 MB, plus radii; everything else is tens of MB.
        assert!(whole.state > 440_000_000 && whole.state < 500_000_000, "{whole:?}");
        assert!(whole.total() < 600_000_000, "{whole:?}");
        let shard = plan.memory(&input, Step::Pass1, 2_500, 2);
        assert!(shard.total() < 300_000_000, "{shard:?}");
    }
}
