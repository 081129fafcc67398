#!/usr/bin/env bash
# Under run, a periodic EtcdBackup to a directory runs on its interval and retention
# keeps the newest maxBackups; `get backups` shows the status.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cluster_yaml bk 1
cat >"$SRC/backup.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: bk-periodic
spec:
  etcdCluster:
    name: bk
  storageType: File
  file:
    path: $T/backups
  backupPolicy:
    backupIntervalInSecond: 2
    maxBackups: 2
YAML
start_daemon --listen none
wait_until 60 "cluster up" healthy bk 1
backups_taken() { [ "$(audit_json --cluster default/bk | jget 'sum(1 for r in d if r["decision"]=="backup" and r["outcome"]=="ok")')" -ge "$1" ]; }
wait_until 60 "three backups" backups_taken 3
files=$(ls "$T/backups" | grep -c '_v' || true)
[ "$files" = 2 ] || fail "retention kept $files backups, want 2: $(ls "$T/backups")"
eg get backups | grep -q "bk-periodic" || fail "get backups does not list bk-periodic"
eg get backups bk-periodic -o json | jget 'd[0]["succeeded"]' | grep -qx True || fail "backup status not succeeded"
stop_daemon
eg audit verify >/dev/null || fail "audit chain broken"
