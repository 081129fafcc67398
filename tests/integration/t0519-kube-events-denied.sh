#!/usr/bin/env bash
# Events that cannot be posted never fail a step, on the real kube-apiserver: a user bound to
# examples/kubernetes/rbac.yaml's role without 'create' on events runs the daemon. The cluster is
# created and converges (the audit log has each decision, outcome ok), the API holds no Event of
# etcd-gitops, the daemon says so once (not once per decision) and counts each lost Event in
# etcd_gitops_events_lost_total.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
kube_role_without events etcd-gitops-noevents noevents >"$T/rbac.yaml"
grep -q 'resources: \[events\]' "$T/rbac.yaml" && fail "the reduced role still grants events: $(cat "$T/rbac.yaml")"
grep -q 'pods/proxy' "$T/rbac.yaml" || fail "the reduced role lost more than events: $(cat "$T/rbac.yaml")"
start_kube_server
kube_apply "$T/rbac.yaml"
kube_cert noevents "" "$KUBE/certs"
NE_KC="$KUBE/kc/noevents.kubeconfig"
kube_kubeconfig "$NE_KC" noevents cert "$KUBE/certs/noevents.crt" "$KUBE/certs/noevents.key"

cluster_yaml ev 1
port=$(_free_port 1)
start_daemon --runtime kubernetes --kubeconfig "$NE_KC" -n default --no-leader-elect --listen "127.0.0.1:$port"
wait_until 120 "1 healthy member" kube_healthy ev 1
lost() { curl -sS --max-time 2 "http://127.0.0.1:$port/metrics" | awk '$1 == "etcd_gitops_events_lost_total" {print $2}'; }
# the create, then the wait for its member or the converged state
lost_two() { [ "$(lost)" -ge 2 ]; }
wait_until 30 "two lost events counted" lost_two
stop_daemon
[ "$(audit_json | jget '",".join(e["decision"] + ":" + e["outcome"] for e in d if e["decision"]=="create")')" = create:ok ] ||
  fail "the create did not go well: $(audit_json | jget '[(e["decision"], e["outcome"], e.get("error")) for e in d]')"
[ -z "$(kube_events)" ] || fail "events posted without the right to: $(kube_events)"
say "$(grep 'cannot post the event of decision' "$T/daemon.log" || true)"
warned=$(grep -c 'cannot post the event of decision' "$T/daemon.log" || true)
[ "$warned" = 1 ] || fail "the lost events were logged $warned times, not once: $(cat "$T/daemon.log")"
grep 'cannot post the event of decision' "$T/daemon.log" | grep -q 'events' ||
  fail "the warning does not say what was refused: $(grep 'cannot post' "$T/daemon.log")"
