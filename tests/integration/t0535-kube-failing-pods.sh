#!/usr/bin/env bash
# run --runtime kubernetes on the real kube-apiserver (2 s image pulls, --pod-start-timeout 30s):
# - a scale-up to a version whose image the node cannot pull: the new learner is reported failing
#   with Kubernetes' reason and message (get members -o wide, the audit record of the wait), and
#   is waited for past the start timeout with no replacement and no second learner (4 pods made
#   for 4 members); the spec fixed, that learner alone is replaced and the cluster converges;
# - a scale-up whose new pod cannot be scheduled: reported starting with "Unschedulable: ...",
#   no second learner while it waits, replaced exactly once past the start timeout;
# - an EtcdRestore this runtime refuses (from File) is retried with back-off, not pass after
#   pass.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
# the server runs the binary named by each pod's image tag: two "versions" of one etcd
kube_fake_versions 3.4.23 3.4.99
start_kube_server --etcd-bin-dir "$T/bins"

cluster_yaml pf 3
start_daemon "${K[@]}" --listen none --pod-start-timeout 30s
wait_until 180 "3 healthy members" kube_healthy pf 3
[ "$(pods_created pf)" = 3 ] || fail "$(pods_created pf) pods created for 3 members"

# count EXPR: the audit records of pf for which EXPR holds (e: the record, reason and member "" when unset)
count() {
  audit_json --cluster default/pf |
    jget "len([e for e in [dict(x, reason=x.get('reason') or '', member=x.get('member') or '') for x in d] if $1])"
}
members_wide() { eg get members pf "${K[@]}" -o wide >"$T/members.txt" 2>&1; }
# pod_age POD: seconds since the pod was made
pod_age() {
  kube_api "/api/v1/namespaces/default/pods/$1" |
    jget 'int(__import__("time").time() - __import__("calendar").timegm(__import__("time").strptime(d["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")))'
}
# past_timeout POD: the pod is older than the start timeout by a few passes
past_timeout() { [ "$(pod_age "$1")" -ge 40 ]; }

say "scale up 3 -> 4 on v3.4.99, an image the node cannot pull"
node_ctl /knobs '{"unpullable": [":v3.4.99$"]}' >/dev/null
learners_before=$(count 'e["decision"]=="add-learner" and e["outcome"]=="ok"')
cluster_yaml pf 4 3.4.99
failing() { members_wide && grep -E "^default/pf +pf-3 +failing +learner .*(ErrImagePull: rpc error: .*not found|ImagePullBackOff: Back-off pulling image)" "$T/members.txt"; }
wait_until 90 "pf-3 reported failing with Kubernetes' reason" failing
cat "$T/members.txt" >&2
pulled_reason='("ErrImagePull: rpc error" in e["reason"] or "ImagePullBackOff: Back-off pulling image" in e["reason"])'
wait_recorded() { [ "$(count 'e["decision"]=="waiting" and "learner pf-3 is failing" in e["reason"] and '"$pulled_reason")" -ge 1 ]; }
wait_until 30 "the audit record of the wait, with Kubernetes' reason" wait_recorded
wait_until 90 "pf-3 past the start timeout" past_timeout pf-3
failing || fail "pf-3 no longer reported failing past the start timeout: $(cat "$T/members.txt")"
[ "$(count 'e["decision"]=="replace-dead"')" = 0 ] || fail "a member that cannot pull its image was replaced"
[ "$(count 'e["decision"]=="add-learner" and e["outcome"]=="ok"')" = $((learners_before + 1)) ] || fail "a second learner was added"
[ "$(pods_created pf)" = 4 ] || fail "$(pods_created pf) pods created: want 4, no replacement loop"

say "the spec fixed (back to v3.4.23): the learner made for v3.4.99 is replaced, once"
cluster_yaml pf 4
wait_until 180 "4 healthy members" kube_healthy pf 4
[ "$(kube_members pf)" = "pf-0 pf-1 pf-2 pf-4" ] || fail "members: $(kube_members pf)"
[ "$(count 'e["decision"]=="replace-dead"')" = 1 ] || fail "$(count 'e["decision"]=="replace-dead"') replacements"
[ "$(count 'e["decision"]=="replace-dead" and e["member"]=="pf-3" and '"$pulled_reason"' and "another spec" in e["reason"]')" = 1 ] ||
  fail "the replacement record does not say why: $(audit_json --cluster default/pf | tail -c 800)"
