#!/usr/bin/env bash
# Live heap per parked `/connect` socket, for one or more builds of `footlights` one after the
# other. Each server runs under heaptrack; the bench's `h_small` scenario opens 1,000 idle
# WebSockets on one actor and puts it to sleep; once the sockets are open and the actor is
# asleep (seen on `/metrics`), the server is killed with SIGKILL a second later, so that what
# heaptrack reports as not freed is what the parked sockets (and the server's fixed state)
# held. A server with no actor at all gives the fixed part; the difference over 1,000 sockets is
# the heap per parked socket (requested bytes, without the allocator's own overhead).
#
# Build each `footlights` with the system allocator, which heaptrack can see:
#   cargo build --release -p footlights-cli --no-default-features
# Usage: bench/parked-heap.sh NAME=BIN [NAME=BIN ...]   ($BENCH: the footlights-bench binary;
#        $LOG: the servers' RUST_LOG, `warn` by default)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/out/parked-heap"
BENCH="${BENCH:-$HERE/../target/release/footlights-bench}"
SOCKETS=1000
mkdir -p "$OUT"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" 'index($0, n" ")==1 {print $2}'; }

# Runs BIN under heaptrack; with "with-sockets", drives h_small until the actor sleeps.
# Prints the bytes heaptrack saw still allocated at the kill.
measure() {
  local name="$1" bin="$2" mode="$3" port data log
  port="$(free_port)" data="$OUT/data-$name-$mode" log="$OUT/$name-$mode.log"
  rm -rf "$data" "$OUT/$name-$mode".heaptrack.*
  RUST_LOG="${LOG:-warn}" heaptrack -o "$OUT/$name-$mode.heaptrack" "$bin" serve --port "$port" \
    --data-dir "$data" > "$log" 2>&1 &
  local ht=$!
  for _ in $(seq 1 600); do grep -q "listening on" "$log" && break; sleep 0.1; done
  local pid
  pid="$(pgrep -f -n -- "--port $port")"
  if [ "$mode" = with-sockets ]; then
    "$BENCH" suite --addr "127.0.0.1:$port" --name "$name" --pids "$pid" --only h_small \
      --runs 1 --warmup 0 --secs 1 --out "$OUT/bench.jsonl" > "$OUT/$name-bench.log" 2>&1 &
    local bench=$!
    # Wait (bounded) until the sockets are open, then until the actor sleeps.
    local open=0 awake=1
    for _ in $(seq 1 600); do
      open="$(metric "$port" 'footlights_connections_open{transport="websocket"}')"
      [ "${open:-0}" -ge "$SOCKETS" ] && break; sleep 0.1
    done
    for _ in $(seq 1 600); do
      awake="$(metric "$port" 'footlights_actors_awake{actor="counter"}')"
      [ "${awake:-1}" = 0 ] && break; sleep 0.05
    done
    sleep 1
    echo "$name: $open sockets open, actors awake ${awake:-?}, parked $(metric "$port" footlights_websockets_parked)" >&2
    kill -KILL "$pid"; wait "$ht" 2>/dev/null || true
    kill "$bench" 2>/dev/null || true; wait "$bench" 2>/dev/null || true
  else
    sleep 1
    kill -KILL "$pid"; wait "$ht" 2>/dev/null || true
  fi
  heaptrack_print -f "$OUT/$name-$mode".heaptrack.* 2>/dev/null \
    | awk '/^total memory leaked:/ {print $4}'
}

for spec in "$@"; do
  name="${spec%%=*}" bin="${spec#*=}"
  base="$(measure "$name" "$bin" empty)"
  full="$(measure "$name" "$bin" with-sockets)"
  echo "$name: not freed with no actor $base, with $SOCKETS parked sockets $full" >&2
  python3 - "$name" "$base" "$full" "$SOCKETS" <<'PY'
import re, sys
def size(s):
    m = re.match(r"([0-9.]+)([KMG]?)", s)
    return float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]
name, base, full, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
print(f"{name}: {(size(full) - size(base)) / n:.0f} B of heap per parked socket")
PY
done
