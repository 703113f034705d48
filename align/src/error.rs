//! The error type of alignment fitting and application: what went wrong, and what to do about it.

use std::fmt;

/// Which of the two spaces an input belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// The source space (rows of `x`, mapped by the alignment).
    Source,
    /// The target space (rows of `y`).
    Target,
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Space::Source => "source",
            Space::Target => "target",
        })
    }
}

/// Why an alignment could not be fitted or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AlignError {
    /// The method (or a preprocessing step) needs more paired rows than were given.
    #[error("{what} needs at least {needed} paired rows, got {got}")]
    TooFewPairs {
        /// The method or step, as written in the experiment (e.g. `cca with dim = 10`).
        what: String,
        /// The smallest number of rows that works.
        needed: usize,
        /// The number of rows given.
        got: usize,
    },
    /// The source and target matrices do not have the same number of rows (rows must be pairs).
    #[error("rows must be pairs: the source has {source_rows} rows but the target has {target_rows}")]
    RowCountMismatch {
        /// Rows of the source matrix.
        source_rows: usize,
        /// Rows of the target matrix.
        target_rows: usize,
    },
    /// Rows have a different number of columns than the space's dimension.
    #[error("{space} rows have {got} columns, but the {space} space has dimension {expected}")]
    DimensionMismatch {
        /// The space whose rows are wrong.
        space: Space,
        /// The dimension the fitted map expects.
        expected: usize,
        /// The number of columns given.
        got: usize,
    },
    /// A matrix holds NaN or an infinity.
    #[error("{space} rows hold a non-finite value ({value}) at row {row}, column {col}")]
    NonFinite {
        /// The space whose rows are bad.
        space: Space,
        /// Row index of the first bad value.
        row: usize,
        /// Column index of the first bad value.
        col: usize,
        /// The value, as text (`NaN`, `inf`, `-inf`).
        value: String,
    },
    /// The fitting problem has no unique or stable solution.
    #[error("{what} is singular: {detail}; {hint}")]
    Singular {
        /// The method or step that failed.
        what: String,
        /// What was singular.
        detail: String,
        /// What to change (e.g. use `ridge` with `lambda > 0`, or raise `reg`).
        hint: String,
    },
    /// A parameter of the method or of the preprocessing is out of range.
    #[error("invalid {field}: {detail}")]
    InvalidParameter {
        /// The key as written in the experiment (e.g. `ridge.lambda`).
        field: String,
        /// What is wrong and what is allowed.
        detail: String,
    },
    /// The method needs data beyond the anchor pairs (operators, unpaired rows) that was not given.
    #[error("{what} needs {needed}, but {got}")]
    MissingInput {
        /// The method, as written in the experiment (e.g. `functional`).
        what: String,
        /// What it needs, and where it is passed.
        needed: String,
        /// What was given instead.
        got: String,
    },
    /// A matrix decomposition did not converge (should not happen on finite input).
    #[error("{what}: the {decomposition} did not converge")]
    NoConvergence {
        /// The method or step that failed.
        what: String,
        /// The decomposition (`SVD`, `eigendecomposition`).
        decomposition: &'static str,
    },
}
