#!/usr/bin/env bash
# backup to S3 through the verifier, with the faults it injects (tests/lib/s3sigv4.py, rules in
# S3V_FAULTS): a 503 SlowDown and a reset on every request are tried again and the backup
# succeeds; a part that always answers 503 fails the backup after 5 tries with S3's error; a part
# held or trickled fails a backup with a deadline (backup --timeout, timeoutInSecond) in about
# that time, saying so, with the upload aborted; a part held once is cut at the stall limit the
# deadline gives and tried again; retention deletes with DeleteObjects, 1000 keys a request.
# Every request signs only headers it sends, names etcd-gitops as its User-Agent and carries a
# Content-Type only with a body. Each scenario runs on its own, so that one failing shows the
# others too.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/s3rver.sh"

s3rver_available || fail "s3rver is not installed: run .ci/install-deps"
on_exit s3rver_stop

S3_VERIFY=1 S3_VERIFY_KEYS="S3RVER:S3RVER" s3rver_start "$T/s3" bkt || fail "s3rver with the verifier did not start"
[ -n "$S3V_PID" ] || fail "the verifier is not in front of s3rver"
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$T/creds"
S3ARGS=(--aws-credentials-file "$T/creds" --s3-endpoint "$S3_ENDPOINT" --s3-force-path-style)
mkdir -p "$STATE/secrets/default/aws-creds"
cp "$T/creds" "$STATE/secrets/default/aws-creds/credentials"

object_file() { echo "$T/s3/bkt/$1._S3rver_object"; }
# lines METHOD PATH [QUERY-REGEX]: the verifier's log lines for those requests
lines() { awk -v m="$1" -v p="$2" -v q="${3:-.}" '$1==m && $2==p && $3 ~ q' "$S3V_LOG"; }
# verdicts: the verdicts of the log lines read, joined by |
verdicts() { awk '{ $1=$2=$3=""; sub(/^ +/, ""); print }' | paste -sd'|'; }
# ms since START_MS
since() { echo $(( $(date +%s%3N) - $1 )); }
# run_backup NAME TIMEOUT [eg backup options]: a backup of c1 to bkt/NAME, bounded by `timeout`
# (a hang is a failure, not a stuck test); leaves its status in RC, its time in MS
run_backup() {
  local name=$1 limit=$2 start
  shift 2
  start=$(date +%s%3N)
  RC=0
  timeout "$limit" "$EG_BIN" backup c1 --to "s3://bkt/$name" "${S3ARGS[@]}" -o json "$@" >"$T/$name.json" 2>"$T/$name.err" || RC=$?
  MS=$(since "$start")
  say "backup to bkt/$name: exit $RC after $MS ms"
}
# upload_aborted NAME: no object, and an AbortMultipartUpload of the upload, signed as it should
# be (s3rver answers it 405: it does not implement it, and keeps the parts)
upload_aborted() {
  local id
  [ ! -e "$(object_file "$1")" ] || fail "a failed backup left the object $1"
  id=$(sed -n "s#^PUT /bkt/$1 partNumber=1&uploadId=\([^ ]*\) ok 200\$#\1#p" "$S3V_LOG")
  [ -n "$id" ] || { cat "$S3V_LOG" >&2; fail "no part of $1 was uploaded"; }
  lines DELETE "/bkt/$1" "^uploadId=$id\$" | grep -q " ok [0-9]*$" || { cat "$S3V_LOG" >&2; fail "the multipart upload of $1 was not aborted"; }
}

cluster_yaml c1 1
eg apply --source "$SRC" --wait=90s >"$T/apply.out" 2>&1 || { cat "$T/apply.out" >&2; fail "apply did not converge"; }
C1=$(endpoints c1)

say "a small snapshot goes up in one signed PUT"
run_backup small.db 60
[ "$RC" = 0 ] || { cat "$T/small.db.err" "$S3V_LOG" >&2; fail "the small backup failed"; }
lines PUT /bkt/small.db '^-$' | grep -q " ok 200$" || { cat "$S3V_LOG" >&2; fail "no PutObject of small.db passed the verifier"; }

