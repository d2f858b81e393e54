#!/usr/bin/env bash
# What metrics and request logs cost: HTTP actions at c=64 on one actor (scenario c64) against
#   base         a `footlights` built without them (BASE_BIN, optional: see below),
#   metrics      this build at RUST_LOG=warn (metrics counted, no request lines),
#   metrics+logs this build at RUST_LOG=info (the default: metrics, a line per failed request
#                and per connection; these actions all succeed, so no request lines),
#   all-requests this build at RUST_LOG=info,footlights::requests=debug (a line per request),
# in one run, alternating servers ROUNDS times so that drift in the machine's load hits all
# alike. Logs go to a file, as under a supervisor. Prints the median throughput of each and
# the ratios; the raw runs are in bench/out/observability.jsonl.
#
# BASE_BIN: build the commit before the observability work in a scratch copy, e.g.
#   git archive <commit> | tar -x -C /tmp/base && (cd /tmp/base && cargo build --release -p footlights-cli)
#   BASE_BIN=/tmp/base/target/release/footlights bash bench/observability.sh
# Env: SECS (measured window, 3), WARMUP (1), ROUNDS (5), DURABILITY (power), CARGO_TARGET_DIR.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="$HERE/out"
SECS="${SECS:-3}" WARMUP="${WARMUP:-1}" ROUNDS="${ROUNDS:-5}" DURABILITY="${DURABILITY:-power}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release"
PORT="${PORT:-6421}"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
mkdir -p "$OUT"
RESULTS="$OUT/observability.jsonl"
rm -f "$RESULTS"
(cd "$ROOT" && cargo build --release -p footlights-cli -p footlights-bench)

run() { # name binary rust_log
  local data log pid
  data="$(mktemp -d)"; log="$OUT/observability-$1.log"
  RUST_LOG="$3" "$2" serve --port "$PORT" --data-dir "$data" --durability "$DURABILITY" > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.1; done
  "$BIN/footlights-bench" suite --addr "127.0.0.1:$PORT" --name "$1" --mode query --pids "$pid" \
    --only c64 --warmup "$WARMUP" --secs "$SECS" --runs 1 --out "$RESULTS"
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$data"
}

for _ in $(seq 1 "$ROUNDS"); do
  [ -n "${BASE_BIN:-}" ] && run base "$BASE_BIN" warn
  run metrics "$BIN/footlights" warn
  run metrics+logs "$BIN/footlights" info
  run all-requests "$BIN/footlights" info,footlights::requests=debug
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["errors"] or not r["ops"]:
        print(f"{r['target']}: a run with errors left out ({r['errors']} errors)")
        continue
    runs.setdefault(r["target"], []).append(r)
med = {k: statistics.median(x["throughput"] for x in v) for k, v in runs.items()}
cpu = {k: statistics.median(x["server_cpu_s"] / max(x["ops"], 1) * 1e6 for x in v) for k, v in runs.items()}
for k in runs:
    print(f"{k:<14} median {med[k]:>9.0f} actions/s  server CPU {cpu[k]:.1f} µs/action  runs {[round(x['throughput']) for x in runs[k]]}")
ref = med.get("base") or med.get("metrics")
for k in runs:
    print(f"{k:<14} {med[k] / ref * 100:6.1f} % of {'base' if 'base' in med else 'metrics'}")
PY
