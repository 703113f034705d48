//! `commute swap RUN_DIR --node N --encoder [PLUGIN/]FUNCTION`: replaces one node's encoder (plugin, function or
//! parameters) in a finished run (or, `--with FILE`, nodes wholesale, with the data sets and
//! stitches they need: a node swapped for a stitched model) and runs the experiment again into a new run folder linked to
//! the old one. Everything is content-addressed in the cache, so only what depends on the swapped
//! node is computed: its embeddings, the sweep points of the edges that touch it and the tree
//! analyses; every other embedding and evaluated point is read back. The new folder gets
//! `swap.json` and `swap.md`: before and after on every edge and path through the node, and the
//! stitching penalty — how much worse (or better) the tree does with the new component in place.

use super::{Cli, Outcome};
use crate::report::markdown::fmt;
use crate::run::{EdgeWork, RunMetrics};
use crate::runner::EdgeResult;
use crate::HostError;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `commute swap`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run folder (with `experiment.toml` and `metrics.json`).
    run_dir: PathBuf,
    /// The node to swap (repeatable with --with, which may swap several).
    #[arg(long, value_name = "NODE")]
    node: Vec<String>,
    /// The node's new encoder: `FUNCTION` of the same plugin, or `PLUGIN/FUNCTION` (its
    /// parameters are reset unless --param is given).
    #[arg(long, value_name = "[PLUGIN/]FUNCTION")]
    encoder: Option<String>,
    /// A parameter of the new encoder, `KEY=VALUE` with a TOML value (`segments=4`,
    /// `backend="candle"`; a bare word is a string). Repeatable; replaces the node's parameters.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// A TOML file of `[nodes.NAME]` tables, each replacing that node of the run wholesale, with
    /// the `[data.NAME]` tables (new ones) and `[[stitches]]` they need.
    #[arg(long = "with", value_name = "FILE")]
    with: Option<PathBuf>,
    /// Where the new run folder goes [default: the old run's runs folder].
    #[arg(long, value_name = "DIR")]
    runs: Option<PathBuf>,
    #[command(flatten)]
    cache: super::cache_dir::CacheDir,
    #[command(flatten)]
    isolation: super::worker::IsolationArgs,
}

/// One number before and after the swap.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Change {
    /// The method (edges) or what is measured (paths).
    pub what: String,
    /// Anchors (edges) or the tree analyses' anchors (paths).
    pub anchors: usize,
    /// The metric.
    pub metric: String,
    /// Mean before the swap.
    pub before: f64,
    /// Mean after.
    pub after: f64,
    /// The stitching penalty: how much worse after than before (before − after for a metric
    /// where higher is better), so that a positive penalty is a loss.
    pub penalty: f64,
}

/// Before and after on one edge or path that depends on a swapped node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Affected {
    /// `parent → child`, or the path's nodes joined by arrows.
    pub name: String,
    /// Sweep points computed by the new run (0 for paths: the analyses are not cached).
    pub points_computed: usize,
    /// The changes, per method and anchor count.
    pub changes: Vec<Change>,
}

/// What `swap.json` records.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SwapRecord {
    /// The run swapped from.
    pub from: PathBuf,
    /// The nodes swapped, with their declarations before and after.
    pub nodes: Vec<serde_json::Value>,
    /// Edges and paths that depend on a swapped node.
    pub affected: Vec<Affected>,
    /// Edges that do not, with the points the new run read back and computed.
    pub untouched: Vec<EdgeWork>,
}

fn usage(message: String) -> anyhow::Error {
    HostError::Usage(message).into()
}

/// A `KEY=VALUE` parameter: the value as TOML, or as a string when it is not TOML.
fn param(text: &str) -> anyhow::Result<(String, toml::Value)> {
    let (key, value) =
        text.split_once('=').ok_or_else(|| usage(format!("--param `{text}`: expected KEY=VALUE")))?;
    let parsed = format!("v = {value}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v"));
    Ok((key.trim().to_owned(), parsed.unwrap_or_else(|| toml::Value::String(value.to_owned()))))
}