# three parts: 8 MiB, 8 MiB and the rest
head -c 700000 /dev/urandom >"$T/blob"
for i in $(seq 30); do etcdctl --command-timeout=10s --endpoints="$C1" put "/big/$i" <"$T/blob" >/dev/null; done

FAILED=()
# scenario DESCRIPTION FUNCTION: runs FUNCTION in a subshell (T0603_ONLY=FUNCTION,... runs only those)
scenario() {
  local name=$1
  shift
  [ -z "${T0603_ONLY:-}" ] || [[ ",$T0603_ONLY," == *",$1,"* ]] || return 0
  say "--- $name"
  s3_faults '[]'
  set +e
  ( set -e; "$@" )
  local rc=$?
  set -e
  s3_faults '[]'
  [ "$rc" = 0 ] || { say "$name: failed (status $rc)"; FAILED+=("$name"); }
}

retried() {
  # every request of the upload: first a 503 SlowDown, then a reset, then passed on
  s3_faults '[{"action": "error", "path": "^/bkt/retry.db$", "each": true, "times": 1},
              {"action": "reset", "path": "^/bkt/retry.db$", "each": true, "times": 1}]'
  run_backup retry.db 120 --timeout 100s
  [ "$RC" = 0 ] || { cat "$T/retry.db.err" "$S3V_LOG" >&2; fail "a backup whose every request met one SlowDown and one reset failed"; }
  check_snapshot "$(object_file retry.db)" "$(jget 'd["sha256"]' <"$T/retry.db.json")" "$(jget 'd["size"]' <"$T/retry.db.json")"
  local size parts request got i requests=("POST ^uploads=$")
  size=$(jget 'd["size"]' <"$T/retry.db.json")
  parts=$(( (size + 32 + (8 << 20) - 1) / (8 << 20) ))
  [ "$parts" -ge 3 ] || fail "a snapshot of $size bytes is not the three parts wanted"
  for i in $(seq "$parts"); do requests+=("PUT ^partNumber=$i&"); done
  requests+=("POST ^uploadId=")
  for request in "${requests[@]}"; do
    got=$(lines "${request% *}" /bkt/retry.db "${request#* }" | verdicts)
    [ "$got" = "fault 503 SlowDown|fault reset|ok 200" ] ||
      { cat "$S3V_LOG" >&2; fail "$request met '$got', want a SlowDown, a reset, then a pass"; }
  done
}

bounded() {
  s3_faults '[{"action": "error", "method": "PUT", "path": "^/bkt/bounded.db$", "query": "^partNumber=2&"}]'
  run_backup bounded.db 120 --timeout 100s
  [ "$RC" != 0 ] || fail "a backup succeeded although part 2 always met 503 SlowDown"
  [ "$RC" != 124 ] || fail "a backup whose part 2 always met 503 SlowDown hung"
  grep -q "UploadPart bkt/bounded.db (part 2): HTTP 503 SlowDown: Please reduce your request rate. (tried 5 times)" "$T/bounded.db.err" ||
    { cat "$T/bounded.db.err" >&2; fail "the error does not give S3's last answer and the tries"; }
  [ "$(lines PUT /bkt/bounded.db '^partNumber=2&' | grep -c " fault 503 SlowDown$")" = 5 ] ||
    { cat "$S3V_LOG" >&2; fail "part 2 was not tried exactly 5 times"; }
  upload_aborted bounded.db
}

