#!/usr/bin/env bash
# Overhead of isolated mode (plugin functions in `commute worker` processes) against in-process
# calls, on batches of 64 and 256 items: music synth, piano-roll, and audio log-mel.
#   scripts/bench-isolation.sh                          # dev profile (the tests' build)
#   PROFILE=release scripts/bench-isolation.sh          # optimised build
#   ISOLATION_BENCH_REPS=15 scripts/bench-isolation.sh  # more repeats
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-dev}"
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
cargo build --quiet --profile "$profile" -p commute-host --bin commute
cargo build --quiet --profile "$profile" -p commute-plugin-music -p commute-plugin-audio
exec cargo run --quiet --profile "$profile" -p commute-host --example isolation_overhead -- \
    "target/$dir/commute" "target/$dir/libcommute_plugin_music.so" "target/$dir/libcommute_plugin_audio.so"
