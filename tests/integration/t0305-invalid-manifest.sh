#!/usr/bin/env bash
# A manifest made invalid while its cluster runs leaves the cluster untouched, with the
# error (file and line) in the audit log and in status; other clusters go on.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cluster_yaml good 1
cluster_yaml bad 1
eg apply --source "$SRC" --wait=60s
badpid=$(member_pids bad)
cluster_yaml bad three
cluster_yaml good 2
set +e; eg apply --source "$SRC" --prune --wait=60s; rc=$?; set -e
[ $rc -eq 1 ] || fail "apply with an invalid manifest exit $rc, want 1"
healthy good 2 || fail "the valid cluster did not go on"
! pid_gone "$badpid" || fail "cluster with an invalid manifest was stopped"
[ "$(member_pids bad)" = "$badpid" ] || fail "cluster with an invalid manifest was changed"
rec=$(audit_json --cluster default/bad | jget 'json.dumps([r for r in d if r["decision"]=="invalid"][-1])' 2>/dev/null) ||
  fail "no invalid record for bad"
echo "$rec" | grep -q '"path": "bad.yaml"' || fail "record does not name the file: $rec"
echo "$rec" | grep -q 'spec.size' || fail "record does not name the field: $rec"
echo "$rec" | grep -q '"line": ' || fail "record has no line: $rec"
eg get clusters bad -o json | grep -q "spec.size" || fail "status does not show the error"
eg audit verify >/dev/null || fail "audit chain broken"
