#!/usr/bin/env bash
# A real Slurm test: starts a one-node Slurm cluster on this machine (munged, slurmctld and slurmd
# with a generated configuration in a temporary folder, all traffic on loopback), submits a small
# music experiment with `commute slurm --shards 4 --submit` (a 4-task job array of shards and a fit
# job that depends on it), waits for both, runs the same experiment as one plain process on an
# empty cache, and checks that the two metrics.json agree (all but `started`, `seconds` and the
# cache's counters, `cache` and `embedded`). Then a small `commute csls` job as the README lays out
# the 2.5M one: pass 1 as a 4-task array, merge 1, pass 2 as an array, merge 2, each after the
# last (afterok); its hits and radii must equal one process's.
#
# Slurm and munge come from Debian's packages (installed with apt-get when missing, which needs
# root). Where Slurm cannot be installed or started, the script prints `SKIPPED: <reason>` and
# exits 0; it never says PASSED then. Every daemon it started is stopped on exit.
#
#   scripts/slurm-test.sh            # KEEP=1 keeps the temporary folder (logs, scripts, runs)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

skip() {
    echo "SKIPPED: $*"
    exit 0
}
fail() {
    echo "FAILED: $*" >&2
    exit 1
}
# Seconds since the build finished (installing and starting Slurm included).
elapsed() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f} s')" "$built"; }

command -v python3 >/dev/null || skip "python3 is needed to compare the metrics"

# 1. The commute binary and the music plugin, built as the tests build them.
cargo build --quiet -p commute-host -p commute-plugin-music
built=$(date +%s.%N)
target=${CARGO_TARGET_DIR:-$repo/target}
commute=$target/debug/commute
music=$target/debug/libcommute_plugin_music.so
[[ -x $commute && -f $music ]] || fail "no $commute or $music after the build"

