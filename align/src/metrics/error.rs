//! The error type of the metrics: inputs whose shapes or indices do not fit together.

/// An error of a metric computation: the inputs do not describe a valid comparison.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// Two matrices that must share their number of columns (the embedding width) do not.
    #[error("{what}: width mismatch, {left} columns vs {right} columns")]
    Width {
        /// Which comparison failed.
        what: &'static str,
        /// Columns of the first matrix.
        left: usize,
        /// Columns of the second matrix.
        right: usize,
    },
    /// Two sequences that must have one entry per item (row) do not.
    #[error("{what}: length mismatch, {left} vs {right} items")]
    Length {
        /// Which comparison failed.
        what: &'static str,
        /// Items on the first side.
        left: usize,
        /// Items on the second side.
        right: usize,
    },
    /// A ground-truth index points past the end of the gallery.
    #[error("truth of query {query} is gallery row {index}, but the gallery has {gallery} rows")]
    TruthOutOfRange {
        /// The query row.
        query: usize,
        /// The gallery row given as its match.
        index: usize,
        /// Rows in the gallery.
        gallery: usize,
    },
}
