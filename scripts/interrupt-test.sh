#!/usr/bin/env bash
# Kills `commute run` with SIGKILL at random points and checks that every rerun completes with
# the metrics of an uninterrupted run and that the cache never holds a corrupt entry
# (tests/e2e/interrupt.rs). Prints the seed and each kill time.
#
#   scripts/interrupt-test.sh [SEED] [KILLS]     # defaults: a new seed, 20 kills
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -ge 1 ]]; then export COMMUTE_INTERRUPT_SEED="$1"; fi
if [[ $# -ge 2 ]]; then export COMMUTE_INTERRUPT_KILLS="$2"; fi
exec cargo test -p commute-host --test e2e -- interrupt:: --nocapture --test-threads 1
