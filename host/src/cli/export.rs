//! `commute export`: a node's embeddings as a numpy array (`FILE --node N -o X.npy`), or a run's
//! evaluated points as a tidy table (`RUN_DIR --metrics -o metrics.csv|parquet`).

use super::{Cli, Outcome};
use crate::cache::Cache;
use crate::extract::Extractor;
use crate::metrics_table::{self, Format};
use crate::run::RunMetrics;
use commute_sdk::{Tensor, Value};
use std::path::{Path, PathBuf};

/// Arguments of `commute export`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["node", "metrics"]))]
pub struct Args {
    /// The experiment file (with --node), or a run folder or its metrics.json (with --metrics).
    file: PathBuf,
    /// The node whose embeddings to export.
    #[arg(long)]
    node: Option<String>,
    /// Export the run's evaluated points as one table: a row per edge, method, anchor count,
    /// repeat and metric, with the score (`value`) and its permutation null (`null`).
    #[arg(long)]
    metrics: bool,
    /// The output file: `.npy` (float32, items × dimension) with --node; `.csv` or `.parquet`
    /// with --metrics.
    #[arg(long, short)]
    output: PathBuf,
    #[command(flatten)]
    cache: super::cache_dir::CacheDir,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    match &args.node {
        Some(node) => export_node(cli, args, node),
        None => export_metrics(&args.file, &args.output),
    }
}

fn export_node(cli: &Cli, args: &Args, node: &str) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    let exp = super::check::checked(&registry, &args.file)?;
    let cache = Cache::new(args.cache.root());
    let base = super::check::base_dir(&args.file);
    let mut extractor = Extractor::new(&exp, &registry, &cache, base, cli.context().threads);
    let e = extractor.node(node)?;
    e.require_pooled()?;
    let rows: Vec<Value> =
        e.data.chunks(e.dim.max(1)).map(|r| Value::Tensor(Tensor::vector(r.to_vec()))).collect();
    for path in crate::value_io::write_values(&args.output, &rows)? {
        println!("{} ({} × {})", path.display(), e.rows, e.dim);
    }
    Ok(Outcome::Ok)
}

fn export_metrics(run: &Path, output: &Path) -> anyhow::Result<Outcome> {
    let format = Format::of(output)?;
    let path = if run.is_dir() { run.join("metrics.json") } else { run.to_path_buf() };
    let metrics = RunMetrics::read(&path)?;
    let rows = metrics_table::rows(&metrics);
    metrics_table::write(output, &rows, format)?;
    println!("{} ({} rows × {} columns)", output.display(), rows.len(), metrics_table::COLUMNS.len());
    Ok(Outcome::Ok)
}
