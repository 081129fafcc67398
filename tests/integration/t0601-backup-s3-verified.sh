#!/usr/bin/env bash
# backup to S3 through a verifier that checks every SigV4 signature as AWS does (s3rver checks
# only the access key): one-shot path-style and virtual-hosted, a session token, a multipart
# upload; a wrong secret or region is refused and leaves no object; periodic backups under apply
# keep the newest maxBackups by revision as a number (v99 < v100 < v101) in the bucket, deleting
# the others with DeleteObjects.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/s3rver.sh"

s3rver_available || fail "s3rver is not installed: run .ci/install-deps"
on_exit s3rver_stop

S3_VERIFY=1 S3_VERIFY_KEYS="S3RVER:S3RVER" s3rver_start "$T/s3" bkt || fail "s3rver with the verifier did not start"
if [ "$S3_PORT" = "$S3RVER_PORT" ] || [ -z "$S3V_PID" ]; then fail "the verifier is not in front of s3rver"; fi
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$T/creds"
# the key id s3rver knows, so only a signature check can refuse it
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = WRONGSECRETxyz\n' >"$T/badsecret"
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\nregion = eu-west-1\n' >"$T/badregion"
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\naws_session_token = FwoGZXIvYXdzEXAMPLE/TOKEN+with=chars\n' >"$T/token"
S3ARGS=(--aws-credentials-file "$T/creds" --s3-endpoint "$S3_ENDPOINT" --s3-force-path-style)

object_file() { echo "$T/s3/bkt/$1._S3rver_object"; }
# verdict METHOD PATH QUERY: the verifier's verdicts for that request, one a line
verdict() { awk -v m="$1" -v p="$2" -v q="$3" '$1==m && $2==p && $3==q { $1=$2=$3=""; sub(/^ +/, ""); print }' "$S3V_LOG"; }
no_refusal() { ! grep -v " ok [0-9]*$" "$S3V_LOG"; }

cluster_yaml c1 1
cluster_yaml r1 1
eg apply --source "$SRC" --wait=90s >"$T/apply.out" 2>&1 || { cat "$T/apply.out" >&2; fail "apply did not converge"; }
for i in $(seq 20); do etcdctl_c c1 put "/k/$i" "value-$i" >/dev/null; done

say "one-shot, path-style"
eg backup c1 --to s3://bkt/one.db "${S3ARGS[@]}" -o json >"$T/one.json" 2>"$T/one.err" || { cat "$T/one.err" "$S3V_LOG" >&2; fail "path-style backup failed"; }
check_snapshot "$(object_file one.db)" "$(jget 'd["sha256"]' <"$T/one.json")" "$(jget 'd["size"]' <"$T/one.json")"
[ "$(verdict PUT /bkt/one.db -)" = "ok 200" ] || { cat "$S3V_LOG" >&2; fail "the verifier did not pass the signed PUT"; }
no_refusal || fail "the verifier refused a request of a good backup"

say "one-shot, virtual-hosted"
eg backup c1 --to s3://bkt/vh.db --aws-credentials-file "$T/creds" --s3-endpoint "http://s3.localhost:$S3_PORT" -o json \
  >"$T/vh.json" 2>"$T/vh.err" || { cat "$T/vh.err" "$S3V_LOG" >&2; fail "virtual-hosted backup failed"; }
check_snapshot "$(object_file vh.db)" "$(jget 'd["sha256"]' <"$T/vh.json")" "$(jget 'd["size"]' <"$T/vh.json")"
[ "$(verdict PUT /vh.db -)" = "ok 200" ] || { cat "$S3V_LOG" >&2; fail "the verifier did not pass the virtual-hosted PUT"; }
no_refusal || fail "the verifier refused a request of a virtual-hosted backup"

say "session token: x-amz-security-token is signed"
eg backup c1 --to s3://bkt/token.db --aws-credentials-file "$T/token" --s3-endpoint "$S3_ENDPOINT" --s3-force-path-style -o json \
  >"$T/token.json" 2>"$T/token.err" || { cat "$T/token.err" "$S3V_LOG" >&2; fail "backup with a session token failed"; }
check_snapshot "$(object_file token.db)" "$(jget 'd["sha256"]' <"$T/token.json")" "$(jget 'd["size"]' <"$T/token.json")"

say "right key id, wrong secret: SignatureDoesNotMatch, no object"
if eg backup c1 --to s3://bkt/bad.db --aws-credentials-file "$T/badsecret" --s3-endpoint "$S3_ENDPOINT" --s3-force-path-style \
  >"$T/bad.out" 2>"$T/bad.err"; then fail "backup with a wrong secret succeeded"; fi
