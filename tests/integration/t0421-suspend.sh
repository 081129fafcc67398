#!/usr/bin/env bash
# suspend/resume: a suspended cluster is observed and reported, never changed. Without a
# daemon: a killed member stays down under apply (which exits as for a paused cluster), get
# shows the suspension and its reason, the audit log who asked and why; resumed, apply heals
# it. With a daemon: suspend goes through its control socket and outlives a restart of it.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

follower_pid() {
  cluster_json gamma | jget '[m["pid"] for m in d[0]["status"]["memberDetails"] if m["role"]=="follower"][0]'
}
member_state() { cluster_json gamma | jget "[m['state'] for m in d[0]['status']['memberDetails'] if m['name']=='$1'][0]"; }
follower_name() {
  cluster_json gamma | jget '[m["name"] for m in d[0]["status"]["memberDetails"] if m["role"]=="follower"][0]'
}

cluster_yaml gamma 3
eg apply --source "$SRC" --wait=90s >/dev/null
healthy gamma 3 || fail "not 3 healthy members after apply: $(eg get members)"

say "suspend without a daemon; a second suspend changes nothing"
out=$(eg suspend gamma --reason "disk swap") || fail "suspend failed: $out"
[ "$out" = "cluster default/gamma suspended" ] || fail "suspend said: $out"
out=$(eg suspend default/gamma --reason other) || fail "a second suspend failed"
[ "$out" = "cluster default/gamma is already suspended; nothing changed" ] || fail "a second suspend said: $out"
if out=$(eg suspend nosuch 2>&1); then fail "suspend of an unknown cluster succeeded"; fi
case "$out" in *"no cluster default/nosuch; the clusters are default/gamma"*) ;; *) fail "unknown cluster: $out" ;; esac

say "a member killed while suspended: apply leaves it down and exits 0, as for a paused cluster"
victim=$(follower_name)
vpid=$(follower_pid)
kill -KILL "$vpid"
wait_until 10 "$victim gone" pid_gone "$vpid"
eg apply --source "$SRC" >"$T/apply.out" 2>&1 || fail "apply exited $? on a suspended cluster: $(cat "$T/apply.out")"
eg apply --source "$SRC" >/dev/null 2>&1 || fail "a second apply failed"
[ "$(member_state "$victim")" != healthy ] || fail "$victim was restarted while suspended"
healthy gamma 3 && fail "a suspended cluster healed"

say "get shows the suspension, table and JSON"
eg get clusters gamma | grep -q "Suspended: disk swap" || fail "get clusters: $(eg get clusters gamma)"
[ "$(cluster_json gamma | jget 'd[0]["status"]["suspended"]["reason"]')" = "disk swap" ] ||
  fail "get -o json: no suspended.reason"
me="uid $(id -u) ($(id -un))"
[ "$(cluster_json gamma | jget 'd[0]["status"]["suspended"]["actor"]')" = "$me" ] || fail "get -o json: wrong actor"

say "the audit log has who and why, and the plan held back once"
audit_json --cluster default/gamma | jget '[(r["actor"], r.get("reason")) for r in d if r["decision"]=="suspend"]' |
  grep -qF "('$me', 'disk swap')" || fail "no suspend record with actor and reason: $(audit_json --cluster default/gamma)"
# once per apply: each is a reconciler of its own, which records what it finds once
[ "$(audit_json --cluster default/gamma | jget 'sum(1 for r in d if r["decision"]=="suspended")')" = 2 ] ||
  fail "the held-back plan is not recorded once per apply"
audit_json --cluster default/gamma | jget '[r["reason"] for r in d if r["decision"]=="suspended"][0]' |
  grep -q "held back: restart $victim" || fail "the suspended record does not name the restart held back"

say "resume: apply heals it"
out=$(eg resume gamma) || fail "resume failed"
[ "$out" = "cluster default/gamma resumed" ] || fail "resume said: $out"
eg apply --source "$SRC" --wait=90s >/dev/null || fail "apply after resume did not converge"
healthy gamma 3 || fail "not healed after resume: $(eg get members)"
eg get clusters gamma | grep -q Suspended && fail "get still shows the suspension"
audit_json --cluster default/gamma | jget '[r["decision"] for r in d]' | grep -q "'resume'" || fail "no resume record"

say "with a daemon: suspend through its control socket, kept across a restart of the daemon"
start_daemon
wait_until 30 "the daemon's control socket" test -S "$STATE/control.sock"
out=$(eg suspend gamma --reason "through the daemon") || fail "suspend through the daemon failed: $out"
[ "$out" = "cluster default/gamma suspended" ] || fail "suspend through the daemon said: $out"
victim=$(follower_name)
vpid=$(follower_pid)
kill -KILL "$vpid"
wait_until 10 "$victim gone" pid_gone "$vpid"
stop_daemon
start_daemon
wait_until 30 "the daemon's control socket again" test -S "$STATE/control.sock"
wait_until 10 "the suspension in the status" sh -c "\"$EG_BIN\" get clusters gamma | grep -q 'Suspended: through the daemon'"
# the daemon looks again every 1.5 s: several passes in which it must not act
sleep 4
[ "$(member_state "$victim")" != healthy ] || fail "the restarted daemon healed a suspended cluster"
out=$(eg resume --all) || fail "resume --all through the daemon failed: $out"
[ "$out" = "1 cluster resumed" ] || fail "resume --all said: $out"
wait_until 60 "healed after resume through the daemon" healthy gamma 3
stop_daemon
audit_json --cluster default/gamma | jget '[r["reason"] for r in d if r["decision"]=="suspend"]' |
  grep -q "through the daemon" || fail "no suspend record from the daemon"
eg audit verify >/dev/null || fail "audit chain broken"
