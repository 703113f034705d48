#!/usr/bin/env bash
# GPU benchmark — NOT YET RUN ON A GPU. What could be checked without one was: the `cuda` builds
# (candle's kernels compiled for sm_90 by the CUDA 13.0 compiler this script installs, the text
# plugin linked against the CUDA 13 libraries), ONNX Runtime's GPU build loading the CUDA provider
# up to the missing driver (`libcuda.so.1`), and the whole script in its rehearsal mode
# (GPU_BENCH_DEVICE=cpu, below). The GPU rows' first run is also their test. Not part of CI.
#
# Throughput (items per second) of MiniLM (backends candle and onnx) and Basic Pitch on the CPU
# and on cuda:0, in one run, through the real `commute call --device …` on generated inputs:
# 2000 sentences from the text plugin's `sentences` source, and 64 clips of 4–8 s of music from
# `random-scores` rendered by `synth`. Each case is timed on the full input and on a small one
# (one batch), R times each; the rate is (N − n) / (median t_N − median t_n), so loading the
# library, the model and the CUDA context counts once and cancels out (the small call's time is
# shown as "start"). The GPU embeddings are compared with the CPU ones (max |difference|).
#
#   scripts/bench-gpu.sh
#   GPU_BENCH_REPEATS=5 GPU_BENCH_SENTENCES=2000 GPU_BENCH_CLIPS=128 scripts/bench-gpu.sh
#   GPU_BENCH_DEVICE=cpu scripts/bench-gpu.sh   # rehearsal on a machine without a GPU
#
# What it needs, and checks before building anything:
#   - an NVIDIA GPU and its driver: `nvidia-smi` must list one (else it stops at once). ONNX
#     Runtime's GPU build 1.31.1 is built for CUDA 13, so the driver must support CUDA 13;
#   - python3 with venv and pip: into $GPU_BENCH_VENV (default target/venv-gpu) it installs
#     `onnxruntime-gpu[cuda,cudnn]==1.31.1`, which brings NVIDIA's CUDA 13 runtime, cuBLAS, cuFFT,
#     cuRAND, NVRTC and cuDNN 9 wheels. The plugins load that wheel's
#     onnxruntime/capi/libonnxruntime.so.1.31.1 (the CUDA provider libraries lie beside it; the
#     provider needs libcudart.so.13, libcublas.so.13 and libcurand.so.10 and has no RUNPATH)
#     through COMMUTE_ONNXRUNTIME_GPU instead of the `onnxruntime` asset (the CPU build, which has
#     no CUDA provider), and the NVIDIA libraries through LD_LIBRARY_PATH;
#   - a CUDA compiler for the text plugin's `cuda` feature (candle's kernels are compiled when it
#     is built; CUDA_COMPUTE_CAP is taken from nvidia-smi when unset): `nvcc` on PATH (CUDA 12 or
#     13, e.g. your cluster's cuda module), or else the script installs NVIDIA's CUDA 13.0 compiler
#     wheels (nvcc, nvvm, crt, cudart headers, cccl: about 200 MB) into the same venv, and makes a
#     folder of the unversioned library names the linker wants (libcudart.so, libcublas.so, …,
#     libcuda.so from the driver). candle links the plugin against these libraries, so a `cuda`
#     build of the text plugin loads only where the NVIDIA driver (libcuda.so.1) is installed.
# The plugins are built in release mode with `--features cuda` into target/gpu (the CPU builds in
# target/ stay as they are); the CPU rows use the same libraries with `--device cpu`.
#
# Rehearsal (GPU_BENCH_DEVICE=cpu): no GPU, driver or compiler is needed; the plugins are built
# without `cuda` into target/ (the ordinary release build), ONNX Runtime is the GPU wheel's library running on the
# CPU, and both rows of each case run on the CPU. It checks everything the script does except
# the CUDA build and the GPU rows.
#
# Environment: GPU_BENCH_VENV, GPU_BENCH_OUT (target/bench-gpu), GPU_BENCH_REPEATS (3),
# GPU_BENCH_SENTENCES (2000, at most 2180), GPU_BENCH_CLIPS (64), GPU_BENCH_THREADS (all cores:
# the CPU rows' budget), GPU_BENCH_DEVICE (cuda:0; `cpu` rehearses).
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

fail() {
    echo "bench-gpu: $*" >&2
    exit 1
}