[ "$(pods_created pf)" = 5 ] || fail "$(pods_created pf) pods created: want 5"
node_ctl /knobs '{"unpullable": []}' >/dev/null

say "scale up 4 -> 5 where the new pod pf-5 cannot be scheduled"
sleep 6 # etcd refuses a new member for 5 s after a voter joins
node_ctl /knobs '{"unschedulable": ["^default/pf-5$"]}' >/dev/null
learners_before=$(count 'e["decision"]=="add-learner" and e["outcome"]=="ok"')
cluster_yaml pf 5
unschedulable() { members_wide && grep -E "^default/pf +pf-5 +(starting|failing) +learner .*Unschedulable: 0/[0-9]+ nodes are available: [0-9]+ Insufficient cpu" "$T/members.txt"; }
wait_until 60 "pf-5 reported unschedulable" unschedulable
cat "$T/members.txt" >&2
wait_until 180 "5 healthy members" kube_healthy pf 5
[ "$(kube_members pf)" = "pf-0 pf-1 pf-2 pf-4 pf-6" ] || fail "members: $(kube_members pf)"
# in the audit log: pf-5 added; no other member added while it waits; replaced once, not
# before the start timeout (counted from its pod's creation, which its record follows); pf-6
steps=$(audit_json --cluster default/pf | jget '" ".join(
  "%s:%s@%d" % (e["decision"], e["member"], __import__("calendar").timegm(__import__("time").strptime(e["time"][:19], "%Y-%m-%dT%H:%M:%S")))
  for e in d if e["decision"] in ("add-learner", "replace-dead") and e["outcome"]=="ok" and e["member"] in ("pf-5", "pf-6"))')
say "steps: $steps"
read -r added replaced readded rest <<<"$steps"
[ "${added%@*} ${replaced%@*} ${readded%@*}" = "add-learner:pf-5 replace-dead:pf-5 add-learner:pf-6" ] && [ -z "$rest" ] ||
  fail "not one replacement of pf-5 by pf-6: $steps"
[ $((${replaced#*@} - ${added#*@})) -ge 28 ] || fail "pf-5 replaced before the start timeout: $steps"
[ "$(count 'e["decision"]=="add-learner" and e["outcome"]=="ok"')" = $((learners_before + 2)) ] ||
  fail "a learner added beside pf-5: $(audit_json --cluster default/pf | tail -c 800)"
[ "$(count 'e["decision"]=="replace-dead" and e["member"]=="pf-5" and "still starting after" in e["reason"] and "Unschedulable: 0/3 nodes" in e["reason"]')" = 1 ] ||
  fail "the replacement record does not say why: $(audit_json --cluster default/pf | tail -c 800)"
[ "$(pods_created pf)" = 7 ] || fail "$(pods_created pf) pods created: want 7"

say "an EtcdRestore this runtime refuses is retried with back-off"
cat >"$SRC/pr.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  name: pr
spec:
  size: 1
  version: "3.4.23"
---
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdRestore
metadata:
  name: pr
spec:
  etcdCluster:
    name: pr
  backupStorageType: File
  file:
    path: $T/nowhere.db
YAML
restores() { audit_json --cluster default/pr | jget 'len([e for e in d if e["decision"]=="restore" and e["outcome"]=="failed"])'; }
refused() { [ "$(restores)" -ge 1 ]; }
wait_until 60 "the first refused restore" refused
sleep 12
n=$(restores)
say "$n refused restore records in about 12 s"
# 1 s, 2 s, 4 s, 8 s apart: the first and at most 4 more
[ "$n" -ge 2 ] || fail "the refused restore was not retried"
[ "$n" -le 6 ] || fail "$n refused restore records in 12 s: no back-off"
audit_json --cluster default/pr | jget '[e for e in d if e["decision"]=="restore"][-1]["error"]' | grep -q "restore from S3" ||
  fail "the refusal does not say what to do"
[ -z "$(kube_pods pr)" ] || fail "pods made for a restore that cannot work: $(kube_pods pr)"
kube_healthy pf 5 || fail "pf disturbed by the refused restore"
[ "$(pods_created pf)" = 7 ] || fail "$(pods_created pf) pods created: want 7"
stop_daemon
