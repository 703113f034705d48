//! Extraction: the embeddings of every node, computed through the plugins in batches, in
//! parallel across items, and cached by content.
//!
//! Items are identified by provenance rather than by their (possibly large) content: a root item
//! by the sha256 of its value, a rendered item by its parent's id and the render function's key.
//! Plugin functions are deterministic (the conformance suite checks it), so equal ids mean equal
//! values, and a rerun finds its embeddings without rendering anything again.
//!
//! A node's items are cut into chunks of [`CHUNK`]; each chunk is one cache entry keyed by the
//! encoder's key and the ids of its items. A function's key is its plugin's name, its own name
//! and declared version (`Function::VERSION`), its parameters, its declared assets' sha256 and the
//! node's device when it is not the CPU — not the library's bytes, so that rebuilding a plugin
//! keeps the results of the functions whose version did not change (a warning says when results
//! were computed by another build). Plugins built before functions had versions are keyed by their
//! package version and library hash instead. An interrupted extraction resumes at the first chunk
//! not yet written.
//!
//! A node may read its vectors from a file instead (`embeddings = …`, see
//! [`crate::embeddings_file`]): its items find their rows by text, file name or index, chunk by
//! chunk through the same cache, keyed by the files' sha256.
//!
//! A node's encoder is opened on the node's device (`device = "cuda:0"`); the sources, renders
//! and operators that make its items always run on the CPU (they are signal processing and
//! lookups, not models, and the same items serve nodes on different devices).
//!
//! Under a shard filter ([`Extractor::with_shard`], see [`crate::shard`]) an extractor computes
//! only its shard's missing chunks and assembles nothing.

use crate::cache::{Cache, Chunk, FrameIndex, Key, KeyBuilder};
use crate::embeddings_file::{Fingerprint, Table};
use crate::experiment::{
    Call, Device, EmbeddingsFile, Encoder, Experiment, MatchBy, Node, OperatorRef, Origin,
};
use crate::file_params::FileParams;
use crate::registry::Registry;
use crate::shard::{Shard, ShardFilter, Tally};
use crate::skips::{Skip, SkipReason};
use crate::stitched_node::StitchedPlan;
use crate::value_io::read_values;
use crate::worker::retry::{call_retrying_items, ItemFailure};
use crate::worker::{Isolation, Opened};
use crate::HostError;
use commute_sdk::asset::AssetStore;
use commute_sdk::{Context, Value};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Items per chunk (one plugin call and one cache entry).
pub const CHUNK: usize = 64;

/// A node's embeddings: `rows` items × `dim` floats, row-major, in the data set's item order.
#[derive(Debug, Clone)]
pub struct Embeddings {
    /// The node.
    pub node: String,
    /// Content key of the whole matrix (changes when any input or function changes).
    pub key: Key,
    /// Items.
    pub rows: usize,
    /// Dimension.
    pub dim: usize,
    /// Values; the rows of skipped items are NaN.
    pub data: Vec<f32>,
    /// Items the encoder (or a render before it) failed on, skipped as the node allows.
    pub skipped: usize,
    /// Per row, the id of the root item it derives from (the sha256 of the root value): the
    /// identity of an item across data sets and spaces.
    pub roots: Arc<Vec<Key>>,
    /// For a frame-level node (an encoder with `pooling = "none"`), where each item's frames
    /// are: `data` then holds frames, not items, `dim` floats each.
    pub frames: Option<FrameIndex>,
}

impl Embeddings {
    /// Whether item `i` has an embedding (it was not skipped).
    pub fn is_valid(&self, i: usize) -> bool {
        match &self.frames {
            Some(frames) => !frames.range(i).is_empty(),
            None => self.dim == 0 || !self.data[i * self.dim].is_nan(),
        }
    }

    /// An error unless this node has one vector per item: what every item-level edge, tree
    /// analysis and export reads.
    pub fn require_pooled(&self) -> Result<(), HostError> {
        match &self.frames {
            None => Ok(()),
            Some(f) => Err(HostError::Usage(format!(
                "node `{}` keeps its frames ({} frames/s: its encoder does not pool over time), so only \
                 an edge with `level = \"frame\"` can read it; pool it (e.g. `pooling = \"mean\"`) for \
                 item-level edges",
                self.node, f.rate
            ))),
        }
    }

    /// Item `i`'s floats: its vector, or its frames one after the other.
    pub fn item(&self, i: usize) -> &[f32] {
        let rows = self.frames.as_ref().map_or(i..i + 1, |f| f.range(i));
        &self.data[rows.start * self.dim..rows.end * self.dim]
    }

    /// The embeddings of the given items only, in that order (their key says which).
    pub fn select(&self, items: &[usize]) -> Embeddings {
        let mut key = KeyBuilder::new("selected");
        key.text(&self.key);
        let mut data = Vec::with_capacity(items.len() * self.dim);
        for &i in items {
            key.push(&(i as u64).to_le_bytes());
            data.extend_from_slice(self.item(i));
        }
        let skipped = items.iter().filter(|&&i| !self.is_valid(i)).count();
        let frames = self
            .frames
            .as_ref()
            .map(|f| FrameIndex::from_counts(f.rate, items.iter().map(|&i| f.range(i).len())));
        Embeddings {
            node: self.node.clone(),
            key: key.finish(),
            rows: items.len(),
            dim: self.dim,
            data,
            skipped,
            roots: Arc::new(items.iter().map(|&i| self.roots[i].clone()).collect()),
            frames,
        }
    }

    /// As a faer matrix (rows = items; for a frame-level node, rows = frames).
    pub fn matrix(&self) -> faer::Mat<f32> {
        let rows = self.data.len() / self.dim.max(1);
        faer::Mat::from_fn(rows, self.dim, |i, j| self.data[i * self.dim + j])
    }
}

/// An operator in one space: its items' embeddings and their images' embeddings, row by row.
#[derive(Debug, Clone)]
pub struct OperatorEmbeddings {
    /// The operator's name in its data set.
    pub operator: String,
    /// The items the operator is applied to.
    pub input: Embeddings,
    /// Their images under the operator (NaN rows where it is undefined).
    pub output: Embeddings,
}

impl OperatorEmbeddings {
    /// Rows where both the item and its image are embedded.
    pub fn valid_rows(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.input.rows).filter(|&i| self.input.is_valid(i) && self.output.is_valid(i))
    }
}

/// The items of a data set: its root's values and this set's item ids.
struct Items {
    root_values: Arc<Vec<Value>>,
    /// The root items' ids (shared by every data set derived from the same root).
    roots: Arc<Vec<Key>>,
    ids: Vec<Key>,
    /// Render calls from the root to this data set, in order.
    chain: Vec<Call>,
    /// Per root item, the name of the file it was read from (`files = "…"`), when that file
    /// holds this item alone.
    names: Option<Arc<Vec<Option<String>>>>,
}

/// How many of an embedded set's chunks came from the cache and how many were computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkUse {
    /// Chunks read from the cache.
    pub cached: usize,
    /// Chunks computed (then written to the cache).
    pub computed: usize,
}

