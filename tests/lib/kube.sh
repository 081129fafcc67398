# Shared helpers for the kubernetes-runtime integration tests: the API test server
# (tests/kube/apiserver.py) started in its private mount namespace and stopped with every pod
# process, a curl helper for its API, and health as the daemon reports it.
# Source after lib.sh. Sets KUBE, URL, KC and K (the runtime options for eg).

KUBE="$T/kube"
mkdir -p "$KUBE"
SERVER_PID=
KUBE_TOKEN=admin

stop_kube_server() {
  [ -z "${SAMPLER:-}" ] || kill "$SAMPLER" 2>/dev/null || true
  # first, so that it does not make pods again while the server stops
  kill_daemon
  if [ -n "$SERVER_PID" ]; then
    # its own process group: the server and every etcd pod process it started
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
  # pods the server could not stop (it was killed first) still have their pid files
  local f
  for f in "$KUBE"/state/pods/*/*.pid; do
    [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
  done
  if [ "$TEST_RC" -ne 0 ] && [ -f "$KUBE/server.log" ]; then
    echo "--- apiserver log (tail)" >&2
    tail -n 30 "$KUBE/server.log" >&2
  fi
}
on_exit stop_kube_server

# start_kube_server [apiserver options]: starts it and waits for its URL; exits 0 (skip)
# where no private mount namespace is allowed. Pod addresses start at a random 127.R.R.10
# so that tests running side by side do not race for the same ones.
start_kube_server() {
  local ipstart="127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).10"
  setsid bash "$EG_SOURCE_DIR/tests/kube/netns-run.sh" "$KUBE/hosts" \
    python3 "$EG_SOURCE_DIR/tests/kube/apiserver.py" --state-dir "$KUBE/state" --tls-dir "$KUBE/tls" \
    --ready-file "$KUBE/ready" --kubeconfig-out "$KUBE/kc" --hosts-file "$KUBE/hosts" \
    --pod-ip-start "$ipstart" "$@" >"$KUBE/server.log" 2>&1 &
  SERVER_PID=$!
  wait_until 60 "the API test server" _kube_server_up
  if ! [ -s "$KUBE/ready" ]; then
    local rc
    set +e; wait "$SERVER_PID"; rc=$?; set -e
    SERVER_PID=
    if [ $rc -eq 77 ]; then say "SKIP: no private mount namespace here"; exit 0; fi
    fail "the API test server exited with $rc"
  fi
  URL=$(cat "$KUBE/ready")
  KC="$KUBE/kc/admin.kubeconfig"
  K=(--runtime kubernetes --kubeconfig "$KC")
}
_kube_server_up() { [ -s "$KUBE/ready" ] || ! kill -0 "$SERVER_PID" 2>/dev/null; }

# kube_api PATH [curl options]: the API as admin (or $KUBE_TOKEN); fails on HTTP errors
kube_api() {
  local path=$1; shift
  curl -sS --fail --max-time 20 --cacert "$KUBE/tls/ca.crt" -H "Authorization: Bearer $KUBE_TOKEN" "$@" "$URL$path"
}

b64() { printf '%s' "$1" | base64 -w0; }

# etcd_put CLUSTER POD KEY VALUE / etcd_get CLUSTER POD KEY: etcd's v3 JSON gateway
# through the pods proxy (the members' client URLs are cluster DNS names)
etcd_put() {
  kube_api "/api/v1/namespaces/default/pods/$2:2379/proxy/v3/kv/put" -X POST \
    -d "{\"key\":\"$(b64 "$3")\",\"value\":\"$(b64 "$4")\"}" >/dev/null
}
etcd_get() {
  kube_api "/api/v1/namespaces/default/pods/$2:2379/proxy/v3/kv/range" -X POST \
    -d "{\"key\":\"$(b64 "$3")\"}" |
    python3 -c 'import base64,json,sys; k=json.load(sys.stdin).get("kvs",[]); print(base64.b64decode(k[0]["value"]).decode() if k else "")'
}

kube_json() { eg get clusters "$1" "${K[@]}" -o json; }

# kube_healthy NAME N: exactly N members, all ready, all voters
kube_healthy() {
  local n
  n=$(kube_json "$1" | jget 'len(d[0]["status"]["members"]["ready"]) if len(d[0]["status"]["memberDetails"])==len(d[0]["status"]["members"]["ready"]) and all(m["role"] in ("leader","follower") for m in d[0]["status"]["memberDetails"]) else -1') || return 1
  [ "$n" = "$2" ]
}

# kube_members NAME: the member names, sorted, space-separated
kube_members() { kube_json "$1" | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))'; }

# kube_follower NAME: one follower's member name
kube_follower() { kube_json "$1" | jget '[m["name"] for m in d[0]["status"]["memberDetails"] if m["role"]=="follower"][0]'; }

# kube_pods NAME: the cluster's pod names, sorted
kube_pods() {
  kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3D$1" |
    jget '" ".join(sorted(p["metadata"]["name"] for p in d["items"]))'
}

# kube_kill POD: SIGKILL the pod's etcd process (a crash)
kube_kill() {
  local pid
  pid=$(cat "$KUBE/state/pods/default/$1.pid") || fail "no pid file for pod $1"
  kill -KILL "$pid"
}

# kube_fake_versions V...: $T/bins/<V>/etcd for each V, all the etcd on PATH, so that
# `start_kube_server --etcd-bin-dir "$T/bins"` runs "versions" that only differ by name
kube_fake_versions() {
  local v
  for v in "$@"; do
    mkdir -p "$T/bins/$v"
    ln -sf "$(command -v etcd)" "$T/bins/$v/etcd"
  done
}

# sampler_start CLUSTER / sampler_stop: every 200 ms, the number of the cluster's pods that
# are Running, Ready and not being deleted, one line each in $T/ready-samples (emptied at
# start); sampler_low: the fewest seen
SAMPLER=
sampler_start() {
  : >"$T/ready-samples"
  (
    while :; do
      kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3D$1" | python3 -c '
import json,sys
items=json.load(sys.stdin)["items"]
print(sum(1 for p in items if p["status"].get("phase")=="Running" and not p["metadata"].get("deletionTimestamp") and
          any(c["type"]=="Ready" and c["status"]=="True" for c in p["status"].get("conditions",[]))))' >>"$T/ready-samples" || true
      sleep 0.2
    done
  ) &
  SAMPLER=$!
}
sampler_stop() { kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=; }
sampler_low() { sort -n "$T/ready-samples" | head -n1; }