/// The run's experiment with the swapped nodes replaced, and the swapped nodes' declarations.
fn swapped_experiment(args: &Args, original: &str) -> anyhow::Result<(String, Vec<serde_json::Value>)> {
    let shown = args.run_dir.join("experiment.toml");
    let mut doc: toml::Table =
        original.parse().map_err(|e| usage(format!("{}: not TOML: {e}", shown.display())))?;
    let mut replacements: Vec<(String, toml::Table)> = Vec::new();
    if let Some(file) = &args.with {
        let text = std::fs::read_to_string(file).map_err(|e| HostError::io(file, e))?;
        let mut with: toml::Table =
            text.parse().map_err(|e| usage(format!("{}: not TOML: {e}", file.display())))?;
        if let Some(other) = with.keys().find(|k| !["nodes", "data", "stitches"].contains(&k.as_str())) {
            return Err(usage(format!(
                "{}: a swap file holds [nodes.NAME] tables (and the [data.NAME] and [[stitches]] they need), found `{other}`",
                file.display()
            )));
        }
        // What the new nodes need that the run did not declare: data sets (new names only) and
        // stitches (appended), so that a node can be swapped for a stitched model.
        if let Some(toml::Value::Table(added)) = with.remove("data") {
            let data = doc.entry("data").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(data) = data.as_table_mut() else {
                return Err(usage(format!("{}: its `data` is not a table", shown.display())));
            };
            for (name, table) in added {
                if data.contains_key(&name) {
                    return Err(usage(format!(
                        "{}: the run already has data set `{name}`; a swap file adds data sets, it does not replace them",
                        file.display()
                    )));
                }
                data.insert(name, table);
            }
        }
        if let Some(toml::Value::Array(added)) = with.remove("stitches") {
            let stitches = doc.entry("stitches").or_insert_with(|| toml::Value::Array(Vec::new()));
            let Some(stitches) = stitches.as_array_mut() else {
                return Err(usage(format!("{}: its `stitches` is not an array of tables", shown.display())));
            };
            stitches.extend(added);
        }
        if let Some(toml::Value::Table(t)) = with.remove("nodes") {
            for (name, v) in t {
                let toml::Value::Table(table) = v else {
                    return Err(usage(format!("{}: `nodes.{name}` must be a table", file.display())));
                };
                replacements.push((name, table));
            }
        }
    }
    let nodes = doc
        .get_mut("nodes")
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| usage(format!("{} declares no [nodes]", shown.display())))?;
    let flags = args.encoder.is_some() || !args.params.is_empty();
    if flags {
        let [name] = args.node.as_slice() else {
            return Err(usage("--encoder and --param need exactly one --node".to_owned()));
        };
        let mut table = nodes
            .get(name)
            .and_then(toml::Value::as_table)
            .cloned()
            .ok_or_else(|| usage(format!("the run has no node `{name}`")))?;
        if let Some(e) = &args.encoder {
            let function = match e.split_once('/') {
                Some((plugin, function)) => {
                    table.insert("plugin".into(), toml::Value::String(plugin.to_owned()));
                    function
                }
                None => e.as_str(),
            };
            table.insert("encoder".into(), toml::Value::String(function.to_owned()));
            // The old parameters (or vectors file) belong to the old encoder.
            for key in ["params", "embeddings", "keys", "key-column", "vectors", "match"] {
                table.remove(key);
            }
        }
        if !args.params.is_empty() {
            let mut params = toml::Table::new();
            for p in &args.params {
                let (k, v) = param(p)?;
                params.insert(k, v);
            }
            table.insert("params".into(), toml::Value::Table(params));
        }
        replacements.push((name.clone(), table));
    }
    if replacements.is_empty() {
        return Err(usage(
            "nothing to swap: give --node with --encoder and/or --param, or --with FILE".to_owned(),
        ));
    }
    for name in &args.node {
        if !replacements.iter().any(|(n, _)| n == name) {
            return Err(usage(format!("--node {name}: no replacement given for it")));
        }
    }
    let mut record = Vec::new();
    for (name, table) in replacements {
        let before = nodes.get(&name).cloned().ok_or_else(|| {
            usage(format!("the run has no node `{name}` (a swap replaces an existing node)"))
        })?;
        record.push(serde_json::json!({ "node": name, "before": before, "after": table }));
        nodes.insert(name, toml::Value::Table(table));
    }
    let text =
        toml::to_string(&doc).map_err(|e| usage(format!("cannot write the swapped experiment: {e}")))?;
    Ok((text, record))
}

fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let bytes = std::fs::read(path).map_err(|e| HostError::io(path, e))?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| HostError::format(path, e.to_string()))?)
}

/// The mean of `metric` for `method` at `anchors` in an edge's summary.
fn summary_mean(edge: &EdgeResult, method: &str, anchors: usize, metric: &str) -> Option<f64> {
    edge.summary
        .iter()
        .find(|s| s.method == method && s.anchors == anchors && s.metric == metric)
        .map(|s| s.mean)
}