# deadline NAME FAULT: part 2 meets FAULT; a backup with --timeout 8s fails in about 8 s
deadline() {
  local name=$1
  s3_faults "[{\"method\": \"PUT\", \"path\": \"^/bkt/$name\$\", \"query\": \"^partNumber=2&\", $2}]"
  run_backup "$name" 120 --timeout 8s
  [ "$RC" != 0 ] || fail "a backup succeeded although part 2 met $2"
  [ "$RC" != 124 ] || fail "a backup with an 8 s timeout whose part 2 met $2 was still running after 120 s"
  grep -q "the backup did not finish within its timeout of 8 s (raise it if the snapshot needs longer" "$T/$name.err" ||
    { cat "$T/$name.err" >&2; fail "the error does not say the timeout ran out"; }
  # cut by the deadline, or by the stall limit when no time was left for another try
  grep -q "UploadPart bkt/$name (part 2): Operation \(timed out\|too slow\)" "$T/$name.err" ||
    { cat "$T/$name.err" >&2; fail "the error does not say what was cut off"; }
  # the abort afterwards has its own few seconds; under ASan and load, more than a tick
  if [ "$MS" -lt 7500 ] || [ "$MS" -gt 20000 ]; then fail "the backup with an 8 s timeout ended after $MS ms"; fi
  upload_aborted "$name"
}
held() { deadline held.db '"action": "hold"'; }
trickled() {
  deadline trickle.db '"action": "trickle", "seconds": 1'
  lines PUT /bkt/trickle.db '^partNumber=2&' | grep -q " ok 200 trickled [0-9]* of [0-9]* bytes: client gone" ||
    { cat "$S3V_LOG" >&2; fail "part 2's answer was not trickled to a client that gave up"; }
}

manifest_timeout() {
  # timeoutInSecond: the same deadline for a backup the source asks for
  cat >"$SRC/backup.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: held
spec:
  etcdCluster:
    name: c1
  storageType: S3
  s3:
    path: bkt/manifest.db
    endpoint: $S3_ENDPOINT
    forcePathStyle: true
    awsSecret: aws-creds
  backupPolicy:
    timeoutInSecond: 8
YAML
  s3_faults '[{"action": "hold", "method": "PUT", "path": "^/bkt/manifest.db$", "query": "^partNumber=2&"}]'
  local start rc=0
  start=$(date +%s%3N)
  timeout 120 "$EG_BIN" apply --source "$SRC" >"$T/apply-held.out" 2>&1 || rc=$?
  MS=$(since "$start")
  rm -f "$SRC/backup.yaml"
  [ "$rc" != 124 ] || fail "apply with a backup of timeoutInSecond 8 whose part 2 is held was still running after 120 s"
  [ "$rc" != 0 ] || { cat "$T/apply-held.out" >&2; fail "apply succeeded although its backup cannot have"; }
  [ "$(eg get backups held -o json | jget 'd[0]["succeeded"]')" = False ] || fail "the held backup is not failed"
  eg get backups held -o json | jget 'd[0]["reason"]' | grep -q "did not finish within its timeout of 8 s" ||
    fail "the backup's status does not say its timeout ran out: $(eg get backups held -o json | jget 'd[0]["reason"]')"
  [ "$MS" -le 30000 ] || fail "apply with a backup of timeoutInSecond 8 took $MS ms"
  upload_aborted manifest.db
}

stalled() {
  # --timeout 40s gives each request a stall limit of about 10 s (a quarter of the time left):
  # part 1, held once, is cut and tried again
  s3_faults '[{"action": "hold", "method": "PUT", "path": "^/bkt/stall.db$", "query": "^partNumber=1&", "times": 1}]'
  run_backup stall.db 120 --timeout 40s
  [ "$RC" = 0 ] || { cat "$T/stall.db.err" "$S3V_LOG" >&2; fail "a backup whose part 1 stalled once did not succeed"; }
  check_snapshot "$(object_file stall.db)" "$(jget 'd["sha256"]' <"$T/stall.db.json")" "$(jget 'd["size"]' <"$T/stall.db.json")"
  local got
  got=$(lines PUT /bkt/stall.db '^partNumber=1&' | verdicts)
  [[ "$got" =~ ^"fault hold: client gone after "(9|1[0-9])\.[0-9]s\|"ok 200"$ ]] ||
    { cat "$S3V_LOG" >&2; fail "part 1 met '$got', want a hold cut after 10 to 20 s, then a pass"; }
}