/// Computes node embeddings for one experiment.
pub struct Extractor<'a> {
    exp: &'a Experiment,
    registry: &'a Registry,
    cache: &'a Cache,
    base_dir: PathBuf,
    threads: usize,
    items: HashMap<String, Arc<Items>>,
    /// Per embedded set (a node, an operator's items or images, an edit), the chunks found in
    /// the cache and the chunks computed, summed over this run.
    chunk_use: std::collections::BTreeMap<String, ChunkUse>,
    isolation: Isolation,
    shard: Option<ShardFilter>,
    /// Parameters naming files, resolved against the experiment's folder and keyed by content.
    file_params: FileParams,
    /// Per node whose vectors come from a file: its fingerprint and cache key, computed once.
    files: Mutex<HashMap<String, (Fingerprint, Key)>>,
    /// Per node whose vectors come from a file: the vectors, read once (when some are missing
    /// from the cache).
    tables: HashMap<String, Arc<Table>>,
    /// The (plugin, function) pairs already warned about being served from another build's
    /// results (once per run: one line, not one per embedded set).
    warned_builds: Mutex<std::collections::HashSet<(String, String)>>,
    /// Per stitched node, its plan (renders, resume, anchors, the map once fitted).
    stitched: HashMap<String, Arc<StitchedPlan>>,
}

/// Where an embedding set is cached: the key of each chunk of [`CHUNK`] items.
#[derive(Debug, Clone)]
pub struct SetChunks {
    /// The set's name, as extraction logs it: `node`, `node (items)` or `node ∘ operator`.
    pub name: String,
    /// The chunk keys, in item order.
    pub keys: Vec<Key>,
    /// Items in the set.
    pub items: usize,
}

impl SetChunks {
    /// The number of items in chunk `i`.
    pub fn chunk_items(&self, i: usize) -> usize {
        chunk_len(i, self.items)
    }
}

/// The cache keys of the chunks of `ids` embedded by the encoder with key `encoder_key`.
pub(crate) fn chunk_keys(encoder_key: &str, ids: &[Key]) -> Vec<Key> {
    ids.chunks(CHUNK)
        .map(|ids| {
            let mut k = KeyBuilder::new("chunk");
            k.text(encoder_key);
            for id in ids {
                k.text(id);
            }
            k.finish()
        })
        .collect()
}

/// The key of a plugin function: plugin name, version, library hash, function, parameters, and
/// the device when it is not the CPU (so that a key computed on the CPU is the one it always was).
pub(crate) fn function_key(
    plugin: &str,
    version: &str,
    library_sha256: &str,
    function: &str,
    params_toml: &str,
    device: Device,
) -> Key {
    let mut k = KeyBuilder::new("function");
    k.text(plugin).text(version).text(library_sha256).text(function).text(params_toml);
    if !device.is_cpu() {
        k.text("device").text(&device.to_string());
    }
    k.finish()
}

/// The key of a function that declares its version: plugin name, function, version, parameters,
/// the sha256 of each declared asset, and the device when it is not the CPU. Not the library's
/// bytes: a rebuilt plugin keeps the results of the functions whose version it did not bump.
pub(crate) fn versioned_function_key(
    plugin: &str,
    function: &str,
    version: u32,
    params_toml: &str,
    asset_sha256: &[&str],
    device: Device,
) -> Key {
    let mut k = KeyBuilder::new("function-version");
    k.text(plugin).text(function).text(&version.to_string()).text(params_toml);
    for sha in asset_sha256 {
        k.text(sha);
    }
    if !device.is_cpu() {
        k.text("device").text(&device.to_string());
    }
    k.finish()
}

/// Where the library hash of the build that computed a function's results is kept.
fn provenance_key(function_key: &Key) -> Key {
    let mut k = KeyBuilder::new("built-by");
    k.text(function_key);
    k.finish()
}

/// sha256 of a value's kind and content.
pub fn value_key(value: &Value) -> Key {
    let mut k = KeyBuilder::new("value");
    match value {
        Value::Text { text } => k.text("text").text(text),
        Value::Audio(a) => {
            k.text("audio").push(&a.sample_rate.to_le_bytes());
            k.push(&floats(&a.samples))
        }
        Value::Image(i) => {
            k.text("image").push(&i.width.to_le_bytes()).push(&i.height.to_le_bytes()).push(&[i.channels]);
            k.push(&i.pixels)
        }
        Value::Score(s) => k.text("score").text(&serde_json::to_string(s).unwrap_or_default()),
        Value::Tensor(t) => {
            let shape: Vec<u8> = t.shape.iter().flat_map(|d| (*d as u64).to_le_bytes()).collect();
            k.text("tensor").push(&shape).push(&floats(&t.data))
        }
        other => k.text(&serde_json::to_string(other).unwrap_or_default()),
    };
    k.finish()
}

