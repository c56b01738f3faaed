#!/usr/bin/env bash
# Profile the ingest path: starts `BIN run samples/SAMPLE` on a loopback port with a throwaway
# data directory, loads `POST /http` with wrk (-t1 -c64) and records the server with
# `perf record --call-graph dwarf` for SECONDS; writes OUT.folded (inferno's collapsed stacks),
# OUT.svg (the flame graph) and prints the top frames by self time and the threads' shares.
# SAMPLE `graphql` profiles GraphQL get by primary key instead: samples/library, 3 s of users
# stored first, then `User(id: $id) { id username }` with random stored ids.
# Usage: scripts/profile-ingest.sh BIN [SAMPLE=quickstart|library|graphql] [OUT=target/perf/ingest] [SECONDS=4]
# Needs wrk and perf (Debian packages `wrk`, `linux-perf`); installs inferno (crates.io) into
# target/peers/inferno when it is missing.
set -euo pipefail
BIN=$1; SAMPLE=${2:-quickstart}; OUT=${3:-target/perf/ingest}; SECS=${4:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
INFERNO=$ROOT/target/peers/inferno/bin
if [ ! -x "$INFERNO/inferno-flamegraph" ]; then
    cargo install inferno --locked --root "$ROOT/target/peers/inferno"
fi
mkdir -p "$(dirname "$OUT")"
# shellcheck source=scripts/lib/serve-sample.sh
. "$(dirname "$0")/lib/serve-sample.sh"
PORT=18190
if [ "$SAMPLE" = graphql ]; then
    serve_sample "$BIN" library "$PORT"
    wrk -t1 -c64 -d3s -s "$DIR/post.lua" "http://127.0.0.1:$PORT" > /dev/null
    USERS=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"query": "{ User(first: -1) { id } }"}' "http://127.0.0.1:$PORT/graphql" | sed -E 's/.*"id":([0-9]+).*/\1/')
    echo "get by primary key over ids 1..$USERS"
    cat > "$DIR/post.lua" <<LUA
request = function()
  local body = '{"query": "query(\$id: Long) { User(id: \$id) { id username } }", "variables": {"id": ' .. math.random(1, $USERS) .. '}}'
  return wrk.format("POST", "/graphql", {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. os.getenv("TOKEN")}, body)
end
LUA
else
    serve_sample "$BIN" "$SAMPLE" "$PORT"
fi
wrk -t1 -c64 -d2s -s "$DIR/post.lua" "http://127.0.0.1:$PORT" > /dev/null
perf record -F 499 --call-graph dwarf,16384 -p "$PID" -o "$DIR/perf.data" -- sleep "$SECS" > /dev/null 2>&1 &
PERF=$!
wrk -t1 -c64 -d"$((SECS + 1))s" -s "$DIR/post.lua" "http://127.0.0.1:$PORT" | grep "Requests/sec" | sed 's/^/under perf: /'
wait "$PERF"
perf script -i "$DIR/perf.data" 2>/dev/null | "$INFERNO/inferno-collapse-perf" --all > "$OUT.folded"
"$INFERNO/inferno-flamegraph" < "$OUT.folded" > "$OUT.svg"
python3 - "$OUT.folded" <<'PY'
import collections, re, sys
total = 0; leaf = collections.Counter(); threads = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(' '); n = int(n); total += n
    frames = stack.split(';')
    leaf[re.sub(r'_\[[a-z]\]$', '', frames[-1])] += n
    threads[re.sub(r'-?\d+$', '-N', frames[0])] += n
print("threads:", ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in threads.most_common(8)))
for f, n in leaf.most_common(15):
    print(f"{100 * n / total:5.1f}%  {f[:110]}")
PY
echo "flame graph: $OUT.svg"
