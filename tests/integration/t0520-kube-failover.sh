#!/usr/bin/env bash
# run --runtime kubernetes on the real kube-apiserver (2 s image pulls): one pod's etcd killed
# (kill -9; the pod goes Failed) is replaced by a new member under a new name, back to 3 ready
# voters with one pod created for it and no other, and a key written before is still there. Each
# step is an Event: the create on the client service, the replacement on the pods it concerns; an
# invalid manifest then is a Warning.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

cluster_yaml kf 3
start_daemon "${K[@]}" --listen none
wait_until 180 "3 healthy members" kube_healthy kf 3
before=$(kube_members kf)
[ "$before" = "kf-0 kf-1 kf-2" ] || fail "members after bring-up: '$before'"
etcd_put kf kf-0 /e2e/failover before-crash

sleep 6 # etcd refuses a new member for 5 s after a voter (re)joins
kube_fail_over kf
[ "$after" != "$before" ] || fail "member names unchanged"
[ "$(kube_pods kf)" = "$after" ] || fail "pods '$(kube_pods kf)' are not the members '$after'"
new=$(comm -13 <(tr ' ' '\n' <<<"$before") <(tr ' ' '\n' <<<"$after"))
# a name is never reused: the replacement is kf-N, N >= 3 (kf-3 unless an add failed other
# than by etcd refusing it, which burns the name)
[[ $new =~ ^kf-([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 3 ] || fail "the new member is '$new'"
[ "$(pods_created kf)" = 4 ] || fail "$(pods_created kf) pods created: want 3 and one replacement"
[ "$(etcd_get kf "$new" /e2e/failover)" = before-crash ] || fail "the key is gone on the new member"
stop_daemon
events=$(kube_events)
say "events: $(tr '\n' ';' <<<"$events")"
# the dead member's pod may be gone by the time its event is posted: then it is named without a uid
for want in "Create Service/kf-client $(kube_uid services/kf-client) Normal" \
  "ReplaceDead Pod/$victim ($victim_uid|-) Normal" "AddLearner Pod/$new $(kube_uid "pods/$new") Normal" \
  "Promote Pod/$new $(kube_uid "pods/$new") Normal"; do
  grep -qxE "$want" <<<"$events" || fail "no event '$want'"
done
[ "$(grep -c '^Create ' <<<"$events")" = 1 ] || fail "not one Create event: $events"

say "an invalid manifest is a Warning"
cluster_yaml kf 0
set +e
eg apply "${K[@]}" --source "$SRC" >"$T/invalid.txt" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "apply of size 0: exit $rc: $(cat "$T/invalid.txt")"
grep -qx "Invalid Service/kf-client $(kube_uid services/kf-client) Warning" <(kube_events) ||
  fail "no Invalid warning: $(kube_events)"
