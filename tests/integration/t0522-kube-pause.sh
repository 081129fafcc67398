#!/usr/bin/env bash
# run --runtime kubernetes on the real kube-apiserver (2 s image pulls): with spec.paused a killed
# member is left alone (its pod stays Failed, nothing replaced); unpaused, it is replaced by one
# new pod and the cluster is back to 3.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

cluster_yaml kp 3
start_daemon "${K[@]}" --listen none --interval 2s
wait_until 180 "3 healthy members" kube_healthy kp 3

cluster_yaml kp 3 3.4.23 "  paused: true"
paused() { kube_json kp | jget 'd[0]["status"].get("controlPaused")' | grep -qx True; }
wait_until 30 "status.controlPaused" paused
sleep 6 # etcd refuses a new member for 5 s after a voter (re)joins: give unpause a fair chance
victim=$(kube_follower kp)
say "paused; killing $victim"
# the kubelet restarts a killed etcd (restartPolicy Never → Failed) depending on the pod spec:
# what matters is that no member is added or removed while paused
policy=$(kube_api "/api/v1/namespaces/default/pods/$victim" | jget 'd["spec"].get("restartPolicy","Always")')
kube_kill "$victim"
before=$(kube_pods kp)
sleep 8
[ "$(kube_pods kp)" = "$before" ] || fail "pods changed while paused: '$(kube_pods kp)'"
kube_members kp | grep -qw "$victim" || fail "$victim left the membership while paused"
if [ "$policy" = Never ]; then
  kube_healthy kp 3 && fail "a dead member counts as healthy"
fi

say "unpaused"
cluster_yaml kp 3
replaced() { kube_healthy kp 3 && ! kube_members kp | grep -qw "$victim"; }
wait_until 120 "3 healthy members without $victim" replaced
[ "$(kube_pods kp)" = "$(kube_members kp)" ] || fail "pods '$(kube_pods kp)' are not the members"
[ "$(pods_created kp)" = 4 ] || fail "$(pods_created kp) pods created: want 3 and one replacement"
stop_daemon
