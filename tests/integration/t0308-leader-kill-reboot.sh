#!/usr/bin/env bash
# A killed leader is an election, not a quorum loss: no quorum-lost record, the member
# comes back in place. A hung member (SIGSTOP) is replaced without waiting out a SIGTERM
# grace it cannot honour. A reboot (every member and the daemon killed, data intact) is
# undone by starting the daemon: the same members come back with every key.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

members() { cluster_json rho | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))'; }

cluster_yaml rho 3
start_daemon
wait_until 60 "3 healthy members" healthy rho 3
names=$(members)
for i in $(seq 50); do etcdctl_c rho put "/k$i" "v$i" >/dev/null; done

say "kill -9 the leader"
leader=$(cluster_json rho | jget '[m for m in d[0]["status"]["memberDetails"] if m["role"]=="leader"][0]["pid"]')
kill -KILL "$leader"
wait_until 30 "3 healthy members after the leader kill" healthy rho 3
[ "$(members)" = "$names" ] || fail "members were replaced: $(members)"
audit_json --cluster default/rho | jget '[r["decision"] for r in d]' | grep -Eq "quorum-lost|blocked" &&
  fail "a leader kill was recorded as quorum lost"
grep -q "QUORUM LOST" "$T/daemon.log" && fail "a leader kill was logged as quorum lost"

say "SIGSTOP a follower: judged dead, killed at once, replaced"
hung=$(cluster_json rho | jget '[m for m in d[0]["status"]["memberDetails"] if m["role"]=="follower"][0]["name"]')
hung_pid=$(cluster_json rho | jget "[m['pid'] for m in d[0]['status']['memberDetails'] if m['name']=='$hung'][0]")
on_exit "kill -CONT $hung_pid 2>/dev/null"
kill -STOP "$hung_pid"
replaced() { ! members | grep -qw "$hung" && healthy rho 3; }
wait_until 60 "$hung replaced" replaced
took=$(audit_json --cluster default/rho | jget "[r['duration_ms'] for r in d if r['decision']=='replace-dead' and r.get('member')=='$hung'][-1]")
[ "$took" -lt 5000 ] || fail "replacing the hung member took $took ms: it waited out a grace"
wait_until 5 "the hung member's process $hung_pid to be gone" pid_gone "$hung_pid"
names=$(members)

say "reboot: kill -9 the daemon and every member"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
kill -KILL $(member_pids rho)
members_gone() { ! pgrep -f -- "--data-dir=$STATE/" >/dev/null; }
wait_until 10 "every member gone" members_gone
t0=$(date +%s%N)
start_daemon
wait_until 30 "3 healthy members after the reboot" healthy rho 3
say "healthy $(( ($(date +%s%N) - t0) / 1000000 )) ms after the daemon started"
[ "$(members)" = "$names" ] || fail "members were replaced after the reboot: $(members)"
for i in 1 25 50; do
  [ "$(etcdctl_c rho get "/k$i" --print-value-only)" = "v$i" ] || fail "key /k$i lost in the reboot"
done
audit_json --cluster default/rho | jget '[r["decision"] for r in d]' | grep -q quorum-lost &&
  fail "a reboot with data intact was recorded as quorum lost"
stop_daemon
eg audit verify >/dev/null || fail "audit chain broken"
