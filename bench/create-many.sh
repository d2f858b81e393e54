#!/usr/bin/env bash
# What creating 100,000 actors costs the server: the `c_many100k` scenario of
# `footlights-bench` (its setup creates the counters, then a 1 s window of calls), with the
# server's bytes written (`write_bytes` of /proc/<pid>/io) per actor, its CPU time and the
# wall time around it. One line per build, each on a fresh data directory.
#
# Usage: bench/create-many.sh NAME=DIR [NAME=DIR ...]   (DIR holds `footlights` and
#        `footlights-bench`)
set -euo pipefail
OUT="$(cd "$(dirname "$0")" && pwd)/out"
mkdir -p "$OUT"
for spec in "$@"; do
  name="${spec%%=*}" dir="${spec#*=}"
  data="$OUT/create-$name"
  rm -rf "$data"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  RUST_LOG=warn "$dir/footlights" serve --port "$port" --data-dir "$data" --sleep-timeout 900 \
    > "$OUT/create-$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do grep -q "listening on" "$OUT/create-$name.log" && break; sleep 0.1; done
  written() { awk '/^write_bytes/ { print $2 }' "/proc/$pid/io"; }
  cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
  w0="$(written)" c0="$(cpu_ticks)" t0="$(date +%s%N)"
  "$dir/footlights-bench" suite --addr "127.0.0.1:$port" --name "$name" --pids "$pid" \
    --only c_many100k --warmup 0 --secs 1 --runs 1 --out "$OUT/create-many.jsonl" > /dev/null
  t1="$(date +%s%N)" w1="$(written)" c1="$(cpu_ticks)"
  ticks="$(getconf CLK_TCK)"
  echo "$name: server wrote $(( (w1 - w0) / 100000 )) B per actor created," \
    "server CPU $(( (c1 - c0) * 1000 / ticks )) ms, wall $(( (t1 - t0) / 1000000 )) ms," \
    "store $(du -sk "$data" | cut -f1) KiB"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
done