fn floats(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl<'a> Extractor<'a> {
    /// An extractor; `base_dir` resolves relative paths of the experiment file.
    pub fn new(
        exp: &'a Experiment,
        registry: &'a Registry,
        cache: &'a Cache,
        base_dir: &Path,
        threads: usize,
    ) -> Self {
        Extractor {
            exp,
            registry,
            cache,
            base_dir: base_dir.to_path_buf(),
            threads: threads.max(1),
            items: HashMap::new(),
            chunk_use: std::collections::BTreeMap::new(),
            isolation: Isolation::default(),
            shard: None,
            file_params: FileParams::new(base_dir),
            files: Mutex::new(HashMap::new()),
            warned_builds: Mutex::default(),
            tables: HashMap::new(),
            stitched: HashMap::new(),
        }
    }

    /// Restricts extraction to one shard: [`Self::node`] and [`Self::operator`] then compute only
    /// the missing chunks that belong to `shard` (each at most once per extractor), leave the
    /// other shards' chunks alone, and return embeddings without values (`dim` 0, no data: for
    /// counting, not for fitting). [`Self::shard_tally`] says what was done.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = Some(ShardFilter::new(shard));
        self
    }

    /// Under a shard filter, the chunks computed, found cached and left to other shards so far.
    pub fn shard_tally(&self) -> Option<Tally> {
        self.shard.as_ref().map(ShardFilter::tally)
    }

    /// Runs the calls `isolation` selects in isolated worker processes.
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Which calls run isolated.
    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// Chunks read and computed so far, per embedded set (`node`, `node (items)`, `node ∘ op`).
    pub fn chunk_use(&self) -> &std::collections::BTreeMap<String, ChunkUse> {
        &self.chunk_use
    }

    /// The key of a plugin function with its parameters: plugin name, version, library hash,
    /// function and parameters.
    pub fn function_key(&self, call: &Call) -> Result<Key, HostError> {
        self.function_key_on(call, Device::Cpu)
    }

    /// The key of `node`'s encoder: [`Self::function_key`] on the CPU, and with the node's device
    /// otherwise (a GPU's embeddings differ from the CPU's in the last bits), so that every entry
    /// computed on the CPU keeps the key it always had.
    pub fn encoder_key(&self, node: &Node) -> Result<Key, HostError> {
        match &node.encoder {
            Encoder::Plugin(call) => self.function_key_on(call, node.device),
            Encoder::File(file) => self.file_fingerprint(node, file).map(|(_, key)| key),
            Encoder::Stitched(_) => self.stitched.get(&node.name).map(|p| p.key.clone()).ok_or_else(|| {
                HostError::Usage(format!(
                    "stitched node `{}` was not planned before its key was asked for",
                    node.name
                ))
            }),
        }
    }

    /// Plans `node` when a stitch computes it (once per run): its renders, resume and anchors.
    fn prepare_stitched(&mut self, node: &Node) -> Result<(), HostError> {
        let Encoder::Stitched(encoder) = &node.encoder else { return Ok(()) };
        if self.stitched.contains_key(&node.name) {
            return Ok(());
        }
        let items = self.items(&node.data, Some(node))?;
        let plan =
            crate::stitched_node::plan(self.exp, node, encoder, &items.ids, &|call| self.function_key(call))?;
        self.stitched.insert(node.name.clone(), Arc::new(plan));
        Ok(())
    }

    /// The fingerprint (the files' sha256) and cache key of a node's vectors file, hashed once
    /// per extractor.
    pub fn file_fingerprint(
        &self,
        node: &Node,
        file: &EmbeddingsFile,
    ) -> Result<(Fingerprint, Key), HostError> {
        let known = self.files.lock().ok().and_then(|f| f.get(&node.name).cloned());
        if let Some(known) = known {
            return Ok(known);
        }
        let fingerprint = Fingerprint::of(file, &self.base_dir)?;
        let key = fingerprint.key(file);
        if let Ok(mut files) = self.files.lock() {
            files.insert(node.name.clone(), (fingerprint.clone(), key.clone()));
        }
        Ok((fingerprint, key))
    }

    fn function_key_on(&self, call: &Call, device: Device) -> Result<Key, HostError> {
        let plugin = self.registry.get(&call.plugin)?;
        let manifest = plugin.plugin.manifest();
        let spec = manifest.function(&call.function);
        let params = self.file_params.resolve(call, spec)?.key;
        Ok(match spec.and_then(|s| s.version.map(|v| (s, v))) {
            Some((spec, version)) => versioned_function_key(
                &call.plugin,
                &call.function,
                version,
                &params,
                &spec.assets.iter().map(|a| a.sha256.as_ref()).collect::<Vec<_>>(),
                device,
            ),
            None => {
                function_key(&call.plugin, &manifest.version, &plugin.sha256, &call.function, &params, device)
            }
        })
    }

    /// Records which build of `call`'s plugin computed results under `key`, and warns (once per
    /// function and run) when results read back under it were computed by another build: with the
    /// function's version unchanged they are reused, which is right when the rebuild did not
    /// change this function and wrong when it did without bumping the version.
    fn check_build(&self, name: &str, call: &Call, key: &Key, computed: bool) {
        let Ok(plugin) = self.registry.get(&call.plugin) else { return };
        let record = provenance_key(key);
        let built_by = plugin.sha256.clone();
        if computed {
            let _ = self.cache.put_result(&record, &built_by);
        } else if let Some(before) = self.cache.get_result::<String>(&record).filter(|b| *b != built_by) {
            let first = self
                .warned_builds
                .lock()
                .map(|mut w| w.insert((call.plugin.clone(), call.function.clone())))
                .unwrap_or(true);
            if !first {
                return;
            }
            tracing::warn!(
                "node `{name}` (and any later set of this run embedded by the same function): its \
                 embeddings were computed by another build of plugin `{}` (library sha256 {}…, now \
                 {}…) whose `{}` has the same version, so they are reused; if the function's output \
                 changed, bump its `VERSION`",
                call.plugin,
                &before[..before.len().min(12)],
                &built_by[..built_by.len().min(12)],
                call.function
            );
        }
    }

    fn context(&self, threads: usize, device: Device) -> Context {
        Context {
            threads: threads.max(1),
            device: device.to_string(),
            cache_dir: Some(self.cache.root().join("plugins")),
            ..Context::default()
        }
    }

    /// Opens `call` (made for `node`, if any) on the CPU; see [`Self::open_on`].
    fn open(&self, call: &Call, threads: usize, node: Option<&Node>) -> Result<Opened, HostError> {
        self.open_on(call, threads, node, Device::Cpu)
    }

    /// Opens `node`'s encoder on the node's device. A failure there on a device other than the
    /// CPU (a plugin built without its `cuda` feature, no such device) names the node and the
    /// device.
    fn open_encoder(&self, node: &Node, threads: usize) -> Result<Opened, HostError> {
        let Encoder::Plugin(call) = &node.encoder else {
            return Err(HostError::Usage(format!("node `{}` reads its vectors from a file", node.name)));
        };
        self.open_on(call, threads, Some(node), node.device).map_err(|e| {
            if node.device.is_cpu() {
                e
            } else {
                HostError::Device {
                    node: node.name.clone(),
                    device: node.device.to_string(),
                    source: Box::new(e),
                }
            }
        })
    }

    /// Opens `call` (made for `node`, if any) on `device`, with the assets it asks for from the
    /// cache's asset store (fetched there on first use and verified): in-process, or in an
    /// isolated worker when the isolation settings say so (the worker gets the same context,
    /// device included).
    fn open_on(
        &self,
        call: &Call,
        threads: usize,
        node: Option<&Node>,
        device: Device,
    ) -> Result<Opened, HostError> {
        let loaded = self.registry.get(&call.plugin)?;
        let store = AssetStore::for_cache(self.cache.root());
        let ctx = self.context(threads, device);
        let isolated = self.isolation.for_call(node, call);
        let params =
            self.file_params.resolve(call, loaded.plugin.manifest().function(&call.function))?.plugin;
        crate::worker::open_function(loaded, &call.function, &params, &ctx, &store, isolated.as_ref())
    }

    /// The items of data set `name`, generated (for `node`, whose isolation applies) on first use.
    fn items(&mut self, name: &str, node: Option<&Node>) -> Result<Arc<Items>, HostError> {
        if let Some(items) = self.items.get(name) {
            return Ok(Arc::clone(items));
        }
        let data =
            self.exp.data_set(name).ok_or_else(|| HostError::Usage(format!("no data set named `{name}`")))?;
        let items = match &data.origin {
            Origin::Source { call } => {
                let mut source = self.open(call, self.threads, node)?;
                let values = collect_items(source.call(&[])?, &format!("source of data set `{name}`"))?;
                tracing::info!(data = name, items = values.len(), "generated");
                root_items(values)
            }
            Origin::Files { path } => {
                let folder = self.base_dir.join(path);
                let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                    .map_err(|e| HostError::io(&folder, e))?
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| crate::value_io::folder_kind(p).is_some())
                    .collect();
                files.sort();
                let (mut values, mut names) = (Vec::new(), Vec::new());
                for f in &files {
                    let read = read_values(f)?;
                    let name = f.file_name().and_then(|n| n.to_str()).filter(|_| read.len() == 1);
                    names.extend(std::iter::repeat_n(name.map(str::to_owned), read.len()));
                    values.extend(read);
                }
                tracing::info!(data = name, items = values.len(), files = files.len(), "read");
                Items { names: Some(Arc::new(names)), ..root_items(values) }
            }
            Origin::Render { from, call } => self.rendered(from, call, node)?,
        };
        let items = Arc::new(items);
        self.items.insert(name.to_owned(), Arc::clone(&items));
        Ok(items)
    }

    /// The items of data set `from` passed through `call` (a render or an operator).
    fn rendered(&mut self, from: &str, call: &Call, node: Option<&Node>) -> Result<Items, HostError> {
        let parent = self.items(from, node)?;
        self.render_items(&parent, call)
    }

    /// `parent`'s items passed through `call`.
    fn render_items(&self, parent: &Items, call: &Call) -> Result<Items, HostError> {
        let render_key = self.function_key(call)?;
        let ids = parent
            .ids
            .iter()
            .map(|id| KeyBuilder::new("rendered").text(&render_key).text(id).finish())
            .collect();
        let mut chain = parent.chain.clone();
        chain.push(call.clone());
        Ok(Items {
            root_values: Arc::clone(&parent.root_values),
            roots: Arc::clone(&parent.roots),
            ids,
            chain,
            names: parent.names.clone(),
        })
    }

    /// The items of data set `name` as values, rendered through its chain (not cached: renders
    /// are deterministic and recomputed where needed), with a key naming them (the items' ids).
    /// A stitch reads its token states this way. An item a render fails on is an error that
    /// names it.
    pub fn values(&mut self, name: &str) -> Result<(Key, Vec<Value>), HostError> {
        let items = self.items(name, None)?;
        tracing::info!(data = name, items = items.ids.len(), renders = items.chain.len(), "rendering");
        let values =
            self.render_through(&items.chain, items.root_values.to_vec(), &format!("data set `{name}`"))?;
        Ok((values_key(&items.ids), values))
    }

    /// The key [`Self::values`] gives data set `name`, without rendering it.
    pub fn values_key(&mut self, name: &str) -> Result<Key, HostError> {
        Ok(values_key(&self.items(name, None)?.ids))
    }

    /// Opens `call` on the CPU with the run's threads, for values the host computed (a stitch's
    /// mapped states fed to the encoder that resumes a model).
    pub fn open_call(&self, call: &Call) -> Result<Opened, HostError> {
        self.open(call, self.threads, None)
    }

    /// The embeddings of node `name`, from the cache where possible.
    pub fn node(&mut self, name: &str) -> Result<Embeddings, HostError> {
        let node =
            self.exp.node(name).ok_or_else(|| HostError::Usage(format!("no node named `{name}`")))?.clone();
        let items = self.items(&node.data, Some(&node))?;
        self.embed(name, &items, &node, node.skip_failed_items, true)
    }

    /// Operator `op` of node `name`'s data set in that node's space: the embeddings of the
    /// operator's items and of their images, row by row. Items outside the operator's domain
    /// (a word with no plural) or that the encoder fails on are NaN rows, counted as skipped.
    pub fn operator(&mut self, name: &str, op: &str) -> Result<OperatorEmbeddings, HostError> {
        let (node, [(input_name, items), (output_name, images)]) = self.operator_items(name, op)?;
        let input = self.embed(&input_name, &items, &node, true, false)?;
        let output = self.embed(&output_name, &images, &node, true, false)?;
        if self.shard.is_none() {
            tracing::info!(
                node = name,
                operator = op,
                items = input.rows,
                defined = (0..input.rows).filter(|&i| input.is_valid(i) && output.is_valid(i)).count(),
                "operator embedded"
            );
        }
        Ok(OperatorEmbeddings { operator: op.to_owned(), input, output })
    }

    /// Node `name` and the two item lists operator `op` embeds in its space, with their names:
    /// the operator's items (`name (items)`) and their images (`name ∘ op`).
    #[allow(clippy::type_complexity)]
    fn operator_items(
        &mut self,
        name: &str,
        op: &str,
    ) -> Result<(Node, [(String, Arc<Items>); 2]), HostError> {
        let node =
            self.exp.node(name).ok_or_else(|| HostError::Usage(format!("no node named `{name}`")))?.clone();
        let decl = match self.exp.resolve_operator(&node.data, op) {
            Some(OperatorRef::Own(decl)) => decl.clone(),
            Some(OperatorRef::Identity) => {
                // Each item is its own image: the same items, the same cached chunks.
                let items = self.items(&node.data, Some(&node))?;
                let sets = [
                    (format!("{name} ({})", node.data), Arc::clone(&items)),
                    (format!("{name} ∘ {op}"), items),
                ];
                return Ok((node, sets));
            }
            Some(OperatorRef::Lifted { at, decl }) => {
                // Applied to `at`'s items, rendered down: the node's own items, edited.
                let (at, op_at) = (at.to_owned(), decl.name.clone());
                let items = self.items(&node.data, Some(&node))?;
                let (_, set, images) = self.edited_items(name, &at, &op_at)?;
                let label = format!("{name} ({})", node.data);
                return Ok((node, [(label, items), (set, Arc::new(images))]));
            }
            None => {
                return Err(HostError::Usage(format!("data set `{}` has no operator `{op}`", node.data)));
            }
        };
        let items_name = decl.items.clone().unwrap_or_else(|| node.data.clone());
        let items = self.items(&items_name, Some(&node))?;
        let images = Arc::new(self.rendered(&items_name, &decl.call, Some(&node))?);
        Ok((node, [(format!("{name} ({items_name})"), items), (format!("{name} ∘ {op}"), images)]))
    }

    /// Where node `name`'s embeddings (with `operator`, that operator's items and images in the
    /// node's space) are cached, without opening the encoder or any render: data sets are
    /// generated (their sources called) to know their items, and keys are computed from those.
    pub fn chunk_plan(&mut self, name: &str, operator: Option<&str>) -> Result<Vec<SetChunks>, HostError> {
        let (node, sets) = match operator {
            None => {
                let node = self
                    .exp
                    .node(name)
                    .ok_or_else(|| HostError::Usage(format!("no node named `{name}`")))?
                    .clone();
                let items = self.items(&node.data, Some(&node))?;
                (node, vec![(name.to_owned(), items)])
            }
            Some(op) => {
                let (node, sets) = self.operator_items(name, op)?;
                (node, sets.into())
            }
        };
        self.prepare_stitched(&node)?;
        let encoder_key = self.encoder_key(&node)?;
        Ok(sets
            .into_iter()
            .map(|(name, items)| SetChunks {
                name,
                keys: chunk_keys(&encoder_key, &items.ids),
                items: items.ids.len(),
            })
            .collect())
    }

    /// Node `name`'s encoder on its items edited: operator `op` of data set `at` (the node's own
    /// data set, or one it is rendered from) applied to `at`'s items, then the renders from `at`
    /// down to the node's data set — e.g. an audio node's embeddings of the transposed scores,
    /// synthesised again. Items the operator or a render fails on are NaN rows.
    pub fn edited(&mut self, name: &str, at: &str, op: &str) -> Result<Embeddings, HostError> {
        let (node, set, items) = self.edited_items(name, at, op)?;
        self.embed(&set, &items, &node, true, false)
    }

    /// The node, the name and the items of [`Self::edited`]'s set: `node ∘ op` when `at` is the
    /// node's own data set (the operator's images), `node ∘ at.op` otherwise.
    fn edited_items(&mut self, name: &str, at: &str, op: &str) -> Result<(Node, String, Items), HostError> {
        let node =
            self.exp.node(name).ok_or_else(|| HostError::Usage(format!("no node named `{name}`")))?.clone();
        let decl = self
            .exp
            .operator(at, op)
            .cloned()
            .ok_or_else(|| HostError::Usage(format!("data set `{at}` has no operator `{op}`")))?;
        let chain = self.exp.render_chain(&node.data, at).ok_or_else(|| {
            HostError::Usage(format!("node `{name}`'s data set `{}` is not rendered from `{at}`", node.data))
        })?;
        let base = self.items(at, Some(&node))?;
        let mut items = self.render_items(&base, &decl.call)?;
        // `chain` runs from the node's data set up to `at`: render back down, skipping `at`.
        for data in chain.iter().rev().skip(1) {
            let Some(Origin::Render { call, .. }) = self.exp.data_set(data).map(|d| &d.origin) else {
                return Err(HostError::Usage(format!("data set `{data}` is not rendered from another")));
            };
            items = self.render_items(&items, call)?;
        }
        let set = if at == node.data { format!("{name} ∘ {op}") } else { format!("{name} ∘ {at}.{op}") };
        Ok((node, set, items))
    }

    /// [`Self::chunk_plan`] for [`Self::edited`]'s set.
    pub fn chunk_plan_edited(&mut self, name: &str, at: &str, op: &str) -> Result<SetChunks, HostError> {
        let (node, set, items) = self.edited_items(name, at, op)?;
        self.prepare_stitched(&node)?;
        let encoder_key = self.encoder_key(&node)?;
        Ok(SetChunks { name: set, keys: chunk_keys(&encoder_key, &items.ids), items: items.ids.len() })
    }

    /// Embeds `items` with `node`'s encoder, chunk by chunk, from the cache where possible. With
    /// `skip`, items that fail become NaN rows (warned about when `warn_skips`).
    fn embed(
        &mut self,
        name: &str,
        items: &Items,
        node: &Node,
        skip: bool,
        warn_skips: bool,
    ) -> Result<Embeddings, HostError> {
        self.prepare_stitched(node)?;
        let encoder_key = self.encoder_key(node)?;
        let n = items.ids.len();
        let chunk_keys = chunk_keys(&encoder_key, &items.ids);
        let mut whole = KeyBuilder::new("embeddings");
        for k in &chunk_keys {
            whole.text(k);
        }
        if let Some(filter) = self.shard.as_mut() {
            let mine = filter.select(&chunk_keys);
            return self.embed_shard(name, items, node, skip, &chunk_keys, &mine, whole.finish());
        }

        let mut chunks: Vec<Option<Chunk>> =
            chunk_keys.iter().map(|k| self.cache.get_embeddings(k)).collect();
        let missing: Vec<usize> = (0..chunks.len()).filter(|&i| chunks[i].is_none()).collect();
        let cached = chunks.len() - missing.len();
        let mut reasons: Vec<Skip> = Vec::new();
        let use_ = self.chunk_use.entry(name.to_owned()).or_default();
        use_.cached += cached;
        use_.computed += missing.len();
        if let Encoder::Plugin(call) = &node.encoder {
            self.check_build(name, call, &encoder_key, !missing.is_empty());
        }
        if missing.is_empty() {
            tracing::info!(
                node = name,
                items = n,
                chunks = cached,
                "cache hit: every chunk of this node is cached"
            );
        } else {
            tracing::info!(node = name, items = n, cached, computing = missing.len(), "extracting");
            let lookup = self.lookup(node, items)?;
            let pass = if lookup.is_none() { self.layer_pass(name, node, items, &missing)? } else { None };
            for (i, chunk, skips) in
                self.compute(name, node, skip, items, &missing, &chunk_keys, lookup.as_ref(), pass.as_ref())?
            {
                chunks[i] = Some(chunk);
                reasons.extend(skips);
            }
        }

        let mut dim = None;
        let mut data = Vec::with_capacity(n * chunks.first().and_then(|c| c.as_ref()).map_or(0, |c| c.dim));
        let mut frames: Option<FrameIndex> = None;
        let mut skipped_in: Vec<bool> = Vec::with_capacity(chunks.len());
        for (c, chunk) in chunks.into_iter().flatten().enumerate() {
            if *dim.get_or_insert(chunk.dim) != chunk.dim {
                return Err(HostError::Usage(format!(
                    "node `{name}`: the encoder's dimension changed between chunks"
                )));
            }
            let skips = chunk_skipped(&chunk);
            skipped_in.push(skips > 0);
            match (frames.as_mut(), chunk.frames) {
                (None, None) => {}
                (Some(all), Some(more)) if all.rate == more.rate => all.extend(&more),
                (None, Some(first)) if c == 0 => frames = Some(first),
                _ => {
                    return Err(HostError::Usage(format!(
                        "node `{name}`: the encoder's frame rate changed between chunks (a cached chunk of \
                         another build?); `commute cache clear` the node's entries"
                    )))
                }
            }
            data.extend_from_slice(&chunk.data);
        }
        let dim = dim.unwrap_or(0);
        let embeddings = Embeddings {
            node: name.to_owned(),
            key: whole.finish(),
            rows: n,
            dim,
            data,
            skipped: 0,
            roots: Arc::clone(&items.roots),
            frames,
        };
        let skipped = (0..n).filter(|&i| !embeddings.is_valid(i)).count();
        if skipped > 0 && warn_skips {
            // The reasons of cached chunks' skips were kept beside them.
            for (c, key) in chunk_keys.iter().enumerate() {
                if !missing.contains(&c) && skipped_in.get(c).copied().unwrap_or(false) {
                    reasons.extend(self.cache.get_result::<Vec<Skip>>(&skips_key(key)).unwrap_or_default());
                }
            }
            reasons.sort_by_key(|s| s.item);
            let unknown = skipped.saturating_sub(reasons.len());
            tracing::warn!("{}", crate::skips::summary(name, n, &reasons, unknown));
        }
        Ok(Embeddings { skipped, ..embeddings })
    }

    /// [`Self::embed`] under a shard filter: computes the missing ones of the chunks `mine` (the
    /// shard's, not met before) and returns the set's shape without values.
    #[allow(clippy::too_many_arguments)]
    fn embed_shard(
        &mut self,
        name: &str,
        items: &Items,
        node: &Node,
        skip: bool,
        keys: &[Key],
        mine: &[usize],
        key: Key,
    ) -> Result<Embeddings, HostError> {
        let n = items.ids.len();
        let missing: Vec<usize> =
            mine.iter().copied().filter(|&c| self.cache.get_embeddings(&keys[c]).is_none()).collect();
        let cached = mine.len() - missing.len();
        tracing::info!(
            node = name,
            items = n,
            chunks = keys.len(),
            this_shard = mine.len(),
            cached,
            computing = missing.len(),
            "extracting this shard's chunks"
        );
        if !missing.is_empty() {
            let lookup = self.lookup(node, items)?;
            self.compute(name, node, skip, items, &missing, keys, lookup.as_ref(), None)?;
        }
        let computed_items = missing.iter().map(|&c| chunk_len(c, n)).sum();
        if let Some(filter) = self.shard.as_mut() {
            filter.record(cached, missing.len(), computed_items);
        }
        Ok(Embeddings {
            node: name.to_owned(),
            key,
            rows: n,
            dim: 0,
            data: Vec::new(),
            skipped: 0,
            roots: Arc::clone(&items.roots),
            frames: None,
        })
    }

    /// For a node whose vectors come from a file, the table and how `items` find their rows;
    /// `None` for a plugin's encoder.
    fn lookup(&mut self, node: &Node, items: &Items) -> Result<Option<Lookup>, HostError> {
        let Encoder::File(file) = &node.encoder else { return Ok(None) };
        let table = match self.tables.get(&node.name) {
            Some(table) => Arc::clone(table),
            None => {
                let (fingerprint, _) = self.file_fingerprint(node, file)?;
                let table = Arc::new(Table::load(file, &self.base_dir)?);
                tracing::info!(
                    node = node.name,
                    rows = table.rows,
                    dim = table.dim,
                    sha256 = fingerprint.sha256,
                    "read vectors"
                );
                self.tables.insert(node.name.clone(), Arc::clone(&table));
                table
            }
        };
        let rows = match file.match_by {
            MatchBy::Text => None,
            by => {
                // Row by the item's place in the node's own data set (its file name, or its
                // index): an operator's images and other derived items have none.
                let own = self.items(&node.data, Some(node))?;
                let place: HashMap<&Key, usize> = own.ids.iter().enumerate().map(|(i, id)| (id, i)).collect();
                let row = |i: usize| match by {
                    MatchBy::FileName => {
                        own.names.as_ref()?.get(i)?.as_deref().and_then(|n| table.find_file(n))
                    }
                    _ => (i < table.rows).then_some(i),
                };
                Some(items.ids.iter().map(|id| place.get(id).and_then(|&i| row(i))).collect())
            }
        };
        let file = file.path.display().to_string();
        Ok(Some(Lookup { table, rows, file }))
    }

    /// Caches a computed chunk under `key`, and the reasons for its skipped items beside it.
    fn store(&self, key: &Key, chunk: &Chunk, skips: &[Skip]) -> Result<(), HostError> {
        if !skips.is_empty() {
            self.cache.put_result(&skips_key(key), &skips)?;
        }
        self.cache.put_embeddings(key, chunk)
    }

    /// For a node of a layer sweep whose encoder reads several layers at once, the one-pass plan
    /// ([`crate::layer_pass`]) and each member's chunk keys; this build is recorded as computing
    /// the results of each member that gets a chunk of `missing` from the pass.
    fn layer_pass(
        &self,
        name: &str,
        node: &Node,
        items: &Items,
        missing: &[usize],
    ) -> Result<Option<PassKeys>, HostError> {
        let Encoder::Plugin(call) = &node.encoder else { return Ok(None) };
        let reads_layers = self
            .registry
            .get(&call.plugin)?
            .plugin
            .manifest()
            .function(&call.function)
            .is_some_and(|spec| spec.params.iter().any(|p| p.name == crate::layer_pass::LAYERS_PARAM));
        let Some(pass) = crate::layer_pass::plan(node, &self.exp.nodes, reads_layers) else {
            return Ok(None);
        };
        let mut keys = Vec::with_capacity(pass.members.len());
        for member in &pass.members {
            let key = self.encoder_key(member)?;
            let member_keys = chunk_keys(&key, &items.ids);
            let gets_chunks = missing.iter().any(|&c| !self.cache.has_embeddings(&member_keys[c]));
            if let (Encoder::Plugin(call), true) = (&member.encoder, gets_chunks) {
                self.check_build(&member.name, call, &key, true);
            }
            keys.push(member_keys);
        }
        tracing::info!(
            node = name,
            layers = pass.members.len(),
            "one forward pass for every layer of the sweep: each layer's chunks are cached for its node"
        );
        Ok(Some(PassKeys { pass, keys }))
    }

    /// Computes the given chunks on worker threads, each with its own function instances (or,
    /// with `lookup`, the rows of a vectors file; with `pass`, a layer sweep's encoder, each
    /// chunk split and cached for every member whose chunk is not cached yet).
    #[allow(clippy::too_many_arguments)]
    fn compute(
        &self,
        name: &str,
        node: &Node,
        skip: bool,
        items: &Items,
        missing: &[usize],
        keys: &[Key],
        lookup: Option<&Lookup>,
        pass: Option<&PassKeys>,
    ) -> Result<Vec<(usize, Chunk, Vec<Skip>)>, HostError> {
        if let Some(plan) = self.stitched.get(&node.name) {
            return self.compute_stitched(name, plan, items, missing, keys);
        }
        let encoder_node = pass.map_or(node, |p| &p.pass.node);
        let workers = self.threads.min(missing.len()).max(1);
        let per_worker_threads = (self.threads / workers).max(1);
        let progress = progress_bar(name, missing.iter().map(|&c| chunk_len(c, items.ids.len())).sum());
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::with_capacity(missing.len()));
        let first_error: Mutex<Option<HostError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let run = || -> Result<(), HostError> {
                        // A lookup by index or file name reads no values: nothing to render.
                        let renders_needed = lookup.is_none_or(|l| l.rows.is_none());
                        let mut renders: Vec<Opened> = Vec::new();
                        for call in items.chain.iter().filter(|_| renders_needed) {
                            renders.push(self.open(call, per_worker_threads, Some(node))?);
                        }
                        let mut enc = match lookup {
                            Some(lookup) => ChunkEncoder::File(lookup),
                            None => ChunkEncoder::Plugin(Box::new(
                                self.open_encoder(encoder_node, per_worker_threads)?,
                            )),
                        };
                        loop {
                            if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                                return Ok(());
                            }
                            let slot = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&c) = missing.get(slot) else { return Ok(()) };
                            let start = c * CHUNK;
                            let end = (start + CHUNK).min(items.ids.len());
                            let reopen = |stage: Option<usize>| match stage {
                                Some(s) => self.open(&items.chain[s], per_worker_threads, Some(node)),
                                None => self.open_encoder(encoder_node, per_worker_threads),
                            };
                            let (chunk, skips) = encode_chunk(
                                name,
                                &items.root_values[start..end],
                                start,
                                skip,
                                &mut renders,
                                &mut enc,
                                &reopen,
                            )?;
                            let chunk = match pass {
                                None => {
                                    self.store(&keys[c], &chunk, &skips)?;
                                    chunk
                                }
                                Some(p) => {
                                    let mut parts = crate::layer_pass::split(&chunk, p.keys.len());
                                    for (m, part) in parts.iter().enumerate() {
                                        let key = &p.keys[m][c];
                                        if m == p.pass.own || !self.cache.has_embeddings(key) {
                                            self.store(key, part, &skips)?;
                                        }
                                    }
                                    parts.swap_remove(p.pass.own)
                                }
                            };
                            progress.inc((end - start) as u64);
                            if let Ok(mut r) = results.lock() {
                                r.push((c, chunk, skips));
                            }
                        }
                    };
                    if let Err(e) = run() {
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                    }
                });
            }
        });
        progress.finish_and_clear();
        if let Some(e) = first_error.into_inner().ok().flatten() {
            return Err(e);
        }
        results.into_inner().map_err(|_| HostError::Usage("an extraction worker failed".to_owned()))
    }
}

