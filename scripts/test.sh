#!/usr/bin/env bash
# Every test: the workspace's (unit, in-process plugin harness, end-to-end with real libraries),
# then a real one-node Slurm cluster (scripts/slurm-test.sh), which prints `SKIPPED: <reason>` and
# passes where Slurm cannot be installed or started.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
scripts/slurm-test.sh