retention() {
  # 1500 old backups at v1: keeping 2 deletes 1499, in two DeleteObjects requests
  local model i old rev left
  export TZ=UTC
  model=$(object_file small.db)
  mkdir -p "$T/s3/bkt/many"
  for i in $(seq 0 1499); do
    printf -v old '%s/many/etcd.backup_v1_%(%Y-%m-%d-%H:%M:%S)T' "$T/s3/bkt" $((1767225600 + i))
    ln "$model" "$old._S3rver_object"
    ln "${model%._S3rver_object}._S3rver_metadata.json" "$old._S3rver_metadata.json"
  done
  cat >"$SRC/backup.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: many
spec:
  etcdCluster:
    name: c1
  storageType: S3
  s3:
    path: bkt/many/etcd.backup
    endpoint: $S3_ENDPOINT
    forcePathStyle: true
    awsSecret: aws-creds
  backupPolicy:
    backupIntervalInSecond: 3600
    maxBackups: 2
YAML
  timeout 300 "$EG_BIN" apply --source "$SRC" >"$T/apply-many.out" 2>&1 || { cat "$T/apply-many.out" >&2; fail "apply with 1500 old backups failed"; }
  rm -f "$SRC/backup.yaml"
  rev=$(eg get backups many -o json | jget 'd[0]["etcdRevision"]')
  left=$(find "$T/s3/bkt/many" -name '*._S3rver_object' -printf '%f\n' | sort)
  [ "$left" = "etcd.backup_v1_2026-01-01-00:24:59._S3rver_object
$(eg get backups many -o json | jget 'd[0]["object"]' | sed 's#^bkt/many/##')._S3rver_object" ] ||
    fail "bucket holds $(wc -l <<<"$left") objects after retention, want the newest v1 and the new v$rev"
  [ "$(lines POST /bkt '^delete=$' | grep -c " ok 200$")" = 2 ] || { tail -n 3 "$S3V_LOG" >&2; fail "1499 deletions did not take two DeleteObjects requests"; }
  ! grep -q "^DELETE /bkt/many/" "$S3V_LOG" || fail "retention deleted objects one request each"
  [ "$(audit_json --cluster default/c1 | jget 'sum(1 for r in d if r["decision"]=="backup-retention" and r["outcome"]=="ok")')" = 1499 ] ||
    fail "not one audit record per deleted backup"
}

headers() {
  # every request of this test: signs only what it sends, says who it is, types only a body
  python3 - "$S3V_JSONL" <<'EOF'
import json, re, sys
docs = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
bad = []
for d in docs:
    h, what = d["headers"], f'{d["method"]} {d["path"]} {d["query"]}'
    if d["verdict"].startswith(("400", "403")):
        bad.append(f"{what}: refused: {d['verdict']}")
    absent = [s for s in d["signed"] if s not in h]
    if absent:
        bad.append(f"{what}: signs {absent} but does not send them")
    if not re.fullmatch(r"etcd-gitops/\d+\.\d+\.\d+\S*", (h.get("user-agent") or [""])[0]):
        bad.append(f"{what}: User-Agent {h.get('user-agent')}")
    if d["method"] in ("GET", "DELETE") and "content-type" in h:
        bad.append(f"{what}: Content-Type {h['content-type']} without a body")
    if d["method"] in ("PUT", "POST") and "content-type" not in h:
        bad.append(f"{what}: a body without a Content-Type")
methods = {d["method"] for d in docs}
if methods != {"GET", "PUT", "POST", "DELETE"}:
    bad.append(f"only {sorted(methods)} were seen")
print("\n".join(bad[:20]), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

scenario "one SlowDown and one reset per request are tried again" retried
scenario "a part that always answers 503 fails the backup after 5 tries" bounded
scenario "a held part fails a backup with --timeout 8s in about 8 s" held
scenario "a trickled part fails a backup with --timeout 8s in about 8 s" trickled
scenario "timeoutInSecond bounds a backup the source asks for" manifest_timeout
scenario "a part held once is cut at the stall limit and tried again" stalled
scenario "retention deletes 1000 keys a request" retention
scenario "every request signs what it sends, has a User-Agent, a Content-Type only with a body" headers

[ "${#FAILED[@]}" = 0 ] || fail "$(printf '%s; ' "${FAILED[@]}")"
echo "ok"
