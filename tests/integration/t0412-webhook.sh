#!/usr/bin/env bash
# POST /hook on a daemon following a git remote: GitHub signatures (good, bad, missing,
# ping), GitLab tokens, the generic X-Signature, the size limit; a webhook that names a
# commit not pushed yet is waited for; rejections are audit records; notes name decisions.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

. "$EG_SOURCE_DIR/tests/lib/git.sh"
SRC="$W"
commit() { git -C "$W" add -A && git -C "$W" commit -q -m "$1" && git -C "$W" rev-parse HEAD; }
push() { git -C "$W" push -q origin HEAD:main 2>/dev/null; }

SECRET='webhook s3cret'
printf '%s\n' "$SECRET" >"$T/secret"
http_port() { sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1; }
has_port() { [ -n "$(http_port)" ]; }
hmac() { printf '%s' "$2" | openssl dgst -sha256 -hmac "$1" | sed 's/^.*= //'; }
# hook BODY HEADER...: POST /hook, prints the status code; the body lands in $T/reply
hook() {
  local body=$1; shift
  local args=()
  for h in "$@"; do args+=(-H "$h"); done
  curl -sS --max-time 5 -o "$T/reply" -w '%{http_code}' "${args[@]}" --data-binary "$body" "http://127.0.0.1:$PORT/hook"
}
ready() { [ "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" = 200 ]; }
rejections() { audit_json | jget 'sum(1 for r in d if r["decision"]=="webhook-rejected" and r["outcome"]=="blocked")'; }

cluster_yaml demo 1
c1=$(commit "demo: 1 member")
push
say "a daemon polling only once a minute, so reads come from webhooks"
start_daemon_git() {
  "$EG_BIN" run --source "$URL" --listen 127.0.0.1:0 --webhook-secret-file "$T/secret" --interval 60s \
    >"$T/daemon.log" 2>&1 &
  DAEMON_PID=$!
}
start_daemon_git
wait_until 10 "the HTTP server" has_port
PORT=$(http_port)
wait_until 60 "ready" ready
wait_until 60 "demo healthy" healthy demo 1

push_body="{\"ref\":\"refs/heads/main\",\"after\":\"$c1\"}"
say "GitHub: a wrong signature and a missing one are 401 and audit records"
[ "$(hook "$push_body" "X-GitHub-Event: push" "X-Hub-Signature-256: sha256=$(hmac wrong "$push_body")")" = 401 ] ||
  fail "wrong signature not 401"
[ "$(rejections)" = 1 ] || fail "no webhook-rejected record"
reason=$(audit_json | jget '[r for r in d if r["decision"]=="webhook-rejected"][-1]["reason"]')
case "$reason" in
  *"127.0.0.1:"*"X-Hub-Signature-256 does not match"*) ;;
  *) fail "rejection reason does not name the address and the check: $reason" ;;
esac
case "$reason" in *s3cret*) fail "the secret leaked into the audit log" ;; esac
[ "$(hook "$push_body" "X-GitHub-Event: push")" = 401 ] || fail "missing signature not 401"
[ "$(hook "$push_body")" = 401 ] || fail "no headers at all not 401"
[ "$(rejections)" = 3 ] || fail "want 3 rejection records, got $(rejections)"

say "GitHub ping: 200 pong"
ping='{"zen":"Design for failure.","hook_id":1}'
[ "$(hook "$ping" "X-GitHub-Event: ping" "X-Hub-Signature-256: sha256=$(hmac "$SECRET" "$ping")")" = 200 ] || fail "ping not 200"
[ "$(cat "$T/reply")" = pong ] || fail "ping reply: $(cat "$T/reply")"

say "GitLab: wrong token 401, right token 202"
[ "$(hook '{"object_kind":"push"}' "X-Gitlab-Token: nope")" = 401 ] || fail "wrong GitLab token not 401"
[ "$(hook '{"object_kind":"push"}' "X-Gitlab-Token: $SECRET")" = 202 ] || fail "GitLab token not 202"

