#!/usr/bin/env bash
# Quorum lost for good (two of three members killed with their data gone): `recover`
# refuses while quorum holds or a daemon holds the state, shows the survivor and the
# revision gap, and brings the cluster back from the survivor (--force-new-cluster) with
# every key, or from a File backup; each recovery is one audit record.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

apply_wait() { eg apply --source "$SRC" --wait="$1" >"$T/apply.log" 2>&1; }
sorted_members() { cluster_json rho | jget '" ".join(m["name"]+":"+str(m["pid"]) for m in sorted(d[0]["status"]["memberDetails"], key=lambda m: m["name"]))'; }
# running PID: alive and not a zombie (members are detached: nobody may reap them at once)
running() { case "$(ps -o stat= -p "$1" 2>/dev/null)" in "" | Z*) return 1 ;; esac; }
# keys: every /k<i> as "k<i>=v<i>" lines, sorted
keys() { etcdctl --command-timeout=5s --endpoints="$(endpoints rho)" get /k --prefix | paste -d= - - | sort; }
recover_records() { audit_json --cluster default/rho | jget 'sum(1 for r in d if r["decision"]=="recover")'; }

# lose_two: kill -9 the first two members and delete their data; sets SURVIVOR
lose_two() {
  set -- $(sorted_members)
  SURVIVOR=${3%%:*}
  SURVIVOR_PID=${3#*:}
  for m in "$1" "$2"; do
    kill -KILL "${m#*:}"
    rm -rf "$STATE/clusters/default/rho/members/${m%%:*}/data"
  done
  # apply judges quorum lost once the grace has passed, and changes nothing
  apply_wait 6s && fail "apply converged without quorum"
  audit_json --cluster default/rho | jget 'd[-1]["decision"]' | grep -qx quorum-lost ||
    { cat "$T/apply.log" >&2; fail "no quorum-lost record after losing two members"; }
}

cluster_yaml rho 3
apply_wait 60s || { cat "$T/apply.log" >&2; fail "apply did not converge"; }
healthy rho 3 || fail "not 3 healthy members"
eps=$(endpoints rho)
for i in $(seq 1 20); do etcdctl --endpoints="$eps" put "/k$i" "v$i" >/dev/null; done
want=$(for i in $(seq 1 20); do echo "/k$i=v$i"; done | sort)

say "refused while the cluster has quorum"
rc=0; eg recover rho --from-member >"$T/out" 2>&1 || rc=$?
[ $rc = 2 ] || { cat "$T/out" >&2; fail "recover with quorum: exit $rc, want 2"; }
grep -q "still has quorum" "$T/out" || { cat "$T/out" >&2; fail "the refusal does not say quorum holds"; }

say "two of three killed with their data gone: quorum lost"
lose_two
n_members=$(ls "$STATE/clusters/default/rho/members" | wc -l)
n_records=$(audit_json | jget 'len(d)')

say "recover without a choice lists the survivor and the ways back (exit 1)"
rc=0; eg recover rho >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$T/out" >&2; fail "recover without a choice: exit $rc, want 1"; }
grep -E "^$SURVIVOR +yes +yes .*most advanced" "$T/out" >/dev/null || { cat "$T/out" >&2; fail "the survivor is not listed as the most advanced"; }
grep -q -- "--from-member $SURVIVOR" "$T/out" || { cat "$T/out" >&2; fail "no way back from the survivor"; }

say "--dry-run shows the survivor and the revision gap, and changes nothing"
eg recover rho --from-member --dry-run >"$T/out" 2>&1 || { cat "$T/out" >&2; fail "recover --dry-run failed"; }
grep -q "from member $SURVIVOR" "$T/out" || { cat "$T/out" >&2; fail "dry run does not name the survivor"; }
grep -q "revision gap 0" "$T/out" || { cat "$T/out" >&2; fail "dry run does not give the revision gap"; }
running "$SURVIVOR_PID" || fail "dry run stopped the survivor"
[ "$(ls "$STATE/clusters/default/rho/members" | wc -l)" = "$n_members" ] || fail "dry run changed the member dirs"
[ "$(audit_json | jget 'len(d)')" = "$n_records" ] || fail "dry run wrote to the audit log"

say "refused while a daemon holds the state"
start_daemon
# it opens the audit log before it reads the source
wait_until 10 "the daemon to read the source" grep -q "source revision" "$T/daemon.log"
rc=0; eg recover rho --from-member >"$T/out" 2>&1 || rc=$?
[ $rc = 2 ] || { cat "$T/out" >&2; fail "recover under a daemon: exit $rc, want 2"; }
grep -q "stop it" "$T/out" || { cat "$T/out" >&2; fail "the refusal does not say what to do"; }
stop_daemon

say "--from-member: force a new cluster from the survivor, grow back with every key"
eg recover rho --from-member "$SURVIVOR" --source "$SRC" >"$T/out" 2>&1 || { cat "$T/out" >&2; fail "recover --from-member failed"; }
apply_wait 90s || { cat "$T/apply.log" >&2; fail "apply did not grow the cluster back"; }
healthy rho 3 || fail "not 3 healthy members after the recovery"
[ "$(keys)" = "$want" ] || fail "keys lost by the recovery: $(keys | tr '\n' ' ')"
cluster_json rho | jget '" ".join(m["name"] for m in d[0]["status"]["memberDetails"])' | grep -qw "$SURVIVOR" ||
  fail "the survivor is not a member any more"
[ "$(ls "$STATE/clusters/default/rho/removed" | wc -l)" -ge 2 ] || fail "the stopped members' dirs were not kept aside"
[ "$(recover_records)" = 1 ] || fail "not one recover record"
audit_json --cluster default/rho | jget '[r for r in d if r["decision"]=="recover"][-1]["reason"]' | grep -q "revision gap 0" ||
  fail "the recover record has no revision gap"
audit_json --cluster default/rho | jget '[r for r in d if r["decision"]=="recover"][-1]["outcome"]' | grep -qx ok ||
  fail "the recover record is not ok"
audit_json --cluster default/rho | jget '[r for r in d if r["decision"]=="recover"][-1].get("path")' | grep -qx rho.yaml ||
  fail "the recover record does not name the manifest given with --source"

say "an EtcdBackup's verified backup is the one recover names"
mkdir -p "$T/backups"
cat >"$SRC/rho-backup.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: rho-backup
spec:
  etcdCluster:
    name: rho
  storageType: File
  file:
    path: $T/backups/rho
  backupPolicy:
    backupIntervalInSecond: 3600
YAML
apply_wait 60s || { cat "$T/apply.log" >&2; fail "apply did not take the EtcdBackup"; }
object=$(eg get backups -o json | jget '[b["object"] for b in d if b["name"]=="rho-backup"][0]')
[ -f "$object" ] || fail "the EtcdBackup stored nothing at '$object'"

say "--from-backup: a File backup restored as a new cluster"
eg backup rho --to "$T/rho.db" >"$T/backup.out" || fail "backup failed"
etcdctl_c rho put /after-backup x >/dev/null
lose_two
rc=0; eg recover rho >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$T/out" >&2; fail "recover without a choice: exit $rc, want 1"; }
grep -q "newest verified backup: $object (revision [1-9]" "$T/out" || { cat "$T/out" >&2; fail "the EtcdBackup's backup is not named"; }
eg recover rho --from-backup --dry-run >"$T/out" 2>&1 || { cat "$T/out" >&2; fail "recover --from-backup --dry-run failed"; }
grep -Eq "from backup $object \(revision [0-9]+\).*revision gap [1-9]" "$T/out" ||
  { cat "$T/out" >&2; fail "the dry run of the newest backup gives no revision gap"; }
eg recover rho --from-backup "$T/rho.db" --dry-run >"$T/out" 2>&1 || { cat "$T/out" >&2; fail "recover --from-backup --dry-run failed"; }
grep -q "restore a new cluster from backup $T/rho.db" "$T/out" || { cat "$T/out" >&2; fail "dry run does not name the backup"; }
running "$SURVIVOR_PID" || fail "dry run stopped the survivor"
eg recover rho --from-backup "$T/rho.db" >"$T/out" 2>&1 || { cat "$T/out" >&2; fail "recover --from-backup failed"; }
running "$SURVIVOR_PID" && fail "the survivor still runs after the restore"
apply_wait 90s || { cat "$T/apply.log" >&2; fail "apply did not grow the restored cluster back"; }
healthy rho 3 || fail "not 3 healthy members after the restore"
[ "$(keys)" = "$want" ] || fail "keys not in the restored cluster: $(keys | tr '\n' ' ')"
[ -z "$(etcdctl_c rho get /after-backup --print-value-only)" ] || fail "a key written after the backup is in the restored cluster"
[ "$(recover_records)" = 2 ] || fail "not two recover records"
audit_json --cluster default/rho | jget '[r for r in d if r["decision"]=="recover"][-1]["reason"]' |
  grep -Eq "revision gap [1-9]" || fail "the restore's record does not give the revision gap to the survivor"
eg audit verify >/dev/null || fail "audit chain broken"