DEVICE="${GPU_BENCH_DEVICE:-cuda:0}"
case "$DEVICE" in
cpu) REHEARSAL=1 ;;
cuda | cuda:[0-9]*) REHEARSAL=0 ;;
*) fail "GPU_BENCH_DEVICE must be cuda:N (or cpu to rehearse), not \`$DEVICE'" ;;
esac

# --- Fail early: a GPU, Python. ----------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || fail "python3 is missing (needed for the venv with onnxruntime-gpu)"
if [ "$REHEARSAL" = 0 ]; then
    command -v nvidia-smi >/dev/null 2>&1 ||
        fail "no GPU here: nvidia-smi is missing (this benchmark needs an NVIDIA GPU and its driver; GPU_BENCH_DEVICE=cpu rehearses it without one)"
    GPUS="$(nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>&1)" ||
        fail "nvidia-smi finds no usable GPU: $GPUS"
    [ -n "$GPUS" ] || fail "nvidia-smi lists no GPU"
    gpu_info() { nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader; }
else
    echo "bench-gpu: rehearsal: every row runs on the CPU, and the plugins are built without \`cuda'" >&2
    gpu_info() { echo "none (rehearsal: both rows of each case ran on the CPU)"; }
fi

REPEATS="${GPU_BENCH_REPEATS:-3}"
SENTENCES="${GPU_BENCH_SENTENCES:-2000}"
CLIPS="${GPU_BENCH_CLIPS:-64}"
THREADS="${GPU_BENCH_THREADS:-$(nproc)}"
VENV="${GPU_BENCH_VENV:-target/venv-gpu}"
OUT="${GPU_BENCH_OUT:-target/bench-gpu}"
TARGET=target/gpu
if [ "$REHEARSAL" = 1 ]; then TARGET=target; fi # the ordinary CPU build
# The second row's files: cuda0.npy, or rehearsal.npy (the CPU again, in a rehearsal).
SECOND_TAG="${DEVICE//:/}"
if [ "$REHEARSAL" = 1 ]; then SECOND_TAG=rehearsal; fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
if [ "$REHEARSAL" = 0 ] && [ -z "${CUDA_COMPUTE_CAP:-}" ]; then
    CUDA_COMPUTE_CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d '.[:space:]')"
    export CUDA_COMPUTE_CAP
fi

# --- ONNX Runtime's GPU build and NVIDIA's libraries, from the package registry via pip. -----
if ! "$VENV/bin/python" -c 'import onnxruntime; assert onnxruntime.__version__ == "1.31.1"' 2>/dev/null; then
    echo "installing onnxruntime-gpu[cuda,cudnn]==1.31.1 into $VENV (first run only; about 1.5 GB)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "onnxruntime-gpu[cuda,cudnn]==1.31.1"
fi
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
CAPI="$SITE/onnxruntime/capi"
ORT_GPU=""
for lib in "$CAPI"/libonnxruntime.so.1.31.1 "$CAPI"/libonnxruntime.so.*; do
    if [ -e "$lib" ]; then
        ORT_GPU="$lib"
        break
    fi
done
[ -n "$ORT_GPU" ] || fail "no libonnxruntime.so.* in $CAPI: the onnxruntime-gpu wheel's layout is not the expected one"
[ -e "$CAPI/libonnxruntime_providers_cuda.so" ] ||
    fail "$CAPI has no libonnxruntime_providers_cuda.so: is this the GPU build of ONNX Runtime?"
