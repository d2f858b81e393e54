#!/usr/bin/env bash
# Cold calls and many actors, for one or more builds of `footlights` one after the other
# (each on a fresh data directory): the `c64_written`, `c64`, `a`, `cold`, `c_many100k` and
# `c_many100k_shuffled` scenarios of `footlights-bench` (cold and the 100k ones run once). Appends to bench/out/cold-many.jsonl; the lines on stderr
# are the figures.
#
# Usage: bench/cold-many.sh NAME=DIR [NAME=DIR ...]   (DIR holds `footlights` and
#        `footlights-bench`; the bench of the first DIR, or $BENCH, drives every server)
# Env: SECS (3), WARMUP (1), RUNS (3), ONLY (the scenarios), PORT (6431).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/out"
SECS="${SECS:-3}" WARMUP="${WARMUP:-1}" RUNS="${RUNS:-3}"
ONLY="${ONLY:-c64_written,c64,a,cold,c_many100k,c_many100k_shuffled}"
PORT="${PORT:-6431}"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
mkdir -p "$OUT"
first="${1#*=}"
BENCH="${BENCH:-$first/footlights-bench}"
for spec in "$@"; do
  name="${spec%%=*}" dir="${spec#*=}"
  data="$OUT/cold-many-$name"
  rm -rf "$data"
  RUST_LOG=warn "$dir/footlights" serve --port "$PORT" --data-dir "$data" > "$OUT/cold-many-$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do grep -q "listening on" "$OUT/cold-many-$name.log" && break; sleep 0.1; done
  for s in ${ONLY//,/ }; do
    runs="$RUNS"; case "$s" in c_many100k*|cold) runs=1;; esac
    echo "load average before $name $s: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    "$BENCH" suite --addr "127.0.0.1:$PORT" --name "$name" --pids "$pid" --only "$s" \
      --warmup "$WARMUP" --secs "$SECS" --runs "$runs" --out "$OUT/cold-many.jsonl"
  done
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
done
