#!/usr/bin/env bash
# run --runtime kubernetes on the real kube-apiserver (2 s image pulls): a member dies while the
# daemon is stopped; once the daemon is back it replaces the member with one new pod and the
# cluster is 3 healthy voters again.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

cluster_yaml kd 3
start_daemon "${K[@]}" --listen none
wait_until 180 "3 healthy members" kube_healthy kd 3
etcd_put kd kd-0 /e2e/down kept
stop_daemon

sleep 6 # etcd refuses a new member for 5 s after a voter (re)joins
victim=$(kube_follower kd)
say "daemon stopped; killing $victim"
before=$(kube_pods kd)
kube_kill "$victim"
dead() { ! kube_healthy kd 3; }
wait_until 30 "$victim reported unhealthy" dead
[ "$(kube_pods kd)" = "$before" ] || fail "pods changed with no daemon running"

start_daemon "${K[@]}" --listen none
replaced() { kube_healthy kd 3 && ! kube_members kd | grep -qw "$victim"; }
wait_until 120 "3 healthy members without $victim" replaced
m=$(kube_members kd)
[ "$(kube_pods kd)" = "$m" ] || fail "pods '$(kube_pods kd)' are not the members '$m'"
[ "$(pods_created kd)" = 4 ] || fail "$(pods_created kd) pods created: want 3 and one replacement"
for p in $m; do
  [ "$(etcd_get kd "$p" /e2e/down)" = kept ] || fail "the key is not on $p"
done
stop_daemon
