#!/usr/bin/env bash
# A deleted manifest is left alone without --prune; with --prune its members stop; prune
# never removes every cluster at once unless --allow-empty.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cluster_yaml p1 1
cluster_yaml p2 1
eg apply --source "$SRC" --wait=60s
healthy p1 1 && healthy p2 1 || fail "clusters not up"
p2pid=$(member_pids p2)

rm "$SRC/p2.yaml"
eg apply --source "$SRC" --wait=10s || fail "apply without prune should converge (nothing to do)"
! pid_gone "$p2pid" || fail "p2 stopped without --prune"
audit_json --cluster default/p2 | jget 'd[-1]["reason"]' | grep -q "prune" || fail "no record explaining p2 was kept"

eg apply --source "$SRC" --prune --wait=30s
wait_until 10 "p2 to stop after --prune" pid_gone "$p2pid"
[ -d "$STATE/clusters/default/p2" ] || fail "pruned cluster's data deleted without being asked"
audit_json --cluster default/p2 | jget '[r["outcome"] for r in d if r["decision"]=="prune"]' | grep -q ok || fail "no prune record"
eg get clusters | grep -q p2 && fail "p2 still listed"

say "removing every manifest with --prune but without --allow-empty prunes nothing"
p1pid=$(member_pids p1)
rm "$SRC/p1.yaml"
eg apply --source "$SRC" --prune --wait=5s || true
! pid_gone "$p1pid" || fail "prune emptied everything without --allow-empty"
eg apply --source "$SRC" --prune --allow-empty --wait=30s
wait_until 10 "p1 to stop after --prune --allow-empty" pid_gone "$p1pid"
eg audit verify >/dev/null || fail "audit chain broken"
