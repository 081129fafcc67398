#!/usr/bin/env bash
# Adoption on the kubernetes runtime, on the real kube-apiserver (2 s image pulls): 3 pods and the headless service made as the original
# coreos operator made them (random member names, a static --initial-cluster), then the
# EtcdCluster manifest applied: no pod is restarted, replaced or created and the cluster converges.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

kube_api /api/v1/namespaces/default/services -X POST -H 'Content-Type: application/json' -d '{
  "apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "old", "labels": {"app": "etcd", "etcd_cluster": "old"},
               "annotations": {"service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}},
  "spec": {"clusterIP": "None", "publishNotReadyAddresses": true,
           "selector": {"app": "etcd", "etcd_cluster": "old"},
           "ports": [{"name": "client", "port": 2379, "targetPort": 2379, "protocol": "TCP"},
                     {"name": "peer", "port": 2380, "targetPort": 2380, "protocol": "TCP"}]}}' >/dev/null

names=()
for _ in 1 2 3; do names+=("old-$(head -c 64 /dev/urandom | tr -dc 'a-z0-9' | head -c 10)"); done
ic=$(for n in "${names[@]}"; do printf '%s=http://%s.old.default.svc:2380,' "$n" "$n"; done)
ic=${ic%,}
for n in "${names[@]}"; do
  kube_api /api/v1/namespaces/default/pods -X POST -H 'Content-Type: application/json' -d "$(python3 - "$n" "$ic" <<'PY'
import json,sys
n,ic=sys.argv[1:]
dns=f"{n}.old.default.svc"
print(json.dumps({
  "apiVersion":"v1","kind":"Pod",
  "metadata":{"name":n,"labels":{"app":"etcd","etcd_cluster":"old","etcd_node":n},
              "annotations":{"etcd.version":"3.4.23"}},
  "spec":{"hostname":n,"subdomain":"old","restartPolicy":"Never",
    "initContainers":[{"name":"check-dns","image":"busybox:1.28.0-glibc","command":["/bin/sh","-c",
       f"while ( ! nslookup {dns} ); do sleep 1; done"]}],
    "containers":[{"name":"etcd","image":"quay.io/coreos/etcd:v3.4.23",
      "command":["/usr/local/bin/etcd","--data-dir=/var/etcd/data",f"--name={n}",
        f"--initial-advertise-peer-urls=http://{dns}:2380","--listen-peer-urls=http://0.0.0.0:2380",
        "--listen-client-urls=http://0.0.0.0:2379",f"--advertise-client-urls=http://{dns}:2379",
        f"--initial-cluster={ic}","--initial-cluster-state=new","--initial-cluster-token=old-token"],
      "ports":[{"name":"server","containerPort":2380,"protocol":"TCP"},{"name":"client","containerPort":2379,"protocol":"TCP"}],
      "volumeMounts":[{"name":"etcd-data","mountPath":"/var/etcd"}]}],
    "volumes":[{"name":"etcd-data","emptyDir":{}}]}}))
PY
)" >/dev/null
done
say "upstream-style members: ${names[*]}"

pod_state() {
  kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3Dold" | python3 -c '
import json,sys
items=sorted(json.load(sys.stdin)["items"], key=lambda p: p["metadata"]["name"])
for p in items:
    print(p["metadata"]["name"], p["metadata"]["uid"], p["status"]["containerStatuses"][0].get("restartCount",0))'
}
upstream_ready() {
  kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3Dold" | python3 -c '
import json,sys
items=json.load(sys.stdin)["items"]
ready=[p for p in items if any(c["type"]=="Ready" and c["status"]=="True" for c in p["status"].get("conditions",[]))]
sys.exit(0 if len(items)==3 and len(ready)==3 else 1)'
}
wait_until 90 "3 upstream pods Ready" upstream_ready
etcd_put old "${names[0]}" /e2e/adopt upstream
before=$(pod_state)
pids_before=$(for n in "${names[@]}"; do cat "$KUBE/state/pods/default/$n.pid"; done)

cluster_yaml old 3
eg apply "${K[@]}" --source "$SRC" --wait=120s >"$T/apply.txt" 2>&1 || fail "apply: $(cat "$T/apply.txt")"
kube_healthy old 3 || fail "not 3 healthy members after apply: $(kube_json old)"
[ "$(kube_members old)" = "$(printf '%s\n' "${names[@]}" | sort | xargs)" ] || fail "members now: $(kube_members old)"
[ "$(pod_state)" = "$before" ] || fail "pods changed by adoption: $(pod_state) (before: $before)"
pids_after=$(for n in "${names[@]}"; do cat "$KUBE/state/pods/default/$n.pid"; done)
[ "$pids_after" = "$pids_before" ] || fail "etcd processes restarted by adoption"
[ "$(etcd_get old "${names[2]}" /e2e/adopt)" = upstream ] || fail "the key is gone"

say "a second apply is a no-op"
eg apply "${K[@]}" --source "$SRC" --wait=60s >"$T/apply2.txt" 2>&1 || fail "second apply: $(cat "$T/apply2.txt")"
[ "$(pod_state)" = "$before" ] || fail "pods changed by the second apply"
decisions=$(audit_json | jget '" ".join(sorted(set(e["decision"] for e in d)))')
say "audit decisions: $decisions"
[ "$decisions" = noop ] || fail "adoption did more than nothing: $decisions"
kube_api /api/v1/namespaces/default/services/old-client >/dev/null || fail "the client service was not made"
made=$(awk '$2 == "default" && index($3, "old-") == 1' "$KUBE/state/pods.log" | wc -l)
[ "$made" = 3 ] || fail "$made pods of old created: adoption made some"
