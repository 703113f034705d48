//! Where each declared value sits in the experiment file: one record of byte ranges per declared
//! thing, kept beside its values, so that a check after parsing points at the right key.
//!
//! A span is `0..0` where nothing was written (a default): an error there points at the file's
//! start. The parser fills every span a later check reads; the records are not serialised.

use std::ops::Range;

/// A byte range of the experiment file.
pub type Span = Range<usize>;

/// Where a plugin call (`source`, `render`, an operator, a node's encoder) was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallSpans {
    /// The table holding the call (for a node's encoder: the node's table).
    pub table: Span,
    /// The `plugin` value.
    pub plugin: Span,
    /// The value naming the function (`function`, or a node's `encoder`).
    pub function: Span,
    /// The `params` table, or the call's table when it has none.
    pub params: Span,
}

/// Where a node's keys were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSpans {
    /// `[nodes.NAME]`.
    pub table: Span,
    /// The `data` value.
    pub data: Span,
    /// The `device` value (`0..0` when the node runs on the default CPU).
    pub device: Span,
}

/// Where a data set's keys were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSpans {
    /// `[data.NAME]`.
    pub table: Span,
    /// The `files` value (for a folder of files).
    pub files: Span,
    /// The `from` value (for a rendered data set).
    pub from: Span,
}

/// Where a data set's operator was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorSpans {
    /// The operator's table.
    pub table: Span,
    /// The `items` value.
    pub items: Span,
}

/// Where an edge's keys were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeSpans {
    /// The `[[edges]]` table.
    pub table: Span,
    /// The `parent` value.
    pub parent: Span,
    /// The `child` value.
    pub child: Span,
    /// The `methods` array.
    pub methods: Span,
    /// The `operators` value.
    pub operators: Span,
    /// The `shortcut` value.
    pub shortcut: Span,
    /// The `grid-anchors` value.
    pub grid_anchors: Span,
    /// The `starts` value, when the edge declares one (even one with errors).
    pub starts: Option<Span>,
    /// The `order` table.
    pub order: Span,
    /// The `swatches` value.
    pub swatches: Span,
}

/// Where a stitch's keys were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StitchSpans {
    /// The `[[stitches]]` table.
    pub table: Span,
    /// The `source` value.
    pub source: Span,
    /// The `target` value.
    pub target: Span,
    /// The `reference` value.
    pub reference: Span,
    /// Each method's table, in order.
    pub methods: Vec<Span>,
    /// The `downstream` value.
    pub downstream: Span,
    /// The `operators` value.
    pub operators: Span,
    /// The `operator-nodes` table's `source` and `target` values.
    pub operator_nodes: [Span; 2],
}

/// Where the `[experiment]` table's keys were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExperimentSpans {
    /// The `anchors` array.
    pub anchors: Span,
    /// The `0` in `anchors`, when it has one.
    pub zero_anchors: Option<Span>,
}

/// Where the `[tree]` table's keys were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSpans {
    /// The `anchors` value.
    pub anchors: Span,
}

/// Where an `EmbeddingsFile`'s keys were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbeddingsSpans {
    /// The `embeddings` value.
    pub path: Span,
    /// The `keys` value.
    pub keys: Span,
    /// The `match` value (`0..0` when it was not written).
    pub match_by: Span,
}
