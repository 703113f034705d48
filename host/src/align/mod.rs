//! Alignment methods: maps between two embedding spaces fitted from paired rows.
//!
//! Rows are items: `x` (n × d_a) in the source space, `y` (n × d_b) in the target space, row i of
//! each describing the same item. A fitted [`Alignment`] maps source rows and target rows into a
//! common comparison space, where retrieval and similarity are measured.

use faer::{Mat, MatRef};

/// A fitted alignment between a source space and a target space.
pub trait Alignment: Send + Sync {
    /// Maps source rows (n × d_a) into the comparison space.
    fn map_source(&self, x: MatRef<'_, f32>) -> Mat<f32>;
    /// Maps target rows (n × d_b) into the comparison space (for most methods: the target's own
    /// preprocessing only).
    fn map_target(&self, y: MatRef<'_, f32>) -> Mat<f32>;
}
