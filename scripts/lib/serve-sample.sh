# Sourced by the measuring scripts: `serve_sample BIN SAMPLE PORT` starts `BIN run
# samples/SAMPLE` on 127.0.0.1:PORT with a throwaway data directory, waits for /health, and
# sets DIR (a temporary folder, removed with the server on exit), PID, TOKEN (exported) and
# DIR/post.lua: a wrk script posting a new user per request to /http (`{"User": {...}}` for
# samples/quickstart, whose default step takes that shape; the bare object otherwise).
serve_sample() {
    local bin=$1 sample=$2 port=$3 root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    DIR=$(mktemp -d)
    trap 'kill -9 "$PID" 2>/dev/null; rm -rf "$DIR"' EXIT
    "$bin" run "$root/samples/$sample" --data-dir "$DIR/data" --listen "127.0.0.1:$port" > "$DIR/log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
    export TOKEN; TOKEN=$(cat "$DIR/data/admin.token")
    local open='' close=''
    if [ "$sample" = quickstart ]; then open='{"User": '; close='}'; fi
    cat > "$DIR/post.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  local body = '$open{"id": ' .. counter .. ', "username": "bench user ' .. counter .. '"}$close'
  return wrk.format("POST", "/http", {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. os.getenv("TOKEN")}, body)
end
LUA
}
