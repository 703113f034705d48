//! `commute run FILE`: checks the experiment, extracts (cached) embeddings, runs the sweep on
//! every edge and writes a run folder with `metrics.json` and `report.md`.

use super::{Cli, Outcome};
use crate::cache::Cache;
use crate::edge_operators::{EdgeOperators, EmbeddedPair};
use crate::experiment::{Edge, Experiment};
use crate::extract::{Embeddings, Extractor};
use crate::report::markdown::FailedEdge;
use crate::run_dir::{now_secs, utc_stamps, RunDir};
use crate::runner::{run_edge, EdgeResult};
use crate::HostError;
use std::collections::HashMap;
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
    /// Run every function of this plugin in isolated worker processes (repeatable).
    #[arg(long, value_name = "PLUGIN")]
    isolate_plugin: Vec<String>,
    #[command(flatten)]
    isolation: super::worker::IsolationArgs,
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
    // A read-only or full cache fails here, before a run folder exists.
    cache.ensure_writable()?;
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
    // The run manifest: every plugin library loaded, by path and sha256, and whether this
    // experiment used it (a library is in the process whether used or not).
    let plugins: Vec<serde_json::Value> = registry
        .plugins()
        .iter()
        .map(|p| {
            let manifest = p.plugin.manifest();
            serde_json::json!({
                "name": p.plugin.name(), "version": manifest.version, "used": used.contains(&p.plugin.name()),
                "path": p.path, "sha256": p.sha256, "insecure": p.insecure, "manifest": manifest,
            })
        })
        .collect();
    dir.write_json("plugins.json", &plugins)?;
    let used_plugins: Vec<serde_json::Value> =
        plugins.iter().filter(|p| p["used"] == true).cloned().collect();

    let isolation = args.isolation.isolation(args.isolate_plugin.clone());
    let mut extractor =
        Extractor::new(&exp, &registry, &cache, base, cli.context().threads).with_isolation(isolation);
    let mut isolated = Vec::new();
    for node in &exp.nodes {
        if let Some(options) = extractor.isolation().for_call(Some(node), &node.encoder) {
            dir.log(format!(
                "node {}: isolated (each function in its own worker process; time limit {} per call{})",
                node.name,
                crate::worker::client::format_duration(options.timeout),
                options.memory_mib.map(|m| format!(", memory cap {m} MiB")).unwrap_or_default()
            ));
            isolated.push(node.name.clone());
        }
    }
    let mut edges = Vec::new();
    let mut failed = Vec::new();
    let mut failed_nodes = HashMap::new();
    for edge in &exp.edges {
        match evaluate_edge(&mut extractor, &exp, edge, &mut dir, &cache, &mut failed_nodes) {
            Ok(result) => edges.push(result),
            // A plugin that failed, crashed or hung fails the edges of its node; the run goes on.
            Err(e) if e.fails_only_its_node() => {
                eprintln!("error: edge {} → {} failed: {e}", edge.parent, edge.child);
                dir.log(format!("edge {} → {}: failed: {e}", edge.parent, edge.child));
                failed.push(FailedEdge {
                    parent: edge.parent.clone(),
                    child: edge.child.clone(),
                    error: e.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        }
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
        "failed-edges": failed,
        "isolated-nodes": isolated,
    });
    let report =
        crate::report::markdown::render(&exp, &edges, &failed, &isolated, &used_plugins, &started_at);
    for (name, svg) in &report.plots {
        dir.write(&format!("plots/{name}"), svg.as_bytes())?;
    }
    dir.write("report.md", report.markdown.as_bytes())?;
    // Last: a run folder with metrics.json is a complete run.
    dir.write_json("metrics.json", &metrics)?;
    dir.log("done".to_owned());
    dir.finish_log()?;
    print!("{}", report.summary);
    println!("run folder: {}", dir.path().display());
    if failed.is_empty() {
        Ok(Outcome::Ok)
    } else {
        eprintln!(
            "error: {} of {} edges failed (see above and report.md); the others were evaluated",
            failed.len(),
            exp.edges.len()
        );
        Ok(Outcome::CheckFailed)
    }
}

/// The embeddings of node `name`, unless it failed before in this run (then the same error,
/// without trying again: a plugin that crashed on these items would crash again).
fn node_embeddings(
    extractor: &mut Extractor<'_>,
    failed_nodes: &mut HashMap<String, String>,
    name: &str,
) -> Result<Embeddings, HostError> {
    if let Some(error) = failed_nodes.get(name) {
        return Err(HostError::Usage(format!("node `{name}` failed earlier in this run: {error}")));
    }
    extractor.node(name).inspect_err(|e| {
        if e.fails_only_its_node() {
            failed_nodes.insert(name.to_owned(), e.to_string());
        }
    })
}

/// Extracts an edge's nodes (and operators) and evaluates every method on it.
fn evaluate_edge(
    extractor: &mut Extractor<'_>,
    exp: &Experiment,
    edge: &Edge,
    dir: &mut RunDir,
    cache: &Cache,
    failed_nodes: &mut HashMap<String, String>,
) -> Result<EdgeResult, HostError> {
    let mut parent = node_embeddings(extractor, failed_nodes, &edge.parent)?;
    let mut child = node_embeddings(extractor, failed_nodes, &edge.child)?;
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
    let mut result = run_edge(exp, edge, &parent, &child, ops.as_ref(), cache)?;
    result.skipped = [parent_skipped, child_skipped];
    Ok(result)
}
