#!/usr/bin/env bash
# EtcdRestore on --runtime kubernetes on the real kube-apiserver (2 s image pulls): the seed pod fetches the snapshot from S3 itself (an
# init container signing its GET with curl's SigV4 and the awsSecret, checked by a SigV4
# verifier in front of s3rver), etcdctl restores it, and the cluster grows to size with the
# keys; a restore from File is refused before anything is made, and so is a corrupt object.
# Then an EtcdBackup of the restored cluster to S3 with the same awsSecret. The S3 endpoint is
# this host's address on the pods' bridge, which the daemon and the pods both reach.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
. "$EG_SOURCE_DIR/tests/lib/s3rver.sh"
s3rver_available || fail "s3rver is not installed: run .ci/install-deps"
on_exit s3rver_stop
# as the service account examples/kubernetes/rbac.yaml binds: it needs nothing more
start_kube_server
kube_apply "$EG_SOURCE_DIR/examples/kubernetes/rbac.yaml"
kube_sa_kubeconfig etcd-gitops etcd-gitops "$KUBE/kc/etcd-gitops.kubeconfig"
K=(--runtime kubernetes --kubeconfig "$KUBE/kc/etcd-gitops.kubeconfig" -n default)
S3_VERIFY=1 S3_VERIFY_HOST=$KUBE_HOST_IP s3rver_start "$T/s3" bkt || fail "s3rver did not start"

printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$T/credentials"
printf '[default]\nregion = us-east-1\n' >"$T/config"
kube_api /api/v1/namespaces/default/secrets -X POST -H 'Content-Type: application/json' -d "{\"apiVersion\":\"v1\",
  \"kind\":\"Secret\",\"metadata\":{\"name\":\"aws\"},\"data\":{\"credentials\":\"$(base64 -w0 <"$T/credentials")\",
  \"config\":\"$(base64 -w0 <"$T/config")\"}}" >/dev/null

say "a source cluster with keys, backed up to S3"
cluster_yaml ks 1
eg apply --source "$SRC" "${K[@]}" --wait=120s >"$T/apply-src.out" 2>&1 || { cat "$T/apply-src.out" >&2; fail "source cluster"; }
for i in $(seq 30); do etcd_put ks ks-0 "/k/$i" "v$i"; done
eg backup ks --to s3://bkt/ks/snap.db "${K[@]}" --aws-credentials-file "$T/credentials" --s3-endpoint "$S3_ENDPOINT" \
  --s3-force-path-style -o json >"$T/backup.json" 2>"$T/backup.err" || { cat "$T/backup.err" >&2; fail "backup failed"; }
rm "$SRC/ks.yaml"

restore_yaml() {
  cat >"$SRC/kr.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  name: kr
spec:
  size: 3
  version: "3.4.23"
---
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdRestore
metadata:
  name: kr
spec:
  etcdCluster:
    name: kr
$1
YAML
}

say "from File: refused on this runtime, nothing made"
restore_yaml "  backupStorageType: File
  file:
    path: $T/nowhere.db"
if eg apply --source "$SRC" "${K[@]}" --wait=10s >"$T/file.out" 2>&1; then fail "a File restore was applied on kubernetes"; fi
grep -q "restore from S3" "$T/file.out" || { cat "$T/file.out" >&2; fail "the refusal does not say what to do"; }
[ -z "$(kube_pods kr)" ] || fail "pods made for a restore that cannot work: $(kube_pods kr)"

say "a corrupt object: refused, nothing made"
head -c 100000 /dev/urandom >"$T/junk.db"
curl -sS --fail -X PUT --data-binary @"$T/junk.db" --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER \
  -H "x-amz-content-sha256: $(sha256sum <"$T/junk.db" | cut -d' ' -f1)" "$S3_ENDPOINT/bkt/junk.db" >/dev/null ||
  fail "cannot upload the corrupt object"
restore_yaml "  backupStorageType: S3
  s3:
    path: bkt/junk.db
    awsSecret: aws
    endpoint: $S3_ENDPOINT
    forcePathStyle: true"
if eg apply --source "$SRC" "${K[@]}" --wait=10s >"$T/junk.out" 2>&1; then fail "a corrupt snapshot was restored"; fi
audit_json --cluster default/kr | jget '[r for r in d if r["decision"]=="restore"][-1]["outcome"]' | grep -qx failed ||
  fail "no failed restore record"
[ -z "$(kube_pods kr)" ] || fail "pods made from a corrupt snapshot: $(kube_pods kr)"

say "from S3: the seed pod fetches and restores, the cluster grows to 3"
restore_yaml "  backupStorageType: S3
  s3:
    path: bkt/ks/snap.db
    awsSecret: aws
    endpoint: $S3_ENDPOINT
    forcePathStyle: true"
start_daemon "${K[@]}" --listen none
wait_until 240 "3 healthy members of the restored cluster" kube_healthy kr 3
[ "$(pods_created kr)" = 3 ] || fail "$(pods_created kr) pods created for the 3 members of the restored cluster"
for p in $(kube_members kr); do
  [ "$(etcd_get kr "$p" /k/30)" = v30 ] || fail "key /k/30 missing on $p"
done
seed=kr-0
init=$(kube_api /api/v1/namespaces/default/pods/$seed 2>/dev/null |
  jget '" ".join(c["name"]+"="+str(c["state"]["terminated"]["exitCode"]) for c in d["status"]["initContainerStatuses"])') ||
  init="(pod replaced)"
say "seed init containers: $init"
[ "$init" = "check-dns=0 fetch-snapshot=0 restore-snapshot=0" ] || fail "seed pod init containers: $init"
grep -q "^GET /bkt/ks/snap.db - ok 200" "$S3V_LOG" || { cat "$S3V_LOG" >&2; fail "no verified GET of the snapshot by the pod"; }
! grep -q "S3RVER" "$KUBE/state/pods/default/$seed.log" || fail "the secret shows in the seed pod's log"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["succeeded"] is True, d' \
  "$STATE/restores/default/kr.json" || fail "restore status not succeeded"
left=$(find "$STATE/restore" -type f 2>/dev/null)
[ -z "$left" ] || fail "the snapshot the daemon verified was left in the state dir: $left"
audit_json --cluster default/kr | jget '[r["reason"] for r in d if r["decision"]=="create"][-1]' | grep -q "restore cluster from" ||
  fail "create record does not say it restored"

say "an EtcdBackup to S3 with the awsSecret"
cat >"$SRC/backup.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: kr-once
spec:
  etcdCluster:
    name: kr
  storageType: S3
  s3:
    path: bkt/kr/once.db
    awsSecret: aws
    endpoint: $S3_ENDPOINT
    forcePathStyle: true
YAML
wait_until 60 "the backup object" test -s "$T/s3/bkt/kr/once.db._S3rver_object"
# the verifier logs a request once it has passed the answer on: the object can be there first
put_verified() { grep -q "^PUT /bkt/kr/once.db - ok 200" "$S3V_LOG"; }
wait_until 10 "the verifier's record of the backup PUT" put_verified
etcdctl snapshot restore "$T/s3/bkt/kr/once.db._S3rver_object" --data-dir "$T/check" >"$T/check.log" 2>&1 ||
  fail "the backup does not restore"
stop_daemon