export COMMUTE_ONNXRUNTIME_GPU="$ORT_GPU"
NVIDIA_LIBS="$(find "$SITE/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd: -)"
[ -n "$NVIDIA_LIBS" ] || fail "no NVIDIA libraries under $SITE/nvidia (the [cuda,cudnn] extras of onnxruntime-gpu bring them)"
TOOLKIT_LIBS="$(dirname "$(dirname "$(command -v nvcc)")")/lib64"
[ -d "$TOOLKIT_LIBS" ] && NVIDIA_LIBS="$NVIDIA_LIBS:$TOOLKIT_LIBS"
export LD_LIBRARY_PATH="$NVIDIA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# --- A CUDA compiler: the one on PATH, or NVIDIA's CUDA 13.0 compiler wheels. ------------------
if [ "$REHEARSAL" = 0 ] && ! command -v nvcc >/dev/null 2>&1; then
    CU13="$SITE/nvidia/cu13"
    if [ ! -x "$CU13/bin/nvcc" ]; then
        echo "nvcc is not on PATH: installing NVIDIA's CUDA 13.0 compiler wheels into $VENV (about 200 MB)" >&2
        "$VENV/bin/python" -m pip install --quiet "nvidia-cuda-nvcc==13.0.88" "nvidia-nvvm==13.0.88" \
            "nvidia-cuda-crt==13.0.88" "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cccl==13.0.85"
    fi
    [ -x "$CU13/bin/nvcc" ] || fail "no nvcc in $CU13/bin after installing the compiler wheels"
    export PATH="$CU13/bin:$PATH"
    # The linker wants unversioned names; the wheels and the driver have only versioned ones.
    LINK="$(cd "$VENV" && pwd)/link"
    mkdir -p "$LINK"
    for lib in cudart.so.13 cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13; do
        found="$(find "$SITE/nvidia" -name "lib$lib" | head -n 1)"
        [ -n "$found" ] || fail "no lib$lib under $SITE/nvidia"
        ln -sfn "$found" "$LINK/lib${lib%%.so*}.so"
    done
    DRIVER="$(ldconfig -p | awk '/libcuda\.so\.1 / { print $NF; exit }')"
    [ -n "$DRIVER" ] || fail "the NVIDIA driver's libcuda.so.1 is not in the linker cache (ldconfig -p)"
    ln -sfn "$DRIVER" "$LINK/libcuda.so"
    export LIBRARY_PATH="$LINK${LIBRARY_PATH:+:$LIBRARY_PATH}"
fi

# --- Build: host, music (inputs), text and audio with `cuda`. --------------------------------
if [ "$REHEARSAL" = 0 ]; then
    FEATURES=(--features "commute-plugin-text/cuda,commute-plugin-audio/cuda")
    echo "building commute and the plugins with --features cuda into $TARGET (release)" >&2
else
    FEATURES=()
    echo "building commute and the plugins (no cuda: rehearsal) into $TARGET (release)" >&2
fi
cargo build --release --quiet --target-dir "$TARGET" -p commute-host -p commute-plugin-music \
    -p commute-plugin-text -p commute-plugin-audio "${FEATURES[@]}"
BIN="$TARGET/release"
commute() {
    "$BIN/commute" --quiet --no-default-plugins --threads "$THREADS" \
        --plugin "$BIN/libcommute_plugin_music.so" --plugin "$BIN/libcommute_plugin_text.so" \
        --plugin "$BIN/libcommute_plugin_audio.so" "$@"
}

# --- Inputs. ----------------------------------------------------------------------------------
SMALL_SENTENCES=32 # one batch of MiniLM
SMALL_CLIPS=2
commute call text sentences --params "count = $SENTENCES" -o "$OUT/sentences.txt" >/dev/null
head -n "$SMALL_SENTENCES" "$OUT/sentences.txt" >"$OUT/sentences-small.txt"
rm -rf "$OUT/clips" && mkdir -p "$OUT/clips"
commute call music random-scores --params "count = $CLIPS" --params 'seed = 1' \
    --params 'max-duration-s = 8.0' -o "$OUT/scores.json" >/dev/null
commute call music synth --input "$OUT/scores.json" -o "$OUT/clips/clip.wav" >/dev/null
mapfile -t ALL_CLIPS < <(printf '%s\n' "$OUT"/clips/clip-*.wav | sort -V)
[ "${#ALL_CLIPS[@]}" -eq "$CLIPS" ] || fail "expected $CLIPS clips, found ${#ALL_CLIPS[@]}"
AUDIO_S="$("$VENV/bin/python" - "${ALL_CLIPS[@]}" <<'PYTHON'
import struct, sys
def seconds(path):
    # RIFF chunks: `fmt ` holds the byte rate, `data` the samples (the files are
    # WAVE_FORMAT_EXTENSIBLE, which Python's `wave` does not read).
    data, at, rate, size = open(path, "rb").read(), 12, None, None
    while at + 8 <= len(data):
        tag, n = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        if tag == b"fmt ":
            rate = struct.unpack("<I", data[at + 16:at + 20])[0]
        elif tag == b"data":
            size = n
        at += 8 + n + (n & 1)
    return size / rate
print(f"{sum(seconds(p) for p in sys.argv[1:]):.1f}")
PYTHON
)"