impl Extractor<'_> {
    /// The renders of `calls` applied to `values` in turn, on this thread; an item any of them
    /// fails on is an error that names it.
    fn render_through(
        &self,
        calls: &[Call],
        mut values: Vec<Value>,
        what: &str,
    ) -> Result<Vec<Value>, HostError> {
        for call in calls {
            let mut stage = self.open(call, self.threads, None)?;
            let mut out = Vec::with_capacity(values.len());
            for (c, batch) in values.chunks(CHUNK).enumerate() {
                for (j, r) in stage.call(batch)?.into_iter().enumerate() {
                    out.push(r.map_err(|e| {
                        HostError::Usage(format!(
                            "{what}: `{}/{}` failed on item {}: {e}",
                            call.plugin,
                            call.function,
                            c * CHUNK + j
                        ))
                    })?);
                }
            }
            values = out;
        }
        Ok(values)
    }

    /// A stitched node's missing chunks: the map fitted once on its anchors' token pairs, then
    /// each chunk's items rendered to A's states, mapped and resumed in B; anchor items are NaN
    /// rows (see [`crate::stitched_node`]).
    fn compute_stitched(
        &self,
        name: &str,
        plan: &StitchedPlan,
        items: &Items,
        missing: &[usize],
        keys: &[Key],
    ) -> Result<Vec<(usize, Chunk, Vec<Skip>)>, HostError> {
        use crate::token_map::{resumed, unstacked, States, TokenMap};
        let what = format!("stitched node `{name}`");
        let map = plan.map.get_or_init(|| {
            let anchors: Vec<Value> =
                plan.anchor_rows.iter().map(|&r| items.root_values[r].clone()).collect();
            let fit = || -> Result<TokenMap, HostError> {
                let a = States::read(
                    "A's states",
                    self.render_through(&plan.source_chain, anchors.clone(), &what)?,
                )?;
                let b = States::read(
                    "B's states",
                    self.render_through(&plan.target_chain, anchors.clone(), &what)?,
                )?;
                if let Some(i) = (0..a.rows.len()).find(|&i| a.rows[i] != b.rows[i]) {
                    return Err(HostError::Usage(format!(
                        "anchor {i} has {} token states in A and {} in B: the models must tokenise alike",
                        a.rows[i], b.rows[i]
                    )));
                }
                let all: Vec<usize> = (0..a.rows.len()).collect();
                TokenMap::fit(&plan.method, &a.stacked(&all), &b.stacked(&all), plan.center, None)
                    .map_err(|e| HostError::Usage(format!("the map on the anchors' token pairs: {e}")))
            };
            tracing::info!(node = name, anchors = anchors.len(), "fitting the stitched map");
            fit().map_err(|e| e.to_string())
        });
        let map = map.as_ref().map_err(|e| HostError::Usage(format!("{what}: {e}")))?;
        let mut resume = self.open(&plan.resume, self.threads, None)?;
        let progress = progress_bar(name, missing.iter().map(|&c| chunk_len(c, items.ids.len())).sum());
        let mut out = Vec::with_capacity(missing.len());
        for &c in missing {
            let (start, end) = (c * CHUNK, (c * CHUNK + CHUNK).min(items.ids.len()));
            let values = self.render_through(&items.chain, items.root_values[start..end].to_vec(), &what)?;
            let states = States::read(&what, self.render_through(&plan.source_chain, values, &what)?)?;
            let all: Vec<usize> = (0..end - start).collect();
            let mapped = unstacked(&map.apply(&states.stacked(&all)), &states.rows);
            let vectors = resumed(&mut resume, mapped, &what)?;
            let dim = vectors.ncols();
            let mut data = Vec::with_capacity((end - start) * dim);
            let mut skips = Vec::new();
            for (k, id) in items.ids[start..end].iter().enumerate() {
                if plan.anchor_ids.contains(id) {
                    data.extend(std::iter::repeat_n(f32::NAN, dim));
                    skips.push(Skip {
                        item: start + k,
                        reason: SkipReason::Anchor,
                        detail: "its token pairs fitted the stitched map".to_owned(),
                    });
                } else {
                    data.extend((0..dim).map(|j| vectors[(k, j)]));
                }
            }
            let chunk = Chunk::pooled(end - start, dim, data);
            self.store(&keys[c], &chunk, &skips)?;
            progress.inc((end - start) as u64);
            out.push((c, chunk, skips));
        }
        progress.finish_and_clear();
        Ok(out)
    }
}

