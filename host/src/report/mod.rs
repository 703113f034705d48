//! Reports: SVG plots and the Markdown report of a run.

pub mod bars;
pub mod grid;
pub mod heatmap;
pub mod markdown;
pub mod notes;
pub mod plot;
pub mod stitch;
pub mod swatches;
pub mod tree;

pub use plot::{line_chart, Chart, Series, SeriesPoint};