fn lower_is_better(metric: &str) -> bool {
    metric == "commutation"
}

/// Compares the old and the new metrics on what depends on the swapped nodes.
fn compare(old: &RunMetrics, new: &RunMetrics, swapped: &[String]) -> (Vec<Affected>, Vec<EdgeWork>) {
    let touches = |a: &str| swapped.iter().any(|s| s == a);
    let work = |name: &str| new.cache.edges.iter().find(|e| e.edge == name);
    let mut affected = Vec::new();
    let mut untouched = Vec::new();
    for edge in &new.edges {
        let (p, c) = (edge.parent.as_str(), edge.child.as_str());
        let name = format!("{p} → {c}");
        if !touches(p) && !touches(c) {
            untouched.push(work(&name).cloned().unwrap_or(EdgeWork {
                edge: name,
                points_cached: 0,
                points_computed: 0,
            }));
            continue;
        }
        let before = old.edge(p, c);
        let changes = edge
            .summary
            .iter()
            .map(|s| {
                let before =
                    before.and_then(|b| summary_mean(b, &s.method, s.anchors, &s.metric)).unwrap_or(f64::NAN);
                let penalty = if lower_is_better(&s.metric) { s.mean - before } else { before - s.mean };
                Change {
                    what: s.method.clone(),
                    anchors: s.anchors,
                    metric: s.metric.clone(),
                    before,
                    after: s.mean,
                    penalty,
                }
            })
            .collect();
        let points_computed = work(&name).map_or(0, |w| w.points_computed);
        affected.push(Affected { name, points_computed, changes });
    }
    let Some(tree) = &new.tree else { return (affected, untouched) };
    for path in &tree.depth {
        if !path.path.iter().any(|n| touches(n)) {
            continue;
        }
        let before = old.tree.as_ref().and_then(|t| t.depth.iter().find(|d| d.path == path.path));
        let mut changes = Vec::new();
        for (metric, after, was) in [
            ("composed R²", path.composed_r2.mean, before.map(|b| b.composed_r2.mean)),
            ("composed P@1", path.composed_p_at_1.mean, before.map(|b| b.composed_p_at_1.mean)),
        ] {
            let before = was.unwrap_or(f64::NAN);
            changes.push(Change {
                what: "path".into(),
                anchors: tree.anchors,
                metric: metric.into(),
                before,
                after,
                penalty: before - after,
            });
        }
        affected.push(Affected { name: path.path.join(" → "), points_computed: 0, changes });
    }
    (affected, untouched)
}

