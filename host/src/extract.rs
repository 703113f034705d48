//! Extraction: the embeddings of every node, computed through the plugins in batches, in
//! parallel across items, and cached by content.
//!
//! Items are identified by provenance rather than by their (possibly large) content: a root item
//! by the sha256 of its value, a rendered item by its parent's id and the render function's key.
//! Plugin functions are deterministic (the conformance suite checks it), so equal ids mean equal
//! values, and a rerun finds its embeddings without rendering anything again.
//!
//! A node's items are cut into chunks of [`CHUNK`]; each chunk is one cache entry keyed by the
//! encoder's key (plugin name, version, library hash, function, parameters) and the ids of its
//! items. An interrupted extraction resumes at the first chunk not yet written.

use crate::cache::{Cache, Chunk, Key, KeyBuilder};
use crate::experiment::{Call, Experiment, Origin};
use crate::registry::Registry;
use crate::value_io::read_values;
use crate::HostError;
use commute_sdk::abi::client::Instance;
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
    /// Values.
    pub data: Vec<f32>,
}

impl Embeddings {
    /// As a faer matrix (rows = items).
    pub fn matrix(&self) -> faer::Mat<f32> {
        faer::Mat::from_fn(self.rows, self.dim, |i, j| self.data[i * self.dim + j])
    }
}

/// The items of a data set: its root's values and this set's item ids.
struct Items {
    root_values: Arc<Vec<Value>>,
    ids: Vec<Key>,
    /// Render calls from the root to this data set, in order.
    chain: Vec<Call>,
}

