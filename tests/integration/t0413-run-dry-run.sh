#!/usr/bin/env bash
# run --dry-run follows the source, records what it would do, and changes nothing.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cluster_yaml dry 3
start_daemon --dry-run --listen none
would_create() { audit_json --cluster default/dry | jget '[r["outcome"] for r in d if r["decision"]=="create"]' | grep -q dry-run; }
wait_until 20 "a dry-run create record" would_create
# several passes later nothing runs and nothing was recorded as done
sleep 3
[ -z "$(recorded_pids)" ] || fail "dry run started members"
[ ! -e "$STATE/clusters/default/dry/cluster.json" ] || fail "dry run wrote a cluster record"
n=$(audit_json --cluster default/dry | jget 'len([r for r in d if r["decision"]=="create"])')
[ "$n" = 1 ] || fail "dry run recorded the same would-do $n times, want once"
[ "$(audit_json --cluster default/dry | jget 'any(r["outcome"] == "ok" for r in d)')" = False ] ||
  fail "dry run recorded an ok outcome"
stop_daemon
say "without --dry-run the same source creates the cluster"
eg apply --source "$SRC" --wait=60s
healthy dry 3 || fail "cluster not created after the dry run"
eg audit verify >/dev/null || fail "audit chain broken"
