#!/usr/bin/env bash
# Benchmark: million-scale CSLS retrieval (`commute csls`), k = 10, d = 300, synthetic data.
#
# 1. The Rust blocked, two-pass computation against a plain numpy one (scripts/csls-numpy.py: the
#    full n × n float32 similarity matrix) on the same rows, at sizes up to the largest numpy manages
#    here: time and peak RSS of each (/usr/bin/time -v), their ratios, and whether P@1 agrees. A size
#    whose similarity matrix does not fit in the memory available now is skipped, with a message.
# 2. The 2.5M × 2.5M job as 1000 shards: pass 1 of one shard (2,500 queries × 2.5M gallery), merge 1
#    of that shard's file alone (--allow-incomplete: radii for timing only), pass 2 of one shard; time
#    and peak RSS of each, and the whole job extrapolated from them (not run).
#
# Both sides at 2 threads; $samples runs each (fewer where a run takes a minute or more), medians.
# Environment: CSLS_BENCH_SIZES (default "10000 30000 50000 70000"),
# CSLS_BENCH_SAMPLES (3), CSLS_BENCH_NOISE (3), CSLS_BENCH_BIG (2500000; 0 skips part 2),
# CSLS_BENCH_SHARDS (1000), CSLS_BENCH_DIR (target/bench-csls-large), CSLS_BENCH_BIN (a commute
# binary to use; default: build one with cargo), CSLS_BENCH_BEFORE (a command run before every timed
# run, e.g. one that waits until nobody else is using the CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=${CSLS_BENCH_SIZES:-10000 30000 50000 70000}
samples=${CSLS_BENCH_SAMPLES:-3}
noise=${CSLS_BENCH_NOISE:-3}
big=${CSLS_BENCH_BIG:-2500000}
shards=${CSLS_BENCH_SHARDS:-1000}
dir=${CSLS_BENCH_DIR:-$PWD/target/bench-csls-large}
python=${PYTHON:-python3}
if ! "$python" -c "import numpy" 2>/dev/null; then
    python=/work/st-venv/bin/python
fi
mkdir -p "$dir"
export RAYON_NUM_THREADS=2

# CSLS_BENCH_BIN: a commute binary to use instead of building one.
if [[ -n ${CSLS_BENCH_BIN:-} ]]; then
    bin=$CSLS_BENCH_BIN
else
    cargo build --release -p commute-host
    bin=${CARGO_TARGET_DIR:-$PWD/target}/release/commute
fi

