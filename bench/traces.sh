#!/usr/bin/env bash
# What the `otel` feature costs while no endpoint is given: HTTP actions at c=64 on one actor
# (scenario c64, the default RUST_LOG=info) against
#   base  a `footlights` built without the feature (BASE_BIN, required: see below),
#   otel  this tree's `footlights` built with `--features otel`, served without an endpoint,
#   plain this tree's `footlights` built without the feature (PLAIN_BIN, optional),
# in one run, alternating servers (and which goes first) ROUNDS times so that drift in the
# machine's load hits both alike. Prints the median throughput and server CPU per action of each and the ratio; the raw
# runs are in bench/out/traces.jsonl.
#
# BASE_BIN: build the commit before the trace work in a scratch copy, e.g.
#   git archive <commit> | tar -x -C /tmp/base && (cd /tmp/base && cargo build --release -p footlights-cli)
#   BASE_BIN=/tmp/base/target/release/footlights bash bench/traces.sh
# Env: SECS (measured window, 3), WARMUP (1), ROUNDS (5), DURABILITY (power), CARGO_TARGET_DIR.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="$HERE/out"
SECS="${SECS:-3}" WARMUP="${WARMUP:-1}" ROUNDS="${ROUNDS:-5}" DURABILITY="${DURABILITY:-power}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release"
PORT="${PORT:-6421}"
: "${BASE_BIN:?set BASE_BIN to a footlights built without the otel feature}"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE OTEL_EXPORTER_OTLP_ENDPOINT
mkdir -p "$OUT"
RESULTS="$OUT/traces.jsonl"
rm -f "$RESULTS"
(cd "$ROOT" && cargo build --release -p footlights-cli --features otel -p footlights-bench)

run() { # name binary
  local data log pid
  data="$(mktemp -d)"; log="$OUT/traces-$1.log"
  RUST_LOG=info "$2" serve --port "$PORT" --data-dir "$data" --durability "$DURABILITY" > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.1; done
  "$BIN/footlights-bench" suite --addr "127.0.0.1:$PORT" --name "$1" --mode query --pids "$pid" \
    --only c64 --warmup "$WARMUP" --secs "$SECS" --runs 1 --out "$RESULTS"
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$data"
}

# Which server goes first alternates too: a run right after another one's stop can find the
# disk still busy with its writes.
for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 )); then
    run base "$BASE_BIN"; run otel "$BIN/footlights"
    [ -n "${PLAIN_BIN:-}" ] && run plain "$PLAIN_BIN"
  else
    [ -n "${PLAIN_BIN:-}" ] && run plain "$PLAIN_BIN"
    run otel "$BIN/footlights"; run base "$BASE_BIN"
  fi
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
    print(f"{k:<6} median {med[k]:>9.0f} actions/s  server CPU {cpu[k]:.1f} µs/action  runs {[round(x['throughput']) for x in runs[k]]}")
for k in ("otel", "plain"):
    if "base" in med and k in med:
        print(f"{k:<6} {med[k] / med['base'] * 100:6.1f} % of base throughput")
PY
