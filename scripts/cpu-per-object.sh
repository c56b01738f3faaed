#!/usr/bin/env bash
# CPU per ingested object, by thread, for one ferrogrid build: starts `BIN run samples/SAMPLE` on
# a loopback port with a throwaway data directory, drives `POST /http` with wrk (16 connections,
# 2 s warm-up, then SECONDS s), and prints the CPU time (user + system) each thread name used per
# accepted object. Compare two builds run one after the other on the same machine: the figures
# are about the server's work, so a noisy machine moves them far less than it moves throughput.
# Usage: scripts/cpu-per-object.sh BIN [SAMPLE=library] [PORT=18110] [SECONDS=6]
# Needs wrk (Debian package `wrk`). The objects are library users (wrapped as `{"User": ...}` for
# samples/quickstart).
set -euo pipefail
BIN=$1; SAMPLE=${2:-library}; PORT=${3:-18110}; SECS=${4:-6}
# shellcheck source=scripts/lib/serve-sample.sh
. "$(dirname "$0")/lib/serve-sample.sh"
serve_sample "$BIN" "$SAMPLE" "$PORT"
wrk -t2 -c16 -d2s -s "$DIR/post.lua" "http://127.0.0.1:$PORT" > /dev/null
snapshot() {
  for t in /proc/"$PID"/task/*; do
    name=$(tr ' ' '_' < "$t/comm"); read -r u s < <(awk '{print $14, $15}' "$t/stat"); echo "$name $((u + s))"
  done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}
snapshot > "$DIR/before"
OUT=$(wrk -t2 -c16 -d"${SECS}s" -s "$DIR/post.lua" "http://127.0.0.1:$PORT")
snapshot > "$DIR/after"
REQ=$(echo "$OUT" | awk '/requests in/ {print $1}')
TICK=$(getconf CLK_TCK)
echo "$(basename "$BIN") $SAMPLE: $REQ objects in ${SECS}s ($(echo "$OUT" | awk '/Requests\/sec/ {print $2}')/s)"
join "$DIR/before" "$DIR/after" | awk -v req="$REQ" -v tick="$TICK" \
  '{d = $3 - $2; t += d; if (d > 0) printf "  %-24s %7.1f us/object\n", $1, d * 1e6 / tick / req} END {printf "  %-24s %7.1f us/object\n", "total", t * 1e6 / tick / req}' \
  | sort -k2 -n -r
