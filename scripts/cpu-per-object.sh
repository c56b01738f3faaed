#!/usr/bin/env bash
# CPU per ingested object, by thread, for one ferrogrid build: starts `BIN run samples/SAMPLE` on
# a loopback port with a throwaway data directory, drives `POST /http` with wrk (16 connections,
# 2 s warm-up, then SECONDS s), and prints the CPU time (user + system) each thread name used per
# accepted object. Compare two builds run one after the other on the same machine: the figures
# are about the server's work, so a noisy machine moves them far less than it moves throughput.
# Usage: scripts/cpu-per-object.sh BIN [SAMPLE=library] [PORT=18110] [SECONDS=6]
# Needs wrk (Debian package `wrk`). The objects are library users; samples/quickstart takes them
# only with its default step, so use samples/library (or a config whose classifier takes them).
set -euo pipefail
BIN=$1; SAMPLE=${2:-library}; PORT=${3:-18110}; SECS=${4:-6}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d)
trap 'kill -9 "$PID" 2>/dev/null; rm -rf "$DIR"' EXIT
"$BIN" run "$ROOT/samples/$SAMPLE" --data-dir "$DIR/data" --listen "127.0.0.1:$PORT" > "$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.1; done
export TOKEN; TOKEN=$(cat "$DIR/data/admin.token")
cat > "$DIR/post.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  local body = '{"id": ' .. counter .. ', "username": "user ' .. counter .. '"}'
  return wrk.format("POST", "/http", {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. os.getenv("TOKEN")}, body)
end
LUA
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
