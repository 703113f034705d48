//! A resolved experiment: what one TOML file declares, validated and with defaults filled in.
//! This is what a run records (`experiment.json` in the run folder).

use super::spans::{
    CallSpans, DataSpans, EdgeSpans, EmbeddingsSpans, ExperimentSpans, NodeSpans, OperatorSpans, Span,
    StitchSpans, TreeSpans,
};
use crate::align::refine::RefineSpec;
use crate::align::self_learning::SelfLearningSpec;
use crate::align::unsupervised::StartSpec;
use crate::align::{MethodSpec, Preprocess};
use serde::Serialize;
use std::path::PathBuf;

/// One experiment: data sets, nodes (embedding spaces) and edges (alignments) forming a tree.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Experiment {
    /// Name, used for the run folder.
    pub name: String,
    /// Seed of every random choice (splits, anchors, nulls).
    pub seed: u64,
    /// Anchor counts swept: paired examples given to each edge.
    pub anchors: Vec<usize>,
    /// Resampled anchor sets (and test sets) per anchor count.
    pub repeats: usize,
    /// Held-out test items per repeat; `None` = a fifth of the items, at most 1000.
    pub test: Option<usize>,
    /// How test items and anchors are drawn from the items.
    pub split: Split,
    /// Data sets, in file order.
    pub data: Vec<DataSet>,
    /// Nodes, in file order.
    pub nodes: Vec<Node>,
    /// Edges, in file order.
    pub edges: Vec<Edge>,
    /// Stitches (`[[stitches]]`), in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stitches: Vec<Stitch>,
    /// The tree analyses' settings (`[tree]`): width, controlled edits, depth.
    pub tree: TreeSpec,
    /// Where `[experiment]`'s keys sit in the file, for errors.
    #[serde(skip)]
    pub spans: ExperimentSpans,
}

/// How each repeat splits the items into test items and an anchor pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// Test items drawn at random per repeat; anchors from the rest (the default).
    #[default]
    Random,
    /// Items in data-set order (e.g. by word frequency), as MUSE's dictionaries: the anchor pool
    /// is the first `max(anchors)` items (anchor sets drawn from it per repeat), the test items
    /// the `test` items after them — the same in every repeat.
    Ordered,
}

/// A named data set.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DataSet {
    /// Its name (`[data.NAME]`).
    pub name: String,
    /// Where its items come from.
    pub origin: Origin,
    /// The modality's own functions on these items (`[data.NAME.operators]`), in file order.
    /// Functional alignment fits their action in every space that encodes this data set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<OperatorDecl>,
    /// Where its keys sit in the file, for errors.
    #[serde(skip)]
    pub spans: DataSpans,
}

/// An operator of a data set: a plugin operator (`transpose`, `gain`, `relation`…) applied to the
/// items, item by item. An item the operator fails on (a word outside a relation) is left out.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct OperatorDecl {
    /// Its name in this data set (`[data.X.operators.NAME]`), used by edges.
    pub name: String,
    /// The operator function.
    pub call: Call,
    /// The data set whose items the operator is applied to (same kind of value); default this
    /// data set. Lets a relation be fitted on all of its own words, not only the experiment's.
    pub items: Option<String>,
    /// Where its keys sit in the file, for errors.
    #[serde(skip)]
    pub spans: OperatorSpans,
}

/// How the two sides of an edge share the items their operators are fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorItems {
    /// Each item (by its root value) goes to one side only, by a fixed hash: the parent fits its
    /// operators on one half, the child on the other, so operator fits never pair items across
    /// spaces. The default.
    #[default]
    Disjoint,
    /// Both sides fit on every operator item: when both spaces see the same items, the operator
    /// fits then pair those items across spaces implicitly (extra supervision). Reported as such.
    Shared,
}

/// A correspondence between an operator of the parent's data and one of the child's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorPair {
    /// The parent data set's operator.
    pub parent: String,
    /// The child data set's operator.
    pub child: String,
}

impl OperatorPair {
    /// `plural` when both sides use the same name, `pitch-up ↔ transpose-up` otherwise.
    pub fn label(&self) -> String {
        if self.parent == self.child {
            self.parent.clone()
        } else {
            format!("{} ↔ {}", self.parent, self.child)
        }
    }
}

/// The operator every data set has without declaring it: each item is its own image. Paired with
/// an operator of the other side, it says the map is invariant to that operator (speaking faster
/// does not change what was said).
pub const IDENTITY: &str = "identity";