/// A layer sweep extracted in one pass, with each member's chunk keys (in member order).
struct PassKeys {
    pass: crate::layer_pass::LayerPass,
    keys: Vec<Vec<Key>>,
}

/// One item's embedding, or why it has none (the reason and what went wrong).
type Encoded = Result<Value, (SkipReason, String)>;

/// What embeds a chunk's values: a plugin's encoder, or the rows of a vectors file.
enum ChunkEncoder<'l> {
    Plugin(Box<Opened>),
    File(&'l Lookup),
}

/// A node's vectors file and how one set of items finds its rows.
struct Lookup {
    table: Arc<Table>,
    /// Per item of the set, its row (matching by index or file name); `None` to match by text.
    rows: Option<Vec<Option<usize>>>,
    /// The file, as the experiment names it.
    file: String,
}

impl Lookup {
    /// The row of item `item` of the set, whose value (after the renders) is `value`.
    fn row(&self, value: &Value, item: usize) -> Encoded {
        let found =
            match &self.rows {
                Some(rows) => rows.get(item).copied().flatten().ok_or_else(|| {
                    (SkipReason::NoRow, format!("`{}` has no row for this item", self.file))
                })?,
                None => {
                    let Value::Text { text } = value else {
                        return Err((
                            SkipReason::Error,
                            format!("matching by text needs text items, found {}", value.kind()),
                        ));
                    };
                    self.table.find(text).ok_or_else(|| {
                        (SkipReason::NoRow, format!("`{}` has no row for `{text}`", self.file))
                    })?
                }
            };
        Ok(Value::Tensor(commute_sdk::Tensor::vector(self.table.row(found).to_vec())))
    }
}

