#!/usr/bin/env python3
"""Plain numpy CSLS P@1 with the full similarity matrix: the baseline of scripts/bench-csls-large.sh.

Usage: csls-numpy.py DIR [K]   (DIR holds queries.npy and gallery.npy: float32, rows L2-normalised,
query i's partner is gallery row i, as `commute csls --write-npy DIR` writes them).

S = Q·Gᵀ is held whole (n_q × n_g float32). r_q (row means of the k largest) and r_g (column means)
come from np.partition over row blocks of S and of Sᵀ, so that no second n × n copy is made; then
CSLS = 2S − r_g, in place, and P@1 = share of rows whose argmax is the partner. r_q is constant along
a row and changes no argmax: it is computed and reported, not subtracted. Prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    root = Path(sys.argv[1])
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    q = np.load(root / "queries.npy")
    g = np.load(root / "gallery.npy")
    n_q, n_g = q.shape[0], g.shape[0]
    block = 1024

    start = time.perf_counter()
    s = q @ g.T  # the full similarity matrix
    product = time.perf_counter() - start
    r_q = np.empty(n_q, dtype=np.float32)
    for b in range(0, n_q, block):
        top = np.partition(s[b : b + block], n_g - k, axis=1)[:, -k:]
        r_q[b : b + block] = top.mean(axis=1, dtype=np.float64)
    r_g = np.empty(n_g, dtype=np.float32)
    for b in range(0, n_g, block):
        top = np.partition(s.T[b : b + block], n_q - k, axis=1)[:, -k:]
        r_g[b : b + block] = top.mean(axis=1, dtype=np.float64)
    s *= 2
    s -= r_g[None, :]
    predicted = np.empty(n_q, dtype=np.int64)
    for b in range(0, n_q, block):
        predicted[b : b + block] = s[b : b + block].argmax(axis=1)
    hits = int((predicted == np.arange(n_q)).sum())
    seconds = time.perf_counter() - start

    print(
        json.dumps(
            {
                "queries": n_q,
                "gallery": n_g,
                "k": k,
                "hits": hits,
                "p_at_1": hits / n_q,
                "mean_r_query": float(r_q.astype(np.float64).mean()),
                "mean_r_gallery": float(r_g.astype(np.float64).mean()),
                "seconds": seconds,
                "product_seconds": product,
                "numpy": np.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
