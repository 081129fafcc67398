# S3-compatible server for tests: s3rver (npm, installed by .ci/install-deps under
# build-deps/node) on 127.0.0.1 at a free port, stopped by its pid.
# s3rver_start DIR BUCKET...  sets S3_PID, S3_PORT, S3_ENDPOINT (http://127.0.0.1:PORT)
# s3rver_stop                 stops it (SIGTERM, then SIGKILL), and the verifier when there is one
# s3rver's account: access key S3RVER, secret S3RVER.
# s3rver checks the access key but not the signature. With S3_VERIFY=1, s3rver_start puts
# tests/lib/s3sigv4.py in front, which checks SigV4 as AWS does (keys S3_VERIFY_KEYS, default
# S3RVER:S3RVER, space-separated ID:SECRET; region S3_VERIFY_REGION, default us-east-1):
# S3_PORT and S3_ENDPOINT are then the verifier's, S3RVER_PORT is s3rver's, S3V_PID the
# verifier's pid and S3V_LOG its log (one line per request: method path query verdict), S3V_JSONL
# the same as JSON lines with each request's headers, what it signed and when it started and
# ended. The verifier injects the faults S3V_FAULTS (a JSON list of rules, read again whenever
# it changes; see Faults in s3sigv4.py) asks for: s3_faults 'JSON' writes it, s3_faults '[]'
# clears it.
# S3_PID stays s3rver's, so killing it still takes the storage away. S3_VERIFY_HOST: the address
# the verifier listens on and S3_ENDPOINT names (default 127.0.0.1), e.g. a test bridge's so
# that pods reach it too.
# shellcheck shell=bash

S3RVER_BIN=${S3RVER_BIN:-${EG_SOURCE_DIR:-.}/build-deps/node/node_modules/.bin/s3rver}
S3_PID=
S3_PORT=
S3_ENDPOINT=
S3RVER_PORT=
S3V_PID=
S3V_LOG=
S3V_JSONL=
S3V_FAULTS=

s3rver_available() { [ -x "$S3RVER_BIN" ] && command -v node >/dev/null 2>&1; }

s3_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

s3rver_start() {
  local dir=$1
  shift
  mkdir -p "$dir"
  local args=()
  for b in "$@"; do args+=(--configure-bucket "$b"); done
  for _ in 1 2 3; do
    S3_PORT=$(s3_free_port)
    # s3rver seals list continuation tokens with DES, which OpenSSL 3 keeps in its legacy provider:
    # without it, a listing longer than one page fails with HTTP 500
    NODE_OPTIONS=--openssl-legacy-provider "$S3RVER_BIN" -d "$dir" -a 127.0.0.1 -p "$S3_PORT" --service-endpoint localhost "${args[@]}" >"$dir.log" 2>&1 &
    S3_PID=$!
    S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
    S3RVER_PORT=$S3_PORT
    for _ in $(seq 150); do
      kill -0 "$S3_PID" 2>/dev/null || break
      if curl -s -o /dev/null "$S3_ENDPOINT/" 2>/dev/null; then
        [ "${S3_VERIFY:-0}" = 1 ] || return 0
        s3sigv4_start "$dir" && return 0
        break
      fi
      sleep 0.1
    done
    s3rver_stop
  done
  echo "s3rver did not start; log:" >&2
  cat "$dir.log" >&2 || true
  return 1
}

# s3sigv4_start DIR: the verifier in front of the s3rver on S3RVER_PORT
s3sigv4_start() {
  local dir=$1 k
  local ready="$dir.sigv4.ready" args=()
  if [ -n "$S3V_PID" ]; then s3_stop_pid "$S3V_PID"; S3V_PID=; fi
  for k in ${S3_VERIFY_KEYS:-S3RVER:S3RVER}; do args+=(--key "$k"); done
  S3V_LOG="$dir.sigv4.log"
  S3V_JSONL="$dir.sigv4.jsonl"
  S3V_FAULTS="$dir.faults"
  rm -f "$ready"
  python3 "${EG_SOURCE_DIR:-.}/tests/lib/s3sigv4.py" --upstream "127.0.0.1:$S3RVER_PORT" "${args[@]}" \
    --host "${S3_VERIFY_HOST:-127.0.0.1}" --jsonl "$S3V_JSONL" --faults "$S3V_FAULTS" \
    --region "${S3_VERIFY_REGION:-us-east-1}" --ready-file "$ready" --log "$S3V_LOG" >/dev/null 2>"$dir.sigv4.err" &
  S3V_PID=$!
  for _ in $(seq 100); do
    if [ -s "$ready" ]; then
      S3_PORT=$(cat "$ready")
      S3_ENDPOINT="http://${S3_VERIFY_HOST:-127.0.0.1}:$S3_PORT"
      return 0
    fi
    kill -0 "$S3V_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "s3sigv4.py did not start:" >&2
  cat "$dir.sigv4.err" >&2 || true
  return 1
}

# s3_faults JSON: the verifier's fault rules from now on (written whole, so never half read)
s3_faults() {
  printf '%s\n' "$1" >"$S3V_FAULTS.tmp"
  mv "$S3V_FAULTS.tmp" "$S3V_FAULTS"
}

# s3_stop_pid PID: SIGTERM, up to 5 s, then SIGKILL
s3_stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

s3rver_stop() {
  if [ -n "$S3V_PID" ]; then s3_stop_pid "$S3V_PID"; S3V_PID=; fi
  if [ -n "$S3_PID" ]; then s3_stop_pid "$S3_PID"; S3_PID=; fi
}
