#!/usr/bin/env bash
# `etcd-gitops get` as kubectl users expect it: singular kinds, -A, --no-headers, -o name,
# -w, MESSAGE and AGE on clusters, etcd's own view in `get members -o wide`, backups
# without internal fields and, given a source, only those whose manifest remains.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

# run WANT-RC CMD...: stdout in $T/out, stderr in $T/err; any other exit code fails.
run() {
  local want=$1 rc=0; shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, want $want; stderr: $(cat "$T/err")"
}

cluster_yaml ux 1 3.4.23
sed -i 's/^  name: ux$/  name: ux\n  namespace: uxtest/' "$SRC/ux.yaml"
run 0 eg apply --source "$SRC" --wait=60s

say "singular and plural kinds; MESSAGE and AGE columns"
run 0 eg get cluster ux
read -r -a head <"$T/out"
[ "${head[*]}" = "NAMESPACE NAME PHASE READY VERSION LEADER PLAN MESSAGE AGE" ] || fail "header: ${head[*]}"
grep -Eq '^uxtest +ux +Running +1/1 .* converged +- +[0-9]+[smhd]$' "$T/out" || fail "row: $(cat "$T/out")"
run 0 eg get clusters uxtest/ux
run 0 eg get member ux
grep -q "ux-0" "$T/out" || fail "get member ux: $(cat "$T/out")"

say "an unknown kind names the accepted ones"
run 2 eg get nodes
grep -qF "unknown kind 'nodes': get shows clusters, members or backups" "$T/err" || fail "get nodes: $(cat "$T/err")"
run 2 eg get clustr
grep -qF "did you mean 'cluster'?" "$T/err" || fail "get clustr: $(cat "$T/err")"

say "-o name, --no-headers, -A"
run 0 eg get clusters -o name
[ "$(cat "$T/out")" = "cluster/uxtest/ux" ] || fail "-o name: $(cat "$T/out")"
run 0 eg get members -o name
[ "$(cat "$T/out")" = "member/uxtest/ux/ux-0" ] || fail "members -o name: $(cat "$T/out")"
run 0 eg get clusters --no-headers
[ "$(wc -l <"$T/out")" -eq 1 ] && ! grep -q NAMESPACE "$T/out" || fail "--no-headers: $(cat "$T/out")"
run 0 env ETCD_GITOPS_NAMESPACE=elsewhere "$EG_BIN" get clusters -A -o name
[ "$(cat "$T/out")" = "cluster/uxtest/ux" ] || fail "-A over ETCD_GITOPS_NAMESPACE: $(cat "$T/out")"

say "get members -o wide asks etcd: peer URL, DB size, raft term and index"
run 0 eg get members -o wide
read -r -a head <"$T/out"
[ "${head[*]}" = "CLUSTER MEMBER STATE ROLE VERSION ID PID CLIENT-URL PEER-URL DB-SIZE RAFT-TERM RAFT-INDEX IN-ETCD RESTARTS REASON" ] ||
  fail "wide header: ${head[*]}"
read -r -a row < <(sed -n 2p "$T/out")
[[ "${row[8]}" == http://127.0.0.1:* ]] || fail "peer URL: ${row[*]}"
[[ "${row[9]}" =~ ^[1-9][0-9]*$ && "${row[10]}" =~ ^[1-9][0-9]*$ && "${row[11]}" =~ ^[1-9][0-9]*$ ]] ||
  fail "db size, term, index: ${row[*]}"

say "-w prints again when a status changes and exits 0 on Ctrl-C"
"$EG_BIN" get clusters -w --no-headers >"$T/watch" 2>"$T/watch.err" &
watch_pid=$!
on_exit "kill $watch_pid 2>/dev/null"
wait_until 10 "the first listing" grep -q converged "$T/watch"
cluster_yaml ux 1 3.4.23 "  paused: true"
sed -i 's/^  name: ux$/  name: ux\n  namespace: uxtest/' "$SRC/ux.yaml"
run 0 eg apply --source "$SRC"
wait_until 10 "a second listing with the pause" grep -q "paused (spec.paused)" "$T/watch"
kill -INT "$watch_pid"
rc=0; wait "$watch_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "get -w exited $rc after SIGINT: $(cat "$T/watch.err")"
grep -Eq '^uxtest +ux .* paused +cluster uxtest/ux is paused' "$T/watch" || fail "MESSAGE of a paused cluster: $(cat "$T/watch")"

say "get backups hides internal fields and, given a source, lists only backups it holds"
mkdir -p "$STATE/backups/uxtest"
for b in kept gone; do
  cat >"$STATE/backups/uxtest/$b.json" <<JSON
{"namespace":"uxtest","name":"$b","cluster":"uxtest/ux","succeeded":true,"reason":"","etcdRevision":7,
 "size":20480,"lastSuccessDate":"2026-12-01T00:00:00Z","attemptHash":"x","lastAttemptMs":1,"oneShotDone":"x","firstSeenMs":1}
JSON
done
cat >"$SRC/kept.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: kept
  namespace: uxtest
spec:
  etcdCluster:
    name: ux
  storageType: File
  backupPolicy:
    backupIntervalInSecond: 3600
  file:
    path: $T/backups
YAML
run 0 eg get backups -o json
python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
assert [b["name"] for b in d] == ["gone","kept"], d
for b in d:
    for k in ("attemptHash","lastAttemptMs","oneShotDone","firstSeenMs"): assert k not in b, (k, b)' "$T/out" ||
  fail "get backups -o json: $(cat "$T/out")"
run 0 eg get backups
grep -qF "backups as recorded in $STATE" "$T/err" || fail "no word on where backups come from: $(cat "$T/err")"
run 0 eg get backups --source "$SRC" -o name
[ "$(cat "$T/out")" = "backup/uxtest/kept" ] || fail "get backups --source: $(cat "$T/out")"
run 2 eg get clusters --source "$SRC"

say "ok"
