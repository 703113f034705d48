#!/usr/bin/env bash
# Benchmark: CSLS retrieval over a 50k × 50k gallery (d = 300) — the host (faer, blocked, streaming
# top-k) against a plain numpy implementation on the same data, both at 2 threads, with the time of
# the matrix product each needs.
#
# numpy cannot hold the 50k × 50k similarity matrix plus the copy np.partition makes (2 × 10 GB) on a
# 24 GB machine, so the numpy version is blocked too (5000 queries per block, two passes: r_T, then
# ranks). Both sides drop r_S, which is constant along a query's row and does not change ranks.
#
# Environment: RETRIEVAL_BENCH_N (default 50000), RETRIEVAL_BENCH_SAMPLES (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

export RETRIEVAL_BENCH_DIR=${RETRIEVAL_BENCH_DIR:-$PWD/target/bench-retrieval}
export RAYON_NUM_THREADS=2

if ! python3 -c "import numpy, threadpoolctl" 2>/dev/null; then
    python3 -m pip install --quiet numpy threadpoolctl
fi

cargo bench -p commute-host --bench retrieval

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow numpy's GEMM down on this machine: unset for this command only.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 \
    python3 - "$RETRIEVAL_BENCH_DIR" <<'PY'
import json, sys, time
from pathlib import Path
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

root = Path(sys.argv[1])
Q = np.load(root / "queries.npy")
G = np.load(root / "gallery.npy")
rust = json.loads((root / "rust.json").read_text())
n, k, block = Q.shape[0], 10, 5000
samples = int(__import__("os").environ.get("RETRIEVAL_BENCH_SAMPLES", "3"))
for info in threadpool_info():
    print(f"numpy {np.__version__}: {info.get('internal_api')} {info.get('version')} "
          f"({info.get('architecture')}), {info.get('num_threads')} threads")

def normalise(m):
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms > 0, norms, 1)

def product():
    for b in range(0, n, block):
        S = Q[b:b + block] @ G.T
    return S

def csls_p1():
    q, g = normalise(Q), normalise(G)
    truth = np.arange(n)
    # pass 1: r_T[j] = mean of the k largest cosines of gallery item j to the queries
    top = np.full((G.shape[0], k), -np.inf, dtype=np.float32)
    for b in range(0, n, block):
        St = g @ q[b:b + block].T                                  # gallery × block
        part = np.partition(St, St.shape[1] - k, axis=1)[:, -k:]
        both = np.concatenate([top, part], axis=1)
        top = np.partition(both, both.shape[1] - k, axis=1)[:, -k:]
    r_t = top.mean(axis=1)
    # pass 2: rank of the truth under 2·cos − r_T
    ranks = np.empty(n, dtype=np.int64)
    for b in range(0, n, block):
        C = 2 * (q[b:b + block] @ g.T) - r_t
        t = C[np.arange(C.shape[0]), truth[b:b + block]]
        ranks[b:b + block] = (C > t[:, None]).sum(axis=1) + 1
    return float((ranks == 1).mean())

def median(f):
    times, out = [], None
    for _ in range(samples):
        start = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], out

with threadpool_limits(limits=2):
    mm, _ = median(product)
    cs, p1 = median(csls_p1)
print(f"numpy matmul Q·Gᵀ (blocked)      median {mm:8.3f} s")
print(f"numpy CSLS retrieval (blocked)   median {cs:8.3f} s  P@1 = {p1:.4f}  ({cs / mm:.2f}x its product)")
print(f"rust  CSLS retrieval             median {rust['csls_s']:8.3f} s  P@1 = {rust['csls_p1']:.4f}  "
      f"({rust['csls_s'] / rust['matmul_s']:.2f}x its product)")
print(f"ratio rust / numpy: CSLS {rust['csls_s'] / cs:.2f}, matmul {rust['matmul_s'] / mm:.2f}")
PY