grep -q "HTTP 403 SignatureDoesNotMatch" "$T/bad.err" || { cat "$T/bad.err" >&2; fail "no signature error reported"; }
[ "$(verdict PUT /bkt/bad.db -)" = "403 SignatureDoesNotMatch" ] || { cat "$S3V_LOG" >&2; fail "the verifier did not refuse the PUT"; }
[ ! -e "$(object_file bad.db)" ] || fail "a refused backup left an object"

say "a region the endpoint does not serve: AuthorizationHeaderMalformed, no object"
if eg backup c1 --to s3://bkt/region.db --aws-credentials-file "$T/badregion" --s3-endpoint "$S3_ENDPOINT" --s3-force-path-style \
  >"$T/region.out" 2>"$T/region.err"; then fail "backup signed for eu-west-1 succeeded against us-east-1"; fi
grep -q "HTTP 400 AuthorizationHeaderMalformed" "$T/region.err" || { cat "$T/region.err" >&2; fail "no region error reported"; }
[ ! -e "$(object_file region.db)" ] || fail "a refused backup left an object"

say "multipart upload, signed part by part"
head -c 700000 /dev/urandom >"$T/blob"
for i in $(seq 60); do etcdctl_c c1 put "/big/$i" <"$T/blob" >/dev/null; done
: >"$S3V_LOG"
eg backup c1 --to s3://bkt/big.db "${S3ARGS[@]}" -o json >"$T/big.json" 2>"$T/big.err" || { cat "$T/big.err" "$S3V_LOG" >&2; fail "multipart backup failed"; }
size=$(jget 'd["size"]' <"$T/big.json")
[ "$size" -gt $((16 << 20)) ] || fail "snapshot of $size bytes is too small to need multipart"
check_snapshot "$(object_file big.db)" "$(jget 'd["sha256"]' <"$T/big.json")" "$size"
[ "$(verdict POST /bkt/big.db uploads=)" = "ok 200" ] || { cat "$S3V_LOG" >&2; fail "create multipart upload not passed"; }
parts=$(grep -c "^PUT /bkt/big.db partNumber=[0-9]*&uploadId=[^ ]* ok 200$" "$S3V_LOG" || true)
[ "$parts" = $(( (size + 32 + (8 << 20) - 1) / (8 << 20) )) ] || { cat "$S3V_LOG" >&2; fail "$parts parts passed for $size bytes"; }
grep -q "^POST /bkt/big.db uploadId=[^ ]* ok 200$" "$S3V_LOG" || { cat "$S3V_LOG" >&2; fail "complete multipart upload not passed"; }
no_refusal || fail "the verifier refused a request of the multipart upload"

say "periodic backups to S3 under apply: retention by revision across v99 -> v100 -> v101"
mkdir -p "$STATE/secrets/default/aws-creds"
cp "$T/creds" "$STATE/secrets/default/aws-creds/credentials"
revision() { etcdctl_c r1 endpoint status -w json | jget 'd[0]["Status"]["header"]["revision"]'; }
rev=$(revision)
[ "$rev" -lt 99 ] || fail "r1 is at revision $rev already"
r1=$(endpoints r1)
for i in $(seq $((99 - rev))); do etcdctl --command-timeout=5s --endpoints="$r1" put "/r/$i" "v$i" >/dev/null; done
[ "$(revision)" = 99 ] || fail "r1 is at revision $(revision), want 99"
cat >"$SRC/backup.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: ret
spec:
  etcdCluster:
    name: r1
  storageType: S3
  s3:
    path: bkt/ret/etcd.backup
    endpoint: $S3_ENDPOINT
    forcePathStyle: true
    awsSecret: aws-creds
  backupPolicy:
    backupIntervalInSecond: 1
    maxBackups: 2
