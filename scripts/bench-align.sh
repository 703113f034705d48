#!/usr/bin/env bash
# Benchmark of the feature-alignment solvers (Procrustes, ridge): Rust/faer vs numpy on the same
# matrices, 2 threads each, printed side by side with ratios.
#   scripts/bench-align.sh                      # n = 20000, d = 768
#   ALIGN_BENCH_N=5000 scripts/bench-align.sh   # smaller
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import numpy, threadpoolctl' 2>/dev/null; then
    echo "installing numpy and threadpoolctl for the Python baseline" >&2
    python3 -m pip install --quiet numpy threadpoolctl
fi

export ALIGN_BENCH_THREADS="${ALIGN_BENCH_THREADS:-2}"
export RAYON_NUM_THREADS="$ALIGN_BENCH_THREADS"
# The bench itself runs numpy with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from that
# command's environment only (they slow OpenBLAS down on these machines).
exec cargo bench -p commute-host --bench align -- "$@"
