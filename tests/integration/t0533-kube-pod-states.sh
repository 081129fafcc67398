#!/usr/bin/env bash
# run --runtime kubernetes on the real kube-apiserver, with pods that do what real ones do:
# one member's pod starts 8 s after its peers (a slower image pull) and the cluster comes up
# with no replacement and no quorum-lost record; a leftover Failed etcd pod in another
# namespace slows nothing down; a node that is lost takes its member with it (the pod goes
# Unknown and stays terminating, as no kubelet completes its deletion) and that member alone is
# replaced, with one new pod; the pod left terminating is reported (get members: state gone,
# "node lost, pod stuck terminating"), never counted as a member, never deleted again and again.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

say "a leftover Failed etcd pod in another namespace"
kube_api /api/v1/namespaces -X POST -H 'Content-Type: application/json' \
  -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"other"}}' >/dev/null
wait_until 30 "the default service account of other" kube_api /api/v1/namespaces/other/serviceaccounts/default
kube_api /api/v1/namespaces/other/pods -X POST -H 'Content-Type: application/json' -d '{"apiVersion":"v1",
  "kind":"Pod","metadata":{"name":"zz-0","labels":{"app":"etcd","etcd_cluster":"zz"}},
  "spec":{"restartPolicy":"Never","containers":[{"name":"etcd","image":"busybox:1.28.0-glibc",
  "command":["/bin/sh","-c","exit 3"]}]}}' >/dev/null
failed() { kube_api /api/v1/namespaces/other/pods/zz-0 | jget 'd["status"].get("phase")' | grep -qx Failed; }
wait_until 60 "pod other/zz-0 Failed" failed

say "kl-2 pulls its image 8 s longer than kl-0 and kl-1"
node_ctl /knobs '{"pullDelays": {"^default/kl-2$": 10}}' >/dev/null
cluster_yaml kl 3
start_daemon "${K[@]}" --listen none
wait_until 120 "3 healthy members" kube_healthy kl 3
decisions=$(audit_json --cluster default/kl | jget '" ".join(sorted(set(e["decision"] for e in d)))')
say "decisions: $decisions"
grep -qw create <<<"$decisions" || fail "no create record"
for d in replace-dead quorum-lost add-learner remove; do
  grep -qw "$d" <<<"$decisions" && fail "a slow pod start made a $d record: $decisions"
done
[ "$(pods_created kl)" = 3 ] || fail "$(pods_created kl) pods created for 3 members"

start=$(date +%s%N)
eg get clusters "${K[@]}" >"$T/get.txt" 2>&1 || { cat "$T/get.txt" >&2; fail "get clusters"; }
ms=$((($(date +%s%N) - start) / 1000000))
say "get clusters in every namespace took $ms ms"
[ "$ms" -lt 5000 ] || fail "get clusters took $ms ms: something waited on the Failed pod"

say "the node of a follower is lost"
etcd_put kl kl-0 /e2e/lost kept
victim=$(kube_follower kl)
[ "$victim" != kl-0 ] || victim=$(kube_json kl | jget '[m["name"] for m in d[0]["status"]["memberDetails"] if m["role"]=="follower" and m["name"]!="kl-0"][0]')
lost=$(node_ctl /lose-node "{\"pod\": \"default/$victim\"}" | jget 'd["node"]')
say "lost $lost with $victim"
replaced() { kube_healthy kl 3 && ! kube_members kl | grep -qw "$victim"; }
wait_until 120 "3 healthy members without $victim" replaced
[ "$(pods_created kl)" = 4 ] || fail "$(pods_created kl) pods created: want 3 and one replacement"
for p in $(kube_members kl); do
  [ "$(etcd_get kl "$p" /e2e/lost)" = kept ] || fail "the key is not on $p"
done
stuck=$(kube_api "/api/v1/namespaces/default/pods/$victim" | jget 'd["metadata"].get("deletionTimestamp") is not None and d["status"]["phase"]') || stuck=gone
say "the lost pod $victim: $stuck"
[ "$stuck" = Unknown ] || fail "the lost pod $victim is not left terminating ($stuck): nothing to report"
reported() {
  eg get members kl "${K[@]}" -o wide >"$T/members.txt" 2>&1 &&
    grep -E "^default/kl +$victim +gone +none .*node lost, pod stuck terminating: NodeLost: " "$T/members.txt"
}
# its deletion is due after the pod's grace period, and stuck 10 s after that
wait_until 90 "$victim reported stuck terminating on its lost node" reported
cat "$T/members.txt"
kube_healthy kl 3 || fail "the pod stuck terminating counts as a member: $(cat "$T/members.txt")"
records=$(audit_json --cluster default/kl | jget 'len([e for e in d if e.get("member")=="'"$victim"'"])')
sleep 5
[ "$(audit_json --cluster default/kl | jget 'len([e for e in d if e.get("member")=="'"$victim"'"])')" = "$records" ] ||
  fail "steps taken again on the pod stuck terminating: $(audit_json --cluster default/kl | tail -c 600)"
[ "$(pods_created kl)" = 4 ] || fail "$(pods_created kl) pods created after the lost node: want 4"
stop_daemon
