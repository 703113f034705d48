//! `commute run FILE`: checks the experiment, extracts (cached) embeddings, runs the sweep on
//! every edge and writes a run folder with `metrics.json` and `report.md`.

use super::{Cli, Outcome};
use crate::cache::Cache;
use crate::edge_operators::{EdgeOperators, EmbeddedPair};
use crate::extract::Extractor;
use crate::run_dir::{now_secs, utc_stamps, RunDir};
use crate::runner::run_edge;
use crate::HostError;
use std::path::PathBuf;

/// Arguments of `commute run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment file.
    file: PathBuf,
    /// Where run folders go: `<runs>/<experiment name>/<UTC time>/`.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs: PathBuf,
    /// The cache folder [default: $COMMUTE_HOME, else ~/.cache/commute].
    #[arg(long, value_name = "DIR", env = "COMMUTE_HOME")]
    cache: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    let exp = match super::check::load(&registry, &args.file)? {
        Ok(exp) => exp,
        Err(report) => {
            eprint!("{report}");
            return Err(
                HostError::Usage(format!("{} has errors; nothing was run", args.file.display())).into()
            );
        }
    };
    let started = now_secs();
    let cache = Cache::new(args.cache.clone().unwrap_or_else(crate::cache::default_root));
    let base = super::check::base_dir(&args.file);
    let mut dir = RunDir::create(&args.runs, &exp.name)?;
    dir.log(format!("experiment {} from {}", exp.name, args.file.display()));
    dir.log(format!("cache {}", cache.root().display()));
    dir.write("experiment.toml", &std::fs::read(&args.file).map_err(|e| HostError::io(&args.file, e))?)?;
    dir.write_json("experiment.json", &exp)?;

    let used: Vec<&str> = {
        let mut names: Vec<&str> = exp
            .nodes
            .iter()
            .map(|n| n.encoder.plugin.as_str())
            .chain(exp.data.iter().filter_map(|d| match &d.origin {
                crate::experiment::Origin::Source { call }
                | crate::experiment::Origin::Render { call, .. } => Some(call.plugin.as_str()),
                crate::experiment::Origin::Files { .. } => None,
            }))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let plugins: Vec<serde_json::Value> = used
        .iter()
        .filter_map(|n| registry.get(n).ok())
        .map(|p| serde_json::json!({ "name": p.plugin.name(), "path": p.path, "sha256": p.sha256, "manifest": p.plugin.manifest() }))
        .collect();
    dir.write_json("plugins.json", &plugins)?;

    let mut extractor = Extractor::new(&exp, &registry, &cache, base, cli.context().threads);
    let mut edges = Vec::new();
    for edge in &exp.edges {
        let mut parent = extractor.node(&edge.parent)?;
        let mut child = extractor.node(&edge.child)?;
        let (parent_skipped, child_skipped) = (parent.skipped, child.skipped);
        if (parent_skipped > 0 || child_skipped > 0) && parent.rows == child.rows {
            // Only items embedded on both sides can be paired.
            let both: Vec<usize> =
                (0..parent.rows).filter(|&i| parent.is_valid(i) && child.is_valid(i)).collect();
            dir.log(format!(
                "edge {} → {}: {} of {} items skipped ({parent_skipped} by {}, {child_skipped} by {})",
                edge.parent,
                edge.child,
                parent.rows - both.len(),
                parent.rows,
                edge.parent,
                edge.child
            ));
            parent = parent.select(&both);
            child = child.select(&both);
        }
        dir.log(format!(
            "edge {} → {}: {} items, {} → {} dims",
            edge.parent, edge.child, parent.rows, parent.dim, child.dim
        ));
        let ops = if edge.operators.is_empty() {
            None
        } else {
            let mut pairs = Vec::new();
            for pair in &edge.operators {
                let p = extractor.operator(&edge.parent, &pair.parent)?;
                let c = extractor.operator(&edge.child, &pair.child)?;
                dir.log(format!(
                    "edge {} → {}: operator {}: defined on {} of {} items in {}, {} of {} in {}",
                    edge.parent,
                    edge.child,
                    pair.label(),
                    p.valid_rows().count(),
                    p.input.rows,
                    edge.parent,
                    c.valid_rows().count(),
                    c.input.rows,
                    edge.child
                ));
                pairs.push(EmbeddedPair { pair: pair.clone(), parent: p, child: c });
            }
            Some(EdgeOperators { pairs, items: edge.operator_items })
        };
        let mut result = run_edge(&exp, edge, &parent, &child, ops.as_ref(), &cache)?;
        result.skipped = [parent_skipped, child_skipped];
        edges.push(result);
    }
    let (hits, misses, corrupt, writes) = cache.stats.snapshot();
    dir.log(format!("cache: {hits} hits, {misses} misses, {corrupt} corrupt, {writes} writes"));
    let (started_at, _) = utc_stamps(started);
    let metrics = serde_json::json!({
        "experiment": exp.name,
        "seed": exp.seed,
        "started": started_at,
        "seconds": now_secs().saturating_sub(started),
        "cache": { "hits": hits, "misses": misses, "corrupt": corrupt, "writes": writes },
        "edges": edges,
    });
    dir.write_json("metrics.json", &metrics)?;
    let report = crate::report::markdown::render(&exp, &edges, &plugins, &started_at);
    for (name, svg) in &report.plots {
        dir.write(&format!("plots/{name}"), svg.as_bytes())?;
    }
    dir.write("report.md", report.markdown.as_bytes())?;
    dir.log("done".to_owned());
    dir.finish_log()?;
    print!("{}", report.summary);
    println!("run folder: {}", dir.path().display());
    Ok(Outcome::Ok)
}
