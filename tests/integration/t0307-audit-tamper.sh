#!/usr/bin/env bash
# audit verify passes on a real log and catches a hand-edited record.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cluster_yaml tamper 1
eg apply --source "$SRC" --wait=60s
cluster_yaml tamper 1 3.4.23 "  paused: true"
eg apply --source "$SRC" --wait=10s
n=$(wc -l <"$STATE/audit.jsonl")
[ "$n" -ge 2 ] || fail "want at least 2 audit records, have $n"
eg audit verify || fail "fresh log does not verify"
sed -i '1s/"create"/"remove"/' "$STATE/audit.jsonl"
set +e; eg audit verify; rc=$?; set -e
[ $rc -eq 1 ] || fail "audit verify exit $rc on an edited log, want 1"
