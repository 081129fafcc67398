#!/usr/bin/env bash
# Member logs are rotated: past ETCD_GITOPS_MEMBER_LOG_MAX_SIZE a member's etcd.log is
# copied to etcd.log.1 (older copies up to ETCD_GITOPS_MEMBER_LOG_KEEP) and emptied when the
# member starts or is looked at while it runs, etcd goes on logging into etcd.log, and `logs` prints .1 then etcd.log with
# nothing lost or repeated, following across a rotation with -f.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

export ETCD_GITOPS_MEMBER_LOG_MAX_SIZE=64K ETCD_GITOPS_MEMBER_LOG_KEEP=2
LOG="$STATE/clusters/default/lg/members/lg-0/etcd.log"

# grow N MARK: appends N numbered lines as etcd's own would be, past the size limit
grow() {
  local i
  for i in $(seq "$1"); do printf '{"level":"info","msg":"%s line %d %0400d"}\n' "$2" "$i" 0; done >>"$LOG"
}

# restart: the member dies and apply starts it again in place, which rotates its log
restart() {
  local pid
  pid=$(member_pids lg)
  kill -9 "$pid"
  wait_until 10 "member lg-0 (pid $pid) gone" pid_gone "$pid"
  eg apply --source "$SRC" --wait=60s >"$T/apply.out" 2>&1 || fail "apply after kill: $(cat "$T/apply.out")"
  wait_until 30 "etcd serving in the new etcd.log" grep -q "ready to serve client requests" "$LOG"
}

cluster_yaml lg 1
eg apply --source "$SRC" --wait=60s >"$T/apply.out" 2>&1 || fail "apply: $(cat "$T/apply.out")"
[ ! -e "$LOG.1" ] || fail "a fresh member's log was rotated"

say "logs -f follows the log across the rotations below"
"$EG_BIN" logs lg -f >"$T/follow" 2>"$T/follow.err" &
follow=$!
on_exit "kill $follow 2>/dev/null"

say "a log past the limit is rotated when its member starts again; etcd logs into the emptied file"
grow 200 first
restart
[ -f "$LOG.1" ] || fail "no etcd.log.1 after a restart past the limit"
grep -q "first line 200 " "$LOG.1" || fail "etcd.log.1 does not end with what etcd.log held"
grep -q "first line" "$LOG" && fail "etcd.log still holds the lines rotated out"
[ "$(stat -c %s "$LOG")" -lt 65536 ] || fail "etcd.log is $(stat -c %s "$LOG") bytes after rotation"
etcdctl_c lg snapshot save "$T/snap.db" >/dev/null 2>&1 || fail "etcdctl snapshot save"
wait_until 10 "the snapshot logged in etcd.log" grep -q "snapshot" "$LOG"

say "older copies move up to KEEP, the oldest is dropped"
grow 200 second
restart
grow 200 third
restart
grep -q "third line 200 " "$LOG.1" || fail "etcd.log.1 is not the newest copy"
grep -q "second line 200 " "$LOG.2" || fail "etcd.log.2 is not the copy before"
[ ! -e "$LOG.3" ] || fail "etcd.log.3 kept past ETCD_GITOPS_MEMBER_LOG_KEEP=2"

say "logs prints etcd.log.1, then etcd.log: the newest copy and what etcd wrote since"
eg logs lg >"$T/logs" 2>"$T/logs.err" || fail "logs: $(cat "$T/logs.err")"
[ "$(grep -c "third line" "$T/logs")" = 200 ] || fail "logs printed $(grep -c "third line" "$T/logs") of the 200 rotated lines"
grep -q "second line" "$T/logs" && fail "logs printed etcd.log.2"
last_third=$(grep -n "third line 200 " "$T/logs" | cut -d: -f1)
serving=$(grep -n "ready to serve client requests" "$T/logs" | tail -n 1 | cut -d: -f1)
[ "$last_third" -lt "$serving" ] || fail "etcd.log printed before etcd.log.1 ($serving, $last_third)"

say "logs -f printed every line once across the three rotations"
wait_until 10 "the last start in the followed output" \
  test "$(grep -c "ready to serve client requests" "$T/follow")" -ge 4
for mark in first second third; do
  n=$(grep -c "$mark line" "$T/follow" || true)
  [ "$n" = 200 ] || fail "logs -f printed $n of 200 '$mark' lines: $(cat "$T/follow.err")"
done
kill -INT "$follow"
wait "$follow" || fail "logs -f exited non-zero after SIGINT"

say "a running member's log past the limit is rotated when a pass looks at it, etcd still running"
pid=$(member_pids lg)
grow 200 fourth
eg apply --source "$SRC" --wait=60s >"$T/apply.out" 2>&1 || fail "apply: $(cat "$T/apply.out")"
grep -q "fourth line 200 " "$LOG.1" || fail "etcd.log.1 does not hold what the running member's log held"
[ "$(member_pids lg)" = "$pid" ] || fail "the member was restarted ($pid -> $(member_pids lg))"
etcdctl_c lg put after-rotation yes >/dev/null 2>&1 || fail "etcdctl put after the rotation"
say "ok"
