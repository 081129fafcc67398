#!/usr/bin/env bash
# Bring-up of 3 members and failover of 1 on the kubernetes runtime (against the API test
# server under tests/kube), next to the local runtime's figures from the same run.
# usage: tests/bench/bench_kube.sh BINARY [ROUNDS]   (as root: the test server needs a
# private mount namespace for its DNS)
set -euo pipefail
BIN=$(realpath "$1"); ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/eg-bench-kube.XXXXXX)
KUBE="$T/kube"; SRC="$T/src"; mkdir -p "$KUBE" "$SRC"
export ETCD_GITOPS_STATE_DIR="$T/state" NO_COLOR=1
SERVER_PID= DAEMON_PID=
finish() {
  [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && { kill -TERM -- "-$SERVER_PID" 2>/dev/null; sleep 2; kill -KILL -- "-$SERVER_PID" 2>/dev/null; } || true
  rm -rf "$T"
}
trap finish EXIT
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

setsid bash "$ROOT/tests/kube/netns-run.sh" "$KUBE/hosts" \
  python3 "$ROOT/tests/kube/apiserver.py" --state-dir "$KUBE/state" --tls-dir "$KUBE/tls" \
  --ready-file "$KUBE/ready" --kubeconfig-out "$KUBE/kc" --hosts-file "$KUBE/hosts" \
  >"$KUBE/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do [ -s "$KUBE/ready" ] && break; sleep 0.1; done
[ -s "$KUBE/ready" ] || { echo "the API test server did not start"; tail "$KUBE/server.log"; exit 1; }
K=(--runtime kubernetes --kubeconfig "$KUBE/kc/admin.kubeconfig")
manifest() { printf 'apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata:\n  name: kb\nspec:\n  size: 3\n  version: "3.4.23"\n' >"$SRC/kb.yaml"; }
healthy3() {
  "$BIN" get clusters kb "${K[@]}" -o json 2>/dev/null | python3 -c '
import json,sys
try:
    s=json.load(sys.stdin)[0]["status"]; m=s["memberDetails"]
except (ValueError, LookupError):
    sys.exit(1)  # no cluster yet
sys.exit(0 if len(m)==3 and len(s["members"]["ready"])==3 and all(x["role"] in ("leader","follower") for x in m) else 1)'
}

up=()
for i in $(seq "$ROUNDS"); do
  manifest
  t0=$(now_ms)
  "$BIN" apply "${K[@]}" --source "$SRC" --wait=180s >/dev/null 2>&1
  up+=($(( $(now_ms) - t0 )))
  rm "$SRC/kb.yaml"
  "$BIN" apply "${K[@]}" --source "$SRC" --prune --allow-empty --delete-pruned-data --wait=60s >/dev/null 2>&1
  for _ in $(seq 300); do [ -z "$(ls "$KUBE/state/pods/default" 2>/dev/null)" ] && break; sleep 0.1; done
done
printf '%s\n' "${up[@]}" >"$T/up"
echo "kubernetes runtime: bring-up 3 members (apply --wait): median $(median <"$T/up") ms over $ROUNDS rounds"

manifest
"$BIN" run "${K[@]}" --source "$SRC" --listen none >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1800); do healthy3 && break; sleep 0.1; done
fo=()
for i in $(seq "$ROUNDS"); do
  sleep 6 # a settled cluster: etcd refuses new members for 5 s after a voter (re)joins
  victim=$("$BIN" get clusters kb "${K[@]}" -o json | python3 -c 'import json,sys; print([m["name"] for m in json.load(sys.stdin)[0]["status"]["memberDetails"] if m["role"]=="follower"][0])')
  pid=$(cat "$KUBE/state/pods/default/$victim.pid")
  t0=$(now_ms)
  kill -KILL "$pid"
  for _ in $(seq 1200); do
    if healthy3 && ! "$BIN" get clusters kb "${K[@]}" -o json | grep -q "\"$victim\""; then break; fi
    sleep 0.05
  done
  fo+=($(( $(now_ms) - t0 )))
done
printf '%s\n' "${fo[@]}" >"$T/fo"
echo "kubernetes runtime: failover (kill -9 one of 3 -> 3 healthy): median $(median <"$T/fo") ms over $ROUNDS rounds"
echo "local runtime, same run:"
python3 "$ROOT/tests/bench/bench_reconcile.py" "$BIN" --rounds "$ROUNDS" --only bringup
python3 "$ROOT/tests/bench/bench_reconcile.py" "$BIN" --rounds "$ROUNDS" --only failover
