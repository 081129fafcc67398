#!/usr/bin/env bash
# Killing 2 of 3 members loses quorum: reported as QuorumLost, nothing is destroyed.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cluster_yaml omega 3
start_daemon
wait_until 60 "3 healthy members" healthy omega 3
names=$(cluster_json omega | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))')
set -- $(member_pids omega)
kill -KILL "$1" "$2"
wait_until 30 "QuorumLost in status" sh -c "\"$EG_BIN\" get clusters omega -o json | grep -q QuorumLost"
sleep 2
[ "$(cluster_json omega | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))')" = "$names" ] ||
  fail "members were removed or replaced after quorum loss"
kill -0 "$3" || fail "the surviving member was stopped"
[ "$(ls "$STATE/clusters/default/omega/members" | wc -l)" = 3 ] || fail "member data was deleted"
audit_json --cluster default/omega | jget '[r["decision"] for r in d]' | grep -q quorum-lost || fail "no quorum-lost audit record"
stop_daemon
eg audit verify >/dev/null || fail "audit chain broken"