tmp=$(mktemp -d /tmp/commute-slurm.XXXXXX)
pids=()
cleanup() {
    set +e
    if [[ -n ${SLURM_CONF:-} ]] && command -v squeue >/dev/null; then
        # Cancel jobs first: stopping slurmd leaves running jobs alive.
        jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null
            for _ in $(seq 50); do
                [[ -z $(squeue -h -o %A 2>/dev/null) ]] && break
                sleep 0.1
            done
        fi
    fi
    # Daemons in reverse order of starting: slurmd, slurmctld, munged.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do
            # A zombie still answers kill -0: look at its state.
            state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
            [[ -z $state || $state == Z ]] && break
            sleep 0.1
        done
        state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        [[ -n $state && $state != Z ]] && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

# 2. Slurm and munge from Debian's packages, installed only if missing.
missing=()
for program in munged munge unmunge slurmctld slurmd sbatch scontrol sinfo squeue scancel; do
    command -v "$program" >/dev/null || missing+=("$program")
done
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || skip "Slurm is not installed (${missing[*]} missing) and installing it needs root"
    command -v apt-get >/dev/null || skip "Slurm is not installed (${missing[*]} missing) and there is no apt-get"
    echo "installing slurmctld slurmd slurm-client munge with apt-get"
    packages=(slurmctld slurmd slurm-client munge)
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${packages[@]}" >"$tmp/apt.log" 2>&1; then
        apt-get update -q >>"$tmp/apt.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends "${packages[@]}" >>"$tmp/apt.log" 2>&1 ||
            skip "apt-get could not install Slurm: $(tail -n 1 "$tmp/apt.log")"
    fi
    for program in "${missing[@]}"; do
        command -v "$program" >/dev/null || skip "$program is still missing after installing Slurm"
    done
fi

# 3. A one-node cluster: munged, then slurmctld and slurmd, configured under $tmp/slurm.
d=$tmp/slurm
mkdir -p "$d/state" "$d/spool" "$d/munge"
# munged wants every folder above its socket searchable by all, and the socket's own folder not
# writable or readable by others.
chmod 0711 "$tmp" "$d" "$d/munge"
dd if=/dev/urandom of="$d/munge/munge.key" bs=1 count=1024 status=none
chmod 0600 "$d/munge/munge.key"
sock=$d/munge/munge.sock
munged -F --key-file="$d/munge/munge.key" --socket="$sock" --pid-file="$d/munge/munged.pid" \
    --seed-file="$d/munge/munged.seed" --log-file="$d/munged.log" >"$d/munged.out" 2>&1 &
pids+=($!)

# Wait up to 15 s for `$@` to succeed, polling every 0.2 s.
ready() {
    for _ in $(seq 75); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}
munge_ok() { munge -S "$sock" -n </dev/null | unmunge -S "$sock"; }
ready munge_ok || skip "munged did not start: $(tail -n 2 "$d/munged.log" "$d/munged.out" 2>/dev/null | tr '\n' ' ')"

host=$(hostname -s)
node=$(slurmd -C 2>/dev/null | grep '^NodeName=' | head -n 1) || true
[[ -n $node ]] || skip "slurmd -C did not describe this machine"
# Two free loopback ports (another cluster may use the default ones).
read -r ctld_port slurmd_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
communication=""
# Bind to loopback only, but only where the host name resolves there (else slurmctld never comes up).
if getent hosts "$host" | grep -q '^127\.'; then
    communication="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"
fi
cat >"$d/slurm.conf" <<EOF
ClusterName=commute-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
DependencyParameters=kill_invalid_depend
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$d/jobcomp.txt
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
$communication
$node NodeAddr=127.0.0.1
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$d/slurm.conf
slurmctld -D -c -f "$SLURM_CONF" >"$d/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$d/slurmd.out" 2>&1 &
pids+=($!)
ctld_up() { scontrol ping | grep -q 'is UP'; }
ready ctld_up || skip "slurmctld did not start: $(tail -n 3 "$d/slurmctld.log" 2>/dev/null | tr '\n' ' ')"
node_idle() { sinfo -h -N -o %T | grep -qx idle; }
ready node_idle || skip "slurmd did not come up idle: $(sinfo -h -N -o %T 2>&1) $(tail -n 3 "$d/slurmd.log" 2>/dev/null | tr '\n' ' ')"
echo "slurm $(sinfo -V | awk '{print $2}'): one node ($node), up $(elapsed) after the build"

# 4. The experiment, as 4 shards and a fit job.
cat >"$tmp/music.toml" <<'EOF'
[experiment]
name = "music"
seed = 5
anchors = [5, 40]
repeats = 2
test = 40

[data.scores]
source = { plugin = "music", function = "random-scores", params = { count = 300, seed = 4, max-duration-s = 2.0 } }

[data.scores.operators]
up = { plugin = "music", function = "transpose", params = { semitones = 2, out-of-range = "clamp" } }

[nodes.roll]
data = "scores"
plugin = "music"
encoder = "piano-roll"

[nodes.chroma]
data = "scores"
plugin = "music"
encoder = "chroma"

[nodes.loudness]
data = "scores"
plugin = "music"
encoder = "loudness"

[[edges]]
parent = "roll"
child = "chroma"
operators = ["up"]
methods = [{ kind = "ridge", lambda = 0.1 }, { kind = "functional" }]
metrics = ["p@1", "transfer-p@1"]

[[edges]]
parent = "roll"
child = "loudness"
methods = [{ kind = "procrustes" }]
metrics = ["p@1", "cka"]
EOF
cd "$tmp"
plugins=(--no-default-plugins --plugin "$music")
echo "\$ commute slurm music.toml --shards 4 --cache cache --runs runs --out jobs --submit"
submitted=$("$commute" "${plugins[@]}" -v slurm music.toml --shards 4 --cache cache --runs runs --out jobs --submit) ||
    fail "commute slurm failed"
echo "$submitted" | sed "s|$tmp/||g"
shards_job=$(sed -n 's/^shards job \([0-9][0-9]*\) .*/\1/p' <<<"$submitted")
fit_job=$(sed -n 's/^fit job \([0-9][0-9]*\) .*/\1/p' <<<"$submitted")
[[ -n $shards_job && -n $fit_job ]] || fail "no job ids in the output of commute slurm"

# The states of a job's records (one per array task), e.g. "COMPLETED COMPLETED …".
states() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 | tr '\n' ' '; }
terminal='^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)$'
for _ in $(seq 900); do
    fit_state=$(states "$fit_job")
    [[ ${fit_state% } =~ $terminal ]] && break
    sleep 0.1