say "payloads over 1 MiB: 413"
head -c 1100000 /dev/zero | tr '\0' x >"$T/big"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "X-Signature: sha256=00" --data-binary @"$T/big" \
  "http://127.0.0.1:$PORT/hook")
[ "$code" = 413 ] || fail "oversize payload: $code"

say "a webhook that races its push: the named commit is read as soon as it is pushed"
cluster_yaml demo 1 3.4.23 "  paused: true"
c2=$(commit "demo: pause")
body="{\"ref\":\"refs/heads/main\",\"before\":\"$c1\",\"after\":\"$c2\"}"
[ "$(hook "$body" "X-GitHub-Event: push" "X-Hub-Signature-256: sha256=$(hmac "$SECRET" "$body")")" = 202 ] ||
  fail "signed push not 202"
sleep 1
pushed=$(date +%s%N)
push
has_c2() { [ "$(audit_json --revision "${c2:0:12}" | jget 'len(d)')" -gt 0 ]; }
wait_until 5 "records under the pushed commit" has_c2
took=$(( ($(date +%s%N) - pushed) / 1000000 ))
say "commit read ${took} ms after the push"
grep -q "webhook: commit $c2 read after" "$T/daemon.log" || fail "the wait for $c2 is not logged"

say "generic X-Signature"
gen="{\"commit\":\"$c2\"}"
[ "$(hook "$gen" "X-Signature: sha256=$(hmac "$SECRET" "$gen")")" = 202 ] || fail "generic signature not 202"
[ "$(hook "$gen" "X-Signature: sha256=$(hmac other "$gen")")" = 401 ] || fail "wrong generic signature not 401"

say "/status names the git revision; /metrics counts the webhooks"
curl -sS "http://127.0.0.1:$PORT/status" | python3 -c "
import json,sys
d=json.load(sys.stdin)
s=d['source']
assert s['kind']=='git' and s['commit']=='$c2' and s['subject']=='demo: pause' and s['revision']=='main@sha1:$c2', s
assert s['author'].startswith('Ada Lovelace'), s
assert d['forcePush'] is None
" || fail "/status source: $(curl -sS "http://127.0.0.1:$PORT/status" | head -c 600)"
curl -sS "http://127.0.0.1:$PORT/metrics" >"$T/metrics"
grep -qx 'etcd_gitops_webhooks_total{result="rejected"} 5' "$T/metrics" || fail "rejected counter: $(grep webhooks "$T/metrics")"
grep -qx 'etcd_gitops_webhooks_total{result="ping"} 1' "$T/metrics" || fail "ping counter"
grep -qx 'etcd_gitops_webhooks_total{result="too-large"} 1' "$T/metrics" || fail "too-large counter"
grep -qx 'etcd_gitops_decisions_total{decision="webhook-rejected",outcome="blocked"} 5' "$T/metrics" || fail "decision counter"
grep -qx "etcd_gitops_source_revision_info{revision=\"main@sha1:$c2\",commit=\"$c2\"} 1" "$T/metrics" || fail "revision info"

say "git notes: what each revision did"
stop_daemon
cache=$(ls -d "$STATE"/git/*/ | head -n1)
git --git-dir="$cache" notes --ref=etcd-gitops show "$c1" >"$T/note1" 2>&1 || fail "no note on $c1: $(cat "$T/note1")"
grep -q '^default/demo: create ok (create cluster with 1 member)$' "$T/note1" || fail "note on $c1: $(cat "$T/note1")"
git --git-dir="$cache" notes --ref=etcd-gitops show "$c2" >"$T/note2" 2>&1 || fail "no note on $c2: $(cat "$T/note2")"
grep -q '^default/demo: paused skipped' "$T/note2" || fail "note on $c2: $(cat "$T/note2")"
eg audit verify >/dev/null || fail "audit chain broken"
say "ok"
