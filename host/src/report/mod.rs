//! Reports: SVG plots and the Markdown report of a run.

pub mod markdown;
pub mod plot;

pub use plot::{line_chart, Chart, Series, SeriesPoint};
