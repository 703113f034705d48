//! A run as a library operation: from a checked experiment to a run folder with `report.md` and
//! `metrics.json` — extraction (cached), every edge's sweep, the tree analyses, the report. The
//! `run` and `swap` commands call [`run`]; `metrics.json` is [`RunMetrics`], written and read as
//! one type.

use crate::cache::{Cache, Key, KeyBuilder};
use crate::edge_operators::{EdgeOperators, EmbeddedPair, OrderReference, SwatchColours};
use crate::experiment::{Edge, Experiment, OrderSpec, Origin};
use crate::extract::{ChunkUse, Embeddings, Extractor};
use crate::registry::Registry;
use crate::report::markdown::FailedEdge;
use crate::run_dir::{now_secs, utc_stamps, RunDir};
use crate::runner::{run_edge, EdgeResult};
use crate::stitch::{FailedStitch, StitchResult};
use crate::tree::TreeResult;
use crate::worker::Isolation;
use crate::HostError;
use commute_sdk::Value;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Everything a run needs, resolved once by the command that starts it.
pub struct RunPlan<'a> {
    /// The checked experiment.
    pub exp: &'a Experiment,
    /// Its text, as written (kept in the run folder).
    pub text: &'a [u8],
    /// Its file, as messages name it.
    pub file: &'a Path,
    /// The folder its relative paths (`files = "…"`) resolve against.
    pub base: &'a Path,
    /// The loaded plugins.
    pub registry: &'a Registry,
    /// The cache of embeddings and evaluated points.
    pub cache: &'a Cache,
    /// Where run folders go: `<runs>/<name>/<UTC time>/`.
    pub runs: &'a Path,
    /// Which calls run in isolated workers.
    pub isolation: Isolation,
    /// The thread budget.
    pub threads: usize,
}

/// What a finished run wrote and found.
pub struct RunOutput {
    /// The run folder.
    pub dir: PathBuf,
    /// `metrics.json`.
    pub metrics: RunMetrics,
    /// The terminal summary (per edge, the first metric against anchors; take-off; the tree).
    pub summary: String,
}

/// `metrics.json`: everything a run measured. Written by [`run`], read by `commute swap`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunMetrics {
    /// The experiment's name.
    pub experiment: String,
    /// Its seed.
    pub seed: u64,
    /// When the run started (UTC, RFC 3339).
    pub started: String,
    /// How long it took, in seconds.
    pub seconds: u64,
    /// What this run read back from the cache and what it computed.
    pub cache: CacheReport,
    /// Every evaluated edge.
    pub edges: Vec<EdgeResult>,
    /// Edges that could not be evaluated, with why.
    pub failed_edges: Vec<FailedEdge>,
    /// Nodes whose functions ran in isolated workers.
    pub isolated_nodes: Vec<String>,
    /// Every node's device (its encoder's), in node order.
    pub devices: serde_json::Map<String, serde_json::Value>,
    /// The tree analyses, when the experiment asked for them.
    pub tree: Option<TreeResult>,
    /// Every evaluated stitch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stitches: Vec<StitchResult>,
    /// Stitches that could not be evaluated, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_stitches: Vec<FailedStitch>,
}

/// The cache's part in a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CacheReport {
    /// Entries read.
    pub hits: usize,
    /// Entries looked up and not found.
    pub misses: usize,
    /// Entries found corrupt (and recomputed).
    pub corrupt: usize,
    /// Entries written.
    pub writes: usize,
    /// Per edge, the sweep's points read back and computed.
    pub edges: Vec<EdgeWork>,
    /// Per embedded set (a node, an operator's items and images, an edit), the chunks.
    pub embedded: BTreeMap<String, ChunkUse>,
}

/// How much of one edge's sweep came from the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EdgeWork {
    /// `parent → child`.
    pub edge: String,
    /// Points read from the cache.
    pub points_cached: usize,
    /// Points fitted and evaluated by this run.
    pub points_computed: usize,
}

impl RunMetrics {
    /// Reads a run's `metrics.json` (NaN scores, written as `null`, read back as NaN).
    pub fn read(path: &Path) -> Result<RunMetrics, HostError> {
        let bytes = std::fs::read(path).map_err(|e| HostError::io(path, e))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| HostError::format(path, format!("not JSON: {e}")))?;
        crate::lenient_json::from_value(value)
            .map_err(|e| HostError::format(path, format!("not a run's metrics: {e}")))
    }

    /// The evaluated edge `parent → child`.
    pub fn edge(&self, parent: &str, child: &str) -> Option<&EdgeResult> {
        self.edges.iter().find(|e| e.parent == parent && e.child == child)
    }
}