# --- Timing. ----------------------------------------------------------------------------------
seconds() { # the wall time of one command, in seconds
    local t0=$EPOCHREALTIME
    "$@" >/dev/null
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f\n", b - a }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ROWS=()
# case: label, device, the tag of its output files, items in the full and the small input, then
# the `commute call` arguments up to the inputs; the inputs are the arrays FULL and SMALL.
measure() {
    local label=$1 device=$2 tag="${1//[^a-z]/}-$3" n_full=$4 n_small=$5
    shift 5
    commute call "$@" --device "$device" "${SMALL[@]}" -o "$OUT/warmup.npy" >/dev/null # assets, page cache
    local full=() small=()
    for _ in $(seq 1 "$REPEATS"); do
        small+=("$(seconds commute call "$@" --device "$device" "${SMALL[@]}" -o "$OUT/small.npy")")
        full+=("$(seconds commute call "$@" --device "$device" "${FULL[@]}" -o "$OUT/$tag.npy")")
    done
    local ts tf
    ts="$(median "${small[@]}")"
    tf="$(median "${full[@]}")"
    local rate
    rate="$(awk -v n="$n_full" -v m="$n_small" -v a="$ts" -v b="$tf" \
        'BEGIN { if (b > a) printf "%.1f", (n - m) / (b - a); else print "n/a" }')"
    ROWS+=("$(printf '%-18s %-7s %6s %9.2f %9.2f %10s' "$label" "$device" "$n_full" "$ts" "$tf" "$rate")")
    echo "${ROWS[-1]}" >&2
}

echo >&2
gpu_info | sed 's/^/gpu: /' >&2
echo "cpu: $(nproc) cores, $THREADS threads for the CPU rows; $REPEATS repeats (medians)" >&2
printf '%-18s %-7s %6s %9s %9s %10s\n' case device items "start s" "total s" "items/s" >&2

FULL=(--input "$OUT/sentences.txt")
SMALL=(--input "$OUT/sentences-small.txt")
ROW_DEVICES=(cpu "$DEVICE")
ROW_TAGS=(cpu "$SECOND_TAG")
for r in 0 1; do
    device="${ROW_DEVICES[$r]}" tag="${ROW_TAGS[$r]}"
    measure "minilm (candle)" "$device" "$tag" "$SENTENCES" "$SMALL_SENTENCES" text minilm --params 'backend = "candle"'
    measure "minilm (onnx)" "$device" "$tag" "$SENTENCES" "$SMALL_SENTENCES" text minilm --params 'backend = "onnx"'
done
FULL=(--input "${ALL_CLIPS[@]}")
SMALL=(--input "${ALL_CLIPS[@]:0:$SMALL_CLIPS}")
for r in 0 1; do
    measure "basic-pitch" "${ROW_DEVICES[$r]}" "${ROW_TAGS[$r]}" "$CLIPS" "$SMALL_CLIPS" audio basic-pitch
done

# --- Summary, and how far the GPU's embeddings are from the CPU's. ----------------------------
{
    echo
    echo "bench-gpu: $(date -u +%Y-%m-%dT%H:%M:%SZ), commute $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    gpu_info | sed 's/^/gpu: /'
    echo "onnxruntime: $COMMUTE_ONNXRUNTIME_GPU"
    echo "inputs: $SENTENCES sentences; $CLIPS clips, ${AUDIO_S} s of audio (basic-pitch items/s × $(awk -v s="$AUDIO_S" -v n="$CLIPS" 'BEGIN { printf "%.2f", s / n }') = audio-s/s)"
    echo "start = median time of a call on one batch (library, model, device start-up); items/s = (N − n) / (total − start)"
    printf '%-18s %-7s %6s %9s %9s %10s\n' case device items "start s" "total s" "items/s"
    printf '%s\n' "${ROWS[@]}"
    "$VENV/bin/python" - "$OUT" "$SECOND_TAG" <<'PYTHON'
import sys
import numpy as np
out, second = sys.argv[1], sys.argv[2]
for case in ["minilmcandle", "minilmonnx", "basicpitch"]:
    a, b = np.load(f"{out}/{case}-cpu.npy"), np.load(f"{out}/{case}-{second}.npy")
    print(f"{case:18} max |{second} - cpu| = {np.abs(a - b).max():.3g} over {a.shape[0]} x {a.shape[1]}")
PYTHON
} | tee "$OUT/summary.txt"
