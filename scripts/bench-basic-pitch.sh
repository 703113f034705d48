#!/usr/bin/env bash
# Benchmark of the `basic-pitch` encoder against Python ONNX Runtime on the same 60 s of
# synthesized music (one WAV file both read), same model, same windowing, 2 threads each.
# Rust and Python runs alternate so that neighbouring runs see the same machine load; the
# summary prints audio-seconds per second (median and best over all rounds) and the Rust/Python
# ratio (median over repeats of each Rust run against the Python run after it, and best round
# against best round), and checks that both produce the same posteriorgrams and embedding.
#   scripts/bench-basic-pitch.sh
#   BASIC_PITCH_BENCH_REPEATS=6 BASIC_PITCH_BENCH_ROUNDS=5 scripts/bench-basic-pitch.sh
# The Python side lives in its own virtual environment (onnxruntime 1.31.1 and numpy, installed
# with pip on first use and reused): $BASIC_PITCH_VENV, default target/venv-basic-pitch.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${BASIC_PITCH_VENV:-target/venv-basic-pitch}"
OUT="${BASIC_PITCH_BENCH_OUT:-target/bench-basic-pitch}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"  # absolute: cargo runs benches in the package folder
REPEATS="${BASIC_PITCH_BENCH_REPEATS:-4}"
export BASIC_PITCH_BENCH_THREADS="${BASIC_PITCH_BENCH_THREADS:-2}"
export BASIC_PITCH_BENCH_ROUNDS="${BASIC_PITCH_BENCH_ROUNDS:-3}"
export BASIC_PITCH_BENCH_BATCHES="${BASIC_PITCH_BENCH_BATCHES:-8}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV for the Python peer" >&2
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import onnxruntime, numpy; assert onnxruntime.__version__ == "1.31.1"' 2>/dev/null; then
    echo "installing onnxruntime==1.31.1 and numpy into $VENV" >&2
    "$PY" -m pip install --quiet onnxruntime==1.31.1 numpy
fi

mkdir -p "$OUT"
rm -f "$OUT"/rust-times.txt "$OUT"/python-times.txt
cargo bench -p commute-plugin-audio --bench basic_pitch --no-run

