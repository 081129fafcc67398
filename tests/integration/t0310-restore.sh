#!/usr/bin/env bash
# EtcdRestore rebuilds a cluster from a File snapshot: one seed member restored with
# etcdctl, then grown to size; a corrupt snapshot is refused and nothing is created; a
# running cluster is not replaced without overwrite, and with it the teardown is a step of
# its own that diff shows and the audit log records against the EtcdRestore.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cluster_yaml src1 1
eg apply --source "$SRC" --wait=60s
etcdctl_c src1 put /restored yes >/dev/null
for i in $(seq 20); do etcdctl_c src1 put /k$i v$i >/dev/null; done
mkdir -p "$T/backups"
eg backup src1 --to "$T/backups/snap.db" >"$T/backup.txt"
[ -s "$T/backups/snap.db" ] || fail "backup wrote nothing: $(cat "$T/backup.txt")"

restore_yaml() {
  cat >"$SRC/restore.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdRestore
metadata:
  name: $1
spec:
  etcdCluster:
    name: $1
  backupStorageType: File
  file:
    path: $2
${3:-}
YAML
}

say "a running cluster is not replaced without overwrite"
pid=$(member_pids src1)
restore_yaml src1 "$T/backups/snap.db"
eg apply --source "$SRC" --wait=10s || true
[ "$(member_pids src1)" = "$pid" ] || fail "a restore replaced a running cluster without overwrite"
audit_json --cluster default/src1 | jget '[r["reason"] for r in d if r["decision"]=="blocked"][-1]' | grep -q overwrite ||
  fail "no blocked record naming overwrite"

say "a corrupt snapshot is refused and nothing is created"
cp "$T/backups/snap.db" "$T/backups/bad.db"
printf 'XXXX' | dd of="$T/backups/bad.db" bs=1 seek=4096 conv=notrunc 2>/dev/null
cluster_yaml fromsnap 3
restore_yaml fromsnap "$T/backups/bad.db"
set +e; eg apply --source "$SRC" --wait=5s; rc=$?; set -e
[ $rc -eq 1 ] || fail "apply with a corrupt snapshot exit $rc, want 1"
[ ! -f "$STATE/clusters/default/fromsnap/cluster.json" ] || fail "a cluster was created from a corrupt snapshot"
audit_json --cluster default/fromsnap | jget '[r for r in d if r["decision"]=="restore"][-1]["outcome"]' | grep -qx failed ||
  fail "no failed restore record"

say "a good snapshot: seed restored, grown to 3, keys present"
restore_yaml fromsnap "$T/backups/snap.db"
# the failed attempt backs off; a new manifest content is tried at once
eg apply --source "$SRC" --wait=120s
healthy fromsnap 3 || fail "restored cluster not 3 healthy members: $(eg get members)"
[ "$(etcdctl_c fromsnap get /restored --print-value-only)" = yes ] || fail "restored cluster lacks the key"
[ "$(etcdctl_c fromsnap get /k20 --print-value-only)" = v20 ] || fail "restored cluster lacks /k20"
audit_json --cluster default/fromsnap | jget '[r["reason"] for r in d if r["decision"]=="create"][-1]' | grep -q "restore cluster from" ||
  fail "create record does not say it restored"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["succeeded"] is True, d' \
  "$STATE/restores/default/fromsnap.json" || fail "restore status not succeeded"
left=$(find "$STATE/restore" -type f 2>/dev/null)
[ -z "$left" ] || fail "the fetched snapshot was left in the state dir: $left"
[ -s "$T/backups/snap.db" ] || fail "the backup restored from is gone"

say "the restore is applied once: a later apply changes nothing"
pids=$(member_pids fromsnap)
eg apply --source "$SRC" --wait=10s
[ "$(member_pids fromsnap)" = "$pids" ] || fail "a second apply restored again"
say "overwrite: true replaces the running cluster, as a planned step"
etcdctl_c src1 put /after-backup yes >/dev/null
restore_yaml src1 "$T/backups/snap.db" "  overwrite: true"
set +e; eg diff --source "$SRC" >"$T/diff.txt"; set -e
grep -q "restore-replace" "$T/diff.txt" || { cat "$T/diff.txt" >&2; fail "diff does not show the teardown"; }
eg apply --source "$SRC" --wait=120s
healthy src1 1 || fail "src1 not restored: $(eg get members)"
[ "$(etcdctl_c src1 get /restored --print-value-only)" = yes ] || fail "restored src1 lacks the key"
[ -z "$(etcdctl_c src1 get /after-backup --print-value-only)" ] || fail "src1 was not restored from the snapshot"
audit_json --cluster default/src1 | jget '[r.get("path") for r in d if r["decision"]=="restore-replace" and r["outcome"]=="ok"][-1]' |
  grep -q "restore.yaml" || fail "no restore-replace record naming the EtcdRestore"
eg audit verify >/dev/null || fail "audit chain broken"