/// Where the reasons for a chunk's skipped items are kept (beside the chunk, only when it has any).
fn skips_key(chunk: &Key) -> Key {
    let mut key = KeyBuilder::new("skips");
    key.text(chunk);
    key.finish()
}

fn chunk_len(chunk: usize, n: usize) -> usize {
    (n - chunk * CHUNK).min(CHUNK)
}

fn root_items(values: Vec<Value>) -> Items {
    let ids: Vec<Key> = values.iter().map(value_key).collect();
    Items { root_values: Arc::new(values), roots: Arc::new(ids.clone()), ids, chain: Vec::new(), names: None }
}

fn collect_items(
    items: Vec<commute_sdk::abi::client::ItemResult>,
    what: &str,
) -> Result<Vec<Value>, HostError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| HostError::Usage(format!("{what}: item {i} failed: {e}"))))
        .collect()
}

/// Renders a chunk of root items through the chain and encodes it. With `skip`, an item that a
/// stage fails on (or whose embedding is not finite or the wrong size) becomes a NaN row, and is
/// returned with its reason, instead of an error; a batch that panicked or crashed its worker is
/// retried item by item in fresh instances (`reopen(Some(i))` opens render `i`, `reopen(None)`
/// the encoder), so that only the offending items are skipped.
/// How many of a chunk's items were skipped: NaN rows, or items without frames.
fn chunk_skipped(chunk: &Chunk) -> usize {
    match &chunk.frames {
        Some(frames) => (0..frames.items()).filter(|&i| frames.range(i).is_empty()).count(),
        None if chunk.dim == 0 => 0,
        None => chunk.data.chunks(chunk.dim).filter(|row| row[0].is_nan()).count(),
    }
}

