#!/usr/bin/env bash
# A version change rolls members one at a time, leader last, while writes go on; a
# version that skips a minor is refused with a reason and changes nothing.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

BIN="$T/bin"
mkdir -p "$BIN/3.4.23" "$BIN/3.4.99"
ln -s "$(command -v etcd)" "$BIN/3.4.23/etcd"
ln -s "$(command -v etcd)" "$BIN/3.4.99/etcd"
export ETCD_GITOPS_ETCD_BIN_DIR="$BIN"

cluster_yaml gamma 3 3.4.23
eg apply --source "$SRC" --wait=90s
healthy gamma 3 || fail "not healthy before upgrade"
pids_before=$(member_pids gamma)
leader_before=$(cluster_json gamma | jget 'd[0]["status"]["leader"]')

# writer: one put every 50 ms, from before the upgrade until after it; record failures
endpoints gamma >"$T/eps"
( i=0; while [ ! -f "$T/stop-writer" ]; do
    i=$((i+1))
    if etcdctl --command-timeout=2s --endpoints="$(cat "$T/eps")" put /w/$i $i >/dev/null 2>"$T/write-err"; then echo "$(date +%T.%N) ok"; else echo "$(date +%T.%N) fail $(head -c 200 "$T/write-err")"; fi
    sleep 0.05
  done >"$T/writes" ) &
WRITER=$!
wait_until 10 "the writer's first write" grep -q ok "$T/writes"

cluster_yaml gamma 3 3.4.99
eg apply --source "$SRC" --wait=180s
sleep 1
touch "$T/stop-writer"; wait $WRITER || true
healthy gamma 3 || fail "not healthy after upgrade"
cluster_json gamma | jget 'all(m["version"]=="3.4.99" for m in d[0]["status"]["memberDetails"])' | grep -qx True ||
  fail "members not all at 3.4.99"
[ "$(member_pids gamma)" != "$pids_before" ] || fail "no member was restarted"
ups=$(audit_json --cluster default/gamma | jget '",".join(r["member"] for r in d if r["decision"]=="upgrade-member" and r["outcome"]=="ok")')
[ "$(echo "$ups" | tr ',' '\n' | sort -u | wc -l)" = 3 ] || fail "want 3 distinct upgrade-member records, got $ups"
[ "${ups##*,}" = "$leader_before" ] || fail "leader $leader_before not upgraded last (order $ups)"
ok=$(grep -c ok "$T/writes" || true); bad=$(grep -c fail "$T/writes" || true)
say "writes during upgrade: $ok ok, $bad failed"
grep fail "$T/writes" >&2 || true
[ "$ok" -ge 5 ] || fail "too few writes went through during the upgrade ($ok)"
# a leader hand-over or a restart may cost a write or two, never a stretch of them
[ "$bad" -le 2 ] || fail "cluster did not serve writes during the upgrade: $bad failed of $((ok+bad))"

say "3.4 -> 3.6 is refused"
pids=$(member_pids gamma)
cluster_yaml gamma 3 3.6.0
set +e; eg apply --source "$SRC"; rc=$?; set -e
[ $rc -eq 1 ] || fail "apply of a skipped minor exit $rc, want 1"
[ "$(member_pids gamma)" = "$pids" ] || fail "a refused upgrade restarted members"
audit_json --cluster default/gamma | jget '[r["reason"] for r in d if r["decision"]=="blocked"][-1]' | grep -q "minor" ||
  fail "no blocked record naming the minor version rule"

say "downgrade is refused"
cluster_yaml gamma 3 3.4.23
set +e; eg apply --source "$SRC"; rc=$?; set -e
[ $rc -eq 1 ] || fail "apply of a downgrade exit $rc, want 1"
[ "$(member_pids gamma)" = "$pids" ] || fail "a refused downgrade restarted members"
eg audit verify >/dev/null || fail "audit chain broken"
