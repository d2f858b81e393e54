#!/usr/bin/env bash
# Cold calls and many actors, for one or more builds of `footlights` one after the other
# (each on a fresh data directory): the `c64_written`, `c64`, `a`, `cold`, `c_many100k` and
# `c_many100k_shuffled` scenarios of `footlights-bench` (cold and the 100k ones run once). Appends to bench/out/cold-many.jsonl; the lines on stderr
# are the figures.
#
# Usage: bench/cold-many.sh NAME=DIR [NAME=DIR ...]   (DIR holds `footlights` and
#        `footlights-bench`; the bench of the first DIR, or $BENCH, drives every server)
# Env: SECS (3), WARMUP (1), RUNS (3), ONLY (the scenarios), PORT (a free one, each server),
#      SERVE_ARGS (more options for `footlights serve`, such as `--remembered-actors 131072`),
#      OUT_FILE (bench/out/cold-many.jsonl).
#
# A build that has `serve --sleep-timeout` gets `--sleep-timeout 900`, so that the 100,000
# counters of `c_many100k*` are still awake when their window calls them however long their
# creation took (the `cold` scenarios put their actors to sleep themselves). Older builds keep
# the 30 s timeout: the bench line says how many window calls woke an actor. A --sleep-timeout
# in SERVE_ARGS wins.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/out"
SECS="${SECS:-3}" WARMUP="${WARMUP:-1}" RUNS="${RUNS:-3}"
ONLY="${ONLY:-c64_written,c64,a,cold,c_many100k,c_many100k_shuffled}"
OUT_FILE="${OUT_FILE:-$OUT/cold-many.jsonl}"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
mkdir -p "$OUT"
first="${1#*=}"
BENCH="${BENCH:-$first/footlights-bench}"
for spec in "$@"; do
  name="${spec%%=*}" dir="${spec#*=}"
  data="$OUT/cold-many-$name"
  rm -rf "$data"
  port="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  awake_args=""
  if [[ "${SERVE_ARGS:-}" != *--sleep-timeout* ]] \
    && "$dir/footlights" serve --help 2>/dev/null | grep -q -- "--sleep-timeout"; then
    awake_args="--sleep-timeout 900"
  fi
  # shellcheck disable=SC2086
  RUST_LOG=warn "$dir/footlights" serve --port "$port" --data-dir "$data" $awake_args ${SERVE_ARGS:-} > "$OUT/cold-many-$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do grep -q "listening on" "$OUT/cold-many-$name.log" && break; sleep 0.1; done
  for s in ${ONLY//,/ }; do
    runs="$RUNS"; case "$s" in c_many100k*|cold) runs=1;; esac
    echo "load average before $name $s: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    "$BENCH" suite --addr "127.0.0.1:$port" --name "$name" --pids "$pid" --only "$s" \
      --warmup "$WARMUP" --secs "$SECS" --runs "$runs" --out "$OUT_FILE"
  done
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
done
