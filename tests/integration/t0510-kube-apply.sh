#!/usr/bin/env bash
# apply --runtime kubernetes against the API test server: 3 pods Running and Ready, the
# services and PDB upstream made, and etcd's member list read through the pod proxy.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

KUBE="$T/kube"
mkdir -p "$KUBE"
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    # its own process group: the server and every etcd pod process it started
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$TEST_RC" -ne 0 ] && [ -f "$KUBE/server.log" ]; then echo "--- apiserver log (tail)" >&2; tail -n 30 "$KUBE/server.log" >&2; fi
}
on_exit stop_server

setsid bash "$EG_SOURCE_DIR/tests/kube/netns-run.sh" "$KUBE/hosts" \
  python3 "$EG_SOURCE_DIR/tests/kube/apiserver.py" --state-dir "$KUBE/state" --tls-dir "$KUBE/tls" \
  --ready-file "$KUBE/ready" --kubeconfig-out "$KUBE/kc" --hosts-file "$KUBE/hosts" \
  >"$KUBE/server.log" 2>&1 &
SERVER_PID=$!
server_up() { [ -s "$KUBE/ready" ] || ! kill -0 "$SERVER_PID" 2>/dev/null; }
wait_until 60 "the API test server" server_up
if ! [ -s "$KUBE/ready" ]; then
  set +e; wait "$SERVER_PID"; rc=$?; set -e
  SERVER_PID=
  if [ $rc -eq 77 ]; then say "SKIP: no private mount namespace here"; exit 0; fi
  fail "the API test server exited with $rc"
fi
URL=$(cat "$KUBE/ready")
KC="$KUBE/kc/admin.kubeconfig"
api() { curl -sS --fail --cacert "$KUBE/tls/ca.crt" -H "Authorization: Bearer admin" "$@"; }

cluster_yaml kt 3
set +e
eg apply --runtime kubernetes --kubeconfig "$KC" --source "$SRC" --wait=180s >"$T/apply.txt" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || fail "apply exit $rc: $(cat "$T/apply.txt")"

pods_ready() {
  api "$URL/api/v1/namespaces/default/pods?labelSelector=app%3Detcd%2Cetcd_cluster%3Dkt" | python3 -c '
import json,sys
items=json.load(sys.stdin)["items"]
ready=[p for p in items if p["status"].get("phase")=="Running" and
       any(c["type"]=="Ready" and c["status"]=="True" for c in p["status"].get("conditions",[]))]
sys.exit(0 if len(items)==3 and len(ready)==3 else 1)'
}
wait_until 60 "3 pods Running and Ready" pods_ready

api "$URL/api/v1/namespaces/default/services/kt" | jget 'd["spec"]["clusterIP"]' | grep -qx None ||
  fail "headless service kt missing"
api "$URL/api/v1/namespaces/default/services/kt-client" | jget 'd["metadata"]["annotations"]["etcd-gitops/next-index"]' |
  grep -qx 3 || fail "next-index annotation is not 3"
api "$URL/apis/policy/v1/namespaces/default/poddisruptionbudgets/kt" | jget 'd["spec"]["minAvailable"]' | grep -qx 2 ||
  fail "PDB minAvailable is not 2"

members=$(api -X POST -d '{}' "$URL/api/v1/namespaces/default/pods/kt-0:2379/proxy/v3/cluster/member/list" |
  jget '" ".join(sorted(m["name"] for m in d["members"] if not m.get("isLearner")))')
[ "$members" = "kt-0 kt-1 kt-2" ] || fail "etcd voters through the proxy: '$members'"
say "3 voters through the pod proxy: $members"

say "a deleted headless service is back after the next apply, and nothing else changes"
api -X DELETE "$URL/api/v1/namespaces/default/services/kt" >/dev/null
eg apply --runtime kubernetes --kubeconfig "$KC" --source "$SRC" --wait=60s >"$T/apply2.txt" 2>&1 ||
  fail "second apply: $(cat "$T/apply2.txt")"
api "$URL/api/v1/namespaces/default/services/kt" | jget 'd["spec"]["publishNotReadyAddresses"]' | grep -qx True ||
  fail "headless service kt not recreated"
[ "$(api "$URL/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3Dkt" | jget 'len(d["items"])')" = 3 ] ||
  fail "the second apply changed the pods"
