#!/usr/bin/env bash
# One command for the whole benchmark: builds the load generator and `footlights`, installs the
# RivetKit peers (from a writable copy of shared/peers/rivetkit), runs every scenario against
# Footlights, RivetKit 2.0.33, RivetKit 2.3.19 and the echo ceiling, one server at a time, and
# writes bench/RESULTS.md (+ bench/out/results.jsonl, the raw runs).
#
# Env: SECS (measured window, 3), WARMUP (1), RUNS (3), PEERS_DIR (bench/out/peers/rivetkit),
#      CARGO_TARGET_DIR (the workspace's target/), SKIP_PEERS=1, SKIP_2319=1, SKIP_FOOTLIGHTS_PROCESS=1, SKIP_KV=1 (also the snapshot bench), SKIP_DB=1, SKIP_JOBS=1, SKIP_CLUSTER=1; to resume an interrupted
#      run: KEEP_RESULTS=1 with SKIP_FOOTLIGHTS=1, SKIP_ECHO=1, SKIP_2033_SUITE=1 / SKIP_2033=1,
#      P2319_SCENARIOS (default a,a_bare,c,c_bare).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="$HERE/out"
SECS="${SECS:-3}" WARMUP="${WARMUP:-1}" RUNS="${RUNS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SHARED="$(cd "$ROOT/../shared" && pwd)"
PEERS_DIR="${PEERS_DIR:-$OUT/peers/rivetkit}"
BIN="$CARGO_TARGET_DIR/release"
PORT=6420
# The machine exports RUST_BACKTRACE=1; no server (ours or the peers') runs with it.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

mkdir -p "$OUT"
write_report() {
  [ "${REPORT_ONLY:-0}" = 1 ] || loadline "report"
  "$BIN/footlights-bench" report --input "$OUT/results.jsonl" --machine "$M" --out "$OUT/RESULTS.generated.md"
{ cat "$OUT/RESULTS.generated.md"; echo; [ -f "$HERE/ANALYSIS.md" ] && { cat "$HERE/ANALYSIS.md"; echo; }; echo "## Durability (write 5, write 7, SIGKILL on the acknowledgement, restart, read)"; echo; echo '```'; cat "$OUT/durability.txt"; echo '```'
  if [ -s "$OUT/kv.txt" ]; then echo; echo "## Key-value store (\`cargo bench -p footlights-test --bench kv\`, in process, SQLite with an fsync per commit)"; cat "$OUT/kv.txt"; fi
  if [ -s "$OUT/snapshot.txt" ]; then echo; cat "$OUT/snapshot.txt"; fi
  if [ -s "$OUT/db.txt" ]; then echo; echo "## SQL per actor (\`cargo bench -p footlights-test --bench db\`, in process, SQLite with an fsync per commit)"; echo; cat "$OUT/db.txt"; fi
  if [ -s "$OUT/jobs.txt" ]; then echo; cat "$OUT/jobs.txt"; fi
  if [ -s "$OUT/cluster.txt" ]; then echo; echo "(\`cargo bench -p footlights-cli --bench cluster\`)"; echo; cat "$OUT/cluster.txt"; fi
  # Written by hand from bench/scaling.sh and bench/cold-many.sh runs (see the file).
  [ -f "$HERE/SCALING.md" ] && { echo; cat "$HERE/SCALING.md"; }
} > "$HERE/RESULTS.md"
echo "wrote $HERE/RESULTS.md"
}
# REPORT_ONLY=1 rewrites RESULTS.md from bench/out without running anything.
if [ "${REPORT_ONLY:-0}" = 1 ]; then M="$OUT/machine.txt"; write_report; exit 0; fi
# KEEP_RESULTS=1 appends to an earlier (interrupted) run instead of starting afresh.
[ "${KEEP_RESULTS:-0}" = 1 ] || rm -f "$OUT/results.jsonl" "$OUT/durability.txt" "$OUT/machine.txt"
(cd "$ROOT" && cargo build --release -p footlights-cli -p footlights-bench)

M="$OUT/machine.txt"
{ echo "nproc=$(nproc)  mem=$(free -m | awk '/Mem:/{print $2}') MiB  kernel=$(uname -r)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "window ${SECS} s after ${WARMUP} s warm-up, ${RUNS} runs per scenario (median); load generator and server share the 2 cores"
} >> "$M"
loadline() { echo "load average before $1: $(cut -d' ' -f1-3 /proc/loadavg)  ($(date -u +%T) UTC)" >> "$M"; }

suite() { # name mode pids scenarios
  "$BIN/footlights-bench" suite --addr "127.0.0.1:$PORT" --name "$1" --mode "$2" --pids "$3" \
    --only "$4" --warmup "$WARMUP" --secs "$SECS" --runs "$RUNS" --out "$OUT/results.jsonl"
}
wait_line() { # file pattern
  for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timeout waiting for '$2' in $1"; cat "$1"; return 1
}

