#!/usr/bin/env bash
# An ad-hoc backup is in the audit log as the backup controller's are: decision backup,
# the caller as actor ("uid N (name)"), its outcome and, when it failed, the error. While
# the daemon holds the audit log the daemon records it, through its control socket, with the
# caller its socket names as actor.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

run() {
  local want=$1 rc=0; shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, want $want; stderr: $(cat "$T/err")"
}
actor="uid $(id -u) ($(id -un))"
# last_backup FIELD: FIELD of the last backup record of default/ab
last_backup() { audit_json --cluster default/ab | jget "[r for r in d if r['decision']=='backup'][-1].get('$1')"; }

say "an EtcdBackup naming a cluster nobody runs: apply says which failed and why, exits 1"
cat >"$SRC/ghost-backup.yaml" <<EOF
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: gb
spec:
  etcdCluster:
    name: ghost
  storageType: S3
  s3:
    path: bucket/key
    awsSecret: none
EOF
run 1 eg apply --source "$SRC"
grep -qF "EtcdBackup default/gb: backup failed: cluster default/ghost is not known to the runtime" "$T/err" ||
  fail "no reason for the failed backup: $(cat "$T/err")"
grep -qx "1 backup failed: etcd-gitops audit --decision backup --outcome failed" "$T/out" ||
  fail "no word of the failed backup in the summary: $(cat "$T/out")"
audit_json --cluster default/ghost | jget 'd[-1]["error"]' | grep -qF "is not known to the runtime" ||
  fail "the audit record has no error text: $(audit_json)"
rm "$SRC/ghost-backup.yaml"

cluster_yaml ab 1
run 0 eg apply --source "$SRC" --wait=60s

say "a backup that worked: outcome ok, the caller as actor"
run 0 eg backup ab --to "$T/ab.db"
[ "$(last_backup outcome)" = ok ] || fail "outcome $(last_backup outcome): $(audit_json)"
[ "$(last_backup actor)" = "$actor" ] || fail "actor '$(last_backup actor)', want '$actor'"
last_backup reason | grep -qF "ad-hoc backup to $T/ab.db" || fail "reason: $(last_backup reason)"

say "a backup that failed: outcome failed with the error"
run 2 eg backup ab --to "$T/ab.db/under-a-file.db"
[ "$(last_backup outcome)" = failed ] || fail "outcome $(last_backup outcome): $(audit_json)"
last_backup error | grep -qF "Not a directory" || fail "error: '$(last_backup error)'"
[ "$(last_backup actor)" = "$actor" ] || fail "actor of the failed backup '$(last_backup actor)'"
eg audit verify >/dev/null || fail "audit verify after the ad-hoc backups"

say "under the daemon the backup is recorded by the daemon, the caller as actor"
start_daemon --listen none
wait_until 60 "the daemon holding the audit log and its control socket" \
  sh -c "! flock -n '$STATE/audit.jsonl' true && [ -S '$STATE/control.sock' ]"
run 0 eg backup ab --to "$T/ab2.db"
[ -s "$T/ab2.db" ] || fail "no snapshot taken under the daemon"
! grep -qF "not be in the audit log" "$T/err" || fail "the backup under the daemon went unrecorded: $(cat "$T/err")"
last_backup reason | grep -qF "ad-hoc backup to $T/ab2.db" || fail "reason under the daemon: $(last_backup reason)"
[ "$(last_backup actor)" = "$actor" ] || fail "actor under the daemon '$(last_backup actor)', want '$actor'"
[ "$(last_backup outcome)" = ok ] || fail "outcome under the daemon $(last_backup outcome)"
stop_daemon
eg audit verify >/dev/null || fail "audit verify after the daemon recorded a backup"
say "ok"