fn encode_chunk(
    node: &str,
    roots: &[Value],
    offset: usize,
    skip: bool,
    renders: &mut [Opened],
    encoder: &mut ChunkEncoder<'_>,
    reopen: &dyn Fn(Option<usize>) -> Result<Opened, HostError>,
) -> Result<(Chunk, Vec<Skip>), HostError> {
    // Positions (within the chunk) of the items still alive, and the values reaching the next stage.
    let mut alive: Vec<usize> = (0..roots.len()).collect();
    let mut skips: Vec<Skip> = Vec::new();
    let mut fail = |pos: usize, reason: SkipReason, what: String| -> Result<(), HostError> {
        let message = format!("node `{node}`: {what} on item {}", offset + pos);
        if skip {
            tracing::debug!("skipped: {message}");
            skips.push(Skip { item: offset + pos, reason, detail: what });
            Ok(())
        } else {
            Err(HostError::Usage(message))
        }
    };
    let failure = |stage: &Opened, e: ItemFailure| {
        let reason = match e {
            ItemFailure::Error(_) => SkipReason::Error,
            ItemFailure::Panicked(_) => SkipReason::Panic,
            ItemFailure::Crashed(_) => SkipReason::Crash,
        };
        (reason, format!("`{}/{}` failed: {e}", stage.plugin(), stage.spec().name))
    };
    let mut owned: Option<Vec<Value>> = None;
    for (s, stage) in renders.iter_mut().enumerate() {
        let input = owned.as_deref().unwrap_or(roots);
        let out = call_retrying_items(stage, input, skip, &|| reopen(Some(s)))?;
        let (mut values, mut next) = (Vec::with_capacity(out.len()), Vec::with_capacity(out.len()));
        for (j, r) in out.into_iter().enumerate() {
            match r {
                Ok(v) => {
                    values.push(v);
                    next.push(alive[j]);
                }
                Err(e) => {
                    let (reason, what) = failure(stage, e);
                    fail(alive[j], reason, what)?
                }
            }
        }
        alive = next;
        owned = Some(values);
    }
    let input = owned.as_deref().unwrap_or(roots);
    let (out, dim, frame_rate): (Vec<Encoded>, usize, Option<f64>) = match encoder {
        ChunkEncoder::Plugin(encoder) => {
            let out = if input.is_empty() && !roots.is_empty() {
                Vec::new()
            } else {
                call_retrying_items(encoder, input, skip, &|| reopen(None))?
            };
            let out = out.into_iter().map(|r| r.map_err(|e| failure(encoder, e))).collect();
            (out, encoder.dim().unwrap_or(0), encoder.frame_rate())
        }
        ChunkEncoder::File(lookup) => {
            let out = input.iter().zip(&alive).map(|(v, &pos)| lookup.row(v, offset + pos)).collect();
            (out, lookup.table.dim, None)
        }
    };
    let refused = |bad: commute_sdk::NonFinite| {
        let reason = if bad.value.is_nan() { SkipReason::Nan } else { SkipReason::Infinite };
        (reason, format!("the embedding has {bad} (NaN or infinite values are refused)"))
    };
    if let Some(rate) = frame_rate {
        // Frames, item after item; a skipped item has none.
        let mut frames: Vec<Option<Vec<f32>>> = vec![None; roots.len()];
        for (j, r) in out.into_iter().enumerate() {
            let pos = alive[j];
            match r {
                Ok(Value::Sequence(q)) if q.dim == dim && q.frame_rate == rate => {
                    match q.data.iter().position(|x| !x.is_finite()) {
                        None => frames[pos] = Some(q.data),
                        Some(at) => {
                            let (reason, what) = refused(commute_sdk::NonFinite { at, value: q.data[at] });
                            fail(pos, reason, what)?
                        }
                    }
                }
                Ok(v) => fail(
                    pos,
                    SkipReason::WrongDimension,
                    format!(
                        "the encoder returned a {} where frames of {dim} at {rate} frames/s were declared",
                        match v.as_sequence() {
                            Some(q) => format!("sequence of {} at {} frames/s", q.dim, q.frame_rate),
                            None => v.kind().to_string(),
                        }
                    ),
                )?,
                Err((reason, what)) => fail(pos, reason, what)?,
            }
        }
        let index =
            FrameIndex::from_counts(rate, frames.iter().map(|f| f.as_ref().map_or(0, |f| f.len() / dim)));
        let data = frames.into_iter().flatten().flatten().collect();
        return Ok((Chunk { rows: roots.len(), dim, data, frames: Some(index) }, skips));
    }
    let mut data = vec![f32::NAN; roots.len() * dim];
    for (j, r) in out.into_iter().enumerate() {
        let pos = alive[j];
        match r {
            Ok(v) => match v.as_tensor() {
                Some(t) if t.data.len() == dim => match v.non_finite() {
                    None => data[pos * dim..(pos + 1) * dim].copy_from_slice(&t.data),
                    Some(bad) => {
                        let (reason, what) = refused(bad);
                        fail(pos, reason, what)?
                    }
                },
                _ => fail(
                    pos,
                    SkipReason::WrongDimension,
                    format!("the encoder returned a wrong-sized embedding (its dimension is {dim})"),
                )?,
            },
            Err((reason, what)) => fail(pos, reason, what)?,
        }
    }
    if skips.len() == roots.len() && dim == 0 {
        return Err(HostError::Usage(format!(
            "node `{node}`: every item of a chunk failed and the encoder's dimension is unknown"
        )));
    }
    Ok((Chunk::pooled(roots.len(), dim, data), skips))
}