/// An operator as a data set sees it ([`Experiment::resolve_operator`]).
#[derive(Debug, Clone, Copy)]
pub enum OperatorRef<'a> {
    /// Declared on the data set itself.
    Own(&'a OperatorDecl),
    /// [`IDENTITY`]: every item is its own image.
    Identity,
    /// Declared on data set `at`, which the data set is rendered from: applied there, then
    /// rendered down through the chain of renders.
    Lifted {
        /// The data set that declares it.
        at: &'a str,
        /// Its declaration there.
        decl: &'a OperatorDecl,
    },
}

/// Where a data set's items come from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Origin {
    /// A plugin source function.
    Source {
        /// The source.
        call: Call,
    },
    /// Every `.wav`, `.mid`/`.midi` or `.txt` file of a folder (any case), in name order.
    Files {
        /// The folder, relative to the experiment file.
        path: PathBuf,
    },
    /// Another data set passed through a render function, item by item.
    Render {
        /// The data set rendered.
        from: String,
        /// The render function.
        call: Call,
    },
}

/// A plugin function with parameters.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Call {
    /// Plugin name.
    pub plugin: String,
    /// Function name.
    pub function: String,
    /// Parameters, passed to the plugin as TOML.
    pub params: toml::Table,
    /// Where its keys sit in the file, for errors (all `0..0` for a call made on the command line).
    #[serde(skip)]
    pub spans: CallSpans,
}

impl Call {
    /// A call not written in a file (its spans all `0..0`), e.g. one made on the command line.
    pub fn new(plugin: impl Into<String>, function: impl Into<String>, params: toml::Table) -> Call {
        Call { plugin: plugin.into(), function: function.into(), params, spans: CallSpans::default() }
    }

    /// The parameters as TOML text.
    pub fn params_toml(&self) -> String {
        toml::to_string(&self.params).unwrap_or_default()
    }
}

/// A node: an encoder applied to a data set, defining an embedding space.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Node {
    /// Its name (`[nodes.NAME]`).
    pub name: String,
    /// The data set encoded.
    pub data: String,
    /// What embeds the items: a plugin's encoder, or vectors read from a file.
    pub encoder: Encoder,
    /// Whether items the encoder (or a render before it) fails on are skipped and counted
    /// (`on-item-error = "skip"`, e.g. out-of-vocabulary words) instead of stopping the run.
    #[serde(default)]
    pub skip_failed_items: bool,
    /// Whether its encoder, and the renders and operators that make its items, run in isolated
    /// worker processes (`isolate = true`), where a crash or a hang fails this node only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolate: bool,
    /// Time limit of each call in its workers, in seconds (`call-timeout`); `None` = the run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_timeout_s: Option<f64>,
    /// Address-space cap of each of its workers, in MiB (`worker-memory`); `None` = the run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_memory_mib: Option<u64>,
    /// The device its encoder runs on (`device = "cuda:0"`); the renders and operators that make
    /// its items run on the CPU. Recorded only when it is not the CPU.
    #[serde(default, skip_serializing_if = "Device::is_cpu")]
    pub device: Device,
    /// The layer sweep it was expanded from (`layers = …` on node `NAME` gives `NAME@k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_of: Option<LayerOf>,
    /// A sweep declared on it (`layers = "all"` or a list), before [`super::layers::expand`]
    /// replaces it by one node per layer.
    #[serde(skip)]
    pub layers: Option<(Layers, Span)>,
    /// Where its keys sit in the file, for errors.
    #[serde(skip)]
    pub spans: NodeSpans,
}

/// A node's layer sweep as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layers {
    /// Every layer the encoder's `layer` parameter allows.
    All,
    /// These layers, in this order.
    List(Vec<usize>),
}

/// Where a node of a layer sweep comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerOf {
    /// The node declared with `layers`.
    pub node: String,
    /// The layer this node reads (its encoder's `layer` parameter).
    pub layer: usize,
}

/// An edge of a layer grid: one of the edges a declared edge between swept nodes stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GridCell {
    /// The parent as declared.
    pub parent: String,
    /// The child as declared.
    pub child: String,
    /// The parent's layer (`None` when the parent is not swept).
    pub parent_layer: Option<usize>,
    /// The child's layer (`None` when the child is not swept).
    pub child_layer: Option<usize>,
}

/// What embeds a node's items.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Encoder {
    /// A plugin's encoder function (`plugin`, `encoder`, `params`).
    Plugin(Call),
    /// Vectors computed elsewhere (`embeddings = "vectors.npy"`), matched to the items by key.
    File(EmbeddingsFile),
    /// A stitched model (`stitch = "NAME"`): a `[[stitches]]` entry's model A, its map fitted
    /// once, model B resumed.
    Stitched(StitchedEncoder),
}

