#!/usr/bin/env bash
# apply creates a 3-member cluster from a manifest; resizing 3 -> 5 -> 3 keeps the data.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cluster_yaml alpha 3
say "diff before anything runs: changes, exit 1"
set +e; eg diff --source "$SRC" >"$T/diff.txt"; rc=$?; set -e
[ $rc -eq 1 ] || fail "diff exit $rc, want 1"
grep -q "create" "$T/diff.txt" || fail "diff does not plan a create: $(cat "$T/diff.txt")"
[ -z "$(recorded_pids)" ] || fail "diff started processes"

say "apply --wait brings up 3 healthy members"
eg apply --source "$SRC" --wait=90s
healthy alpha 3 || fail "not 3 healthy members after apply: $(eg get members)"
etcdctl_c alpha put /k1 v1 >/dev/null
[ "$(etcdctl_c alpha get /k1 --print-value-only)" = v1 ] || fail "key not read back"

say "diff after converge: no changes, exit 0"
eg diff --source "$SRC" >/dev/null || fail "diff after apply reports changes"

say "scale up to 5"
cluster_yaml alpha 5
eg apply --source "$SRC" --wait=120s
healthy alpha 5 || fail "not 5 healthy members: $(eg get members)"
[ "$(etcdctl_c alpha get /k1 --print-value-only)" = v1 ] || fail "key lost after scale up"
etcdctl_c alpha member list | grep -c started | grep -qx 5 || fail "etcd does not list 5 started members"
audit_json --cluster default/alpha | jget 'sum(1 for r in d if r["decision"]=="add-learner" and r["outcome"]=="ok")' | grep -qx 2 ||
  fail "want 2 add-learner records"
audit_json --cluster default/alpha | jget 'sum(1 for r in d if r["decision"]=="promote" and r["outcome"]=="ok")' | grep -qx 2 ||
  fail "want 2 promote records"

say "scale down to 3"
etcdctl_c alpha put /k2 v2 >/dev/null
cluster_yaml alpha 3
eg apply --source "$SRC" --wait=120s
healthy alpha 3 || fail "not 3 healthy members after scale down: $(eg get members)"
[ "$(etcdctl_c alpha get /k1 --print-value-only)" = v1 ] || fail "k1 lost after scale down"
[ "$(etcdctl_c alpha get /k2 --print-value-only)" = v2 ] || fail "k2 lost after scale down"
[ "$(etcdctl_c alpha member list | wc -l)" = 3 ] || fail "etcd still lists removed members"
[ "$(ls "$STATE/clusters/default/alpha/members" | wc -l)" = 3 ] || fail "removed members' data not deleted: $(ls "$STATE/clusters/default/alpha/members")"

eg audit verify >/dev/null || fail "audit chain broken"
eg get clusters | grep -q "alpha" || fail "get clusters does not list alpha"
