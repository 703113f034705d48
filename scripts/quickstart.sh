#!/usr/bin/env bash
# The quickstart: build everything, list the plugins, generate a score, write it as MIDI,
# render it to audio with the music plugin's synthesizer, and print its piano-roll embedding.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --quiet
commute=target/release/commute
out=${COMMUTE_QUICKSTART_OUT:-quickstart-out}
mkdir -p "$out"

echo "== plugins"
$commute plugins
echo
echo "== a generated score, as MIDI"
$commute call music random-scores --params 'count = 1' --params 'seed = 7' --output "$out/score.mid"
$commute call music random-scores --params 'count = 1' --params 'seed = 7'
echo
echo "== rendered by the synthesizer"
$commute call music synth --input "$out/score.mid" --output "$out/score.wav"
$commute call music synth --input "$out/score.mid"
echo
echo "== its piano-roll embedding"
$commute call music piano-roll --input "$out/score.mid" --output "$out/piano-roll.npy"
