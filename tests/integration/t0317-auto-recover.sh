#!/usr/bin/env bash
# A cluster that opts in (etcd-gitops/auto-recover-after) is recovered without a human once
# quorum has been lost that long: a new cluster forced from the most advanced survivor,
# grown back to size, every key the survivor had kept; a bad value is refused with the field.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

say "a bad value is an error naming the field"
cat >"$T/bad.yaml" <<'YAML'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  name: bad
  annotations:
    etcd-gitops/auto-recover-after: "5s"
spec:
  size: 3
YAML
set +e; eg validate "$T/bad.yaml" >"$T/validate.txt" 2>&1; rc=$?; set -e
[ $rc -eq 1 ] || fail "validate accepted auto-recover-after: 5s (exit $rc)"
grep -q "bad.yaml:6:.*etcd-gitops/auto-recover-after.*at least 30s" "$T/validate.txt" ||
  { cat "$T/validate.txt" >&2; fail "the error does not name the file, line and field"; }

cat >"$SRC/phi.yaml" <<'YAML'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  name: phi
  annotations:
    etcd-gitops/auto-recover-after: "30s"
spec:
  size: 3
  version: "3.4.23"
YAML
start_daemon
wait_until 60 "3 healthy members" healthy phi 3
for i in $(seq 20); do etcdctl_c phi put "/k$i" "v$i" >/dev/null; done

say "two members lose their data: quorum lost, then recovered after 30 s"
set -- $(cluster_json phi | jget '" ".join(m["name"]+":"+str(m["pid"]) for m in sorted(d[0]["status"]["memberDetails"], key=lambda m: m["name"]))')
for m in "$1" "$2"; do
  mv "$STATE/clusters/default/phi/members/${m%%:*}/data" "$T/lost-${m%%:*}"
  kill -KILL "${m#*:}"
done
wait_until 30 "QuorumLost in status" sh -c "\"$EG_BIN\" get clusters phi -o json | grep -q QuorumLost"
recovered() { audit_json --cluster default/phi | jget '[r["outcome"] for r in d if r["decision"]=="recover"]' | grep -q ok; }
wait_until 120 "the automatic recovery" recovered
audit_json --cluster default/phi | jget '[r["reason"] for r in d if r["decision"]=="recover"][-1]' |
  grep -q "most advanced survivor ${3%%:*}" || fail "the recovery did not start from the survivor ${3%%:*}"
wait_until 120 "3 healthy members after the recovery" healthy phi 3
for i in 1 20; do
  [ "$(etcdctl_c phi get "/k$i" --print-value-only)" = "v$i" ] || fail "key /k$i lost in the recovery"
done
stop_daemon
eg audit verify >/dev/null || fail "audit chain broken"