# ---------------------------------------------------------------- Footlights
FLPID=""
FL_DURABILITY=power
fl_start() { # data-dir [keep]
  [ "${2:-}" = keep ] || rm -rf "$1"
  RUST_LOG=warn "$BIN/footlights" serve --port "$PORT" --data-dir "$1" --durability "$FL_DURABILITY" > "$OUT/footlights.log" 2>&1 &
  FLPID=$!
  wait_line "$OUT/footlights.log" "listening on"
}
fl_stop() { kill -TERM "$FLPID" 2>/dev/null || true; wait "$FLPID" 2>/dev/null || true; }

durability() { # name mode start-cmd pids-cmd
  local key="dur-$(date +%s%N)"
  eval "$3"
  "$BIN/footlights-bench" durability write --name "$1" --mode "$2" --pids "$(eval "$4")" --key "$key" | tee -a "$OUT/durability.txt"
  for p in $(eval "$4" | tr ',' ' '); do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  sleep 0.5
  # A server that is still letting go of its port or files gets a second try.
  eval "$3 keep" || { sleep 3; eval "$3 keep"; }
  echo "[$1] $("$BIN/footlights-bench" durability read --name "$1" --mode "$2" --key "$key" 2>&1 | tail -1)" | tee -a "$OUT/durability.txt"
}
touch "$OUT/durability.txt"
# A failing step is written down and the run goes on, so one peer's trouble never loses the
# rest of the report.
try() { "$@" || echo "step failed (exit $?): $*" | tee -a "$OUT/durability.txt" >> "$M"; }

if [ "${SKIP_FOOTLIGHTS:-0}" != 1 ]; then
loadline footlights
fl_start "$OUT/fl-data"
suite footlights query "$FLPID" a,a_bare,b,c,c_bare,c_many,e,d
fl_stop
# Memory grows from a fresh server: each of the RUNS runs of f gets its own.
for _ in $(seq 1 "$RUNS"); do fl_start "$OUT/fl-data"; suite footlights query "$FLPID" f; fl_stop; done
fl_dur_start() { fl_start "$OUT/fl-dur" "${1:-}"; }
durability footlights query fl_dur_start 'echo $FLPID'
fl_stop
# The same WebSocket round trip with a read-only action (no write, so no fsync is waited for).
fl_start "$OUT/fl-data"; suite footlights query "$FLPID" a_read; fl_stop
# Hibernation: 10,000 idle sockets on one actor, awake then asleep, and the wake latency.
fl_start "$OUT/fl-data"; RUNS=1 suite footlights query "$FLPID" h; fl_stop
fi

# Footlights with `--durability process`: commits skip the fsync (a killed process loses
# nothing; a power cut may lose the last commits). The scenarios that write.
if [ "${SKIP_FOOTLIGHTS_PROCESS:-0}" != 1 ]; then
loadline "footlights --durability process"
FL_DURABILITY=process
fl_start "$OUT/fl-data-process"
suite footlights-process query "$FLPID" a,a_bare,b,c,c_bare,c_many,e,d
fl_stop
fl_dur_process_start() { fl_start "$OUT/fl-dur-process" "${1:-}"; }
durability footlights-process query fl_dur_process_start 'echo $FLPID'
fl_stop
FL_DURABILITY=power
fi

# ---------------------------------------------------------------- ceiling
if [ "${SKIP_ECHO:-0}" != 1 ]; then
loadline "echo servers"
"$BIN/footlights-bench" http-echo --port "$PORT" > "$OUT/echo.log" 2>&1 & EPID=$!
wait_line "$OUT/echo.log" "listening on"
suite echo-http query "$EPID" c,c_bare
kill "$EPID"; wait "$EPID" 2>/dev/null || true
"$BIN/footlights-bench" ws-echo --port "$PORT" > "$OUT/echo.log" 2>&1 & EPID=$!
wait_line "$OUT/echo.log" "listening on"
suite echo-ws query "$EPID" a,a_bare,b
kill "$EPID"; wait "$EPID" 2>/dev/null || true
"$BIN/footlights-bench" sqlite --dir "$OUT" --out "$OUT/results.jsonl"
# Per-connection memory of a bare tungstenite server, default config vs a 4 KiB read buffer.
for _ in $(seq 1 "$RUNS"); do
  "$BIN/footlights-bench" ws-echo --port "$PORT" > "$OUT/echo.log" 2>&1 & EPID=$!
  wait_line "$OUT/echo.log" "listening on"; suite echo-ws query "$EPID" f_ws
  kill "$EPID"; wait "$EPID" 2>/dev/null || true
  "$BIN/footlights-bench" ws-echo --port "$PORT" --read-buffer 4096 > "$OUT/echo.log" 2>&1 & EPID=$!
  wait_line "$OUT/echo.log" "listening on"; suite echo-ws-4k-buffer query "$EPID" f_ws
  kill "$EPID"; wait "$EPID" 2>/dev/null || true
done
fi

