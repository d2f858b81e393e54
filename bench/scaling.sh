#!/usr/bin/env bash
# The scaling rows side by side: this build against an earlier one (BASE_BIN), one scenario at a
# time, each on a fresh server, alternating the two ROUNDS times so that drift in the machine's
# load hits both alike. Prints a markdown table of medians (throughput, p50/p99, server CPU per
# operation, RSS, bytes per unit) and the last run's note, and writes it to
# bench/out/scaling.md; the raw runs are in bench/out/scaling.jsonl.
#
#   git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release -p footlights-cli)
#   BASE_BIN=/tmp/base/target/release/footlights bash bench/scaling.sh
#
# Env: SCENARIOS (comma-separated footlights-bench scenarios; default below), ROUNDS (3), SECS
# (3), WARMUP (1), FANOUT_PROCS (2), NEW_BIN (default: this build), CARGO_TARGET_DIR, FLOOR
# (a number of sockets: also measure the fan-out floor, `footlights-bench write-floor`, the
# writer's CPU per small write to that many loopback sockets read by FANOUT_PROCS processes;
# its rows have the build `floor`).
# Scenarios with 10,000 or more connections want an open-file limit of 20,000 (`ulimit -n`).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="$HERE/out"
SECS="${SECS:-3}" WARMUP="${WARMUP:-1}" ROUNDS="${ROUNDS:-3}" FANOUT_PROCS="${FANOUT_PROCS:-2}"
SCENARIOS="${SCENARIOS:-b,c64,b_idle,d_proc,d10k,f,h}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release"
NEW_BIN="${NEW_BIN:-$BIN/footlights}"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
mkdir -p "$OUT"
RESULTS="$OUT/scaling.jsonl"
rm -f "$RESULTS"
(cd "$ROOT" && cargo build --release -p footlights-cli -p footlights-bench)

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run() { # name binary scenario
  local data log pid port
  data="$(mktemp -d)"; log="$OUT/scaling-$1.log"; port="$(free_port)"
  RUST_LOG=warn "$2" serve --port "$port" --data-dir "$data" --max-connections 20000 > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.1; done
  "$BIN/footlights-bench" suite --addr "127.0.0.1:$port" --name "$1" --mode query --pids "$pid" \
    --only "$3" --warmup "$WARMUP" --secs "$SECS" --runs 1 --fanout-procs "$FANOUT_PROCS" \
    --out "$RESULTS" || echo "scenario $3 on $1 failed" >&2
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$data"
}

IFS=',' read -r -a list <<< "$SCENARIOS"
for s in "${list[@]}"; do
  for _ in $(seq 1 "$ROUNDS"); do
    [ -n "${BASE_BIN:-}" ] && run before "$BASE_BIN" "$s"
    run after "$NEW_BIN" "$s"
  done
done

if [ -n "${FLOOR:-}" ]; then
  "$BIN/footlights-bench" write-floor --conns "$FLOOR" --procs "$FANOUT_PROCS" --rounds 20 \
    --runs "$ROUNDS" --out "$RESULTS"
fi

python3 - "$RESULTS" "$OUT/scaling.md" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs.setdefault((r["scenario"], r["target"]), []).append(r)
def med(rs, f):
    return statistics.median(f(r) for r in rs)
rows = ["| scenario | build | runs | ops/s | p50 ms | p99 ms | server CPU µs/op | RSS MiB | B per unit | errors | last note |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
for scenario in sorted({k[0] for k in runs}):
    for target in ("before", "after", "floor"):
        rs = runs.get((scenario, target))
        if not rs:
            continue
        cpu = med(rs, lambda r: r["server_cpu_s"] / max(r["ops"], 1) * 1e6)
        rows.append(
            f"| {scenario} | {target} | {len(rs)} | {med(rs, lambda r: r['throughput']):.0f} "
            f"| {med(rs, lambda r: r['p50_ms']):.3f} | {med(rs, lambda r: r['p99_ms']):.3f} "
            f"| {cpu:.1f} | {med(rs, lambda r: r['server_rss_kb']) / 1024:.1f} "
            f"| {med(rs, lambda r: r.get('bytes_per_unit', 0.0)):.0f} "
            f"| {sum(r['errors'] for r in rs)} | {rs[-1].get('note', '')} |")
    b, a = runs.get((scenario, "before")), runs.get((scenario, "after"))
    if a and b:
        tb, ta = med(b, lambda r: r["throughput"]), med(a, lambda r: r["throughput"])
        if tb > 0:
            rows.append(f"| {scenario} | after / before | | {ta / tb:.2f}× | | | | | | | |")
text = "\n".join(rows) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
PY