/// A node computed by a stitch (`stitch`, `method`, `anchors`): each item rendered to model A's
/// token states as the stitch's `source` is, mapped by a map fitted on the token pairs of
/// `anchors` items of the node's data set (drawn with the experiment's seed), and resumed in
/// model B. Those items are left out of the node (skipped, as an encoder's failures are), so that
/// no edge fits or tests on them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StitchedEncoder {
    /// The `[[stitches]]` entry, by name.
    pub stitch: String,
    /// The map's method; `None`: the stitch's first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<MethodSpec>,
    /// Items whose token pairs the map is fitted on.
    pub anchors: usize,
    /// Where `stitch` was written.
    #[serde(skip)]
    pub span: Span,
}

impl Encoder {
    /// The plugin call, when a plugin encodes the node.
    pub fn call(&self) -> Option<&Call> {
        match self {
            Encoder::Plugin(call) => Some(call),
            Encoder::File(_) | Encoder::Stitched(_) => None,
        }
    }

    /// `plugin/function`, or the file's path as written.
    pub fn label(&self) -> String {
        match self {
            Encoder::Plugin(call) => format!("{}/{}", call.plugin, call.function),
            Encoder::File(file) => file.path.display().to_string(),
            Encoder::Stitched(s) => format!("stitch `{}` ({} anchors)", s.stitch, s.anchors),
        }
    }
}

/// A node's vectors read from a file (`embeddings = …` with `keys`, `key-column`, `vectors` and
/// `match`): `.npy` (float32 or float64, items × dimension), `.safetensors` (one 2-D float tensor)
/// or `.parquet` (a list column of floats, or one float column per dimension).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EmbeddingsFile {
    /// The vectors, relative to the experiment file.
    #[serde(rename = "embeddings")]
    pub path: PathBuf,
    /// A text file with one key per line, the key of each row in order (`.npy`, `.safetensors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<PathBuf>,
    /// The column holding each row's key (`.parquet`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_column: Option<String>,
    /// The tensor (`.safetensors`) or list column (`.parquet`) holding the vectors; default the
    /// only one (for Parquet without a list column: every float column but the key column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<String>,
    /// How an item finds its row.
    #[serde(rename = "match")]
    pub match_by: MatchBy,
    /// Where its keys sit in the file, for errors.
    #[serde(skip)]
    pub spans: EmbeddingsSpans,
}

/// How an item of a node's data set finds its row in an [`EmbeddingsFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchBy {
    /// The item's text equals the row's key (the default with keys). The images of text
    /// operators (`cat` → `cats`) are looked up the same way.
    Text,
    /// The name of the file the item was read from (`files = "…"`), with or without its
    /// extension, equals the row's key.
    FileName,
    /// Row i is item i of the data set (the default without keys).
    Index,
}

/// Where a node's encoder runs: `"cpu"` (the default) or `"cuda:N"`, the N-th CUDA device as the
/// process sees it (after `CUDA_VISIBLE_DEVICES`, which Slurm sets for a task's GPUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The CPU.
    #[default]
    Cpu,
    /// CUDA device N.
    Cuda(u32),
}

impl Device {
    /// Reads `"cpu"`, `"cuda"` (= `cuda:0`) or `"cuda:N"` (N a decimal index); anything else is
    /// `None`.
    pub fn parse(text: &str) -> Option<Device> {
        match text {
            "cpu" => Some(Device::Cpu),
            "cuda" => Some(Device::Cuda(0)),
            _ => {
                let index = text.strip_prefix("cuda:")?;
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                index.parse().ok().map(Device::Cuda)
            }
        }
    }

    /// Whether this is the CPU.
    pub fn is_cpu(&self) -> bool {
        *self == Device::Cpu
    }
}

