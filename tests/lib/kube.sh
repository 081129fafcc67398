# Shared helpers for the kubernetes-runtime integration tests: the real kube-apiserver with the
# node stand-in (tests/kube/node.py) running its pods in network namespaces on a test bridge, all
# stopped by pid and torn down by name at exit. Curl helpers for the API and the node's knobs,
# credentials, and health as the daemon reports it.
# Source after lib.sh. Sets KUBE, URL, KC and K (the runtime options for eg).

KUBE="$T/kube"
mkdir -p "$KUBE"
NODE_PID=
NODE_URL=
URL=
KUBE_TOKEN=
KUBE_CA=
# the real kube-apiserver, laid out beside the checkout in CI
KUBE_APISERVER_DIR=${KUBE_APISERVER_DIR:-$EG_SOURCE_DIR/../shared/kube-apiserver}
KUBE_RUN="$KUBE/apiserver"
# names this test's bridge (egbID) and pod network namespaces (egID-N): unique per run
KUBE_NET_ID=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 5)

stop_kube_server() {
  [ -z "${SAMPLER:-}" ] || kill "$SAMPLER" 2>/dev/null || true
  # first, so that it does not make pods again while the server stops
  kill_daemon
  if [ "$TEST_RC" -ne 0 ] && [ -n "$URL" ]; then
    echo "--- pods at the end" >&2
    kube_api /api/v1/pods 2>/dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    m, s = p["metadata"], p.get("status") or {}
    waits = [c["name"] + ":" + c["state"]["waiting"].get("reason", "") for c in s.get("containerStatuses") or []
             if "waiting" in c.get("state", {})]
    print(m["namespace"], m["name"], s.get("phase"), "deleting" if m.get("deletionTimestamp") else "",
          p["spec"].get("nodeName") or "unbound", " ".join(waits))' >&2 || true
  fi
  if [ -n "$NODE_PID" ]; then
    kill -TERM "$NODE_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NODE_PID" 2>/dev/null || true
  fi
  # what the node stand-in could not take down itself (it was killed first): by name
  local ns
  for ns in $(ip netns list 2>/dev/null | awk -v p="eg$KUBE_NET_ID-" 'index($1, p) == 1 {print $1}'); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "egb$KUBE_NET_ID" 2>/dev/null || true
  if [ -d "$KUBE_RUN" ]; then
    # nothing to keep: no graceful shutdown to wait out (the script's stop then finds it gone)
    [ ! -s "$KUBE_RUN/apiserver.pid" ] || kill -KILL "$(cat "$KUBE_RUN/apiserver.pid")" 2>/dev/null || true
    "$KUBE_APISERVER_DIR/kube-apiserver.sh" stop "$KUBE_RUN" >/dev/null 2>&1 || true
  fi
  # pods whose stopper is gone still have their pid files
  local f
  for f in "$KUBE"/state/pods/*/*.pid; do
    [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
  done
  if [ "$TEST_RC" -ne 0 ]; then
    local l
    for l in "$KUBE/server.log" "$KUBE/node.log" "$KUBE_RUN/apiserver.log"; do
      [ -f "$l" ] || continue
      echo "--- $l (tail)" >&2
      tail -n 30 "$l" >&2
    done
  fi
}
on_exit stop_kube_server

# _free_port N: a port P such that P..P+N-1 are all free on 127.0.0.1
_free_port() {
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    p = random.randint(20000, 40000)
    socks = []
    try:
        for q in range(p, p + n):
            s = socket.socket()
            s.bind(("127.0.0.1", q))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(p)
    break
PY
}

# start_kube_server [--etcd-bin-dir DIR] [--pull-delay S]: the real kube-apiserver (from
# $KUBE_APISERVER_DIR) on free ports, and tests/kube/node.py playing its nodes with a pull delay
# of 2 s unless told. Exits 0 with SKIP and the reason when either cannot run here.
start_kube_server() {
  local node_args=(--pull-delay 2)
  while [ $# -gt 0 ]; do
    case $1 in
    --etcd-bin-dir | --pull-delay) node_args+=("$1" "$2"); shift 2 ;;
    *) fail "start_kube_server: unknown option $1" ;;
    esac
  done
  if [ ! -x "$KUBE_APISERVER_DIR/kube-apiserver.sh" ]; then
    say "SKIP: no real kube-apiserver at $KUBE_APISERVER_DIR (CI lays out ../shared/kube-apiserver beside the checkout)"
    exit 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! unshare --mount --propagation private true 2>/dev/null; then
    say "SKIP: the node stand-in needs root, iproute2 and mount namespaces for its pods"
    exit 0
  fi
  local try port eport started=
  for try in 1 2 3; do
    port=$(_free_port 1)
    eport=$(_free_port 2)
    if KUBE_APISERVER_PORT=$port KUBE_ETCD_PORT=$eport \
      "$KUBE_APISERVER_DIR/kube-apiserver.sh" start "$KUBE_RUN" >"$KUBE/server.log" 2>&1; then
      started=1
      break
    fi
    # a port taken between the check and the start: another pair
    "$KUBE_APISERVER_DIR/kube-apiserver.sh" stop "$KUBE_RUN" >/dev/null 2>&1 || true
  done
  [ -n "$started" ] || fail "kube-apiserver did not start: $(tail -n 5 "$KUBE/server.log")"
  URL="https://127.0.0.1:$port"
  KUBE_TOKEN=$(cat "$KUBE_RUN/admin.token")
  KUBE_CA="$KUBE_RUN/ca.crt"
  setsid python3 "$EG_SOURCE_DIR/tests/kube/node.py" --server "$URL" --token-file "$KUBE_RUN/admin.token" \
    --ca-file "$KUBE_CA" --state-dir "$KUBE/state" --hosts-file "$KUBE/hosts" --run-id "$KUBE_NET_ID" \
    --ready-file "$KUBE/node.url" "${node_args[@]}" >"$KUBE/node.log" 2>&1 &
  NODE_PID=$!
  wait_until 60 "the node stand-in" _kube_node_up
  [ -s "$KUBE/node.url" ] || fail "the node stand-in exited: $(tail -n 5 "$KUBE/node.log")"
  NODE_URL=$(cat "$KUBE/node.url")
  # this host's address on the pods' bridge: what pods reach a test server on
  KUBE_HOST_IP=$(cut -d' ' -f3 "$KUBE/state/network")
  mkdir -p "$KUBE/kc"
  KC="$KUBE/kc/admin.kubeconfig"
  kube_kubeconfig "$KC" admin token "$KUBE_TOKEN"
  K=(--runtime kubernetes --kubeconfig "$KC")
}
_kube_node_up() { [ -s "$KUBE/node.url" ] || ! kill -0 "$NODE_PID" 2>/dev/null; }

# kube_kubeconfig FILE USER token TOKEN | cert CERT KEY [ca-inline|insecure]: a kubeconfig for
# the real server, its CA as certificate-authority-data (or insecure-skip-tls-verify)
kube_kubeconfig() {
  local file=$1 user=$2 kind=$3 tls=ca-inline cred
  case $kind in
  token) cred="    token: $4"; tls=${5:-ca-inline} ;;
  cert) cred="    client-certificate-data: $(base64 -w0 <"$4")
    client-key-data: $(base64 -w0 <"$5")"; tls=${6:-ca-inline} ;;
  *) fail "kube_kubeconfig: $kind" ;;
  esac
  local trust="    certificate-authority-data: $(base64 -w0 <"$KUBE_CA")"
  [ "$tls" = insecure ] && trust="    insecure-skip-tls-verify: true"
  cat >"$file" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $URL
$trust
users:
- name: $user
  user:
$cred
contexts:
- name: test
  context:
    cluster: test
    user: $user
    namespace: default
current-context: test
YAML
}

# kube_apply FILE...: creates (or replaces) the objects in the YAML files, as admin
kube_apply() {
  python3 "$EG_SOURCE_DIR/tests/kube/apply.py" --server "$URL" --token-file "$KUBE_RUN/admin.token" \
    --ca-file "$KUBE_CA" "$@" || fail "cannot apply $*"
}

# kube_sa_kubeconfig NS SA FILE: a kubeconfig with a service account token (TokenRequest API)
kube_sa_kubeconfig() {
  local tok
  tok=$(kube_api "/api/v1/namespaces/$1/serviceaccounts/$2/token" -X POST -H 'Content-Type: application/json' \
    -d '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":7200}}' |
    jget 'd["status"]["token"]') || fail "no token for service account $1/$2"
  kube_kubeconfig "$3" "system:serviceaccount:$1:$2" token "$tok"
}

# kube_cert USER [GROUP] DIR: DIR/USER.crt and .key, a client certificate the server's CA signed
kube_cert() {
  local user=$1 group=${2:-} dir=$3 subj="/CN=$1"
  [ -z "$group" ] || subj="/O=$group/CN=$1"
  mkdir -p "$dir"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$dir/$user.key" -out "$dir/$user.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$dir/$user.ext"
  openssl x509 -req -in "$dir/$user.csr" -CA "$KUBE_RUN/certs/ca.crt" -CAkey "$KUBE_RUN/certs/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/$user.ext" -out "$dir/$user.crt" 2>/dev/null ||
    fail "cannot sign a client certificate for $user"
}

# node_ctl PATH [JSON]: the node stand-in's control endpoint (POST /knobs, /exit, /lose-node)
node_ctl() {
  curl -sS --fail --max-time 20 -X POST -H 'Content-Type: application/json' -d "${2:-{\}}" "$NODE_URL$1"
}

# pods_created CLUSTER [NS]: how many pods of the cluster were ever created (the node stand-in
# logs each one it sees)
pods_created() {
  awk -v ns="${2:-default}" -v c="$1" '$2 == ns && index($3, c "-") == 1 && substr($3, length(c) + 2) ~ /^[0-9]+$/' \
    "$KUBE/state/pods.log" 2>/dev/null | wc -l
}

# kube_api PATH [curl options]: the API as admin; fails on HTTP errors
kube_api() {
  local path=$1; shift
  curl -sS --fail --max-time 20 --cacert "$KUBE_CA" -H "Authorization: Bearer $KUBE_TOKEN" "$@" "$URL$path"
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

# kube_healthy NAME N: exactly N members, all ready, all voters (pods stuck terminating on a lost
# node, state gone, are no members)
kube_healthy() {
  local n
  n=$(kube_json "$1" | jget '(lambda ms, ready: len(ready) if len(ms)==len(ready) and all(m["role"] in ("leader","follower") for m in ms) else -1)([m for m in d[0]["status"]["memberDetails"] if m["state"]!="gone"], d[0]["status"]["members"]["ready"])') || return 1
  [ "$n" = "$2" ]
}

# kube_members NAME: the member names, sorted, space-separated
kube_members() { kube_json "$1" | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"] if m["state"]!="gone"))'; }

# kube_follower NAME: one follower's member name
kube_follower() { kube_json "$1" | jget '[m["name"] for m in d[0]["status"]["memberDetails"] if m["role"]=="follower"][0]'; }

# kube_pods NAME: the cluster's pod names, sorted
kube_pods() {
  kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3D$1" |
    jget '" ".join(sorted(p["metadata"]["name"] for p in d["items"]))'
}

# kube_events: the Events etcd-gitops posted in default, oldest first, one a line: "reason
# kind/name uid type" (uid "-" when it named an object already gone); fails unless each says it
# was reported by etcd-gitops from this host, about an object in default
kube_events() {
  kube_api /api/v1/namespaces/default/events | python3 -c '
import json,sys
host=sys.argv[1]
for e in sorted(json.load(sys.stdin)["items"], key=lambda e: (e.get("firstTimestamp") or "", e["metadata"]["creationTimestamp"])):
    if (e.get("source") or {}).get("component")!="etcd-gitops": continue
    assert e.get("reportingComponent")=="etcd-gitops" and e.get("reportingInstance")==host and e["source"].get("host")==host, e
    o=e["involvedObject"]
    assert o.get("namespace")=="default" and o.get("apiVersion")=="v1", e
    print(e["reason"], o["kind"] + "/" + o["name"], o.get("uid","-"), e["type"])' "$(hostname)"
}

# kube_uid RESOURCE/NAME: the uid of an object in default (pods/x, services/y)
kube_uid() { kube_api "/api/v1/namespaces/default/$1" | jget 'd["metadata"]["uid"]'; }

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

# kube_fail_over NAME: kills a follower's etcd and waits until NAME has 3 healthy members
# without it; sets victim (its name), victim_uid (its pod's uid) and after (the members then)
kube_fail_over() {
  victim=$(kube_follower "$1")
  victim_uid=$(kube_uid "pods/$victim")
  say "killing $victim"
  kube_kill "$victim"
  _kube_replaced() { kube_healthy "$1" 3 && ! kube_members "$1" | grep -qw "$victim"; }
  wait_until 120 "3 healthy members without $victim" _kube_replaced "$1"
  after=$(kube_members "$1")
  say "members now: $after"
}

# kube_role_without RESOURCE NAME USER: examples/kubernetes/rbac.yaml's ClusterRole without
# the rule that grants RESOURCE, named NAME, and a RoleBinding of it to USER in default
kube_role_without() {
  python3 - "$EG_SOURCE_DIR/examples/kubernetes/rbac.yaml" "$@" <<'PY'
import sys
path, resource, name, user = sys.argv[1:5]
docs = open(path).read().split("\n---\n")
role = next(d for d in docs if "kind: ClusterRole\n" in d)
out, skip = [], False
for line in role.replace("name: etcd-gitops-runtime", "name: " + name).splitlines():
    if line.strip().startswith("- apiGroups:") or line.strip().startswith("#"):
        skip = False
    if line.strip() == f"resources: [{resource}]":
        out.pop()  # its "- apiGroups" line
        skip = True
    if not skip:
        out.append(line)
print("\n".join(out))
print(f"""---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {name}
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {name}
subjects:
  - kind: User
    name: {user}""")
PY
}
