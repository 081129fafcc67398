#!/usr/bin/env bash
# run speaks sd_notify: READY=1 and STATUS= once the first revision is processed,
# WATCHDOG=1 while WATCHDOG_USEC is set, RELOADING=1 then READY=1 on SIGHUP (which re-reads
# the webhook secret and the source), STOPPING=1 and exit 0 on SIGTERM with members left running.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

NOTIFY="$T/notify.log"
: >"$NOTIFY"
python3 "$EG_SOURCE_DIR/tests/lib/notify_listener.py" "$T/notify.sock" "$NOTIFY" $$ &
wait_until 10 "the notify socket" test -S "$T/notify.sock"

http_port() { sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1; }
has_port() { [ -n "$(http_port)" ]; }
count() { grep -cx "$1" "$NOTIFY" || true; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }
# post_signed SECRET: a generic webhook signed with SECRET; prints the HTTP status
post_signed() {
  local body='{"ref":"main"}' sig
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$1" | sed 's/^.*= //')
  curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -H "X-Signature: sha256=$sig" --data-binary "$body" \
    "http://127.0.0.1:$(http_port)/hook"
}

printf 'one\n' >"$T/secret"
cluster_yaml demo 1
say "start under a notify socket with a 2 s watchdog; --debounce and --interval are long so only SIGHUP can make the daemon read soon"
# sd_watchdog_enabled() checks WATCHDOG_PID against getpid(): exec keeps the shell's pid
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=2000000 \
  sh -c 'export WATCHDOG_PID=$$; exec "$@"' sh "$EG_BIN" run --source "$SRC" --listen 127.0.0.1:0 \
  --webhook-secret-file "$T/secret" --debounce 60s --interval 60s >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!

wait_until 60 "READY=1" at_least READY=1 1
grep -q '^STATUS=revision sha256:[0-9a-f]*: 1 cluster, ' "$NOTIFY" || fail "no STATUS= with the revision: $(cat "$NOTIFY")"
wait_until 60 "demo healthy" healthy demo 1
pids=$(member_pids demo)

say "WATCHDOG=1 keeps arriving"
wait_until 10 "3 watchdog pings" at_least WATCHDOG=1 3
n=$(count WATCHDOG=1)
wait_until 5 "more watchdog pings" at_least WATCHDOG=1 $((n + 2))

say "SIGHUP: RELOADING=1, READY=1, the new secret and a changed manifest are read"
wait_until 10 "the HTTP server" has_port
[ "$(post_signed one)" = 202 ] || fail "webhook with the first secret refused"
[ "$(post_signed two)" = 401 ] || fail "webhook with a secret not yet read accepted"
printf 'two\n' >"$T/secret"
cluster_yaml demo 1 3.4.23 "  paused: true"
sleep 0.2 # the edit must be older than the signal for the test to mean anything
revs_before=$(audit_json --cluster default/demo | jget 'len(set(r["revision"] for r in d))')
kill -HUP "$DAEMON_PID"
wait_until 10 "RELOADING=1" at_least RELOADING=1 1
wait_until 10 "READY=1 after the reload" at_least READY=1 2
awk '/^RELOADING=1$/{r=NR} /^READY=1$/{last=NR} END{exit !(r && last > r)}' "$NOTIFY" || fail "READY=1 does not follow RELOADING=1"
grep -q '^MONOTONIC_USEC=[0-9][0-9]*$' "$NOTIFY" || fail "RELOADING=1 without MONOTONIC_USEC"
wait_until 10 "the paused revision in the audit log" \
  sh -c "[ \$(\"$EG_BIN\" audit -o json --cluster default/demo | python3 -c 'import json,sys; print(len(set(r[\"revision\"] for r in json.load(sys.stdin))))') -gt $revs_before ]"
[ "$(post_signed two)" = 202 ] || fail "webhook with the reloaded secret refused"
[ "$(post_signed one)" = 401 ] || fail "webhook with the old secret still accepted"

say "a secret file that became unreadable keeps the old secret"
rm "$T/secret"
kill -HUP "$DAEMON_PID"
wait_until 10 "READY=1 after the second reload" at_least READY=1 3
[ "$(post_signed two)" = 202 ] || fail "secret lost after a failed reload"
grep -q "cannot read the webhook secret" "$T/daemon.log" || fail "failed reload not logged"

say "SIGTERM: STOPPING=1, exit 0, members keep running"
stop_daemon
at_least STOPPING=1 1 || fail "no STOPPING=1: $(tail -n 5 "$NOTIFY")"
for p in $pids; do ! pid_gone "$p" || fail "member pid $p stopped with the daemon"; done
say "ok"