peer() {
    "$PY" - "$OUT" "$@" <<'PYTHON'
"""The Python peer: upstream Basic Pitch windowing + ONNX Runtime + the same pooling in numpy."""
import sys, time, wave
import numpy as np
import onnxruntime as ort

out, mode = sys.argv[1], sys.argv[2]
report = dict(l.split(" ", 1) for l in open(f"{out}/rust.txt").read().splitlines() if l.startswith(("model ", "threads ")))
SR, HOP_FFT, WINDOW, OVERLAP = 22050, 256, 43844, 30 * 256
HOP = WINDOW - OVERLAP
NAMES = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"]

def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0

def posteriorgrams(sess, x, batch):
    # As the package's inference does: half the overlap of zeros in front, windows every HOP,
    # the last one zero-padded; 15 frames dropped at each end of every window; cut to length.
    padded = np.concatenate([np.zeros(OVERLAP // 2, np.float32), x])
    windows = []
    for start in range(0, len(padded), HOP):
        w = padded[start:start + WINDOW]
        windows.append(np.pad(w, (0, WINDOW - len(w))))
    windows = np.stack(windows)[..., None]
    outs = [[] for _ in NAMES]
    for b in range(0, len(windows), batch):
        for o, v in zip(outs, sess.run(NAMES, {"serving_default_input_2:0": windows[b:b + batch]})):
            o.append(v)
    frames = int(np.floor(len(x) * (SR // HOP_FFT) / SR))
    result = []
    for o in outs:
        a = np.concatenate(o)[:, 15:-15, :]
        result.append(a.reshape(-1, a.shape[-1])[:frames])
    return result

def summary(note, onset, contour):
    # The encoder's default pooling: rescale (p - 0.1) / 0.8 to 0-1, then per-key note mean and
    # max, onset mean, and the contour folded to 36 pitch-class bins.
    r = lambda a: np.clip((a - 0.1) / 0.8, 0.0, 1.0)
    note, onset, contour = r(note), r(onset), r(contour)
    folded = np.zeros(36, np.float64)
    np.add.at(folded, (np.arange(264) + 27) % 36, contour.mean(axis=0, dtype=np.float64))
    return np.concatenate([note.mean(0, dtype=np.float64), note.max(0), onset.mean(0, dtype=np.float64), folded]).astype(np.float32)

if mode == "run":
    threads, rounds, batches = int(sys.argv[3]), int(sys.argv[4]), [int(b) for b in sys.argv[5].split(",")]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(report["model"], opts, providers=["CPUExecutionProvider"])
    x = read_wav(f"{out}/music.wav")
    lines = []
    # The same batch size as Rust, and one window per call as the package itself runs.
    for batch in sorted(set(batches + [1])):
        summary(*posteriorgrams(sess, x, batch))  # warm-up
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            summary(*posteriorgrams(sess, x, batch))
            times.append(time.perf_counter() - t)
        times.sort()
        secs = len(x) / SR
        print(f"python batch-windows = {batch:3}: basic-pitch {secs / times[len(times) // 2]:6.1f} audio-s/s (best {secs / times[0]:6.1f})")
        lines.append(f"python-encoder batch={batch} times=" + ",".join(f"{t:.4f}" for t in times))
    with open(f"{out}/python-times.txt", "a") as f:
        f.write("\n".join(lines) + "\n")
    # Same outputs: frame-level posteriorgrams and the pooled embedding.
    grams = posteriorgrams(sess, x, batches[0])
    for name, g in zip(["note", "onset", "contour"], grams):
        r = np.load(f"{out}/rust-{name}.npy")
        assert r.shape == g.shape, (name, r.shape, g.shape)
        print(f"  {name:8} {g.shape[0]} frames x {g.shape[1]}: max |rust - python| = {np.abs(r - g).max():.3g}")
    e, r = summary(*grams), np.load(f"{out}/rust-embedding.npy")
    print(f"  embedding {len(e)} dims: max |rust - python| = {np.abs(r - e).max():.3g}")
else:
    def parse(path):
        # {(name, batch): [times of repeat 1, times of repeat 2, ...]}
        runs = {}
        for l in open(path).read().split("\n"):
            if l.strip():
                name, batch, ts = l.split(" ")
                key = (name, int(batch.split("=")[1]))
                runs.setdefault(key, []).append([float(t) for t in ts.split("=")[1].split(",")])
        return runs
    rust, python = parse(f"{out}/rust-times.txt"), parse(f"{out}/python-times.txt")
    secs = len(read_wav(f"{out}/music.wav")) / SR
    median = lambda ts: sorted(ts)[len(ts) // 2]
    flat = lambda runs: [t for r in runs for t in r]
    print(f"\nbasic-pitch bench: {secs:.0f} s of synthesized music at 22.05 kHz, {report['threads']} threads, "
          f"onnxruntime {ort.__version__}, {len(next(iter(rust.values())))} alternating repeats")
    print(f"{'case':38} {'median':>8} {'best':>8}  (audio-seconds per second, over all rounds)")
    for (name, batch), runs in sorted(rust.items()) + sorted(python.items()):
        ts = flat(runs)
        print(f"{name + ' batch-windows=' + str(batch):38} {secs / median(ts):8.1f} {secs / min(ts):8.1f}")
    for (name, batch), runs in sorted(rust.items()):
        if name != "rust-encoder":
            continue
        for peer_batch in sorted(b for n, b in python if n == "python-encoder"):
            peer = python[("python-encoder", peer_batch)]
            # Each Rust repeat against the Python run right after it (same machine load), then
            # the median over repeats; and the best round of each side.
            paired = median([median(p) / median(r) for r, p in zip(runs, peer)])
            best = min(flat(peer)) / min(flat(runs))
            print(f"ratio rust (batch-windows={batch}) / python (batch-windows={peer_batch}): "
                  f"{paired:.2f}x (median of paired repeats), {best:.2f}x (best rounds)")
PYTHON
}

for i in $(seq 1 "$REPEATS"); do
    cargo bench -p commute-plugin-audio --bench basic_pitch -- --out "$OUT" 2>&1 | grep -v '^\s*\(Finished\|Running\)'
    grep '^rust-' "$OUT/rust.txt" >> "$OUT/rust-times.txt"
    peer run "$BASIC_PITCH_BENCH_THREADS" "$BASIC_PITCH_BENCH_ROUNDS" "$BASIC_PITCH_BENCH_BATCHES"
done
peer summary
