//! `commute run FILE`: checks the experiment, extracts (cached) embeddings, runs the sweep on
//! every edge and writes a run folder with `metrics.json` and `report.md`.

use super::{Cli, Outcome};
use crate::cache::Cache;
use crate::experiment::Experiment;
use crate::extract::Extractor;
use crate::HostError;
use std::path::{Path, PathBuf};

/// Arguments of `commute run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment file.
    pub(crate) file: PathBuf,
    /// Where run folders go: `<runs>/<experiment name>/<UTC time>/`.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub(crate) runs: PathBuf,
    #[command(flatten)]
    pub(crate) cache: super::cache_dir::CacheDir,
    /// Run every function of this plugin in isolated worker processes (repeatable).
    #[arg(long, value_name = "PLUGIN")]
    pub(crate) isolate_plugin: Vec<String>,
    #[command(flatten)]
    pub(crate) isolation: super::worker::IsolationArgs,
    /// Compute only shard I of N (counted from 1) of the embeddings into the cache, then stop:
    /// no fitting, no run folder. A later run without --shard finds them cached.
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<crate::shard::Shard>,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let bytes = std::fs::read(&args.file).map_err(|e| HostError::io(&args.file, e))?;
    let base = super::check::base_dir(&args.file);
    let registry = cli.registry();
    let exp = checked(&bytes, &args.file, &registry, base)?;
    let cache = open_cache(&args.cache)?;
    let isolation = args.isolation.isolation(args.isolate_plugin.clone());
    let threads = cli.context().threads;
    if let Some(shard) = args.shard {
        let extractor = Extractor::new(&exp, &registry, &cache, base, threads).with_isolation(isolation);
        let done = crate::shard::run_shard(extractor, &exp, &cache, shard)?;
        print!("{done}");
        return Ok(if done.failed.is_empty() { Outcome::Ok } else { Outcome::CheckFailed });
    }
    let output = crate::run::run(crate::run::RunPlan {
        exp: &exp,
        text: &bytes,
        file: &args.file,
        base,
        registry: &registry,
        cache: &cache,
        runs: &args.runs,
        isolation,
        threads,
    })?;
    Ok(report(&output, exp.edges.len()))
}

/// The experiment in `bytes` (its file named `shown` in messages; relative paths resolve against
/// `base`), checked against the plugins. Its problems are printed, all at once, and make an error.
pub(crate) fn checked(
    bytes: &[u8],
    shown: &Path,
    registry: &crate::registry::Registry,
    base: &Path,
) -> anyhow::Result<Experiment> {
    crate::experiment::load(bytes, registry, base).map_err(|diags| {
        let report = crate::experiment::diagnostic::render(shown, &String::from_utf8_lossy(bytes), &diags);
        eprint!("{report}");
        HostError::Usage(format!("{} has errors; nothing was run", shown.display())).into()
    })
}

/// The cache at `dir`, checked writable: a read-only or full cache fails here, before a run
/// folder exists.
pub(crate) fn open_cache(dir: &super::cache_dir::CacheDir) -> Result<Cache, HostError> {
    let cache = Cache::new(dir.root());
    cache.ensure_writable()?;
    Ok(cache)
}

/// Prints a finished run's failed edges (stderr), its summary and folder (stdout), and gives the
/// command's outcome: a failed edge is a declared check that failed.
pub(crate) fn report(output: &crate::run::RunOutput, edges: usize) -> Outcome {
    let failed = &output.metrics.failed_edges;
    for f in failed {
        eprintln!("error: edge {} → {} failed: {}", f.parent, f.child, f.error);
    }
    print!("{}", output.summary);
    println!("run folder: {}", output.dir.display());
    if failed.is_empty() {
        Outcome::Ok
    } else {
        eprintln!(
            "error: {} of {edges} edges failed (see above and report.md); the others were evaluated",
            failed.len()
        );
        Outcome::CheckFailed
    }
}
