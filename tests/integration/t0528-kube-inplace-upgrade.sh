#!/usr/bin/env bash
# run --runtime kubernetes on the real kube-apiserver (2 s image pulls): a version upgrade of members on emptyDir is an image change in
# place, as upstream did it: the same pods (uids) restart on the new binary one at a time,
# never more than one down, the leader last, and the data stays. A pod template change,
# which an emptyDir member cannot survive, replaces the members instead: each successor
# joins before its predecessor leaves, so 3 members are ready throughout.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
# the server runs the binary named by each pod's image tag: two "versions" of one etcd
kube_fake_versions 3.4.23 3.4.99
start_kube_server --etcd-bin-dir "$T/bins"

cluster_yaml ku 3
start_daemon "${K[@]}" --listen none
wait_until 180 "3 healthy members" kube_healthy ku 3
m=$(kube_members ku)
etcd_put ku ku-0 /e2e/inplace kept
pods_json() { kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3Dku"; }
uids() { pods_json | jget '" ".join(p["metadata"]["uid"] for p in sorted(d["items"], key=lambda p: p["metadata"]["name"]))'; }
uids_before=$(uids)
leader=$(kube_json ku | jget '[m["name"] for m in d[0]["status"]["memberDetails"] if m["role"]=="leader"][0]')

say "upgrade 3.4.23 -> 3.4.99 (leader $leader)"
sampler_start ku
cluster_yaml ku 3 3.4.99
restarted() {
  pods_json | jget 'all(p["spec"]["containers"][0]["image"].endswith(":v3.4.99") and p["status"]["containerStatuses"][0]["image"].endswith(":v3.4.99") and p["status"]["containerStatuses"][0]["restartCount"]==1 for p in d["items"]) and len(d["items"])==3' |
    grep -qx True
}
upgraded() { restarted && kube_healthy ku 3; }
wait_until 180 "3 healthy members restarted on v3.4.99" upgraded
sampler_stop

[ "$(uids)" = "$uids_before" ] || fail "pods were replaced, not updated in place"
[ "$(pods_created ku)" = 3 ] || fail "$(pods_created ku) pods created: the upgrade in place made some"
[ "$(kube_members ku)" = "$m" ] || fail "members changed by the upgrade: '$(kube_members ku)'"
low=$(sampler_low)
say "$(wc -l <"$T/ready-samples") samples, fewest ready pods: $low"
[ "$low" -ge 2 ] || fail "$low of 3 pods ready at one point: not one at a time"
order=$(audit_json | jget '" ".join(e["member"] for e in d if e["decision"]=="upgrade-member" and e["outcome"]=="ok")')
say "upgrade order: $order"
[ "$(tr ' ' '\n' <<<"$order" | sort | tr '\n' ' ' | sed 's/ $//')" = "$m" ] || fail "upgrade-member entries: '$order'"
[ "${order##* }" = "$leader" ] || fail "the leader $leader was not upgraded last: $order"
for p in $m; do
  [ "$(etcd_get ku "$p" /e2e/inplace)" = kept ] || fail "the key is not on $p after the upgrade"
done
versions=$(kube_json ku | jget '" ".join(sorted(set(m["version"] for m in d[0]["status"]["memberDetails"])))')
[ "$versions" = 3.4.99 ] || fail "members report versions '$versions'"

say "a pod template change: members replaced, successors first"
sleep 6 # etcd refuses a new member for 5 s after a voter (re)joins
sampler_start ku
cluster_yaml ku 3 3.4.99 "  pod:
    annotations:
      rolled: \"yes\""
annotated() {
  pods_json | jget 'len(d["items"])==3 and all(p["metadata"].get("annotations",{}).get("rolled")=="yes" for p in d["items"])' |
    grep -qx True
}
replaced_all() { annotated && kube_healthy ku 3 && [ -z "$(comm -12 <(tr ' ' '\n' <<<"$m") <(kube_members ku | tr ' ' '\n'))" ]; }
wait_until 240 "3 healthy members, all new, on the new template" replaced_all
sampler_stop
low=$(sampler_low)
say "members now $(kube_members ku); $(wc -l <"$T/ready-samples") samples, fewest ready pods: $low"
[ "$low" -ge 3 ] || fail "only $low pods ready at one point: a member left before its successor joined"
for p in $(kube_members ku); do
  [ "$(etcd_get ku "$p" /e2e/inplace)" = kept ] || fail "the key is not on $p after the replacement"
done
[ "$(pods_created ku)" = 6 ] || fail "$(pods_created ku) pods created: want 3, then one successor each"
removed=$(audit_json | jget '" ".join(sorted(e["member"] for e in d if e["decision"]=="remove" and e["outcome"]=="ok"))')
[ "$removed" = "$m" ] || fail "removed members '$removed', want '$m'"
stop_daemon
