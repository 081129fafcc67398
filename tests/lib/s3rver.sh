# S3-compatible server for tests: s3rver (npm, installed by .ci/install-deps under
# build-deps/node) on 127.0.0.1 at a free port, stopped by its pid.
# s3rver_start DIR BUCKET...  sets S3_PID, S3_PORT, S3_ENDPOINT (http://127.0.0.1:PORT)
# s3rver_stop                 stops it (SIGTERM, then SIGKILL)
# s3rver's account: access key S3RVER, secret S3RVER.

S3RVER_BIN=${S3RVER_BIN:-${EG_SOURCE_DIR:-.}/build-deps/node/node_modules/.bin/s3rver}
S3_PID=
S3_PORT=
S3_ENDPOINT=

s3rver_available() { [ -x "$S3RVER_BIN" ] && command -v node >/dev/null 2>&1; }

s3_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

s3rver_start() {
  local dir=$1 attempt i
  shift
  mkdir -p "$dir"
  local args=()
  for b in "$@"; do args+=(--configure-bucket "$b"); done
  for attempt in 1 2 3; do
    S3_PORT=$(s3_free_port)
    "$S3RVER_BIN" -d "$dir" -a 127.0.0.1 -p "$S3_PORT" --service-endpoint localhost "${args[@]}" >"$dir.log" 2>&1 &
    S3_PID=$!
    S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
    for i in $(seq 150); do
      kill -0 "$S3_PID" 2>/dev/null || break
      if curl -s -o /dev/null "$S3_ENDPOINT/" 2>/dev/null; then return 0; fi
      sleep 0.1
    done
    s3rver_stop
  done
  echo "s3rver did not start; log:" >&2
  cat "$dir.log" >&2 || true
  return 1
}

s3rver_stop() {
  [ -n "$S3_PID" ] || return 0
  kill -TERM "$S3_PID" 2>/dev/null || true
  local i
  for i in $(seq 50); do kill -0 "$S3_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$S3_PID" 2>/dev/null || true
  wait "$S3_PID" 2>/dev/null || true
  S3_PID=
}