fn progress_bar(node: &str, len: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64).with_message(node.to_owned());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} items, {per_sec}, eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The key of a data set's values: its items' ids (which name the renders that made them).
fn values_key(ids: &[Key]) -> Key {
    let mut key = KeyBuilder::new("values");
    for id in ids {
        key.text(id);
    }
    key.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(device: Device) -> Key {
        function_key("text", "0.1.0", "ab12", "minilm", "backend = \"candle\"\n", device)
    }

    #[test]
    fn an_encoder_on_the_cpu_keeps_the_key_it_always_had() {
        // The key before nodes had devices: these five fields and nothing else (sha256 of the
        // length-prefixed fields, computed independently), so no CPU cache entry is recomputed.
        let before = "7a4e4b5a7444620269172ff67925828470fbf91c7027302d0e813f43f3dc8dc2";
        assert_eq!(key(Device::Cpu), before);
        let ids: Vec<Key> = (0..70).map(|i| format!("item {i}")).collect();
        assert_eq!(chunk_keys(&key(Device::Cpu), &ids), chunk_keys(before, &ids));
    }

    #[test]
    fn a_versioned_function_is_keyed_by_version_params_and_assets_not_by_its_library() {
        let k = |version, params: &str, assets: &[&str]| {
            versioned_function_key("text", "minilm", version, params, assets, Device::Cpu)
        };
        let base = k(1, "pooling = \"mean\"\n", &["aa"]);
        assert_eq!(base, k(1, "pooling = \"mean\"\n", &["aa"]), "deterministic");
        assert_ne!(base, k(2, "pooling = \"mean\"\n", &["aa"]), "a bumped version");
        assert_ne!(base, k(1, "pooling = \"cls\"\n", &["aa"]), "other parameters");
        assert_ne!(base, k(1, "pooling = \"mean\"\n", &["bb"]), "another model file");
        assert_ne!(base, key(Device::Cpu), "never a legacy key");
        let gpu =
            versioned_function_key("text", "minilm", 1, "pooling = \"mean\"\n", &["aa"], Device::Cuda(0));
        assert_ne!(base, gpu);
    }

    #[test]
    fn an_encoder_on_a_gpu_has_a_key_of_its_own_per_device() {
        let (cpu, gpu0, gpu1) = (key(Device::Cpu), key(Device::Cuda(0)), key(Device::Cuda(1)));
        assert_ne!(gpu0, cpu);
        assert_ne!(gpu1, gpu0);
        assert_eq!(key(Device::Cuda(0)), gpu0, "deterministic");
        let ids: Vec<Key> = (0..70).map(|i| format!("item {i}")).collect();
        let (on_cpu, on_gpu) = (chunk_keys(&cpu, &ids), chunk_keys(&gpu0, &ids));
        assert_eq!(on_gpu.len(), 2);
        assert!(on_gpu.iter().all(|k| !on_cpu.contains(k)), "no GPU chunk shares a CPU chunk's entry");
    }
}