/// Computes node embeddings for one experiment.
pub struct Extractor<'a> {
    exp: &'a Experiment,
    registry: &'a Registry,
    cache: &'a Cache,
    base_dir: PathBuf,
    threads: usize,
    items: HashMap<String, Arc<Items>>,
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
        }
    }

    /// The key of a plugin function with its parameters: plugin name, version, library hash,
    /// function and parameters.
    pub fn function_key(&self, call: &Call) -> Result<Key, HostError> {
        let plugin = self.registry.get(&call.plugin)?;
        Ok(KeyBuilder::new("function")
            .text(&call.plugin)
            .text(&plugin.plugin.manifest().version)
            .text(&plugin.sha256)
            .text(&call.function)
            .text(&call.params_toml())
            .finish())
    }

    fn context(&self, threads: usize) -> Context {
        Context {
            threads: threads.max(1),
            cache_dir: Some(self.cache.root().join("plugins")),
            ..Context::default()
        }
    }

    fn items(&mut self, name: &str) -> Result<Arc<Items>, HostError> {
        if let Some(items) = self.items.get(name) {
            return Ok(Arc::clone(items));
        }
        let data =
            self.exp.data_set(name).ok_or_else(|| HostError::Usage(format!("no data set named `{name}`")))?;
        let items = match &data.origin {
            Origin::Source { call } => {
                let plugin = &self.registry.get(&call.plugin)?.plugin;
                let mut source =
                    plugin.open(&call.function, &call.params_toml(), &self.context(self.threads))?;
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
                    .filter(|p| {
                        matches!(p.extension().and_then(|x| x.to_str()), Some("wav" | "mid" | "midi" | "txt"))
                    })
                    .collect();
                files.sort();
                let mut values = Vec::new();
                for f in &files {
                    values.extend(read_values(f)?);
                }
                tracing::info!(data = name, items = values.len(), files = files.len(), "read");
                root_items(values)
            }
            Origin::Render { from, call } => {
                let parent = self.items(from)?;
                let render_key = self.function_key(call)?;
                let ids = parent
                    .ids
                    .iter()
                    .map(|id| KeyBuilder::new("rendered").text(&render_key).text(id).finish())
                    .collect();
                let mut chain = parent.chain.clone();
                chain.push(call.clone());
                Items { root_values: Arc::clone(&parent.root_values), ids, chain }
            }
        };
        let items = Arc::new(items);
        self.items.insert(name.to_owned(), Arc::clone(&items));
        Ok(items)
    }

    /// The embeddings of node `name`, from the cache where possible.
    pub fn node(&mut self, name: &str) -> Result<Embeddings, HostError> {
        let node =
            self.exp.node(name).ok_or_else(|| HostError::Usage(format!("no node named `{name}`")))?.clone();
        let items = self.items(&node.data)?;
        let encoder_key = self.function_key(&node.encoder)?;
        let n = items.ids.len();
        let chunk_keys: Vec<Key> = items
            .ids
            .chunks(CHUNK)
            .map(|ids| {
                let mut k = KeyBuilder::new("chunk");
                k.text(&encoder_key);
                for id in ids {
                    k.text(id);
                }
                k.finish()
            })
            .collect();
        let mut whole = KeyBuilder::new("embeddings");
        for k in &chunk_keys {
            whole.text(k);
        }

        let mut chunks: Vec<Option<Chunk>> =
            chunk_keys.iter().map(|k| self.cache.get_embeddings(k)).collect();
        let missing: Vec<usize> = (0..chunks.len()).filter(|&i| chunks[i].is_none()).collect();
        let cached = chunks.len() - missing.len();
        if missing.is_empty() {
            tracing::info!(
                node = name,
                items = n,
                chunks = cached,
                "cache hit: every chunk of this node is cached"
            );
        } else {
            tracing::info!(node = name, items = n, cached, computing = missing.len(), "extracting");
            let computed = self.compute(name, &node.encoder, &items, &missing, &chunk_keys)?;
            for (i, chunk) in computed {
                chunks[i] = Some(chunk);
            }
        }

        let mut dim = None;
        let mut data = Vec::with_capacity(n * chunks.first().and_then(|c| c.as_ref()).map_or(0, |c| c.dim));
        for chunk in chunks.into_iter().flatten() {
            if *dim.get_or_insert(chunk.dim) != chunk.dim {
                return Err(HostError::Usage(format!(
                    "node `{name}`: the encoder's dimension changed between chunks"
                )));
            }
            data.extend_from_slice(&chunk.data);
        }
        Ok(Embeddings { node: name.to_owned(), key: whole.finish(), rows: n, dim: dim.unwrap_or(0), data })
    }

    /// Computes the given chunks on worker threads, each with its own function instances.
    fn compute(
        &self,
        node: &str,
        encoder: &Call,
        items: &Items,
        missing: &[usize],
        keys: &[Key],
    ) -> Result<Vec<(usize, Chunk)>, HostError> {
        let workers = self.threads.min(missing.len()).max(1);
        let per_worker_threads = (self.threads / workers).max(1);
        let progress = progress_bar(node, missing.iter().map(|&c| chunk_len(c, items.ids.len())).sum());
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::with_capacity(missing.len()));
        let first_error: Mutex<Option<HostError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let run = || -> Result<(), HostError> {
                        let ctx = self.context(per_worker_threads);
                        let mut renders: Vec<Instance> = Vec::new();
                        for call in &items.chain {
                            renders.push(self.registry.get(&call.plugin)?.plugin.open(
                                &call.function,
                                &call.params_toml(),
                                &ctx,
                            )?);
                        }
                        let mut enc = self.registry.get(&encoder.plugin)?.plugin.open(
                            &encoder.function,
                            &encoder.params_toml(),
                            &ctx,
                        )?;
                        loop {
                            if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                                return Ok(());
                            }
                            let slot = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&c) = missing.get(slot) else { return Ok(()) };
                            let start = c * CHUNK;
                            let end = (start + CHUNK).min(items.ids.len());
                            let chunk = encode_chunk(
                                node,
                                &items.root_values[start..end],
                                start,
                                &mut renders,
                                &mut enc,
                            )?;
                            self.cache.put_embeddings(&keys[c], &chunk)?;
                            progress.inc((end - start) as u64);
                            if let Ok(mut r) = results.lock() {
                                r.push((c, chunk));
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

fn chunk_len(chunk: usize, n: usize) -> usize {
    (n - chunk * CHUNK).min(CHUNK)
}

fn root_items(values: Vec<Value>) -> Items {
    let ids = values.iter().map(value_key).collect();
    Items { root_values: Arc::new(values), ids, chain: Vec::new() }
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

/// Renders a chunk of root items through the chain and encodes it.
fn encode_chunk(
    node: &str,
    roots: &[Value],
    offset: usize,
    renders: &mut [Instance],
    encoder: &mut Instance,
) -> Result<Chunk, HostError> {
    let item_error = |stage: &Instance,
                      results: Vec<commute_sdk::abi::client::ItemResult>|
     -> Result<Vec<Value>, HostError> {
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.map_err(|e| {
                    HostError::Usage(format!(
                        "node `{node}`: `{}/{}` failed on item {}: {e}",
                        stage.plugin(),
                        stage.spec().name,
                        offset + i
                    ))
                })
            })
            .collect()
    };
    let mut owned: Option<Vec<Value>> = None;
    for stage in renders.iter_mut() {
        let input = owned.as_deref().unwrap_or(roots);
        let out = stage.call(input)?;
        owned = Some(item_error(stage, out)?);
    }
    let input = owned.as_deref().unwrap_or(roots);
    let out = encoder.call(input)?;
    let values = item_error(encoder, out)?;
    let dim = encoder.dim().unwrap_or(0);
    let mut data = Vec::with_capacity(values.len() * dim);
    for (i, v) in values.iter().enumerate() {
        match v.as_tensor() {
            Some(t) if t.data.len() == dim && t.data.iter().all(|x| x.is_finite()) => data.extend_from_slice(&t.data),
            Some(t) if t.data.len() == dim => {
                return Err(HostError::Usage(format!("node `{node}`: the embedding of item {} has NaN or infinite values", offset + i)))
            }
            _ => {
                return Err(HostError::Usage(format!(
                    "node `{node}`: the encoder returned a wrong-sized embedding for item {} (its dimension is {dim})",
                    offset + i
                )))
            }
        }
    }
    Ok(Chunk { rows: values.len(), dim, data })
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
