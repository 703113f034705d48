//! Benchmark: `minilm` sentences per second on both backends, side by side with Python
//! onnxruntime (same int8 model, same tokenizer, same length bucketing) and sentence-transformers
//! (torch on the CPU, fp32), on the same sentences, in the same run; and the generic `onnx`
//! encoder given the same model and tokenizer (configured as MiniLM) beside the dedicated one.
//!
//! Run: `scripts/bench-minilm.sh` (builds a Python venv with the peers, then runs this). The bench
//! takes sentences from the plugin's `sentences` source, times `minilm` through the SDK harness
//! (the plugin ABI the host uses) and the Python peers in a subprocess on the same sentences and
//! model files, the four sides taking turns pass by pass (so that a change in machine load falls on
//! all of them), and prints the median sentences/s, ratios and how closely the outputs agree.
//!
//! Environment: `MINILM_BENCH_COUNT` (default 2000), `MINILM_BENCH_THREADS` (2),
//! `MINILM_BENCH_BATCH` (32), `MINILM_BENCH_SAMPLES` (3 passes each), `MINILM_BENCH_PYTHON`
//! (the Python with sentence-transformers, onnxruntime, tokenizers and numpy; default `python3`;
//! the Python side is skipped, with the reason, when it cannot run).

use commute_plugin_text::commute_plugin;
use commute_plugin_text::minilm::onnx::{layer_tensor, MODEL_INT8};
use commute_plugin_text::minilm::{candle::MODEL_F32, tokenize::TOKENIZER};
use commute_sdk::asset::AssetStore;
use commute_sdk::testing::Harness;
use commute_sdk::{Context, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The Python peers, as a server: it loads them, warms them up and prints one JSON line (their
/// versions; sentence-transformers' is null, with the reason, where torch is missing); then each
/// `ort`, `ort-layers` or `st` line on stdin runs one timed pass over all sentences and prints
/// `{"seconds": …}`; `save` writes `<side>.f32` (embeddings, row-major) into the folder.
/// Arguments: folder (holding `sentences.json`), threads, batch size, int8 model, safetensors,
/// tokenizer.json, the int8 model with every layer an output, and those outputs' names (commas).
const PYTHON_PEERS: &str = r#"
import json, os, sys, tempfile, time
folder, threads, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model_onnx, weights, tokenizer_json = sys.argv[4], sys.argv[5], sys.argv[6]
layers_onnx, layer_names = sys.argv[7], sys.argv[8].split(",")
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

sentences = json.load(open(os.path.join(folder, "sentences.json")))

# Python onnxruntime: the same model, tokenizer set-up, length bucketing and pooling as the plugin.
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(model_onnx, options, providers=["CPUExecutionProvider"])
layers_session = ort.InferenceSession(layers_onnx, options, providers=["CPUExecutionProvider"])
tokenizer = Tokenizer.from_file(tokenizer_json)
tokenizer.no_padding()
tokenizer.enable_truncation(256)

def ort_run(texts, run_session, names):
    """Pooled, unit-length vectors of each tensor in `names`, side by side."""
    ids = [e.ids for e in tokenizer.encode_batch(texts)]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    out = np.empty((len(ids), 384 * len(names)), np.float32)
    for start in range(0, len(order), batch):
        rows = order[start:start + batch]
        width = max(len(ids[i]) for i in rows)
        x = np.zeros((len(rows), width), np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for r, i in enumerate(rows):
            x[r, :len(ids[i])] = ids[i]
            mask[r, :len(ids[i])] = 1
        states = run_session.run(names, {"input_ids": x, "attention_mask": mask, "token_type_ids": np.zeros_like(x)})
        parts = []
        for hidden in states:
            pooled = (hidden * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
            parts.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        out[rows] = np.concatenate(parts, axis=1)
    return out

ort_embed = lambda texts: ort_run(texts, session, ["last_hidden_state"])
ort_layers = lambda texts: ort_run(texts, layers_session, layer_names)
runs = {"ort": ort_embed, "ort-layers": ort_layers}
versions = {"onnxruntime": ort.__version__, "sentence_transformers": None, "torch": None}
try:
    import torch
    import sentence_transformers
    from sentence_transformers import SentenceTransformer, models
    torch.set_num_threads(threads)
    versions.update(sentence_transformers=sentence_transformers.__version__, torch=torch.__version__)
except ImportError as e:
    versions["st_missing"] = str(e)

# sentence-transformers on the fp32 weights: a model folder made of the same asset files.
def st_model():
    model_dir = tempfile.mkdtemp()
    os.symlink(weights, os.path.join(model_dir, "model.safetensors"))
    os.symlink(tokenizer_json, os.path.join(model_dir, "tokenizer.json"))
    json.dump({"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 30522, "hidden_size": 384,
               "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu",
               "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512,
               "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
               "position_embedding_type": "absolute"}, open(os.path.join(model_dir, "config.json"), "w"))
    json.dump({"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"},
              open(os.path.join(model_dir, "tokenizer_config.json"), "w"))
    st = SentenceTransformer(modules=[models.Transformer(model_dir, max_seq_length=256),
                                      models.Pooling(384, pooling_mode="mean"), models.Normalize()], device="cpu")
    return lambda texts: st.encode(texts, batch_size=batch, convert_to_numpy=True)

if versions["torch"]:
    runs["st"] = st_model()

outputs = {name: run(sentences[:64]) for name, run in runs.items()}
print(json.dumps(versions), flush=True)
for line in sys.stdin:
    name = line.strip()
    if name == "save":
        for key, value in outputs.items():
            value.astype(np.float32).tofile(os.path.join(folder, key + ".f32"))
        print(json.dumps({"saved": True}), flush=True)
        continue
    start = time.perf_counter()
    outputs[name] = runs[name](sentences)
    print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
"#;

/// MiniLM's layers: its token embeddings and the output of each of its six blocks.
const ALL_LAYERS: [usize; 7] = [0, 1, 2, 3, 4, 5, 6];

/// One embedding per sentence.
type Embeddings = Vec<Vec<f32>>;

/// The Python peers' process.
struct Peers {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    folder: std::path::PathBuf,
    versions: serde_json::Value,
}

impl Peers {
    /// Starts the Python side on these sentences; `Err` says why it cannot run.
    fn start(sentences: &[String], threads: usize, batch: usize) -> Result<Peers, String> {
        let python = std::env::var("MINILM_BENCH_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let store = AssetStore::from_env();
        let path = |spec| store.ensure(spec).map_err(|e| e.to_string());
        let (model, weights, tokenizer) = (path(&MODEL_INT8)?, path(&MODEL_F32)?, path(&TOKENIZER)?);
        let folder = std::env::temp_dir().join(format!("commute-minilm-bench-{}", std::process::id()));
        std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
        // The int8 model with every layer's token states an output, as the plugin makes it.
        let names: Vec<String> = ALL_LAYERS.iter().map(|&l| layer_tensor(l)).collect();
        let (bytes, _) = commute_sdk::onnx::model_reading_all(&model.display().to_string(), &names)
            .map_err(|e| e.to_string())?;
        let layers_model = folder.join("layers.onnx");
        std::fs::write(&layers_model, bytes).map_err(|e| e.to_string())?;
        let json = serde_json::to_string(sentences).map_err(|e| e.to_string())?;
        std::fs::write(folder.join("sentences.json"), json).map_err(|e| e.to_string())?;
        let mut child = Command::new(&python)
            .args(["-c", PYTHON_PEERS])
            .arg(&folder)
            .args([threads.to_string(), batch.to_string()])
            .args([&model, &weights, &tokenizer, &layers_model])
            .arg(names.join(","))
            .env("RAYON_NUM_THREADS", threads.to_string())
            .env("OMP_NUM_THREADS", threads.to_string())
            .env("TOKENIZERS_PARALLELISM", "true")
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let mut peers = Peers { child, stdin, stdout, folder, versions: serde_json::Value::Null };
        peers.versions = peers.read()?;
        Ok(peers)
    }

    fn read(&mut self) -> Result<serde_json::Value, String> {
        match self.stdout.next() {
            Some(Ok(line)) => serde_json::from_str(&line).map_err(|e| format!("{e}: {line}")),
            _ => {
                let mut stderr = String::new();
                if let Some(mut err) = self.child.stderr.take() {
                    let _ = err.read_to_string(&mut stderr);
                }
                let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
                Err(format!(
                    "the Python peers failed: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
                ))
            }
        }
    }

    /// Whether sentence-transformers runs (torch is installed).
    fn has_st(&self) -> bool {
        self.versions["torch"].is_string()
    }

    /// One timed pass of `ort`, `ort-layers` or `st`, in seconds.
    fn time(&mut self, name: &str) -> Result<f64, String> {
        writeln!(self.stdin, "{name}").map_err(|e| e.to_string())?;
        self.read()?["seconds"].as_f64().ok_or_else(|| "no time".to_owned())
    }

    /// The embeddings of the last `ort`, `st` (where it runs) and `ort-layers` passes.
    fn outputs(&mut self) -> Result<(Embeddings, Option<Embeddings>, Embeddings), String> {
        writeln!(self.stdin, "save").map_err(|e| e.to_string())?;
        self.read()?;
        let ort = read_f32(&self.folder.join("ort.f32"), 384).ok_or("no ort.f32")?;
        let st = read_f32(&self.folder.join("st.f32"), 384);
        let layers = read_f32(&self.folder.join("ort-layers.f32"), 384 * ALL_LAYERS.len())
            .ok_or("no ort-layers.f32")?;
        Ok((ort, st, layers))
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// An open encoder instance that embeds the whole sentence list in one call.
struct Rust {
    instance: commute_sdk::abi::client::Instance,
    output: Embeddings,
}

impl Rust {
    fn open(plugin: &Harness, function: &str, params: &str, values: &[Value]) -> Rust {
        let instance = plugin.open(function, params).unwrap_or_else(|e| panic!("{function} {params}: {e}"));
        let mut rust = Rust { instance, output: Vec::new() };
        rust.run(&values[..values.len().min(64)]);
        rust
    }

    fn run(&mut self, values: &[Value]) -> f64 {
        let start = Instant::now();
        let items = self.instance.call(values).unwrap_or_else(|e| panic!("encoder: {e}"));
        let seconds = start.elapsed().as_secs_f64();
        self.output = items
            .into_iter()
            .map(|item| item.unwrap_or_else(|e| panic!("encoder: {e}")))
            .map(|value| value.as_tensor().expect("an embedding").data.clone())
            .collect();
        seconds
    }
}

fn read_f32(path: &Path, dim: usize) -> Option<Embeddings> {
    let bytes = std::fs::read(path).ok()?;
    let floats: Vec<f32> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Some(floats.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

fn min_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    a.iter().zip(b).map(|(x, y)| dot(x, y) / (dot(x, x) * dot(y, y)).sqrt()).fold(1.0, f32::min)
}

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

fn main() {
    let count = env_usize("MINILM_BENCH_COUNT", 2000);
    let threads = env_usize("MINILM_BENCH_THREADS", 2);
    let batch = env_usize("MINILM_BENCH_BATCH", 32);
    let samples = env_usize("MINILM_BENCH_SAMPLES", 3).max(1);
    let plugin = Harness::new(commute_plugin()).with_context(Context { threads, ..Context::default() });

    let sentences: Vec<String> = plugin
        .call("sentences", &format!("count = {count}"), &[])
        .unwrap_or_else(|e| panic!("sentences: {e}"))
        .iter()
        .map(|v| v.as_text().expect("text").to_owned())
        .collect();
    let values: Vec<Value> = sentences.iter().map(|s| Value::text(s.as_str())).collect();
    let words = sentences.iter().map(|s| s.split_whitespace().count()).sum::<usize>() as f64 / count as f64;
    println!(
        "minilm bench: {count} sentences from `sentences` (mean {words:.1} words), {threads} threads, \
         batch {batch}, median of {samples} passes, the four sides taking turns"
    );

    let mut onnx =
        Rust::open(&plugin, "minilm", &format!("backend = \"onnx\"\nbatch-size = {batch}"), &values);
    let mut candle =
        Rust::open(&plugin, "minilm", &format!("backend = \"candle\"\nbatch-size = {batch}"), &values);
    let store = AssetStore::from_env();
    let file = |spec| store.ensure(spec).unwrap_or_else(|e| panic!("{e}")).display().to_string();
    let generic_params = format!(
        "model = {:?}\ntokenizer = {:?}\nmax-tokens = 256\npooling = \"mean\"\nnormalize = true\nbatch-size = {batch}",
        file(&MODEL_INT8),
        file(&TOKENIZER)
    );
    let mut generic = Rust::open(&plugin, "onnx", &generic_params, &values);
    let mut generic_times = Vec::new();
    let mut peers = Peers::start(&sentences, threads, batch);
    let mut times: [Vec<f64>; 4] = Default::default();
    for _ in 0..samples {
        times[0].push(onnx.run(&values));
        generic_times.push(generic.run(&values));
        if let Ok(p) = &mut peers {
            match p.time("ort") {
                Ok(t) => times[2].push(t),
                Err(e) => peers = Err(e),
            }
        }
        times[1].push(candle.run(&values));
        if let Ok(p) = peers.as_mut().map_err(|_| ()).and_then(|p| if p.has_st() { Ok(p) } else { Err(()) }) {
            match p.time("st") {
                Ok(t) => times[3].push(t),
                Err(e) => peers = Err(e),
            }
        }
    }
    let rate = |t: &Vec<f64>| (!t.is_empty()).then(|| count as f64 / median(t.clone()));
    let rates: Vec<Option<f64>> = times.iter().map(rate).collect();
    let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
        (Some(o), Some(t)) => format!("{:.2}x", o / t),
        _ => "-".to_owned(),
    };
    let mut names =
        vec!["rust minilm, backend onnx (int8)".to_owned(), "rust minilm, backend candle (fp32)".to_owned()];
    if let Ok(p) = &peers {
        let v = &p.versions;
        names.push(format!("python onnxruntime {} (int8)", v["onnxruntime"].as_str().unwrap_or("?")));
        names.push(match v["st_missing"].as_str() {
            None => format!(
                "sentence-transformers {} (torch {}, fp32)",
                v["sentence_transformers"].as_str().unwrap_or("?"),
                v["torch"].as_str().unwrap_or("?")
            ),
            Some(why) => format!("sentence-transformers: not run ({why})"),
        });
    }
    println!(
        "{:<52} {:>12} {:>14} {:>25}",
        "side", "sentences/s", "vs python ort", "vs sentence-transformers"
    );
    for (name, rate) in names.iter().zip(&rates) {
        let shown = rate.map_or("-".to_owned(), |r| format!("{r:.1}"));
        println!("{name:<52} {shown:>12} {:>14} {:>25}", ratio(*rate, rates[2]), ratio(*rate, rates[3]));
    }
    if let (Some(dedicated), Some(generic_rate)) = (rates[0], rate(&generic_times)) {
        println!(
            "generic `onnx` encoder, configured as MiniLM (same int8 model and tokenizer): {generic_rate:.1} \
             sentences/s, {:.2}x the dedicated `minilm` onnx backend; least cosine to it {:.6}",
            generic_rate / dedicated,
            min_cosine(&generic.output, &onnx.output)
        );
    }
    let layers = layer_sweep(&plugin, &values, batch, samples, &mut peers);
    match peers.as_mut().map_err(|e| e.clone()).and_then(|p| p.outputs()) {
        Ok((ort_out, st_out, ort_layers)) => {
            println!(
                "agreement (least cosine over the sentences): rust onnx vs python ort {:.6}, rust candle vs \
                 rust onnx {:.5}",
                min_cosine(&onnx.output, &ort_out),
                min_cosine(&candle.output, &onnx.output)
            );
            if let Some(st_out) = st_out {
                println!(
                    "agreement with sentence-transformers (least cosine): rust candle {:.6}, rust onnx {:.5}",
                    min_cosine(&candle.output, &st_out),
                    min_cosine(&onnx.output, &st_out)
                );
            }
            let worst = (0..ALL_LAYERS.len())
                .map(|l| {
                    let part = |e: &Embeddings| -> Embeddings {
                        e.iter().map(|row| row[l * 384..(l + 1) * 384].to_vec()).collect()
                    };
                    min_cosine(&part(&layers), &part(&ort_layers))
                })
                .fold(1.0, f32::min);
            println!("agreement of the one-pass layers, rust onnx vs python ort (least cosine, any layer): {worst:.6}");
        }
        Err(why) => println!(
            "python peers skipped: {why}\nrust candle vs rust onnx (least cosine): {:.5}",
            min_cosine(&candle.output, &onnx.output)
        ),
    }
    stitched(&plugin, &values, batch, samples);
}

/// Stitched inference against the plain model, as a stitch's run calls it: a model's token states
/// rendered at a layer (`minilm-states`, `paraphrase-minilm-states`), each state through a 384 ×
/// 384 map (the host's step, a matrix product), and MiniLM resumed from a layer
/// (`minilm-resume`); against `minilm` on candle (the fp32 weights the resume runs), the sides
/// taking turns pass by pass. The map's values do not change its cost.
fn stitched(plugin: &Harness, values: &[Value], batch: usize, samples: usize) {
    use candle_core::{Device, Tensor as Candle};
    const DIM: usize = 384;
    let map: Vec<f32> = (0..DIM * DIM).map(|k| ((k * 7919 % 1013) as f32 / 1013.0 - 0.5) / 10.0).collect();
    let map = Candle::from_vec(map, (DIM, DIM), &Device::Cpu).expect("the map");
    let apply = |states: Vec<Value>| -> Vec<Value> {
        states
            .into_iter()
            .map(|v| {
                let t = v.as_tensor().expect("token states");
                let rows = t.shape[0];
                let x = Candle::from_slice(&t.data, (rows, DIM), &Device::Cpu).expect("states");
                let y = x.matmul(&map).and_then(|y| y.flatten_all()).and_then(|y| y.to_vec1::<f32>());
                Value::Tensor(commute_sdk::Tensor { shape: vec![rows, DIM], data: y.expect("a product") })
            })
            .collect()
    };
    let params = |layer: usize| format!("layer = {layer}\nbatch-size = {batch}");
    let mut plain =
        Rust::open(plugin, "minilm", &format!("backend = \"candle\"\nbatch-size = {batch}"), values);
    let cases = [
        ("minilm@3 → minilm@3", "minilm-states", 3, 3),
        ("paraphrase@2 → minilm@4", "paraphrase-minilm-states", 2, 4),
    ];
    let mut stitches: Vec<_> = cases
        .iter()
        .map(|&(name, states, i, j)| {
            let open = |f: &str, p: &str| plugin.open(f, p).unwrap_or_else(|e| panic!("{f} {p}: {e}"));
            (name, open(states, &params(i)), open("minilm-resume", &params(j)), Vec::new())
        })
        .collect();
    let mut t_plain = Vec::new();
    for _ in 0..samples {
        t_plain.push(plain.run(values));
        for (_, states, resume, times) in &mut stitches {
            let start = Instant::now();
            let rendered: Vec<Value> = states
                .call(values)
                .unwrap_or_else(|e| panic!("states: {e}"))
                .into_iter()
                .map(|r| r.unwrap_or_else(|e| panic!("states: {e}")))
                .collect();
            let out = resume.call(&apply(rendered)).unwrap_or_else(|e| panic!("resume: {e}"));
            times.push(start.elapsed().as_secs_f64());
            assert_eq!(out.len(), values.len());
        }
    }
    let rate = |t: &[f64]| values.len() as f64 / median(t.to_vec());
    let r_plain = rate(&t_plain);
    println!(
        "stitched inference: token states at a layer, a 384 × 384 map on every state, MiniLM resumed \
         ({} sentences, sentences/s)",
        values.len()
    );
    println!("{:<36} {:>12} {:>16}", "model", "sentences/s", "/ minilm alone");
    println!("{:<36} {r_plain:>12.1} {:>15.2}x", "minilm alone (candle)", 1.0);
    for (name, _, _, times) in &stitches {
        let r = rate(times);
        println!("{:<36} {r:>12.1} {:>15.2}x", format!("stitched {name}"), r / r_plain);
    }
}

/// Every layer of MiniLM, as a layer sweep reads it: one forward pass for all seven (`layers`),
/// against a pass per layer (`layer` = k, seven instances) and against the output alone, per
/// backend, beside Python onnxruntime reading the same seven tensors in one run of the graph. The
/// sides take turns pass by pass. Returns the onnx backend's one-pass output.
fn layer_sweep(
    plugin: &Harness,
    values: &[Value],
    batch: usize,
    samples: usize,
    peers: &mut Result<Peers, String>,
) -> Embeddings {
    let list = format!("{ALL_LAYERS:?}");
    let mut one_pass_onnx = Embeddings::new();
    println!(
        "layer sweep: all {} layers of MiniLM per sentence, {} sentences (sentences/s; a pass per layer is \
         what a sweep cost before one pass read them all)",
        ALL_LAYERS.len(),
        values.len()
    );
    println!(
        "{:<28} {:>12} {:>16} {:>12} {:>20} {:>22}",
        "backend",
        "output only",
        "a pass per layer",
        "one pass",
        "one pass / per layer",
        "one pass / output only"
    );
    let mut python = Vec::new();
    for backend in ["onnx", "candle"] {
        let params = |layer: &str| format!("backend = \"{backend}\"\nbatch-size = {batch}\n{layer}");
        let mut output = Rust::open(plugin, "minilm", &params("layer = 6"), values);
        let mut one = Rust::open(plugin, "minilm", &params(&format!("layers = {list}")), values);
        let mut each: Vec<Rust> = ALL_LAYERS
            .iter()
            .map(|l| Rust::open(plugin, "minilm", &params(&format!("layer = {l}")), values))
            .collect();
        let (mut t_output, mut t_one, mut t_each) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..samples {
            t_output.push(output.run(values));
            t_one.push(one.run(values));
            t_each.push(each.iter_mut().map(|r| r.run(values)).sum::<f64>());
            if backend == "onnx" {
                if let Ok(p) = peers {
                    match p.time("ort-layers") {
                        Ok(t) => python.push(t),
                        Err(e) => *peers = Err(e),
                    }
                }
            }
        }
        let rate = |t: &[f64]| values.len() as f64 / median(t.to_vec());
        let (r_output, r_each, r_one) = (rate(&t_output), rate(&t_each), rate(&t_one));
        println!(
            "{:<28} {r_output:>12.1} {r_each:>16.1} {r_one:>12.1} {:>19.2}x {:>21.2}x",
            format!("rust minilm, {backend}"),
            r_one / r_each,
            r_one / r_output
        );
        if backend == "onnx" {
            if !python.is_empty() {
                let r_python = rate(&python);
                println!(
                    "{:<28} {:>12} {:>16} {r_python:>12.1}   rust onnx one pass / python = {:.2}x",
                    "python onnxruntime, one pass",
                    "-",
                    "-",
                    r_one / r_python
                );
            }
            one_pass_onnx = std::mem::take(&mut one.output);
        }
    }
    one_pass_onnx
}
