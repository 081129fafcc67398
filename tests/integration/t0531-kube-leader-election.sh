#!/usr/bin/env bash
# Two daemons on one source and one kubeconfig, on the real kube-apiserver (2 s image pulls):
# `run --runtime kubernetes` elects on a Lease, so one leads (/readyz 200, etcd_gitops_leader 1)
# and the other stands by (/readyz 503 naming the holder) and the cluster is created once. The
# leader killed with SIGKILL, the standby takes over within the lease duration and a retry
# period or two, and carries out a scale change made after the kill; its log and audit log
# name the daemon it took over from. A leader stopped with SIGTERM gives the lease up, and a
# standby takes over within a few seconds. A leader frozen past its lease (SIGSTOP) is taken
# over, and once thawed stands by without taking a step. Credentials that may not touch the
# Lease leave a daemon standing by, its log and /readyz naming the Role to bind.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

# start_one N [RUNTIME OPTIONS]: daemon N (default: the admin kubeconfig), its state dir
# $T/state-N (each daemon has its own audit log), log $T/daemon-N.log, HTTP on
# 127.0.0.1:${PORT[N]}; pids in PID[N], stopped by pid at exit
declare -A PID PORT
start_one() {
  local n=$1
  shift
  [ $# -gt 0 ] || set -- "${K[@]}"
  PORT[$n]=$(_free_port 1)
  mkdir -p "$T/state-$n"
  ETCD_GITOPS_STATE_DIR="$T/state-$n" "$EG_BIN" run --source "$SRC" "$@" --listen "127.0.0.1:${PORT[$n]}" \
    >"$T/daemon-$n.log" 2>&1 &
  PID[$n]=$!
}
stop_all() {
  local n
  for n in "${!PID[@]}"; do kill -KILL "${PID[$n]}" 2>/dev/null && wait "${PID[$n]}" 2>/dev/null; done
  if [ "$TEST_RC" -ne 0 ]; then
    for n in "${!PID[@]}"; do echo "--- daemon $n (tail)" >&2; tail -n 25 "$T/daemon-$n.log" >&2; done
  fi
}
on_exit stop_all

readyz() { curl -s --max-time 2 -o "$T/readyz-$1" -w '%{http_code}' "http://127.0.0.1:${PORT[$1]}/readyz" || true; }
identity() { curl -sS --max-time 2 "http://127.0.0.1:${PORT[$1]}/status" | jget 'd["leaderElection"]["identity"]'; }
leader_metric() {
  curl -sS --max-time 2 "http://127.0.0.1:${PORT[$1]}/metrics" | awk '/^etcd_gitops_leader\{/ {print $NF}'
}
ms() { echo $(($(date +%s%N) / 1000000)); }
audit_of() { ETCD_GITOPS_STATE_DIR="$T/state-$1" eg audit -o json; }

# the two are up when one answers 200 and the other 503
LEADER= STANDBY=
one_leads() {
  local a b
  a=$(readyz a)
  b=$(readyz b)
  if [ "$a" = 200 ] && [ "$b" = 503 ]; then LEADER=a STANDBY=b
  elif [ "$a" = 503 ] && [ "$b" = 200 ]; then LEADER=b STANDBY=a
  else return 1
  fi
}

cluster_yaml le 3
start_one a
start_one b
wait_until 60 "one daemon leading, the other standing by" one_leads
one_leads
say "daemon $LEADER leads, daemon $STANDBY stands by"
leader_id=$(identity "$LEADER")
standby_id=$(identity "$STANDBY")
[ -n "$leader_id" ] && [ "$leader_id" != "$standby_id" ] || fail "identities '$leader_id' and '$standby_id'"
grep -qF "held by $leader_id" "$T/readyz-$STANDBY" ||
  fail "the standby's /readyz does not name the leader: $(cat "$T/readyz-$STANDBY")"
[ "$(leader_metric "$LEADER")" = 1 ] || fail "leader's etcd_gitops_leader is '$(leader_metric "$LEADER")'"
[ "$(leader_metric "$STANDBY")" = 0 ] || fail "standby's etcd_gitops_leader is '$(leader_metric "$STANDBY")'"
holder=$(kube_api /apis/coordination.k8s.io/v1/namespaces/default/leases/etcd-gitops | jget 'd["spec"]["holderIdentity"]')
[ "$holder" = "$leader_id" ] || fail "the Lease names '$holder', the leader is '$leader_id'"

wait_until 180 "3 healthy members" kube_healthy le 3
[ "$(pods_created le)" = 3 ] || fail "$(pods_created le) pods created for 3 members by two daemons"
n=$(audit_of "$STANDBY" | jget 'sum(1 for e in d if e.get("cluster") == "default/le")')
[ "$n" = 0 ] || fail "the standby recorded $n decisions about the cluster"
sleep 6 # etcd refuses a new member for 5 s after a voter (re)joins

say "SIGKILL of the leader ($leader_id), then a scale change to 4"
t0=$(ms)
kill -KILL "${PID[$LEADER]}"
wait "${PID[$LEADER]}" 2>/dev/null || true
cluster_yaml le 4
takes_over() { [ "$(readyz "$STANDBY")" = 200 ]; }
wait_until 40 "the standby leading" takes_over
kill_takeover_ms=$(($(ms) - t0))
say "takeover after SIGKILL: $kill_takeover_ms ms"
# client-go's bound: the lease duration from the last renewal the standby saw, plus its retry
# (2 s, up to 1.2 periods of jitter) on either side
[ "$kill_takeover_ms" -le 25000 ] || fail "the standby took ${kill_takeover_ms} ms to take over"
[ "$kill_takeover_ms" -ge 10000 ] || fail "the standby took over after ${kill_takeover_ms} ms, before the lease expired"
grep -q "took the lease default/etcd-gitops over from $leader_id" "$T/daemon-$STANDBY.log" ||
  fail "the standby's log does not name the daemon it took over from"
audit_of "$STANDBY" | jget '[e for e in d if e["decision"] == "leader-elected"][-1]["reason"]' | grep -qF "$leader_id" ||
  fail "no leader-elected record naming $leader_id in the new leader's audit log"
wait_until 120 "4 healthy members" kube_healthy le 4
[ "$(pods_created le)" = 4 ] || fail "$(pods_created le) pods created: want 3 and one for the scale-up"
[ "$(leader_metric "$STANDBY")" = 1 ] || fail "the new leader's etcd_gitops_leader is '$(leader_metric "$STANDBY")'"

say "a new daemon stands by; SIGTERM of the leader hands it over"
old=$LEADER
LEADER=$STANDBY
STANDBY=c
start_one c
stands_by() { [ "$(readyz c)" = 503 ] && grep -q "held by" "$T/readyz-c"; }
wait_until 30 "daemon c standing by" stands_by
new_id=$(identity "$LEADER")
t0=$(ms)
kill -TERM "${PID[$LEADER]}"
wait_until 40 "daemon c leading" takes_over
term_takeover_ms=$(($(ms) - t0))
say "takeover after SIGTERM: $term_takeover_ms ms"
wait "${PID[$LEADER]}" || fail "the leader exited non-zero after SIGTERM"
grep -q "released the lease default/etcd-gitops" "$T/daemon-$LEADER.log" || fail "the leader did not say it released the lease"
[ "$term_takeover_ms" -le 8000 ] || fail "daemon c took ${term_takeover_ms} ms to take over a released lease"
grep -q "took the lease default/etcd-gitops, held by nobody" "$T/daemon-c.log" ||
  fail "daemon c's log does not say it took a released lease: $(grep -i lease "$T/daemon-c.log")"
sleep 3
kube_healthy le 4 || fail "not 4 healthy members under daemon c"
[ "$(pods_created le)" = 4 ] || fail "$(pods_created le) pods created after the hand-over: want 4"

say "daemon c frozen (SIGSTOP) past its lease: daemon d takes over; c, thawed, stands by and takes no step"
start_one d
d_stands_by() { [ "$(readyz d)" = 503 ] && grep -q "held by" "$T/readyz-d"; }
wait_until 30 "daemon d standing by" d_stands_by
c_records=$(audit_of c | jget 'len(d)')
kill -STOP "${PID[c]}"
t0=$(ms)
d_leads() { [ "$(readyz d)" = 200 ]; }
wait_until 40 "daemon d leading" d_leads
freeze_takeover_ms=$(($(ms) - t0))
say "takeover from a frozen leader: $freeze_takeover_ms ms"
cluster_yaml le 3
kill -CONT "${PID[c]}"
c_stands_by() { [ "$(readyz c)" = 503 ]; }
wait_until 10 "daemon c standing by once thawed" c_stands_by
grep -q "standing by: the lease default/etcd-gitops could not be renewed" "$T/daemon-c.log" ||
  fail "daemon c does not say it stopped acting: $(grep -i lease "$T/daemon-c.log")"
wait_until 120 "3 healthy members" kube_healthy le 3
steps=$(audit_of c | jget "sum(1 for e in d[$c_records:] if e.get('cluster') and e['outcome'] in ('ok', 'failed'))")
[ "$steps" = 0 ] || fail "daemon c took $steps steps after it was thawed, with daemon d leading"
[ "$(pods_created le)" = 4 ] || fail "$(pods_created le) pods created: want 4 (a scale-down creates none)"

transitions=$(kube_api /apis/coordination.k8s.io/v1/namespaces/default/leases/etcd-gitops | jget 'd["spec"]["leaseTransitions"]')
say "lease transitions: $transitions (daemon $old, then $LEADER ($new_id), then c, then d)"
[ "$transitions" = 3 ] || fail "leaseTransitions is $transitions: want 3 (three takeovers)"

say "credentials with the runtime's role but not the Lease's: standing by, naming the Role to bind"
kube_apply "$EG_SOURCE_DIR/examples/kubernetes/rbac.yaml"
cat >"$T/nolease.yaml" <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: nolease
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: etcd-gitops-runtime
subjects:
  - kind: User
    name: nolease
YAML
kube_apply "$T/nolease.yaml"
kube_cert nolease "" "$KUBE/certs"
kube_kubeconfig "$KUBE/kc/nolease.kubeconfig" nolease cert "$KUBE/certs/nolease.crt" "$KUBE/certs/nolease.key"
start_one e --runtime kubernetes --kubeconfig "$KUBE/kc/nolease.kubeconfig" -n default
names_role() { [ "$(readyz e)" = 503 ] && grep -q "bind the Role etcd-gitops-leader-election" "$T/readyz-e"; }
wait_until 30 "daemon e standing by, naming the Role" names_role
say "daemon e: $(cat "$T/readyz-e")"
grep -q "leader election on the lease default/etcd-gitops: forbidden: .*leases.coordination.k8s.io.*bind the Role etcd-gitops-leader-election" \
  "$T/daemon-e.log" || fail "daemon e's log does not name the Role to bind: $(grep -i lease "$T/daemon-e.log")"
[ "$(grep -c "forbidden" "$T/daemon-e.log")" = 1 ] || fail "the refusal is logged more than once"
[ "$(readyz d)" = 200 ] || fail "daemon d no longer leads"