impl std::fmt::Display for Device {
    /// `cpu` or `cuda:N`: the name plugins receive in their context's `device`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl Serialize for Device {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One of an edge's methods, and whether it is also evaluated inside the edge's refinement and
/// self-learning (`refine = false` / `self-learning = false` in its table leave it out of one: a
/// protocol can wrap only the methods whose wrapped numbers it needs, since each self-learning fit
/// costs as much as dozens of plain ones).
#[derive(Debug, Clone, Serialize)]
pub struct EdgeMethod {
    /// The method.
    #[serde(flatten)]
    pub spec: MethodSpec,
    /// Whether it is also evaluated followed by the edge's `refine` (when the edge has one).
    #[serde(skip_serializing_if = "is_true")]
    pub refine: bool,
    /// Whether it is also evaluated followed by the edge's `self-learning` (when the edge has one).
    #[serde(rename = "self-learning", skip_serializing_if = "is_true")]
    pub self_learning: bool,
}

impl EdgeMethod {
    /// A method in every variant the edge declares.
    pub fn new(spec: MethodSpec) -> EdgeMethod {
        EdgeMethod { spec, refine: true, self_learning: true }
    }
}

fn is_true(b: &bool) -> bool {
    *b
}

/// An edge: an alignment from the parent's space to the child's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Edge {
    /// Parent node (the map's source space).
    pub parent: String,
    /// Child node (the map's target space).
    pub child: String,
    /// Methods compared, each with the wrappers it takes part in.
    pub methods: Vec<EdgeMethod>,
    /// Preprocessing applied before fitting.
    pub preprocess: Preprocess,
    /// When given, each method is also evaluated followed by this refinement.
    pub refine: Option<RefineSpec>,
    /// When given, each method is also evaluated followed by VecMap-style robust self-learning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_learning: Option<SelfLearningSpec>,
    /// Zero-anchor starts: at `anchors = 0`, every method is fitted on each start's pseudo-pairs
    /// (the `operators` start: functional methods from the operators alone); the first start a
    /// method can be fitted from gives its curve the anchors = 0 point, the others are labelled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub starts: Vec<StartSpec>,
    /// Metrics reported.
    pub metrics: Vec<Metric>,
    /// Whether a permutation null (the anchors' pairing deranged) is reported beside each score.
    pub null: bool,
    /// Corresponding operators (parent data's, child data's), for functional alignment and the
    /// operator metrics.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<OperatorPair>,
    /// How the sides share operator items.
    pub operator_items: OperatorItems,
    /// What the `order` metric orders pairs by (`order = { … }`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderSpec>,
    /// A node on the same items whose first three values are sRGB in 0–1 (`swatches = "rgb"`):
    /// the report then paints a few test items, what each method retrieves for them, and the
    /// control edit's result, as colour swatches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swatches: Option<String>,
    /// A shortcut (`shortcut = true`): a direct edge from a node to one of its descendants,
    /// evaluated like any edge and compared with the maps composed along the tree's path between
    /// them (depth). It does not count as the child's parent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shortcut: bool,
    /// The layer-grid cell it evaluates, when it is one of the edges a declared edge between
    /// swept nodes stands for. Grid edges are evaluated like any edge but are not tree edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridCell>,
    /// The anchor count a layer grid's heatmaps show (`grid-anchors`); `None` = the largest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_anchors: Option<usize>,
    /// What is paired: items (one vector each, the default) or frames (`level = "frame"`: both
    /// nodes keep their frames and the map is fitted on frame pairs; see [`FrameSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<FrameSpec>,
    /// Where its keys sit in the file, for errors.
    #[serde(skip)]
    pub spans: EdgeSpans,
}

/// How a frame-level edge (`level = "frame"`) pairs, fits and scores frames (`frames = { … }`).
///
/// Anchors are counted in items: an anchor item gives all its frame pairs. Frame pairs come from
/// provenance: both nodes embed the same items or one's items are rendered from the other's (audio
/// synthesized from scores), so frame `t` of one and the frames of the other over the same
/// instant correspond; the faster side's frames within each frame of the slower are averaged
/// onto its clock.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FrameSpec {
    /// The most frame pairs a map is fitted on: more are thinned evenly (all anchor items keep
    /// frames in proportion).
    pub fit_frames: usize,
    /// The most test frames in the frame-retrieval gallery (evenly thinned).
    pub test_frames: usize,
    /// The most test items in sequence retrieval (DTW between every pair of them).
    pub sequences: usize,
    /// The target modality's decoder: a render taking the child's frames (a sequence) to a score,
    /// whose notes are scored against `truth`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode: Option<Call>,
    /// The data set of true scores the decoded notes are scored against (the items the child's
    /// data set is, or is rendered from).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
    /// A decoder of the parent's own frames (e.g. Basic Pitch's note creation on its frames: what
    /// the parent's modality transcribes without any map), reported as the reference `decoded
    /// from the parent's frames`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_decode: Option<Call>,
    /// Onset tolerance of a matched note, in seconds.
    pub onset_tolerance: f64,
    /// Where `truth` was written, for errors.
    #[serde(skip)]
    pub truth_span: Span,
}

fn default_fit_frames() -> usize {
    20_000
}
fn default_test_frames() -> usize {
    2_000
}
fn default_sequences() -> usize {
    100
}
fn default_onset_tolerance() -> f64 {
    0.05
}

impl Default for FrameSpec {
    fn default() -> Self {
        FrameSpec {
            fit_frames: default_fit_frames(),
            test_frames: default_test_frames(),
            sequences: default_sequences(),
            decode: None,
            truth: None,
            parent_decode: None,
            onset_tolerance: default_onset_tolerance(),
            truth_span: Span::default(),
        }
    }
}

