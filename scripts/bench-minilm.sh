#!/usr/bin/env bash
# MiniLM throughput: the text plugin's `minilm` (backends onnx and candle) against Python
# onnxruntime (same int8 model, tokenizer and length bucketing) and sentence-transformers (torch
# on the CPU), on the same 2000 sentences from the `sentences` source, 2 threads each, one run.
#   scripts/bench-minilm.sh                               # builds its venv on first use
#   MINILM_BENCH_VENV=/path/to/venv scripts/bench-minilm.sh   # a venv of your own (reused as is
#                                                          # when it has the packages)
#   MINILM_BENCH_THREADS=4 MINILM_BENCH_COUNT=1000 scripts/bench-minilm.sh
# The venv gets sentence-transformers (which brings torch: the default torch wheel is the large
# CUDA build; point PIP_EXTRA_INDEX_URL at a CPU-only torch index to get the small one),
# onnxruntime==1.31.1 (the runtime the plugin loads), tokenizers and numpy.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MINILM_BENCH_VENV:-target/bench-venv-minilm}"
PACKAGES=(sentence-transformers onnxruntime==1.31.1 tokenizers numpy)
if ! "$VENV/bin/python" -c 'import sentence_transformers, onnxruntime, tokenizers, numpy' 2>/dev/null; then
    echo "creating the Python venv for the peers in $VENV (first run only)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "${PACKAGES[@]}"
fi

export MINILM_BENCH_PYTHON="$VENV/bin/python"
exec cargo bench -p commute-plugin-text --bench minilm -- "$@"