# ---------------------------------------------------------------- RivetKit peers
if [ "${SKIP_PEERS:-0}" != 1 ]; then
  if [ ! -d "$PEERS_DIR" ]; then mkdir -p "$(dirname "$PEERS_DIR")"; cp -r "$SHARED/peers/rivetkit" "$PEERS_DIR"; fi
  [ -d "$PEERS_DIR/v2319/node_modules" ] && [ -d "$PEERS_DIR/v2033/node_modules" ] || "$PEERS_DIR/setup.sh"
  PK_PIDS=""
  pk_start() { # version data-dir [keep]
    [ "${3:-}" = keep ] || rm -rf "$2"
    local o; o="$(RK_VERSION="$1" DATA_DIR="$2" SERVE_MAX_SECS=900 "$PEERS_DIR/serve.sh")"
    echo "$o" | tail -2
    PK_PIDS="$(echo "$o" | sed -n 's/^node_pid=\([0-9]*\) engine_pid=\([0-9]*\).*/\1,\2/p' | sed 's/,$//')"
  }
  pk_stop() { DATA_DIR="$1" "$PEERS_DIR/serve.sh" stop >/dev/null || true; }

  # 2.0.33: every scenario.
  D="$OUT/pk2033"
  if [ "${SKIP_2033_SUITE:-0}" != 1 ]; then
  loadline "rivetkit 2.0.33"
  pk_start 2033 "$D"; try suite rivetkit-2.0.33 put "$PK_PIDS" a,a_bare,b,c,c_bare,c_many,e,d; pk_stop "$D"
  for _ in $(seq 1 "$RUNS"); do pk_start 2033 "$D"; try suite rivetkit-2.0.33 put "$PK_PIDS" f; pk_stop "$D"; done
  fi
  p33_start() { pk_start 2033 "$OUT/pk2033-dur" "${1:-}"; }
  if [ "${SKIP_2033:-0}" != 1 ]; then
    try durability rivetkit-2.0.33 put p33_start 'echo $PK_PIDS'
    pk_stop "$OUT/pk2033-dur"
  fi

  # 2.3.19: actor creation runs at ~12/s and WebSocket connects often wait for a 15-20 s
  # timeout, so b, c_many, d and f (100-2,000 connects or 1,000-10,000 actors) are skipped: one
  # b run did not finish in 3 minutes. e gets one run capped at 15 s of load. The shared
  # peers/rivetkit/RESULTS.md has figures for the skipped ones.
  if [ "${SKIP_2319:-0}" != 1 ]; then
    D="$OUT/pk2319"
    loadline "rivetkit 2.3.19"
    pk_start 2319 "$D"; try suite rivetkit-2.3.19 query "$PK_PIDS" "${P2319_SCENARIOS:-a,a_bare,c,c_bare}"; pk_stop "$D"
    pk_start 2319 "$D"; RUNS=1 try suite rivetkit-2.3.19 query "$PK_PIDS" e; pk_stop "$D"
    p19_start() { pk_start 2319 "$OUT/pk2319-dur" "${1:-}"; }
    try durability rivetkit-2.3.19 query p19_start 'echo $PK_PIDS'
    pk_stop "$OUT/pk2319-dur"
  fi
fi

# The key-value store as an actor grows (in process, no network): SKIP_KV=1 leaves it out.
if [ "${SKIP_KV:-0}" != 1 ]; then
  loadline "kv bench"
  (cd "$ROOT" && cargo bench -p footlights-test --bench kv 2>/dev/null) | sed -n '/^| measure/,$p' > "$OUT/kv.txt"
  loadline "snapshot bench"
  (cd "$ROOT" && cargo bench -p footlights-test --bench snapshot 2>/dev/null) | sed -n '/^## Saving a large state/,$p' > "$OUT/snapshot.txt"
fi

# The SQL database per actor (in process, no network): SKIP_DB=1 leaves it out.
if [ "${SKIP_DB:-0}" != 1 ]; then
  loadline "db bench"
  (cd "$ROOT" && cargo bench -p footlights-test --bench db 2>/dev/null) | sed -n '/^| measure/,$p' > "$OUT/db.txt"
fi

# Repeating jobs at scale and durable queues (in process): SKIP_JOBS=1 leaves them out.
if [ "${SKIP_JOBS:-0}" != 1 ]; then
  loadline "jobs bench"
  (cd "$ROOT" && cargo bench -p footlights-test --bench jobs 2>/dev/null) | sed -n '/^## Repeating jobs/,$p' > "$OUT/jobs.txt"
  loadline "queues bench"
  (cd "$ROOT" && cargo bench -p footlights-test --bench queues 2>/dev/null) | sed -n '/^## Durable queues/,$p' >> "$OUT/jobs.txt"
fi

# Two nodes on PostgreSQL (a server the bench starts: Debian's package): forwarding overhead and
# failover after kill -9. SKIP_CLUSTER=1 leaves it out.
if [ "${SKIP_CLUSTER:-0}" != 1 ]; then
  loadline "cluster bench"
  (cd "$ROOT" && cargo bench -p footlights-cli --bench cluster 2>/dev/null) | sed -n '/^## Cluster/,$p' > "$OUT/cluster.txt"
fi

write_report
