#!/usr/bin/env bash
# Under run: a member killed with SIGKILL comes back in place (same name, same etcd
# member, its data); one whose data is gone too is replaced by a fresh member; while
# paused nothing is done; unpausing heals.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

member_id() { etcdctl_c beta member list -w json | python3 -c "import json,sys; print([m['ID'] for m in json.load(sys.stdin)['members'] if m.get('name')=='$1'][0])"; }

cluster_yaml beta 3
start_daemon
wait_until 60 "3 healthy members" healthy beta 3
etcdctl_c beta put /before-kill yes >/dev/null

victim=$(cluster_json beta | jget '[m for m in d[0]["status"]["memberDetails"] if m["role"]=="follower"][0]["name"]')
vpid=$(cluster_json beta | jget "[m['pid'] for m in d[0]['status']['memberDetails'] if m['name']=='$victim'][0]")
vid=$(member_id "$victim")
names=$(cluster_json beta | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))')
say "kill -9 $victim (pid $vpid): restarted in place"
kill -KILL "$vpid"
wait_until 30 "3 healthy members after the kill" healthy beta 3
[ "$(cluster_json beta | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))')" = "$names" ] ||
  fail "members changed on a restart in place: $names"
[ "$(member_id "$victim")" = "$vid" ] || fail "$victim is a new etcd member, not the same one"
[ "$(etcdctl_c beta get /before-kill --print-value-only)" = yes ] || fail "data lost after the restart"
audit_json --cluster default/beta | jget '[r["member"] for r in d if r["decision"]=="restart"]' | grep -q "$victim" ||
  fail "no restart record for $victim"
audit_json --cluster default/beta | jget '[r["decision"] for r in d]' | grep -q "replace-dead" &&
  fail "a restartable member was replaced"

say "kill -9 $victim and remove its data: replaced by a fresh member"
vpid=$(cluster_json beta | jget "[m['pid'] for m in d[0]['status']['memberDetails'] if m['name']=='$victim'][0]")
# moved away before the kill, so that no restart in place can come in between
mv "$STATE/clusters/default/beta/members/$victim/data" "$T/lost-data"
kill -KILL "$vpid"
wait_until 60 "3 healthy members after the replacement" healthy beta 3
names=$(cluster_json beta | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))')
case " $names " in *" $victim "*) fail "member $victim without data still present: $names" ;; esac
[ "$(etcdctl_c beta get /before-kill --print-value-only)" = yes ] || fail "data lost after failover"
audit_json --cluster default/beta | jget '[r["member"] for r in d if r["decision"]=="replace-dead"]' | grep -q "$victim" ||
  fail "no replace-dead record for $victim"

say "pause, kill a member: not healed"
cluster_yaml beta 3 3.4.23 "  paused: true"
wait_until 10 "paused in status" sh -c "\"$EG_BIN\" get clusters beta -o json | grep -q '\"controlPaused\": true'"
victim=$(cluster_json beta | jget '[m for m in d[0]["status"]["memberDetails"] if m["role"]=="follower"][0]["name"]')
vpid=$(cluster_json beta | jget "[m['pid'] for m in d[0]['status']['memberDetails'] if m['name']=='$victim'][0]")
kill -KILL "$vpid"
# the daemon re-observes every second; give it several passes to (wrongly) act
for _ in $(seq 30); do sleep 0.1; done
sleep 2
names=$(cluster_json beta | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))')
case " $names " in *" $victim "*) ;; *) fail "paused cluster was changed: $names" ;; esac
healthy beta 3 && fail "paused cluster healed itself"

say "unpause: healed"
cluster_yaml beta 3
wait_until 60 "healed after unpause" healthy beta 3
stop_daemon
eg audit verify >/dev/null || fail "audit chain broken"