# run NAME CMD...: runs CMD under /usr/bin/time -v; appends one JSON line (the command's JSON output
# with "wall_s", "cpu_s" (user + system) and "peak_rss_kb" added) to $dir/NAME.jsonl and prints the
# wall time in whole seconds.
run() {
    local name=$1
    shift
    if [[ -n ${CSLS_BENCH_BEFORE:-} ]]; then
        eval "$CSLS_BENCH_BEFORE" >&2
    fi
    /usr/bin/time -v -o "$dir/time.txt" "$@" >"$dir/out.json"
    "$python" - "$dir/out.json" "$dir/time.txt" "$dir/$name.jsonl" <<'PY'
import json, re, sys
out = json.loads(open(sys.argv[1]).read())
t = open(sys.argv[2]).read()
field = lambda name: re.search(re.escape(name) + r": (\S+)", t).group(1)
h, m, s = ([0, 0] + field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"))[-3:]
out.update(wall_s=int(h) * 3600 + int(m) * 60 + float(s),
           cpu_s=float(field("User time (seconds)")) + float(field("System time (seconds)")),
           peak_rss_kb=int(field("Maximum resident set size (kbytes)")))
open(sys.argv[3], "a").write(json.dumps(out) + "\n")
print(int(out["wall_s"]))
PY
}

mem_available_kb() { awk '/MemAvailable/ {print $2}' /proc/meminfo; }

echo "== rust (blocked) vs plain numpy (full similarity matrix), noise $noise, $samples samples"
for n in $sizes; do
    need_kb=$(( n * n * 4 / 1024 + 2 * n * 300 * 4 / 1024 + 1500000 ))
    if (( need_kb > $(mem_available_kb) )); then
        echo "n = $n: skipped, numpy needs ~$(( need_kb / 1048576 )) GiB and $(( $(mem_available_kb) / 1048576 )) GiB are available"
        continue
    fi
    rm -f "$dir/rust-$n.jsonl" "$dir/numpy-$n.jsonl"
    "$bin" -q csls --synthetic "$n" --noise "$noise" --write-npy "$dir/data-$n" >/dev/null
    # $samples runs of each, fewer where a run takes a minute or more.
    for _ in $(seq "$samples"); do
        wall=$(run "rust-$n" "$bin" -q csls --synthetic "$n" --noise "$noise" --json)
        (( wall < 60 )) || break
    done
    for _ in $(seq "$samples"); do
        # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow numpy's GEMM down on this machine: unset for numpy.
        wall=$(run "numpy-$n" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \
            OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 "$python" scripts/csls-numpy.py "$dir/data-$n")
        (( wall < 60 )) || break
    done
    rm -rf "$dir/data-$n"
done

"$python" - "$dir" $sizes <<'PY'
import json, statistics, sys
from pathlib import Path
root, sizes = Path(sys.argv[1]), sys.argv[2:]
def load(name):
    p = root / f"{name}.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []
med = lambda rows, key: statistics.median(r[key] for r in rows)
print(f"{'n':>7} {'runs':>5} {'rust s':>8} {'numpy s':>8} {'numpy/rust':>10} {'rust RSS':>9} {'numpy RSS':>10} "
      f"{'numpy/rust':>10} {'rust cpu s':>10} {'numpy cpu s':>11}  P@1 rust / numpy")
for n in sizes:
    rust, numpy = load(f"rust-{n}"), load(f"numpy-{n}")
    if not rust or not numpy:
        continue
    rs, ns = med(rust, "wall_s"), med(numpy, "wall_s")
    rm, nm = med(rust, "peak_rss_kb") / 1024, med(numpy, "peak_rss_kb") / 1024
    rh, nh = rust[0]["hits"]["at_1"], numpy[0]["hits"]
    same = "agree exactly" if rh == nh else f"DIFFER by {rh - nh} hits"
    print(f"{int(n):>7} {len(rust):>2}/{len(numpy):<2} {rs:>8.2f} {ns:>8.2f} {ns / rs:>10.2f} {rm:>7.0f}MB {nm:>8.0f}MB "
          f"{nm / rm:>10.1f} {med(rust, 'cpu_s'):>10.1f} {med(numpy, 'cpu_s'):>11.1f}  "
          f"{rh / int(n):.6f} / {nh / int(n):.6f} ({same})")
PY

if (( big == 0 )); then
    exit 0
fi

echo "== $big × $big as $shards shards: one shard of each step (median of $samples), extrapolated"
state="$dir/state-$big"
rm -rf "$state" "$dir"/big-*.jsonl
args=(-q csls --synthetic "$big" --noise "$noise" --json --state "$state")
for _ in $(seq "$samples"); do
    run big-pass1 "$bin" "${args[@]}" --phase 1 --shard "1/$shards" >/dev/null
done
for _ in $(seq "$samples"); do
    run big-merge1 "$bin" "${args[@]}" --phase 1 --merge --allow-incomplete >/dev/null
done
for _ in $(seq "$samples"); do
    run big-pass2 "$bin" "${args[@]}" --phase 2 --shard "1/$shards" >/dev/null
done
ls -l "$state"
"$python" - "$dir" "$shards" <<'PY'
import json, statistics, sys
from pathlib import Path
root, shards = Path(sys.argv[1]), int(sys.argv[2])
steps = {}
for step in ["pass1", "merge1", "pass2"]:
    rows = [json.loads(l) for l in (root / f"big-{step}.jsonl").read_text().splitlines()]
    wall = statistics.median(r["wall_s"] for r in rows)
    rss = statistics.median(r["peak_rss_kb"] for r in rows) / 1024
    cpu = statistics.median(r["cpu_s"] for r in rows)
    plan = rows[0]["memory"]
    planned = sum(plan.values()) / 2**20
    steps[step] = wall
    runs = ", ".join("%.2f" % r["wall_s"] for r in rows)
    print(f"{step:>7}: median {wall:8.2f} s (runs: {runs}), "
          f"cpu {cpu:8.2f} s, peak RSS {rss:6.0f} MiB, planned {planned:6.0f} MiB")
total = shards * (steps["pass1"] + steps["pass2"] + steps["merge1"])
print(f"extrapolated whole job ({shards} shards, 2 cores): {shards} × (pass 1 + pass 2) + {shards} pass-1 files "
      f"merged = {total:,.0f} s = {total / 3600:.1f} h ({total * 2 / 3600:.0f} core-hours); "
      f"on {shards} such machines ≈ {(steps['pass1'] + steps['pass2']) / 60:.1f} min of passes "
      f"+ {shards * steps['merge1'] / 60:.1f} min of merge 1")
PY
