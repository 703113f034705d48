//! `commute export FILE --node N --output X.npy`: a node's embeddings as a numpy array.

use super::{Cli, Outcome};
use crate::cache::Cache;
use crate::extract::Extractor;
use commute_sdk::{Tensor, Value};
use std::path::PathBuf;

/// Arguments of `commute export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment file.
    file: PathBuf,
    /// The node whose embeddings to export.
    #[arg(long)]
    node: String,
    /// The output file (`.npy`: float32, items × dimension).
    #[arg(long, short)]
    output: PathBuf,
    #[command(flatten)]
    cache: super::cache_dir::CacheDir,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    let exp = super::check::checked(&registry, &args.file)?;
    let cache = Cache::new(args.cache.root());
    let base = super::check::base_dir(&args.file);
    let mut extractor = Extractor::new(&exp, &registry, &cache, base, cli.context().threads);
    let e = extractor.node(&args.node)?;
    let rows: Vec<Value> =
        e.data.chunks(e.dim.max(1)).map(|r| Value::Tensor(Tensor::vector(r.to_vec()))).collect();
    for path in crate::value_io::write_values(&args.output, &rows)? {
        println!("{} ({} × {})", path.display(), e.rows, e.dim);
    }
    Ok(Outcome::Ok)
}
