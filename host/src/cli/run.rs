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
    pub(crate) file: PathBuf,
    /// Where run folders go: `<runs>/<experiment name>/<UTC time>/`.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub(crate) runs: PathBuf,
    /// The cache folder [default: $COMMUTE_HOME, else ~/.cache/commute].
    #[arg(long, value_name = "DIR", env = "COMMUTE_HOME")]
    pub(crate) cache: Option<PathBuf>,
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
    let base = super::check::base_dir(&args.file).to_path_buf();
    execute(cli, args, &args.file, &bytes, &base).map(|(outcome, _)| outcome)
}

/// Runs the experiment whose text is `bytes` (shown as `shown` in messages; relative paths in it
/// resolve against `base`). Returns the outcome and the run folder, when one was written.
pub(crate) fn execute(
    cli: &Cli,
    args: &Args,
    shown: &std::path::Path,
    bytes: &[u8],
    base: &std::path::Path,
) -> anyhow::Result<(Outcome, Option<PathBuf>)> {
    let registry = cli.registry();
    let exp = match crate::experiment::load(bytes, &registry, base) {
        Ok(exp) => exp,
        Err(diags) => {
            let report =
                crate::experiment::diagnostic::render(shown, &String::from_utf8_lossy(bytes), &diags);
            eprint!("{report}");
            return Err(HostError::Usage(format!("{} has errors; nothing was run", shown.display())).into());
        }
    };
    let started = now_secs();
    let cache = Cache::new(args.cache.clone().unwrap_or_else(crate::cache::default_root));
    // A read-only or full cache fails here, before a run folder exists.
    cache.ensure_writable()?;
    if let Some(shard) = args.shard {
        let isolation = args.isolation.isolation(args.isolate_plugin.clone());
        let extractor =
            Extractor::new(&exp, &registry, &cache, base, cli.context().threads).with_isolation(isolation);
        let done = crate::shard::run_shard(extractor, &exp, &cache, shard)?;
        print!("{done}");
        return Ok((if done.failed.is_empty() { Outcome::Ok } else { Outcome::CheckFailed }, None));
    }
    let mut dir = RunDir::create(&args.runs, &exp.name)?;
    dir.log(format!("experiment {} from {}", exp.name, shown.display()));
    dir.log(format!("cache {}", cache.root().display()));
    dir.write("experiment.toml", bytes)?;
    // Where the experiment came from, so that a later `commute swap` resolves its relative paths.
    let absolute = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    dir.write_json("source.json", &serde_json::json!({ "file": absolute(shown), "base": absolute(base) }))?;
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
        if !node.device.is_cpu() {
            dir.log(format!("node {}: encoder on device {}", node.name, node.device));
        }
    }
    // Every node's device (its encoder's; sources, renders and operators run on the CPU).
    let devices: serde_json::Map<String, serde_json::Value> =
        exp.nodes.iter().map(|n| (n.name.clone(), n.device.to_string().into())).collect();
    let mut edges = Vec::new();
    let mut failed = Vec::new();
    let mut failed_nodes = NodeMemo::default();
    for edge in &exp.edges {
        failed_nodes.now = format!("edge {} → {}", edge.parent, edge.child);
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
    let tree = if crate::tree::has_analyses(&exp) {
        dir.log(format!("tree analyses: maps fitted on {} anchors per repeat", crate::tree::anchors(&exp)));
        failed_nodes.now = "the tree analyses".to_owned();
        let mut spaces = RunSpaces { extractor: &mut extractor, failed_nodes: &mut failed_nodes };
        let tree = crate::tree::analyse(&exp, &mut spaces)?;
        for f in &tree.failed {
            dir.log(format!("tree analysis failed: {f}"));
        }
        Some(tree)
    } else {
        None
    };
    let (hits, misses, corrupt, writes) = cache.stats.snapshot();
    dir.log(format!("cache: {hits} hits, {misses} misses, {corrupt} corrupt, {writes} writes"));
    let (started_at, _) = utc_stamps(started);
    let metrics = serde_json::json!({
        "experiment": exp.name,
        "seed": exp.seed,
        "started": started_at,
        "seconds": now_secs().saturating_sub(started),
        "cache": {
            "hits": hits, "misses": misses, "corrupt": corrupt, "writes": writes,
            // What this run read back and what it computed: per edge, the sweep's points; per
            // embedded set (a node, an operator's items and images, an edit), the chunks.
            "edges": edges.iter().map(|e| serde_json::json!({
                "edge": format!("{} → {}", e.parent, e.child),
                "points-cached": e.points_cached,
                "points-computed": e.points_computed,
            })).collect::<Vec<_>>(),
            "embedded": extractor.chunk_use(),
        },
        "edges": edges,
        "failed-edges": failed,
        "isolated-nodes": isolated,
        "devices": devices,
        "tree": tree,
    });
    let report = crate::report::markdown::render(
        &exp,
        &edges,
        &failed,
        &isolated,
        &used_plugins,
        &started_at,
        tree.as_ref(),
    );
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
    let path = Some(dir.path().to_path_buf());
    if failed.is_empty() {
        Ok((Outcome::Ok, path))
    } else {
        eprintln!(
            "error: {} of {} edges failed (see above and report.md); the others were evaluated",
            failed.len(),
            exp.edges.len()
        );
        Ok((Outcome::CheckFailed, path))
    }
}

/// The run's extractor as the tree analyses see it: nodes that failed stay failed.
struct RunSpaces<'r, 'a> {
    extractor: &'r mut Extractor<'a>,
    failed_nodes: &'r mut NodeMemo,
}

impl crate::tree::Spaces for RunSpaces<'_, '_> {
    fn node(&mut self, name: &str) -> Result<Embeddings, HostError> {
        node_embeddings(self.extractor, self.failed_nodes, name)
    }

    fn edited(&mut self, name: &str, at: &str, op: &str) -> Result<Embeddings, HostError> {
        self.extractor.edited(name, at, op)
    }
}

/// What the run knows of its nodes so far: the embeddings extracted (each node is read from the
/// cache or computed once, however many edges and analyses use it) and the nodes that failed.
#[derive(Default)]
struct NodeMemo {
    embedded: HashMap<String, Embeddings>,
    /// Failed nodes, each with what met the failure first.
    failed: HashMap<String, String>,
    /// What is asking now: `edge audio → notes`, `the tree analyses`.
    now: String,
}

/// The embeddings of node `name`, unless it failed before in this run (then
/// [`HostError::NodeFailed`], pointing at the first error, without trying again: a plugin that
/// crashed on these items would crash again).
fn node_embeddings(
    extractor: &mut Extractor<'_>,
    memo: &mut NodeMemo,
    name: &str,
) -> Result<Embeddings, HostError> {
    if let Some(first) = memo.failed.get(name) {
        return Err(HostError::NodeFailed { node: name.to_owned(), first: first.clone() });
    }
    if let Some(e) = memo.embedded.get(name) {
        return Ok(e.clone());
    }
    match extractor.node(name) {
        Ok(e) => {
            memo.embedded.insert(name.to_owned(), e.clone());
            Ok(e)
        }
        Err(e) => {
            if e.fails_only_its_node() {
                memo.failed.insert(name.to_owned(), memo.now.clone());
            }
            Err(e)
        }
    }
}

/// Extracts an edge's nodes (and operators) and evaluates every method on it.
fn evaluate_edge(
    extractor: &mut Extractor<'_>,
    exp: &Experiment,
    edge: &Edge,
    dir: &mut RunDir,
    cache: &Cache,
    failed_nodes: &mut NodeMemo,
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
