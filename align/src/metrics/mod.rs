//! Evaluation metrics: retrieval (NN and CSLS, in bounded memory), CKA, mutual-kNN, CSLS
//! neighbourhoods and permutation nulls. The blocked products and streaming top-k lists
//! ([`blocked`], [`topk`]) are public for retrieval at larger scales (the host's million-scale
//! CSLS splits them into shards).
//!
//! Inputs are `faer` matrices with one item per row. Similarity is cosine: rows are L2-normalised
//! inside each metric. Large products are computed tile by tile ([`Blocks`]) and scanned with
//! streaming top-k lists, so memory never grows with `queries × gallery`.

pub mod blocked;
mod cka;
mod csls;
mod error;
mod mutual_knn;
mod permutation;
mod retrieval;
#[cfg(test)]
mod testing;
pub mod topk;

pub use blocked::{normalized_rows, Blocks};
pub use cka::{cka_linear, cka_unbiased};
pub use csls::{csls_matches, csls_radii, mutual_csls_pairs, CslsMatches};
pub use error::MetricError;
pub use mutual_knn::{mutual_knn, mutual_knn_with};
pub use permutation::{null_rng, permutation_null, permute_rows, permute_truth, permuted, NullDistribution};
pub use retrieval::{
    retrieval, retrieval_ranks, retrieval_with, Rank, RetrievalOptions, RetrievalScores, Scoring,
};
