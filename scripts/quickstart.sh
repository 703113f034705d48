#!/usr/bin/env bash
# The quickstart: build everything, show the plugins, fetch the models it uses, then run experiments/quickstart.toml end to
# end — generate scores, render them to audio, extract (cached) embeddings, fit and evaluate the
# alignments over the anchor sweep, and write a run folder with metrics.json and report.md.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --quiet
commute="${CARGO_TARGET_DIR:-target}/release/commute"

echo "== plugins"
$commute plugins
echo
echo "== assets (the models the quickstart uses, fetched with pip and verified by sha256)"
$commute fetch onnxruntime basic-pitch-nmp-onnx
echo
echo "== check"
$commute check experiments/quickstart.toml
echo
echo "== run"
$commute run experiments/quickstart.toml --runs "${COMMUTE_RUNS:-runs}"
