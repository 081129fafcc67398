#!/usr/bin/env bash
# apply --runtime kubernetes against the real kube-apiserver, whose node takes 2 s to pull each
# pod's image: 3 pods Running and Ready (3 created, none replaced), the services and PDB upstream
# made, etcd's member list read through the pod proxy, and `logs` asking for a pod's log.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

cluster_yaml kt 3
set +e
eg apply "${K[@]}" --source "$SRC" --wait=180s >"$T/apply.txt" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || fail "apply exit $rc: $(cat "$T/apply.txt")"

pods_ready() {
  kube_api "/api/v1/namespaces/default/pods?labelSelector=app%3Detcd%2Cetcd_cluster%3Dkt" | python3 -c '
import json,sys
items=json.load(sys.stdin)["items"]
ready=[p for p in items if p["status"].get("phase")=="Running" and
       any(c["type"]=="Ready" and c["status"]=="True" for c in p["status"].get("conditions",[]))]
sys.exit(0 if len(items)==3 and len(ready)==3 else 1)'
}
wait_until 60 "3 pods Running and Ready" pods_ready
[ "$(pods_created kt)" = 3 ] || fail "$(pods_created kt) pods created for 3 members"

kube_api "/api/v1/namespaces/default/services/kt" | jget 'd["spec"]["clusterIP"]' | grep -qx None ||
  fail "headless service kt missing"
kube_api "/api/v1/namespaces/default/services/kt-client" | jget 'd["metadata"]["annotations"]["etcd-gitops/next-index"]' |
  grep -qx 3 || fail "next-index annotation is not 3"
kube_api "/apis/policy/v1/namespaces/default/poddisruptionbudgets/kt" | jget 'd["spec"]["minAvailable"]' | grep -qx 2 ||
  fail "PDB minAvailable is not 2"

members=$(kube_api "/api/v1/namespaces/default/pods/kt-0:2379/proxy/v3/cluster/member/list" -X POST -d '{}' |
  jget '" ".join(sorted(m["name"] for m in d["members"] if not m.get("isLearner")))')
[ "$members" = "kt-0 kt-1 kt-2" ] || fail "etcd voters through the proxy: '$members'"
say "3 voters through the pod proxy: $members"

say "logs asks the API server for a pod's log; with no kubelet behind it, logs says what failed"
# the API server reads pod logs from the kubelet at NODE:10250, which the node stand-in is not
for follow in "" -f; do
  rc=0
  eg logs "${K[@]}" kt kt-0 $follow >"$T/logs.out" 2>"$T/logs.err" || rc=$?
  [ "$rc" = 2 ] || fail "logs kt kt-0 $follow exited $rc, want 2: $(cat "$T/logs.err")"
  grep -qF "cannot read the log of pod default/kt-0: the API server cannot reach the kubelet of the pod's node, which holds pod logs: GET /api/v1/namespaces/default/pods/kt-0/log" "$T/logs.err" ||
    fail "logs kt kt-0 $follow: $(cat "$T/logs.err")"
  grep -qE "HTTP 500: Get \"https://[^\"]*:10250/containerLogs/default/kt-0/etcd" "$T/logs.err" ||
    fail "logs kt kt-0 $follow does not give the API server's reason: $(cat "$T/logs.err")"
  [ ! -s "$T/logs.out" ] || fail "logs kt kt-0 $follow printed the API server's Status as the log: $(cat "$T/logs.out")"
done

say "a deleted headless service is back after the next apply, and nothing else changes"
kube_api "/api/v1/namespaces/default/services/kt" -X DELETE >/dev/null
eg apply "${K[@]}" --source "$SRC" --wait=60s >"$T/apply2.txt" 2>&1 ||
  fail "second apply: $(cat "$T/apply2.txt")"
kube_api "/api/v1/namespaces/default/services/kt" | jget 'd["spec"]["publishNotReadyAddresses"]' | grep -qx True ||
  fail "headless service kt not recreated"
[ "$(kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3Dkt" | jget 'len(d["items"])')" = 3 ] ||
  fail "the second apply changed the pods"
[ "$(pods_created kt)" = 3 ] || fail "the second apply created pods: $(pods_created kt) in all"