impl FrameSpec {
    /// The metrics a frame-level edge reports: frame and sequence retrieval, and with a decoder
    /// the decoded notes' F1, precision and recall.
    pub fn metrics(&self) -> Vec<String> {
        let mut m = vec!["frame-p@1".to_owned(), "sequence-p@1".to_owned()];
        if self.decode.is_some() {
            m.extend(["note-f1", "note-precision", "note-recall"].map(str::to_owned));
        }
        m
    }
}

impl Edge {
    /// The operator pair the swatch picture paints: the `order` operator, else the first.
    pub fn pictured_operator(&self) -> Option<&OperatorPair> {
        self.order
            .as_ref()
            .and_then(|o| self.operators.iter().find(|p| p.label() == o.operator))
            .or(self.operators.first())
    }
}

/// A stitch (`[[stitches]]`): model A run up to a layer, its token states mapped into model B's
/// states at a layer, and B run on from there. `source` and `target` are data sets of token
/// states (`T × d` tensors, one row per token) rendered from the same items, row for row: A's
/// states and B's own. Per repeat and anchor count a map is fitted on the token rows of the anchor
/// items (every token a pair), the test items' source states are mapped and fed to `resume`, and
/// the outputs are compared with `reference` (B alone) on the test items.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Stitch {
    /// How the report names it (default `source → target`).
    pub name: String,
    /// A's token states: the data set the map reads.
    pub source: String,
    /// B's token states at the layer it resumes from: the map's targets.
    pub target: String,
    /// B from that layer on: an encoder taking token states.
    pub resume: Call,
    /// B alone on the same items: the node the stitched outputs are compared with.
    pub reference: String,
    /// How the token map is fitted: methods that map into the target space from pairs alone.
    pub methods: Vec<MethodSpec>,
    /// Whether each side's token rows are centred on the anchors before fitting, the target's
    /// mean added back after mapping (an affine stitch for every method). Default true.
    pub center: bool,
    /// A node on the same items whose vectors a linear readout of B's outputs predicts (e.g.
    /// valence): the stitch's downstream score is that readout's R² on the stitched outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downstream: Option<String>,
    /// The operators a functional map reads (`operators` and `operator-nodes`), when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operators: Option<StitchOperators>,
    /// Where its keys sit in the file, for errors.
    #[serde(skip)]
    pub spans: StitchSpans,
}

/// A stitch's operators: corresponding operators of two nodes that embed some data set (words,
/// say) in A's and B's spaces at the stitch's layers (`operator-nodes = { source, target }`,
/// each mean-pooled states at that layer), so that a functional map fitted on token pairs also
/// commutes with them. A linear map sends the mean of token rows to the mean of their images, so
/// a pooled state lives in the same space as the token rows the map is fitted on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StitchOperators {
    /// The node in A's space at the source layer.
    pub source: String,
    /// The node in B's space at the target layer.
    pub target: String,
    /// Corresponding operators (source node's data, target node's data), as an edge's.
    pub pairs: Vec<OperatorPair>,
}

impl Stitch {
    /// Whether a method can stitch: it maps source rows into the target's own space, so that its
    /// output can be fed to B, from pairs alone or (`functional`) pairs and the stitch's
    /// operators.
    pub fn can_stitch(method: &MethodSpec) -> bool {
        matches!(
            method,
            MethodSpec::LeastSquares { .. }
                | MethodSpec::Ridge { .. }
                | MethodSpec::Procrustes { .. }
                | MethodSpec::Affine { .. }
                | MethodSpec::Functional { .. }
        )
    }
}

/// The two-shades question's ground truth (`order = { operator = "darker", by = "lab",
/// coordinate = 0, lowers = true }`): pairs of test items the child cannot tell apart are ordered
/// by coordinate `coordinate` of node `by` (on the same items: a reference space such as CIELAB),
/// and the mapped pair is asked to agree along the child operator `operator` (one of the edge's
/// operator labels), which `lowers` (or raises) that coordinate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OrderSpec {
    /// The edge operator (its label) whose child displacement gives the direction.
    pub operator: String,
    /// The reference node.
    pub by: String,
    /// Which coordinate of the reference node orders the items.
    pub coordinate: usize,
    /// Whether the operator lowers the coordinate (`darker` lowers L*); default: raises it.
    #[serde(default)]
    pub lowers: bool,
}

/// Settings of the tree analyses (`[tree]`), run after the edges on every experiment whose tree
/// has a parent with two or more children (width), a path of two or more edges or a shortcut
/// (depth), or declared edits. Their maps are affine ridge regressions fitted on the anchors of
/// each repeat (the same split as the edges), so that they compose and invert as plain matrices.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TreeSpec {
    /// Whether the file has a `[tree]` table: the tree analyses (width, depth, edits) run only
    /// when it asks for them.
    #[serde(skip)]
    pub declared: bool,
    /// Anchors the analysis maps are fitted on; `None` = the largest of `[experiment] anchors`.
    pub anchors: Option<usize>,
    /// Ridge penalty of the analysis maps, as a multiple of the mean variance of the inputs'
    /// columns times the number of anchors; `None` = chosen per map by 5-fold cross-validation.
    pub lambda: Option<f64>,
    /// Controlled edits: an operator applied in a child's data, carried to its parent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<EditSpec>,
    /// Where its keys sit in the file, for errors.
    #[serde(skip)]
    pub spans: TreeSpans,
}

