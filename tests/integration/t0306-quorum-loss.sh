#!/usr/bin/env bash
# Two of three members killed with their data intact come back in place, with no
# quorum-lost record. Killed with their data gone, quorum is really lost: reported as
# QuorumLost once the grace has passed, and nothing is destroyed or guessed.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

members() { cluster_json omega | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))'; }

cluster_yaml omega 3
start_daemon
wait_until 60 "3 healthy members" healthy omega 3
etcdctl_c omega put /k v >/dev/null
names=$(members)

say "kill -9 two of three, data intact: restarted"
set -- $(member_pids omega)
kill -KILL "$1" "$2"
wait_until 30 "3 healthy members after the restart" healthy omega 3
[ "$(members)" = "$names" ] || fail "members were replaced: $(members)"
[ "$(etcdctl_c omega get /k --print-value-only)" = v ] || fail "data lost"
audit_json --cluster default/omega | jget '[r["decision"] for r in d]' | grep -q quorum-lost &&
  fail "a quorum-lost record for members that came back by themselves"

say "kill -9 two of three and remove their data: quorum lost"
set -- $(cluster_json omega | jget '" ".join(m["name"]+":"+str(m["pid"]) for m in sorted(d[0]["status"]["memberDetails"], key=lambda m: m["name"]))')
survivor_pid=${3#*:}
for m in "$1" "$2"; do
  # moved away before the kill, so that no restart in place can come in between
  mv "$STATE/clusters/default/omega/members/${m%%:*}/data" "$T/lost-${m%%:*}"
  kill -KILL "${m#*:}"
done
wait_until 30 "QuorumLost in status" sh -c "\"$EG_BIN\" get clusters omega -o json | grep -q QuorumLost"
for _ in $(seq 20); do sleep 0.1; done
[ "$(members)" = "$names" ] || fail "members were removed or replaced after quorum loss: $(members)"
! pid_gone "$survivor_pid" || fail "the surviving member was stopped"
[ "$(ls "$STATE/clusters/default/omega/members" | wc -l)" = 3 ] || fail "member dirs were deleted"
audit_json --cluster default/omega | jget '[r["decision"] for r in d]' | grep -q quorum-lost || fail "no quorum-lost audit record"
audit_json --cluster default/omega | jget '[r["reason"] for r in d if r["decision"]=="quorum-lost"][-1]' |
  grep -q "data gone" || fail "the quorum-lost record does not say which members lost their data"
stop_daemon
eg audit verify >/dev/null || fail "audit chain broken"