/// `swap.md`: the before/after tables (the largest anchor count of each edge, every metric).
fn markdown(record: &SwapRecord) -> String {
    let mut md = String::new();
    let names: Vec<String> =
        record.nodes.iter().map(|n| format!("`{}`", n["node"].as_str().unwrap_or("?"))).collect();
    let _ = writeln!(md, "# Swap of {} (from `{}`)\n", names.join(", "), record.from.display());
    for n in &record.nodes {
        let _ = writeln!(md, "- `{}`: {} → {}", n["node"].as_str().unwrap_or("?"), n["before"], n["after"]);
    }
    let _ = writeln!(
        md,
        "\nThe stitching penalty is before − after (after − before for commutation): positive when the tree \
         does worse with the new component in place. Edges at their largest anchor count; paths with the tree \
         analyses' maps.\n"
    );
    let _ = writeln!(md, "| edge or path | method | anchors | metric | before | after | penalty |\n|---|---|---:|---|---:|---:|---:|");
    for a in &record.affected {
        let largest = a.changes.iter().map(|c| c.anchors).max().unwrap_or(0);
        for c in a.changes.iter().filter(|c| c.anchors == largest) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                a.name,
                c.what,
                c.anchors,
                c.metric,
                fmt(c.before),
                fmt(c.after),
                fmt(c.penalty)
            );
        }
    }
    if !record.untouched.is_empty() {
        let _ = writeln!(md, "\nUntouched edges (read back from the cache):\n");
        for u in &record.untouched {
            let _ = writeln!(
                md,
                "- {}: {} points cached, {} computed",
                u.edge, u.points_cached, u.points_computed
            );
        }
    }
    md
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let original_path = args.run_dir.join("experiment.toml");
    let original = std::fs::read_to_string(&original_path).map_err(|e| HostError::io(&original_path, e))?;
    let old_metrics_path = args.run_dir.join("metrics.json");
    if !old_metrics_path.exists() {
        return Err(usage(format!(
            "{} has no metrics.json: the run did not finish; run it to the end first (`commute run` resumes it)",
            args.run_dir.display()
        )));
    }
    let old = RunMetrics::read(&old_metrics_path)?;
    let (text, nodes) = swapped_experiment(args, &original)?;
    let swapped: Vec<String> = nodes.iter().filter_map(|n| n["node"].as_str().map(str::to_owned)).collect();
    // Relative paths resolve as they did for the old run.
    let base = read_json(&args.run_dir.join("source.json"))
        .ok()
        .and_then(|s| s["base"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    // Runs go beside the old run's experiment folder by default: <runs>/<name>/<time>.
    let runs = args.runs.clone().unwrap_or_else(|| {
        args.run_dir.parent().and_then(Path::parent).map_or_else(|| PathBuf::from("runs"), Path::to_path_buf)
    });
    let shown = args.run_dir.join(format!("experiment.toml, with {} swapped", swapped.join(", ")));
    let registry = cli.registry();
    let exp = super::run::checked(text.as_bytes(), &shown, &registry, &base)?;
    let cache = super::run::open_cache(&args.cache)?;
    let output = crate::run::run(crate::run::RunPlan {
        exp: &exp,
        text: text.as_bytes(),
        file: &shown,
        base: &base,
        registry: &registry,
        cache: &cache,
        runs: &runs,
        isolation: args.isolation.isolation(Vec::new()),
        threads: cli.context().threads,
    })?;
    let outcome = super::run::report(&output, exp.edges.len());
    let (dir, new) = (&output.dir, &output.metrics);
    let (affected, untouched) = compare(&old, new, &swapped);
    let from = std::fs::canonicalize(&args.run_dir).unwrap_or_else(|_| args.run_dir.clone());
    let record = SwapRecord { from, nodes, affected, untouched };
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| HostError::io(&path, e))?;
        Ok(())
    };
    write("swap.json", &serde_json::to_vec_pretty(&record)?)?;
    let md = markdown(&record);
    write("swap.md", md.as_bytes())?;
    print!("{md}");
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_toml_values_or_strings() {
        assert_eq!(param("segments=4").unwrap(), ("segments".into(), toml::Value::Integer(4)));
        assert_eq!(param("backend=\"candle\"").unwrap().1, toml::Value::String("candle".into()));
        assert_eq!(param("pooling=mean").unwrap().1, toml::Value::String("mean".into()));
        assert!(param("no-equals").is_err());
    }

    #[test]
    fn penalties_are_losses_whichever_way_a_metric_points() {
        let edge = |parent: &str, m: &str, v: f64| {
            serde_json::json!({ "parent": parent, "child": "b", "items": 10, "skipped": [0, 0], "test": 2,
                "parent-dim": 3, "child-dim": 3, "metrics": [m], "points": [],
                "summary": [{ "method": "ridge", "anchors": 10, "metric": m, "mean": v, "std": 0.0,
                    "min": v, "max": v, "null-mean": null, "null-max": null, "repeats": 1 }] })
        };
        let metrics = |edges: serde_json::Value| -> RunMetrics {
            crate::lenient_json::from_value(serde_json::json!({
                "experiment": "e", "seed": 0, "started": "", "seconds": 0,
                "cache": { "hits": 0, "misses": 0, "corrupt": 0, "writes": 0, "edges": [], "embedded": {} },
                "edges": edges, "failed-edges": [], "isolated-nodes": [], "devices": {}, "tree": null,
            }))
            .unwrap()
        };
        let old = metrics(serde_json::json!([edge("a", "p@1", 0.5), edge("c", "commutation", 0.2)]));
        let new = metrics(serde_json::json!([edge("a", "p@1", 0.3), edge("c", "commutation", 0.4)]));
        let (affected, untouched) = compare(&old, &new, &["b".to_owned()]);
        assert!(untouched.is_empty());
        assert!((affected[0].changes[0].penalty - 0.2).abs() < 1e-12, "p@1 fell by 0.2");
        assert!((affected[1].changes[0].penalty - 0.2).abs() < 1e-12, "commutation rose by 0.2");
        let (affected, untouched) = compare(&old, &new, &["z".to_owned()]);
        assert!(affected.is_empty() && untouched.len() == 2);
    }
}
