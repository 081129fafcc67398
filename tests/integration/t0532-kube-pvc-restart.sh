#!/usr/bin/env bash
# run --runtime kubernetes on the real kube-apiserver (2 s image pulls) with claims: a member
# whose etcd dies (its pod goes Failed) is restarted in place, a new pod on its own claim under
# the same name and member ID, with its data; so is a member whose pod is deleted outright (only
# its claim is left to tell it exists). Neither is replaced: one new pod each, no membership change.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

cluster_yaml kp 3 3.4.23 '  pod:
    persistentVolumeClaimSpec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi'
start_daemon "${K[@]}" --listen none
wait_until 120 "3 healthy members" kube_healthy kp 3
etcd_put kp kp-0 /e2e/restart kept
ids() { kube_json kp | jget '" ".join(sorted(m["name"] + "=" + m["id"] for m in d[0]["status"]["memberDetails"]))'; }
claims() { kube_api "/api/v1/namespaces/default/persistentvolumeclaims" | jget '" ".join(sorted(p["metadata"]["uid"] for p in d["items"]))'; }
ids_before=$(ids)
claims_before=$(claims)
pod_uid() { kube_api "/api/v1/namespaces/default/pods/$1" | jget 'd["metadata"]["uid"]'; }

# restarted NAME OLD-UID: a new pod of that name runs and the cluster is whole again
restarted() {
  local uid
  uid=$(pod_uid "$1") && [ "$uid" != "$2" ] && kube_healthy kp 3
}

victim=$(kube_follower kp)
uid=$(pod_uid "$victim")
say "etcd of $victim killed"
kube_kill "$victim"
wait_until 120 "$victim restarted in a new pod" restarted "$victim" "$uid"
[ "$(ids)" = "$ids_before" ] || fail "members changed: $(ids), was $ids_before"
[ "$(pods_created kp)" = 4 ] || fail "$(pods_created kp) pods created: want 3 and one restart"

victim=$(kube_follower kp)
uid=$(pod_uid "$victim")
say "the pod of $victim deleted"
kube_api "/api/v1/namespaces/default/pods/$victim" -X DELETE >/dev/null
wait_until 120 "$victim restarted in a new pod" restarted "$victim" "$uid"
[ "$(ids)" = "$ids_before" ] || fail "members changed: $(ids), was $ids_before"
[ "$(pods_created kp)" = 5 ] || fail "$(pods_created kp) pods created: want 3 and one per restart"
[ "$(claims)" = "$claims_before" ] || fail "the claims changed"
for p in kp-0 kp-1 kp-2; do
  [ "$(etcd_get kp "$p" /e2e/restart)" = kept ] || fail "the key is not on $p"
done
restarts=$(audit_json --cluster default/kp | jget '" ".join(e.get("member") or ",".join(e.get("members") or []) for e in d if e["decision"]=="restart" and e["outcome"]=="ok")')
say "restart records: $restarts"
[ -n "$restarts" ] || fail "no restart record"
for d in replace-dead add-learner remove; do
  audit_json --cluster default/kp | jget "any(e['decision']=='$d' for e in d)" | grep -qx False ||
    fail "a restart in place made a $d record"
done
stop_daemon