/// Runs a checked experiment: a new run folder, extraction, every edge, the tree analyses, the
/// report and `metrics.json` (written last: a folder with it is a complete run). A node whose
/// plugin fails fails its edges, which are listed in `failed_edges`; the others go on. Errors are
/// what stops a run (the cache or the run folder cannot be written).
pub fn run(plan: RunPlan<'_>) -> Result<RunOutput, HostError> {
    let RunPlan { exp, text, file, base, registry, cache, runs, isolation, threads } = plan;
    let started = now_secs();
    let mut dir = RunDir::create(runs, &exp.name)?;
    dir.log(format!("experiment {} from {}", exp.name, file.display()));
    dir.log(format!("cache {}", cache.root().display()));
    dir.write("experiment.toml", text)?;
    let mut extractor = Extractor::new(exp, registry, cache, base, threads).with_isolation(isolation);
    // Where the experiment came from, so that a later `commute swap` resolves its relative paths,
    // and the content (sha256) of every vectors file a node reads.
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut source = serde_json::json!({ "file": absolute(file), "base": absolute(base) });
    for node in &exp.nodes {
        if let crate::experiment::Encoder::File(vectors) = &node.encoder {
            let (fingerprint, _) = extractor.file_fingerprint(node, vectors)?;
            dir.log(format!(
                "node {}: vectors from {} (sha256 {})",
                node.name,
                fingerprint.path.display(),
                fingerprint.sha256
            ));
            source["embeddings"][&node.name] = serde_json::json!(fingerprint);
        }
    }
    dir.write_json("source.json", &source)?;
    dir.write_json("experiment.json", exp)?;

    let used = used_plugins(exp);
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

    let mut isolated = Vec::new();
    for node in &exp.nodes {
        let call = node.encoder.call();
        if let Some(options) = call.and_then(|call| extractor.isolation().for_call(Some(node), call)) {
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
    let mut edges = Vec::new();
    let mut failed = Vec::new();
    let mut nodes = NodeMemo::default();
    for edge in &exp.edges {
        nodes.now = format!("edge {} → {}", edge.parent, edge.child);
        match evaluate_edge(&mut extractor, exp, edge, &mut dir, cache, &mut nodes) {
            Ok(result) => edges.push(result),
            // A plugin that failed, crashed or hung fails the edges of its node; the run goes on.
            Err(e) if e.fails_only_its_node() => {
                dir.log(format!("edge {} → {}: failed: {e}", edge.parent, edge.child));
                failed.push(FailedEdge {
                    parent: edge.parent.clone(),
                    child: edge.child.clone(),
                    error: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let (mut stitches, mut failed_stitches) = (Vec::new(), Vec::new());
    for stitch in &exp.stitches {
        nodes.now = format!("stitch {}", stitch.name);
        match crate::stitch::run_stitch(exp, stitch, &mut extractor, cache) {
            Ok(result) => {
                dir.log(format!(
                    "stitch {}: {} points from the cache, {} computed",
                    stitch.name, result.points_cached, result.points_computed
                ));
                stitches.push(result);
            }
            // A plugin that failed, or states that cannot be paired, fail the stitch alone.
            Err(e) if e.fails_only_its_node() || matches!(e, HostError::Usage(_)) => {
                dir.log(format!("stitch {}: failed: {e}", stitch.name));
                failed_stitches.push(FailedStitch { name: stitch.name.clone(), error: e.to_string() });
            }
            Err(e) => return Err(e),
        }
    }
    let tree = if crate::tree::has_analyses(exp) {
        dir.log(format!("tree analyses: maps fitted on {} anchors per repeat", crate::tree::anchors(exp)));
        nodes.now = "the tree analyses".to_owned();
        let mut spaces = RunSpaces { extractor: &mut extractor, nodes: &mut nodes };
        let tree = crate::tree::analyse(exp, &mut spaces)?;
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
    let mut report = crate::report::markdown::render(
        exp,
        &edges,
        &failed,
        &isolated,
        &used_plugins,
        &started_at,
        tree.as_ref(),
    );
    crate::report::stitch::render(&stitches, &failed_stitches, &mut report);
    let metrics = RunMetrics {
        experiment: exp.name.clone(),
        seed: exp.seed,
        started: started_at,
        seconds: now_secs().saturating_sub(started),
        cache: CacheReport {
            hits,
            misses,
            corrupt,
            writes,
            edges: edges
                .iter()
                .map(|e| EdgeWork {
                    edge: format!("{} → {}", e.parent, e.child),
                    points_cached: e.points_cached,
                    points_computed: e.points_computed,
                })
                .collect(),
            embedded: extractor.chunk_use().clone(),
        },
        edges,
        failed_edges: failed,
        isolated_nodes: isolated,
        devices: exp.nodes.iter().map(|n| (n.name.clone(), n.device.to_string().into())).collect(),
        tree,
        stitches,
        failed_stitches,
    };
    for (name, svg) in &report.plots {
        dir.write(&format!("plots/{name}"), svg.as_bytes())?;
    }
    dir.write("report.md", report.markdown.as_bytes())?;
    // Last: a run folder with metrics.json is a complete run.
    dir.write_json("metrics.json", &metrics)?;
    dir.log("done".to_owned());
    dir.finish_log()?;
    Ok(RunOutput { dir: dir.path().to_path_buf(), metrics, summary: report.summary })
}

/// The plugins the experiment calls (its encoders, sources and renders), sorted.
fn used_plugins(exp: &Experiment) -> Vec<&str> {
    let mut names: Vec<&str> = exp
        .nodes
        .iter()
        .filter_map(|n| n.encoder.call().map(|c| c.plugin.as_str()))
        .chain(exp.data.iter().filter_map(|d| match &d.origin {
            Origin::Source { call } | Origin::Render { call, .. } => Some(call.plugin.as_str()),
            Origin::Files { .. } => None,
        }))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The run's extractor as the tree analyses see it: nodes that failed stay failed.
struct RunSpaces<'r, 'a> {
    extractor: &'r mut Extractor<'a>,
    nodes: &'r mut NodeMemo,
}

impl crate::tree::Spaces for RunSpaces<'_, '_> {
    fn node(&mut self, name: &str) -> Result<Embeddings, HostError> {
        node_embeddings(self.extractor, self.nodes, name)
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
    match extractor.node(name).and_then(|e| e.require_pooled().map(|()| e)) {
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

/// A frame-level edge: both nodes' frames, each operator pair's frames in both spaces, and the
/// decoder with its true scores (see [`crate::frames`]).
fn evaluate_frame_edge(
    extractor: &mut Extractor<'_>,
    exp: &Experiment,
    edge: &Edge,
    spec: &crate::experiment::FrameSpec,
    dir: &mut RunDir,
    cache: &Cache,
) -> Result<EdgeResult, HostError> {
    let (parent, child) = (extractor.node(&edge.parent)?, extractor.node(&edge.child)?);
    let mut operators = Vec::new();
    for pair in &edge.operators {
        let p = extractor.operator(&edge.parent, &pair.parent)?;
        let c = extractor.operator(&edge.child, &pair.child)?;
        operators.push(crate::frames::FrameOperator { label: pair.label(), parent: p, child: c });
    }
    let decoder = match (&spec.decode, &spec.truth) {
        (Some(call), Some(truth)) => {
            let render = extractor.open_call(call)?;
            let parent_render = spec.parent_decode.as_ref().map(|c| extractor.open_call(c)).transpose()?;
            let (_, values) = extractor.values(truth)?;
            let truth = values
                .into_iter()
                .map(|v| match v {
                    Value::Score(s) => Ok(s),
                    other => Err(HostError::Usage(format!(
                        "edge {} → {}: `truth` data set `{truth}` holds {} values, not scores",
                        edge.parent,
                        edge.child,
                        other.kind()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(crate::frames::Decoder { render, truth, parent: parent_render })
        }
        _ => None,
    };
    let inputs =
        crate::frames::FrameInputs { parent: &parent, child: &child, operators: &operators, decoder };
    let result = crate::frames::run_frame_edge(exp, edge, spec, inputs, cache)?;
    if let Some(example) = &result.example {
        // The pictured test item, to listen to: the truth and each decoding, as MIDI files.
        let slug = crate::report::markdown::slug;
        let folder = format!("decoded/{}-{}", slug(&edge.parent), slug(&edge.child));
        dir.write(&format!("{folder}/truth.mid"), &commute_sdk::midi::write_smf(&example.truth))?;
        let largest = result.points.iter().filter(|p| p.decoded.is_some()).map(|p| p.anchors).max();
        for p in result.points.iter().filter(|p| p.repeat == 0 && Some(p.anchors) == largest) {
            if let Some(score) = &p.decoded {
                let name = format!("{folder}/{}-{}.mid", slug(&p.method), p.anchors);
                dir.write(&name, &commute_sdk::midi::write_smf(score))?;
            }
        }
    }
    let frames = |e: &Embeddings| e.frames.as_ref().map_or(0, |f| f.total());
    dir.log(format!(
        "edge {} → {} (frames): {} items, {} and {} frames, {} → {} dims",
        edge.parent,
        edge.child,
        result.items,
        frames(&parent),
        frames(&child),
        parent.dim,
        child.dim
    ));
    Ok(result)
}

/// Each embedded row of `e` by the root item it derives from: how a node on the same items as an
/// edge is matched to the edge's rows.
fn rows_by_root(e: &Embeddings) -> HashMap<&Key, usize> {
    (0..e.rows).filter(|&i| e.is_valid(i)).map(|i| (&e.roots[i], i)).collect()
}

/// The `order` metric's ground truth: coordinate `spec.coordinate` of node `spec.by` for each of
/// the parent's rows (matched by root item; NaN where the reference has no embedding).
fn order_reference(
    extractor: &mut Extractor<'_>,
    nodes: &mut NodeMemo,
    edge: &Edge,
    spec: &OrderSpec,
    parent: &Embeddings,
) -> Result<OrderReference, HostError> {
    let reference = node_embeddings(extractor, nodes, &spec.by)?;
    if spec.coordinate >= reference.dim {
        return Err(HostError::Usage(format!(
            "edge {} → {}: `order` reads coordinate {} of node `{}`, which has {} dimensions",
            edge.parent, edge.child, spec.coordinate, spec.by, reference.dim
        )));
    }
    let row_of = rows_by_root(&reference);
    let values = parent
        .roots
        .iter()
        .map(|root| {
            row_of
                .get(root)
                .map_or(f64::NAN, |&i| f64::from(reference.data[i * reference.dim + spec.coordinate]))
        })
        .collect();
    let key = KeyBuilder::new("order-reference")
        .text(&reference.key)
        .text(&serde_json::to_string(spec).unwrap_or_default())
        .finish();
    Ok(OrderReference { operator: spec.operator.clone(), lowers: spec.lowers, values, key })
}

/// The swatch picture's colours: the first three values of node `node` for each of the parent's
/// rows (matched by root item), and of their images under the pictured operator (the `order`
/// operator, else the edge's first) in the swatch node's data set.
fn swatch_colours(
    extractor: &mut Extractor<'_>,
    nodes: &mut NodeMemo,
    edge: &Edge,
    node: &str,
    parent: &Embeddings,
) -> Result<SwatchColours, HostError> {
    let colours = node_embeddings(extractor, nodes, node)?;
    if colours.dim < 3 {
        return Err(HostError::Usage(format!(
            "edge {} → {}: `swatches` node `{node}` has {} dimensions; a swatch is sRGB, 3",
            edge.parent, edge.child, colours.dim
        )));
    }
    let pictured = edge.pictured_operator().ok_or_else(|| {
        HostError::Usage(format!("edge {} → {}: `swatches` needs operators", edge.parent, edge.child))
    })?;
    let images = extractor.operator(node, &pictured.parent)?;
    let rgb = |e: &Embeddings, i: usize| [0, 1, 2].map(|c| e.data[i * e.dim + c]);
    let nan = [f32::NAN; 3];
    let item_row = rows_by_root(&colours);
    let image_row: HashMap<&Key, usize> = images.valid_rows().map(|i| (&images.input.roots[i], i)).collect();
    Ok(SwatchColours {
        operator: pictured.label(),
        items: parent.roots.iter().map(|r| item_row.get(r).map_or(nan, |&i| rgb(&colours, i))).collect(),
        edited: parent
            .roots
            .iter()
            .map(|r| image_row.get(r).map_or(nan, |&i| rgb(&images.output, i)))
            .collect(),
    })
}

/// Extracts an edge's nodes (and operators) and evaluates every method on it.
fn evaluate_edge(
    extractor: &mut Extractor<'_>,
    exp: &Experiment,
    edge: &Edge,
    dir: &mut RunDir,
    cache: &Cache,
    nodes: &mut NodeMemo,
) -> Result<EdgeResult, HostError> {
    if let Some(spec) = &edge.frames {
        return evaluate_frame_edge(extractor, exp, edge, spec, dir, cache);
    }
    let mut parent = node_embeddings(extractor, nodes, &edge.parent)?;
    let mut child = node_embeddings(extractor, nodes, &edge.child)?;
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
        let order = match &edge.order {
            Some(spec) => Some(order_reference(extractor, nodes, edge, spec, &parent)?),
            None => None,
        };
        let swatches = match &edge.swatches {
            Some(node) => Some(swatch_colours(extractor, nodes, edge, node, &parent)?),
            None => None,
        };
        Some(EdgeOperators { pairs, items: edge.operator_items, order, swatches })
    };
    let mut result = run_edge(exp, edge, &parent, &child, ops.as_ref(), cache)?;
    result.skipped = [parent_skipped, child_skipped];
    Ok(result)
}