/// A controlled edit (`edits = [{ child = "notes", operator = "up" }]`): operator `operator` of
/// the child's data set, made in the child's space and carried to the parent along the part of
/// the parent the child explains. The ground truth is the parent's encoder on the edited items
/// rendered again (so the child's data set must be the parent's or one it is rendered from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EditSpec {
    /// The child node the edit is made in.
    pub child: String,
    /// The operator of the child's data set.
    pub operator: String,
    /// Where the edit sits in the file, for errors.
    #[serde(skip)]
    pub span: Span,
}

/// A metric an edge reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Metric {
    /// Precision at 1, nearest neighbour (cosine).
    #[serde(rename = "p@1")]
    PAt1,
    /// Precision at 5, nearest neighbour.
    #[serde(rename = "p@5")]
    PAt5,
    /// Precision at 10, nearest neighbour.
    #[serde(rename = "p@10")]
    PAt10,
    /// Mean reciprocal rank, nearest neighbour.
    #[serde(rename = "mrr")]
    Mrr,
    /// Precision at 1 under CSLS (k = 10).
    #[serde(rename = "csls-p@1")]
    CslsPAt1,
    /// Precision at 5 under CSLS.
    #[serde(rename = "csls-p@5")]
    CslsPAt5,
    /// Precision at 10 under CSLS.
    #[serde(rename = "csls-p@10")]
    CslsPAt10,
    /// Mean reciprocal rank under CSLS.
    #[serde(rename = "csls-mrr")]
    CslsMrr,
    /// Precision at 1, nearest neighbour, with the whole vocabulary as the gallery: every item of
    /// the child's space (test items and anchor pool), as in the MUSE protocol.
    #[serde(rename = "vocab-p@1")]
    VocabPAt1,
    /// Precision at 1 under CSLS (k = 10) with the whole vocabulary as the gallery; each gallery
    /// item's hubness radius is measured against the mapped test queries.
    #[serde(rename = "vocab-csls-p@1")]
    VocabCslsPAt1,
    /// Linear CKA between the mapped test items and their counterparts.
    #[serde(rename = "cka")]
    Cka,
    /// Unbiased linear CKA.
    #[serde(rename = "cka-unbiased")]
    CkaUnbiased,
    /// Mutual k-nearest-neighbour overlap (k = 10).
    #[serde(rename = "mutual-knn")]
    MutualKnn,
    /// Operator transfer: apply each parent operator to the test items, map, and retrieve the
    /// child operator's image of the same item among the test items' images (P@1, mean over
    /// operator pairs). Needs `operators`.
    #[serde(rename = "transfer-p@1")]
    TransferPAt1,
    /// Commutation error on test items: how far `map(f_A(x)) − map(x)` is from the child's own
    /// displacement `f_B(y) − y` (both in the compared space: through the child's side of the
    /// map for methods that map both sides, such as `cca`), relative to the latter (squared
    /// norms, mean over operator pairs); 0 when the square commutes, 1 when the map predicts no
    /// change. Needs `operators`.
    #[serde(rename = "commutation")]
    Commutation,
    /// Control through the map: map each test item, add the child operator's displacement of the
    /// same item (`f_B(y) − y`, mapped: the child's edit, e.g. "red" → "darker red"), and
    /// retrieve among the mapped test items *and* their parent-operator images; a hit is the
    /// item's own parent-operator image (the darker patch of the same colour). P@1, mean over
    /// operator pairs. Needs `operators`; opt-in.
    #[serde(rename = "control-p@1")]
    ControlPAt1,
    /// The two-shades question: over pairs of test items whose child rows are identical (the
    /// child cannot tell them apart: two shades that share a name), the share whose mapped
    /// difference points along the child operator's mean mapped displacement the way a reference
    /// coordinate orders them (ties count half). The child's own rows score 0.5 by construction.
    /// Needs `operators` and `order`; opt-in.
    #[serde(rename = "order")]
    Order,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 17] = [
        Metric::PAt1,
        Metric::PAt5,
        Metric::PAt10,
        Metric::Mrr,
        Metric::CslsPAt1,
        Metric::CslsPAt5,
        Metric::CslsPAt10,
        Metric::CslsMrr,
        Metric::VocabPAt1,
        Metric::VocabCslsPAt1,
        Metric::Cka,
        Metric::CkaUnbiased,
        Metric::MutualKnn,
        Metric::TransferPAt1,
        Metric::Commutation,
        Metric::ControlPAt1,
        Metric::Order,
    ];

    /// The metrics reported when an edge names none: all but the opt-in `control-p@1` and
    /// `order`, the operator metrics only when the edge has operators.
    pub fn defaults(with_operators: bool) -> Vec<Metric> {
        Metric::ALL
            .into_iter()
            .filter(|m| !matches!(m, Metric::ControlPAt1 | Metric::Order))
            .filter(|m| with_operators || !m.needs_operators())
            .collect()
    }

    /// Whether the metric is about operators (and needs an edge's `operators`).
    pub fn needs_operators(self) -> bool {
        matches!(self, Metric::TransferPAt1 | Metric::Commutation | Metric::ControlPAt1 | Metric::Order)
    }

    /// Whether the metric's gallery is the whole vocabulary (every item of the child's space).
    pub fn whole_vocabulary(self) -> bool {
        matches!(self, Metric::VocabPAt1 | Metric::VocabCslsPAt1)
    }

    /// Whether larger values are better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Commutation)
    }

    /// The name used in TOML and reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::PAt1 => "p@1",
            Metric::PAt5 => "p@5",
            Metric::PAt10 => "p@10",
            Metric::Mrr => "mrr",
            Metric::CslsPAt1 => "csls-p@1",
            Metric::CslsPAt5 => "csls-p@5",
            Metric::CslsPAt10 => "csls-p@10",
            Metric::CslsMrr => "csls-mrr",
            Metric::VocabPAt1 => "vocab-p@1",
            Metric::VocabCslsPAt1 => "vocab-csls-p@1",
            Metric::Cka => "cka",
            Metric::CkaUnbiased => "cka-unbiased",
            Metric::MutualKnn => "mutual-knn",
            Metric::TransferPAt1 => "transfer-p@1",
            Metric::Commutation => "commutation",
            Metric::ControlPAt1 => "control-p@1",
            Metric::Order => "order",
        }
    }

    /// The metric called `name`.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl Experiment {
    /// The data set called `name`.
    pub fn data_set(&self, name: &str) -> Option<&DataSet> {
        self.data.iter().find(|d| d.name == name)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The data set whose items a data set's items correspond to one by one (following `from`).
    pub fn root_of<'a>(&'a self, data: &'a str) -> &'a str {
        let mut current = data;
        for _ in 0..=self.data.len() {
            match self.data_set(current).map(|d| &d.origin) {
                Some(Origin::Render { from, .. }) => current = from,
                _ => return current,
            }
        }
        current
    }

    /// The operator `name` of data set `data`.
    pub fn operator(&self, data: &str, name: &str) -> Option<&OperatorDecl> {
        self.data_set(data)?.operators.iter().find(|o| o.name == name)
    }

    /// The operator an edge names on data set `data`: one of its own (`name`); `AT.OP`, the
    /// operator `OP` of a data set `AT` that `data` is rendered from, lifted: applied to `AT`'s
    /// items and rendered down to `data` (the sentences' `negate`, spoken again: `sentences.negate`
    /// on the speech); or [`IDENTITY`], which leaves every item as it is, where the data set
    /// declares no operator of that name.
    pub fn resolve_operator<'a>(&'a self, data: &str, name: &'a str) -> Option<OperatorRef<'a>> {
        if let Some(decl) = self.operator(data, name) {
            return Some(OperatorRef::Own(decl));
        }
        if name == IDENTITY {
            return self.data_set(data).map(|_| OperatorRef::Identity);
        }
        name.match_indices('.').find_map(|(dot, _)| {
            let (at, op) = (&name[..dot], &name[dot + 1..]);
            let chain = self.render_chain(data, at)?;
            let decl = self.operator(at, op)?;
            (chain.len() > 1).then_some(OperatorRef::Lifted { at, decl })
        })
    }

    /// The tree edges (shortcuts, grid cells and frame-level edges left out).
    pub fn tree_edges(&self) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(|e| !e.shortcut && e.grid.is_none() && e.frames.is_none())
    }

    /// The parent of node `name` in the tree, if it has one.
    pub fn parent_of(&self, name: &str) -> Option<&str> {
        self.tree_edges().find(|e| e.child == name).map(|e| e.parent.as_str())
    }

    /// The children of node `name` in the tree, in edge order.
    pub fn children_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.tree_edges().filter(move |e| e.parent == name).map(|e| e.child.as_str())
    }

    /// The tree path from `from` down to `to` (both included), if `to` descends from `from`.
    pub fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut path = vec![to.to_owned()];
        let mut current = to;
        for _ in 0..=self.edges.len() {
            if current == from {
                path.reverse();
                return Some(path);
            }
            current = self.parent_of(current)?;
            path.push(current.to_owned());
        }
        None
    }

    /// The data sets from `data` up its render chain to `ancestor` (both included), if `data` is
    /// `ancestor` or rendered from it.
    pub fn render_chain(&self, data: &str, ancestor: &str) -> Option<Vec<String>> {
        let mut chain = vec![data.to_owned()];
        let mut current = data;
        for _ in 0..=self.data.len() {
            if current == ancestor {
                return Some(chain);
            }
            match self.data_set(current).map(|d| &d.origin) {
                Some(Origin::Render { from, .. }) => {
                    current = from;
                    chain.push(current.to_owned());
                }
                _ => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_read_and_named_as_plugins_see_them() {
        assert_eq!(Device::parse("cpu"), Some(Device::Cpu));
        assert_eq!(Device::parse("cuda"), Some(Device::Cuda(0)));
        assert_eq!(Device::parse("cuda:0"), Some(Device::Cuda(0)));
        assert_eq!(Device::parse("cuda:12"), Some(Device::Cuda(12)));
        for bad in [
            "gpu",
            "CUDA:0",
            "cuda:",
            "cuda:-1",
            "cuda:+1",
            "cuda: 1",
            "cuda:1 ",
            "cuda0",
            "cuda:99999999999",
            "",
        ] {
            assert_eq!(Device::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Device::Cuda(3).to_string(), "cuda:3");
        assert_eq!(Device::default().to_string(), "cpu");
        assert_eq!(serde_json::to_string(&Device::Cuda(1)).ok().as_deref(), Some("\"cuda:1\""));
        // `cuda` is the SDK's name for device 0 as well.
        let ctx = commute_sdk::Context { device: Device::Cuda(2).to_string(), ..Default::default() };
        assert_eq!(ctx.cuda_device(), Some(2));
    }

    #[test]
    fn operators_resolve_on_their_data_set_or_lifted_from_one_it_is_rendered_from() {
        let exp = crate::experiment::parse::parse(
            r#"
[experiment]
name = "lift"
anchors = [5]
test = 5

[data.text]
source = { plugin = "p", function = "s" }
[data.text.operators]
negate = { plugin = "p", function = "n" }
"a.b" = { plugin = "p", function = "d" }

[data.speech]
from = "text"
render = { plugin = "p", function = "speak" }
[data.speech.operators]
louder = { plugin = "p", function = "gain" }

[data.heard]
from = "speech"
render = { plugin = "p", function = "hear" }

[data.other]
source = { plugin = "p", function = "s" }

[nodes.a]
data = "speech"
plugin = "p"
encoder = "e"

[nodes.b]
data = "text"
plugin = "p"
encoder = "e"

[[edges]]
parent = "a"
child = "b"
methods = [{ kind = "ridge" }]
"#,
        )
        .expect("parses");
        let name = |r: Option<OperatorRef<'_>>| match r {
            Some(OperatorRef::Own(d)) => format!("own {}", d.name),
            Some(OperatorRef::Lifted { at, decl }) => format!("lifted {at}.{}", decl.name),
            Some(OperatorRef::Identity) => "identity".to_owned(),
            None => "none".to_owned(),
        };
        assert_eq!(name(exp.resolve_operator("speech", "louder")), "own louder");
        assert_eq!(name(exp.resolve_operator("text", "negate")), "own negate");
        // An operator name with a dot is its own before it is a lift.
        assert_eq!(name(exp.resolve_operator("text", "a.b")), "own a.b");
        assert_eq!(name(exp.resolve_operator("speech", "text.negate")), "lifted text.negate");
        assert_eq!(name(exp.resolve_operator("speech", "text.a.b")), "lifted text.a.b");
        // Two renders down, and from the middle of the chain.
        assert_eq!(name(exp.resolve_operator("heard", "text.negate")), "lifted text.negate");
        assert_eq!(name(exp.resolve_operator("heard", "speech.louder")), "lifted speech.louder");
        // `identity` on every data set, unless one declares an operator of that name.
        assert_eq!(name(exp.resolve_operator("other", "identity")), "identity");
        assert_eq!(name(exp.resolve_operator("missing", "identity")), "none");
        // Not up the chain, not from itself, not from elsewhere.
        for (data, op) in [
            ("text", "speech.louder"),
            ("text", "text.negate"),
            ("other", "text.negate"),
            ("speech", "text.louder"),
            ("speech", "negate"),
        ] {
            assert_eq!(name(exp.resolve_operator(data, op)), "none", "{data}: {op}");
        }
    }
}
