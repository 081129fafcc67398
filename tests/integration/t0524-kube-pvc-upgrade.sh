#!/usr/bin/env bash
# run --runtime kubernetes on the real kube-apiserver (2 s image pulls, claims bound by the node
# stand-in) with spec.pod.persistentVolumeClaimSpec: a claim per member named
# after it, the claim of a member removed by scale-down deleted, and an upgrade that also
# changes the pod template (which a running pod cannot take) replacing the pods one at a time
# on the same claims (the data survives): one new pod per member rolled, none replaced twice.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
# the server runs the binary named by each pod's image tag: two "versions" of one etcd
kube_fake_versions 3.4.23 3.4.99
start_kube_server --etcd-bin-dir "$T/bins"

PVC='  pod:
    persistentVolumeClaimSpec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi'
pvcs() { kube_api "/api/v1/namespaces/default/persistentvolumeclaims" | jget '" ".join(sorted(p["metadata"]["name"] for p in d["items"]))'; }
claims_of_pods() {
  kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3Dkv" |
    jget '" ".join(sorted(v["persistentVolumeClaim"]["claimName"] for p in d["items"] for v in p["spec"]["volumes"] if "persistentVolumeClaim" in v))'
}

cluster_yaml kv 4 3.4.23 "$PVC"
start_daemon "${K[@]}" --listen none
wait_until 180 "4 healthy members" kube_healthy kv 4
m=$(kube_members kv)
[ "$(pvcs)" = "$m" ] || fail "claims '$(pvcs)' are not named after the members '$m'"
[ "$(claims_of_pods)" = "$m" ] || fail "pods mount '$(claims_of_pods)', not their own claims"
etcd_put kv kv-0 /e2e/pvc kept
[ "$(pods_created kv)" = 4 ] || fail "$(pods_created kv) pods created for 4 members"

say "4 -> 3: the removed member's claim goes with it"
cluster_yaml kv 3 3.4.23 "$PVC"
three() { kube_healthy kv 3 && [ "$(kube_pods kv | wc -w)" = 3 ] && [ "$(pvcs)" = "$(kube_members kv)" ]; }
wait_until 120 "3 members, 3 pods, 3 claims" three
m=$(kube_members kv)
say "members and claims: $m"
pvc_uids() { kube_api "/api/v1/namespaces/default/persistentvolumeclaims" | jget '" ".join(p["metadata"]["uid"] for p in sorted(d["items"], key=lambda p: p["metadata"]["name"]))'; }
pod_uids() { kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3Dkv" | jget '" ".join(p["metadata"]["uid"] for p in d["items"])'; }
claims_before=$(pvc_uids)
pods_before=$(pod_uids)

say "upgrade 3.4.23 -> 3.4.99 with a new pod annotation"
# sample the pods while the upgrade runs: never more than one of them down at a time
sampler_start kv
cluster_yaml kv 3 3.4.99 "$PVC
    annotations:
      rolled: \"yes\""
images() { kube_api "/api/v1/namespaces/default/pods?labelSelector=etcd_cluster%3Dkv" | jget '" ".join(sorted(set(p["spec"]["containers"][0]["image"].rsplit(":",1)[1] for p in d["items"])))'; }
upgraded() { kube_healthy kv 3 && [ "$(images)" = v3.4.99 ] && [ "$(kube_pods kv | wc -w)" = 3 ]; }
wait_until 180 "3 healthy members on v3.4.99" upgraded
sampler_stop
[ "$(kube_members kv)" = "$m" ] || fail "members changed by the upgrade: '$(kube_members kv)'"
[ "$(pvc_uids)" = "$claims_before" ] || fail "the claims were replaced by the upgrade"
for u in $(pod_uids); do
  grep -qw "$u" <<<"$pods_before" && fail "pod $u was not replaced by the upgrade"
done
low=$(sampler_low)
say "$(wc -l <"$T/ready-samples") samples, fewest ready pods: $low"
[ "$low" -ge 2 ] || fail "$low of 3 pods ready at one point: not one at a time"
[ "$(pods_created kv)" = 7 ] || fail "$(pods_created kv) pods created: want 4, then one per member rolled"
ups=$(audit_json | jget '" ".join(sorted(e["member"] for e in d if e["decision"]=="upgrade-member" and e["outcome"]=="ok"))')
[ "$ups" = "$m" ] || fail "upgrade-member audit entries: '$ups'"
for p in $m; do
  [ "$(etcd_get kv "$p" /e2e/pvc)" = kept ] || fail "the key is not on $p after the upgrade"
done
stop_daemon