YAML
status() { eg get backups ret -o json | jget "d[0]$1"; }
# the revisions of the periodic objects s3rver holds under bkt/ret/, in order
revisions_in_bucket() {
  find "$T/s3/bkt/ret" -name 'etcd.backup_v*._S3rver_object' -printf '%f\n' 2>/dev/null |
    sed -n 's/^etcd\.backup_v\([0-9]*\)_.*/\1/p' | sort -n | tr '\n' ' '
}
last_attempt=0
interval_passed() { [ $(( $(date +%s%3N) - last_attempt )) -gt 1100 ]; }
for want in 99 100 101; do
  if [ "$want" != 99 ]; then
    etcdctl_c r1 put /r/next "$want" >/dev/null
    [ "$(revision)" = "$want" ] || fail "r1 is at revision $(revision), want $want"
    # the interval is 1 s: the next apply runs the backup once that second has passed
    wait_until 10 "the backup interval to pass" interval_passed
  fi
  eg apply --source "$SRC" --wait=60s >"$T/apply-$want.out" 2>&1 || { cat "$T/apply-$want.out" "$S3V_LOG" >&2; fail "apply with the S3 backup at v$want failed"; }
  [ "$(status '["succeeded"]')" = True ] || fail "backup at v$want not succeeded: $(status '["reason"]')"
  [ "$(status '["etcdRevision"]')" = "$want" ] || fail "backup status revision $(status '["etcdRevision"]'), want $want"
  case "$(status '["object"]')" in bkt/ret/etcd.backup_v${want}_*) ;; *) fail "backup object $(status '["object"]') is not at v$want" ;; esac
  # the scheduler's own record of the attempt, which get backups leaves out
  last_attempt=$(jget 'd["lastAttemptMs"]' <"$STATE/backups/default/ret.json")
  say "bucket holds revisions: $(revisions_in_bucket)"
done
[ "$(revisions_in_bucket)" = "100 101 " ] || fail "bucket holds revisions '$(revisions_in_bucket)', want '100 101 '"
obj=$(status '["object"]')
check_snapshot "$(object_file "${obj#bkt/}")" "$(status '["sha256"]')" "$(status '["size"]')"
grep -q "^GET /bkt list-type=2&prefix=ret%2Fetcd.backup ok 200$" "$S3V_LOG" || { cat "$S3V_LOG" >&2; fail "the retention listing did not pass the verifier"; }
grep -q "^POST /bkt delete= ok 200$" "$S3V_LOG" || { cat "$S3V_LOG" >&2; fail "the v99 delete (DeleteObjects) did not pass the verifier"; }
[ "$(audit_json --cluster default/r1 | jget 'sum(1 for r in d if r["decision"]=="backup-retention" and r["outcome"]=="ok" and "etcd.backup_v99_" in r["reason"])')" = 1 ] ||
  fail "no audit record of the v99 deletion"
no_refusal || fail "the verifier refused a request of the periodic backups"

say "retention over a listing of more than one page (1000 keys a page)"
# 1001 older backups at v100, whose names sort before the new one at v101: a retention that read
# only the first page would never see the new backup nor the 1001st old one
mkdir -p "$T/s3/bkt/many"
model=$(object_file "${obj#bkt/}")
TZ=UTC
for i in $(seq 0 1000); do
  printf -v old '%s/many/etcd.backup_v100_%(%Y-%m-%d-%H:%M:%S)T' "$T/s3/bkt" $((1767225600 + i))
  ln "$model" "$old._S3rver_object"
  ln "${model%._S3rver_object}._S3rver_metadata.json" "$old._S3rver_metadata.json"
done
sed -e 's/name: ret$/name: many/' -e 's#path: bkt/ret/#path: bkt/many/#' "$SRC/backup.yaml" >"$T/many.yaml"
mv "$T/many.yaml" "$SRC/backup.yaml"
: >"$S3V_LOG"
eg apply --source "$SRC" --wait=120s >"$T/apply-many.out" 2>&1 || { cat "$T/apply-many.out" >&2; fail "apply with 1001 old backups failed"; }
many=$(eg get backups many -o json | jget 'd[0]["object"]')
case "$many" in bkt/many/etcd.backup_v101_*) ;; *) fail "backup object $many is not at v101" ;; esac
left=$(find "$T/s3/bkt/many" -name '*._S3rver_object' -printf '%f\n' | sort)
[ "$left" = "etcd.backup_v100_2026-01-01-00:16:40._S3rver_object
${many#bkt/many/}._S3rver_object" ] ||
  { cat "$T/apply-many.out" >&2; fail "bucket holds $(wc -l <<<"$left") objects after retention (from $(head -n 1 <<<"$left")), want the newest v100 and the new v101"; }
grep -q "^GET /bkt continuation-token=[^ ]*&list-type=2&prefix=many%2Fetcd.backup ok 200$" "$S3V_LOG" ||
  { tail -n 5 "$S3V_LOG" >&2; fail "the second page of the listing was not asked for"; }
no_refusal || fail "the verifier refused a request of the paged retention"

if grep -l "WRONGSECRETxyz\|FwoGZXIvYXdzEXAMPLE" "$T"/*.out "$T"/*.err "$T"/*.json 2>/dev/null; then fail "credentials printed"; fi
echo "ok"
