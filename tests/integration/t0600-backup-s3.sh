#!/usr/bin/env bash
# backup to S3 (s3rver): one-shot path-style and virtual-hosted, restorable by etcdctl with the
# right sha256; a multipart upload killed midway leaves no object and the next attempt works;
# to a File by cluster name; credentials never printed.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/s3rver.sh"

s3rver_available || fail "s3rver is not installed: run .ci/install-deps"
on_exit s3rver_stop

s3rver_start "$T/s3" bkt || fail "s3rver did not start"
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$T/creds"
# s3rver checks the access key but not SigV4 signatures: an unknown key is what it refuses
printf '[default]\naws_access_key_id = AKIDUNKNOWN\naws_secret_access_key = WRONGSECRETxyz\n' >"$T/badcreds"
S3ARGS=(--aws-credentials-file "$T/creds" --s3-endpoint "$S3_ENDPOINT" --s3-force-path-style)

cluster_yaml c1 1
eg apply --source "$SRC" --wait=90s >"$T/apply.out" 2>&1 || { cat "$T/apply.out" >&2; fail "apply did not converge"; }
for i in $(seq 20); do etcdctl_c c1 put "/k/$i" "value-$i" >/dev/null; done

object_file() { echo "$T/s3/bkt/$1._S3rver_object"; }

say "one-shot, path-style"
eg backup c1 --to s3://bkt/one.db "${S3ARGS[@]}" -o json >"$T/one.json" 2>"$T/one.err" || { cat "$T/one.err" >&2; fail "backup failed"; }
sha=$(jget 'd["sha256"]' <"$T/one.json"); size=$(jget 'd["size"]' <"$T/one.json")
[ "$(jget 'd["object"]' <"$T/one.json")" = "bkt/one.db" ] || fail "object name is not bkt/one.db"
[ "$(jget 'd["revision"]' <"$T/one.json")" -ge 21 ] || fail "revision below the keys written"
check_snapshot "$(object_file one.db)" "$sha" "$size"

say "one-shot, virtual-hosted"
eg backup c1 --to s3://bkt/vh.db --aws-credentials-file "$T/creds" --s3-endpoint "http://s3.localhost:$S3_PORT" -o json \
  >"$T/vh.json" 2>"$T/vh.err" || { cat "$T/vh.err" >&2; fail "virtual-hosted backup failed"; }
check_snapshot "$(object_file vh.db)" "$(jget 'd["sha256"]' <"$T/vh.json")" "$(jget 'd["size"]' <"$T/vh.json")"

say "unknown credentials: refused, and the secret is not printed"
if eg backup c1 --to s3://bkt/bad.db --aws-credentials-file "$T/badcreds" --s3-endpoint "$S3_ENDPOINT" --s3-force-path-style \
  >"$T/bad.out" 2>"$T/bad.err"; then fail "backup with unknown credentials succeeded"; fi
grep -q "HTTP 403 InvalidAccessKeyId" "$T/bad.err" || { cat "$T/bad.err" >&2; fail "no credentials error reported"; }
[ ! -e "$(object_file bad.db)" ] || fail "a failed backup left an object"

say "to a file, by cluster name"
eg backup default/c1 --to "$T/files/c1.db" -o json >"$T/file.json" 2>"$T/file.err" || { cat "$T/file.err" >&2; fail "file backup failed"; }
check_snapshot "$T/files/c1.db" "$(jget 'd["sha256"]' <"$T/file.json")" "$(jget 'd["size"]' <"$T/file.json")"
[ -z "$(ls -A "$T/files" | grep -v '^c1.db$')" ] || fail "partial files left: $(ls -A "$T/files")"

say "multipart upload killed midway"
head -c 700000 /dev/urandom >"$T/blob"
for i in $(seq 60); do etcdctl_c c1 put "/big/$i" <"$T/blob" >/dev/null; done
eg backup c1 --to s3://bkt/big.db "${S3ARGS[@]}" >"$T/big1.out" 2>"$T/big1.err" &
bpid=$!
deadline=$(( $(date +%s) + 60 ))
until grep -q "partNumber=1" "$T/s3.log" 2>/dev/null; do
  kill -0 "$bpid" 2>/dev/null || break
  [ "$(date +%s)" -lt "$deadline" ] || fail "no part upload seen"
  sleep 0.05
done
kill -KILL "$S3_PID"
S3_PID=
if wait "$bpid"; then fail "backup succeeded although the S3 server died during the upload"; fi
grep -q "backup failed" "$T/big1.err" || { cat "$T/big1.err" >&2; fail "no failure reported"; }
[ ! -e "$(object_file big.db)" ] || fail "a failed multipart upload left an object"
port=$S3_PORT
s3rver_start "$T/s3" bkt || fail "s3rver did not restart"
eg backup c1 --to s3://bkt/big.db --aws-credentials-file "$T/creds" --s3-endpoint "$S3_ENDPOINT" --s3-force-path-style -o json \
  >"$T/big2.json" 2>"$T/big2.err" || { cat "$T/big2.err" >&2; fail "backup after the failure did not succeed"; }
size=$(jget 'd["size"]' <"$T/big2.json")
[ "$size" -gt $((16 << 20)) ] || fail "snapshot of $size bytes is too small to need multipart"
check_snapshot "$(object_file big.db)" "$(jget 'd["sha256"]' <"$T/big2.json")" "$size"
say "s3rver ran on $port, then $S3_PORT"

if grep -l "S3RVER\|WRONGSECRETxyz" "$T"/*.out "$T"/*.err "$T"/*.json 2>/dev/null; then fail "credentials printed"; fi
echo "ok"