done
shard_states=$(states "$shards_job")
echo "jobs done in $(elapsed): shards ${shard_states% }; fit ${fit_state% }"
show_logs() { for f in jobs/logs/*; do echo "== $f"; cat "$f"; done; }
[[ ${fit_state% } == COMPLETED ]] || { show_logs; fail "the fit job ended ${fit_state:-in no known state}"; }
[[ $shard_states =~ ^(COMPLETED )+$ && $(wc -w <<<"$shard_states") == 4 ]] ||
    { show_logs; fail "the shard tasks ended $shard_states"; }
for log in jobs/logs/shards-*.out; do grep '^shard ' "$log"; done | sort
fit_log=$(ls jobs/logs/fit-*.out)
grep -q 'extracting' "$fit_log" && { cat "$fit_log"; fail "the fit job computed embeddings the shards should have"; }
echo "fit job: $(grep -c 'cache hit: every chunk of this node is cached' "$fit_log") cache hits on whole sets, nothing extracted"

# 5. The same experiment in one process, on an empty cache.
echo "\$ commute run music.toml --cache single-cache --runs single-runs"
"$commute" "${plugins[@]}" run music.toml --cache single-cache --runs single-runs >single.out 2>single.err ||
    { cat single.err; fail "the single-process run failed"; }
python3 - runs cache single-runs single-cache <<'EOF' || fail "the metrics differ"
import glob, json, os, sys

def metrics(runs):
    files = glob.glob(os.path.join(runs, "*", "*", "metrics.json"))
    if len(files) != 1:
        sys.exit(f"expected one metrics.json under {runs}, found {files}")
    with open(files[0]) as f:
        m = json.load(f)
    # What differs between runs of one experiment: when, how long, and how the cache served it
    # (`embedded`: chunks read and computed per set, where the run has it).
    return m, {k: m.pop(k, None) for k in ("started", "seconds", "cache", "embedded")}

def entries(cache):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(cache, "embeddings", "*", "*.emb")))

(slurm, slurm_extra), (single, single_extra) = metrics(sys.argv[1]), metrics(sys.argv[3])
if slurm != single:
    for key in sorted(set(slurm) | set(single)):
        if slurm.get(key) != single.get(key):
            print(f"differs: {key}", file=sys.stderr)
    sys.exit(1)
if entries(sys.argv[2]) != entries(sys.argv[4]):
    sys.exit("the two caches hold different embedding chunks")
# Where the run reports chunks per set, the fit job computed none.
fit_sets = slurm_extra.get("embedded") or (slurm_extra.get("cache") or {}).get("embedded") or {}
computed = sum(s.get("computed", 0) for s in fit_sets.values())
if computed:
    sys.exit(f"the fit job computed {computed} embedding chunks")

def counters(extra):
    cache = extra.get("cache") or {}
    return ", ".join(f"{cache.get(k)} {k}" for k in ("hits", "misses", "writes"))

points = sum(len(e["points"]) for e in slurm["edges"])
print(f"metrics.json equal: {len(slurm['edges'])} edges, {points} points (cache: fit job {counters(slurm_extra)}; "
      f"single run {counters(single_extra)}); both caches hold the same {len(entries(sys.argv[2]))} chunks")
EOF
# 6. A CSLS job's chain, in small: two arrays of 4 shards and two merges, each step after the last.
csls=("$commute" --threads 1 csls --synthetic 3000 --gallery 3500 --json)
"${csls[@]}" >csls-whole.json 2>csls-whole.err || { cat csls-whole.err; fail "commute csls in one process failed"; }
mkdir -p csls/logs
command_line=$(printf '%q ' "${csls[@]}")
# submit NAME ARRAY DEPENDENCY ARGS: one step, its output in csls/logs/NAME-*.out; prints its job id.
submit() {
    local name=$1 array=$2 after=$3 output="csls/logs/$1-%j.out"
    shift 3
    local options=(--parsable --job-name="$name" --error="csls/logs/$name-%j.err")
    if [[ -n $array ]]; then
        options+=(--array="$array" --error="csls/logs/$name-%A_%a.err")
        output="csls/logs/$name-%A_%a.out"
    fi
    if [[ -n $after ]]; then options+=(--dependency="afterok:$after"); fi
    sbatch "${options[@]}" --output="$output" --wrap "$command_line $*" | cut -d';' -f1
}
state=csls/state
pass1=$(submit csls-pass1 1-4 "" "--phase 1 --shard \$SLURM_ARRAY_TASK_ID/4 --state $state") || fail "sbatch (pass 1)"
merge1=$(submit csls-merge1 "" "$pass1" "--phase 1 --merge --state $state") || fail "sbatch (merge 1)"
pass2=$(submit csls-pass2 1-4 "$merge1" "--phase 2 --shard \$SLURM_ARRAY_TASK_ID/4 --state $state") || fail "sbatch (pass 2)"
merge2=$(submit csls-merge2 "" "$pass2" "--phase 2 --merge --state $state") || fail "sbatch (merge 2)"
echo "csls: pass 1 job $pass1 (array 1-4), merge 1 $merge1, pass 2 $pass2 (array 1-4), merge 2 $merge2"
for _ in $(seq 900); do
    merge2_state=$(states "$merge2")
    [[ ${merge2_state% } =~ $terminal ]] && break
    sleep 0.1
done
csls_logs() { for f in csls/logs/*; do echo "== $f"; cat "$f"; done; }
[[ ${merge2_state% } == COMPLETED ]] || { csls_logs; fail "the CSLS merge 2 job ended ${merge2_state:-in no known state}"; }
for job in "$pass1" "$merge1" "$pass2"; do
    [[ $(states "$job") =~ ^(COMPLETED )+$ ]] || { csls_logs; fail "CSLS job $job ended $(states "$job")"; }
done
python3 - csls-whole.json "csls/logs/csls-merge2-$merge2.out" <<'EOF' || { csls_logs; fail "the CSLS results differ"; }
import json, sys
whole, merged = (json.load(open(p)) for p in sys.argv[1:3])
if merged["step"] != "merge 2" or not merged["complete"]:
    sys.exit(f"merge 2 reports step {merged['step']!r}, complete {merged['complete']}")
for key in ("queries", "at_1", "at_5", "at_10"):
    if merged["hits"][key] != whole["hits"][key]:
        sys.exit(f"hits {key}: {merged['hits'][key]} on Slurm, {whole['hits'][key]} in one process")
for key in ("mean_r_query", "mean_r_gallery"):
    if merged[key] != whole[key]:
        sys.exit(f"{key}: {merged[key]} on Slurm, {whole[key]} in one process")
rr = [d["hits"]["reciprocal_rank_sum"] for d in (whole, merged)]
if abs(rr[0] - rr[1]) > 1e-9 * rr[0]:
    sys.exit(f"reciprocal ranks: {rr}")
h = merged["hits"]
print(f"csls on Slurm equals one process: P@1 {h['at_1']}/{h['queries']}, P@10 {h['at_10']}/{h['queries']}, "
      "radii bit-identical")
EOF

echo "PASSED: Slurm (4 shards + afterok fit; a CSLS chain of 2 arrays and 2 merges) equals one process, $(elapsed) after the build"
