#!/usr/bin/env bash
# Adoption on the kubernetes runtime, on the real kube-apiserver (2 s image pulls): a cluster made
# as coreos etcd-operator v0.9.4 made it (its CRD and EtcdCluster resource; 3 pods with random
# member names and a static --initial-cluster; both services and a PDB, every one owned by that
# resource), then the same manifest applied. diff and run --dry-run show the adoption and change
# nothing; apply restarts, replaces and creates no pod (same pod UIDs, processes, member IDs, data)
# and removes every ownerReference to the resource while keeping the others. The garbage collector
# is not part of this test bed (it runs in kube-controller-manager): what it would follow, an
# ownerReference to the resource's UID, is asserted gone from every object, and the resource and
# its CRD are then deleted. A member killed afterwards is replaced like any other, with exactly one
# new pod, and each decision is an Event on the object it concerns.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

post() { kube_api "$1" -X POST -H 'Content-Type: application/json' -d "$2"; }

post /apis/apiextensions.k8s.io/v1/customresourcedefinitions '{
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "etcdclusters.etcd.database.coreos.com"},
  "spec": {"group": "etcd.database.coreos.com", "scope": "Namespaced",
           "names": {"plural": "etcdclusters", "singular": "etcdcluster", "kind": "EtcdCluster",
                     "listKind": "EtcdClusterList", "shortNames": ["etcd"]},
           "versions": [{"name": "v1beta2", "served": true, "storage": true,
                         "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}' >/dev/null
CR=/apis/etcd.database.coreos.com/v1beta2/namespaces/default/etcdclusters
wait_until 30 "the EtcdCluster CRD served" kube_api "$CR"
cr_uid=$(post "$CR" '{"apiVersion": "etcd.database.coreos.com/v1beta2", "kind": "EtcdCluster",
  "metadata": {"name": "old"}, "spec": {"size": 3, "version": "3.4.23"}}' | jget 'd["metadata"]["uid"]')
# as upstream's asOwner(): controller, no blockOwnerDeletion
owner="{\"apiVersion\": \"etcd.database.coreos.com/v1beta2\", \"kind\": \"EtcdCluster\", \"name\": \"old\",
        \"uid\": \"$cr_uid\", \"controller\": true}"
# an owner that is not upstream's, on one pod: it must stay
keeper_uid=$(post /api/v1/namespaces/default/configmaps '{"apiVersion": "v1", "kind": "ConfigMap",
  "metadata": {"name": "keeper"}}' | jget 'd["metadata"]["uid"]')
keeper="{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"name\": \"keeper\", \"uid\": \"$keeper_uid\"}"

post /api/v1/namespaces/default/services "{
  \"apiVersion\": \"v1\", \"kind\": \"Service\",
  \"metadata\": {\"name\": \"old\", \"labels\": {\"app\": \"etcd\", \"etcd_cluster\": \"old\"},
               \"annotations\": {\"service.alpha.kubernetes.io/tolerate-unready-endpoints\": \"true\"},
               \"ownerReferences\": [$owner]},
  \"spec\": {\"clusterIP\": \"None\", \"publishNotReadyAddresses\": true,
           \"selector\": {\"app\": \"etcd\", \"etcd_cluster\": \"old\"},
           \"ports\": [{\"name\": \"client\", \"port\": 2379, \"targetPort\": 2379, \"protocol\": \"TCP\"},
                     {\"name\": \"peer\", \"port\": 2380, \"targetPort\": 2380, \"protocol\": \"TCP\"}]}}" >/dev/null
post /api/v1/namespaces/default/services "{
  \"apiVersion\": \"v1\", \"kind\": \"Service\",
  \"metadata\": {\"name\": \"old-client\", \"labels\": {\"app\": \"etcd\", \"etcd_cluster\": \"old\"},
               \"ownerReferences\": [$owner]},
  \"spec\": {\"selector\": {\"app\": \"etcd\", \"etcd_cluster\": \"old\"},
           \"ports\": [{\"name\": \"client\", \"port\": 2379, \"targetPort\": 2379, \"protocol\": \"TCP\"}]}}" >/dev/null
post /apis/policy/v1/namespaces/default/poddisruptionbudgets "{
  \"apiVersion\": \"policy/v1\", \"kind\": \"PodDisruptionBudget\",
  \"metadata\": {\"name\": \"old\", \"labels\": {\"app\": \"etcd\", \"etcd_cluster\": \"old\"},
               \"ownerReferences\": [$owner]},
  \"spec\": {\"minAvailable\": 2, \"selector\": {\"matchLabels\": {\"app\": \"etcd\", \"etcd_cluster\": \"old\"}}}}" >/dev/null

names=()
for _ in 1 2 3; do names+=("old-$(head -c 64 /dev/urandom | tr -dc 'a-z0-9' | head -c 10)"); done
ic=$(for n in "${names[@]}"; do printf '%s=http://%s.old.default.svc:2380,' "$n" "$n"; done)
ic=${ic%,}
for n in "${names[@]}"; do
  owners="[$owner]"
  [ "$n" != "${names[0]}" ] || owners="[$owner, $keeper]"
  post /api/v1/namespaces/default/pods "$(python3 - "$n" "$ic" "$owners" <<'PY'
import json,sys
n,ic,owners=sys.argv[1:]
dns=f"{n}.old.default.svc"
print(json.dumps({
  "apiVersion":"v1","kind":"Pod",
  "metadata":{"name":n,"labels":{"app":"etcd","etcd_cluster":"old","etcd_node":n},
              "annotations":{"etcd.version":"3.4.23"},"ownerReferences":json.loads(owners)},
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
# member_ids POD: "name id" of every etcd member, as that member lists them
member_ids() {
  kube_api "/api/v1/namespaces/default/pods/$1:2379/proxy/v3/cluster/member/list" -X POST -d '{}' |
    jget '"\n".join(sorted(m.get("name","") + " " + str(m["ID"]) for m in d["members"]))'
}
# owned_by UID: kind/name of every pod, service, claim and PDB in default with an ownerReference
# to UID, which is what the garbage collector would delete once that owner is gone
owned_by() {
  {
    for c in pods services persistentvolumeclaims; do kube_api "/api/v1/namespaces/default/$c" | jget 'json.dumps(d)'; done
    kube_api /apis/policy/v1/namespaces/default/poddisruptionbudgets | jget 'json.dumps(d)'
  } | python3 -c '
import json,sys
uid=sys.argv[1]
for line in sys.stdin:
    d=json.loads(line)
    kind=d["kind"].removesuffix("List").lower()
    for o in d["items"]:
        if any(r.get("uid")==uid for r in o["metadata"].get("ownerReferences",[])):
            print(kind + "/" + o["metadata"]["name"])' "$1" | sort | xargs
}

wait_until 90 "3 upstream pods Ready" upstream_ready
etcd_put old "${names[0]}" /e2e/adopt upstream
before=$(pod_state)
ids_before=$(member_ids "${names[0]}")
pids_before=$(for n in "${names[@]}"; do cat "$KUBE/state/pods/default/$n.pid"; done)
all_owned=$( (printf 'pod/%s\n' "${names[@]}"; printf '%s\n' poddisruptionbudget/old service/old service/old-client) | sort | xargs)
[ "$(owned_by "$cr_uid")" = "$all_owned" ] || fail "the resource owns '$(owned_by "$cr_uid")', not '$all_owned'"

cluster_yaml old 3
say "diff and run --dry-run show the adoption and change nothing"
set +e
eg diff "${K[@]}" --source "$SRC" >"$T/diff.txt" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "diff: exit $rc, not 1 (changes): $(cat "$T/diff.txt")"
grep -q "^  next: adopt: adopt old from coreos etcd-operator: remove the ownerReferences to its EtcdCluster resource from pod/" "$T/diff.txt" ||
  fail "diff does not show the adoption: $(cat "$T/diff.txt")"
dry_recorded() { [ "$(audit_json | jget 'any(e["decision"]=="adopt" and e["outcome"]=="dry-run" for e in d)')" = True ]; }
start_daemon "${K[@]}" --listen none --dry-run
wait_until 60 "the dry run's adopt record" dry_recorded
stop_daemon
[ "$(audit_json | jget 'sum(1 for e in d if e["decision"]=="adopt")')" = 1 ] || fail "the dry run recorded adopt more than once"
[ "$(owned_by "$cr_uid")" = "$all_owned" ] || fail "diff or the dry run changed ownerReferences: $(owned_by "$cr_uid")"
[ -z "$(kube_events)" ] || fail "diff or the dry run posted events: $(kube_events)"

eg apply "${K[@]}" --source "$SRC" --wait=120s >"$T/apply.txt" 2>&1 || fail "apply: $(cat "$T/apply.txt")"
kube_healthy old 3 || fail "not 3 healthy members after apply: $(kube_json old)"
[ "$(kube_members old)" = "$(printf '%s\n' "${names[@]}" | sort | xargs)" ] || fail "members now: $(kube_members old)"
[ "$(pod_state)" = "$before" ] || fail "pods changed by adoption: $(pod_state) (before: $before)"
pids_after=$(for n in "${names[@]}"; do cat "$KUBE/state/pods/default/$n.pid"; done)
[ "$pids_after" = "$pids_before" ] || fail "etcd processes restarted by adoption"
[ "$(member_ids "${names[1]}")" = "$ids_before" ] || fail "member IDs now: $(member_ids "${names[1]}") (before: $ids_before)"
[ "$(etcd_get old "${names[2]}" /e2e/adopt)" = upstream ] || fail "the key is gone"
[ -z "$(owned_by "$cr_uid")" ] || fail "still owned by the EtcdCluster resource: $(owned_by "$cr_uid")"
[ "$(owned_by "$keeper_uid")" = "pod/${names[0]}" ] || fail "the other owner's reference was lost: '$(owned_by "$keeper_uid")'"
adopts=$(audit_json | jget 'sum(1 for e in d if e["decision"]=="adopt" and e["outcome"]=="ok")')
[ "$adopts" = 1 ] || fail "$adopts adopt decisions that went well"
client_uid=$(kube_uid services/old-client)
grep -qx "Adopt Service/old-client $client_uid Normal" <(kube_events) || fail "no Adopt event on the client service: $(kube_events)"

say "a second apply is a no-op"
eg apply "${K[@]}" --source "$SRC" --wait=60s >"$T/apply2.txt" 2>&1 || fail "second apply: $(cat "$T/apply2.txt")"
[ "$(pod_state)" = "$before" ] || fail "pods changed by the second apply"
decisions=$(audit_json | jget '" ".join(sorted(set(e["decision"] for e in d if e["outcome"]!="dry-run")))')
say "audit decisions: $decisions"
[ "$decisions" = "adopt noop" ] || fail "adoption did more than release the objects: $decisions"
made=$(awk '$2 == "default" && index($3, "old-") == 1' "$KUBE/state/pods.log" | wc -l)
[ "$made" = 3 ] || fail "$made pods of old created: adoption made some"

say "the resource and its CRD deleted: nothing of the cluster refers to them"
kube_api "$CR/old" -X DELETE >/dev/null
kube_api /apis/apiextensions.k8s.io/v1/customresourcedefinitions/etcdclusters.etcd.database.coreos.com -X DELETE >/dev/null
crd_gone() { ! kube_api /apis/apiextensions.k8s.io/v1/customresourcedefinitions/etcdclusters.etcd.database.coreos.com; }
wait_until 30 "the CRD gone" crd_gone
[ -z "$(owned_by "$cr_uid")" ] || fail "objects left for the garbage collector: $(owned_by "$cr_uid")"
[ "$(pod_state)" = "$before" ] || fail "pods changed: $(pod_state)"

say "fail-over of the adopted cluster"
start_daemon "${K[@]}" --listen none
kube_fail_over old
[ "$(kube_pods old)" = "$after" ] || fail "pods '$(kube_pods old)' are not the members '$after'"
new=$(comm -13 <(tr ' ' '\n' <<<"${names[*]}" | sort) <(tr ' ' '\n' <<<"$after"))
[ "$new" = old-0 ] || fail "the new member is '$new', not old-0"
made=$(awk '$2 == "default" && index($3, "old-") == 1' "$KUBE/state/pods.log" | wc -l)
[ "$made" = 4 ] || fail "$made pods of old created: want the 3 upstream ones and one replacement"
[ "$(etcd_get old old-0 /e2e/adopt)" = upstream ] || fail "the key is gone on the new member"
stop_daemon
new_uid=$(kube_uid pods/old-0)
events=$(kube_events)
say "events: $(tr '\n' ';' <<<"$events")"
# the dead member's pod may be gone by the time its event is posted: then it is named without a uid
for want in "ReplaceDead Pod/$victim ($victim_uid|-) Normal" "AddLearner Pod/old-0 $new_uid Normal" \
  "Promote Pod/old-0 $new_uid Normal"; do
  grep -qxE "$want" <<<"$events" || fail "no event '$want'"
done
# each step once, on its own object: a failed post or a step taken twice would show here
[ "$(grep -c '^ReplaceDead ' <<<"$events")" = 1 ] && [ "$(grep -c '^AddLearner ' <<<"$events")" = 1 ] ||
  fail "the fail-over's steps were not one each: $events"
