#!/usr/bin/env bash
# The control socket: reconcile with and without a daemon (exit codes, decisions printed,
# the caller in the audit log), apply during run (handed off, or refused naming both
# sources), a stale socket file taken over, a second daemon refused, and a client that
# connects and never reads stalls nothing; suspend and resume through it.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

SOCK="$STATE/control.sock"
http_port() { sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1; }
has_port() { [ -n "$(http_port)" ]; }
on_exit '[ "$TEST_RC" = 0 ] || { echo "--- daemon log"; tail -n 40 "$T/daemon.log"; } >&2'
on_exit '[ -n "${STALL_PID:-}" ] && kill "$STALL_PID" 2>/dev/null'

say "without a daemon and without a source, reconcile says where it looked (exit 2)"
set +e; eg reconcile >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -eq 2 ] || fail "reconcile without daemon or source: exit $rc, want 2"
grep -q "no daemon answers on $SOCK" "$T/err" || fail "no reason: $(cat "$T/err")"

say "without a daemon, reconcile applies here, as apply does"
cluster_yaml demo 1
set +e; eg reconcile --source "$SRC" >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -le 1 ] || fail "reconcile without daemon: exit $rc: $(cat "$T/err")"
grep -q "default/demo: create" "$T/err" || fail "no create decision printed: $(cat "$T/err")"
grep -q "^1 cluster:" "$T/out" || fail "no summary: $(cat "$T/out")"

say "a stale socket file (a daemon that died) is taken over"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$SOCK"
[ -S "$SOCK" ] || fail "no stale socket made"
# a change is read only when asked for: the decisions reconcile prints are its pass's
start_daemon --listen 127.0.0.1:0 --interval 1h --debounce 1h
wait_until 20 "the daemon to listen on its control socket" grep -q "control socket on $SOCK" "$T/daemon.log"
grep -q "taking over the control socket $SOCK" "$T/daemon.log" || fail "stale socket not reported taken over"
[ "$(stat -c %a "$SOCK")" = 660 ] || fail "socket mode $(stat -c %a "$SOCK"), want 660"
wait_until 20 "the HTTP server" has_port
PORT=$(http_port)
wait_until 30 "the first pass" grep -q "source revision" "$T/daemon.log"

say "reconcile asks the daemon, waits for its pass, exits 0 when converged"
wait_until 60 "demo healthy" healthy demo 1
set +e; eg reconcile >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -eq 0 ] || fail "reconcile through the daemon: exit $rc: $(cat "$T/err") $(cat "$T/out")"
grep -q "^1 cluster: 1 converged, 0 blocked, 0 failing$" "$T/out" || fail "summary: $(cat "$T/out")"
actor="uid $(id -u) ($(id -un))"
audit_json --decision reconcile-request | jget 'd[-1]["actor"]' | grep -qxF "$actor" ||
  fail "no reconcile-request with actor '$actor': $(audit_json | tail -c 600)"

say "reconcile --with-source reads a change now and prints the daemon's decisions"
cluster_yaml demo 3
set +e; eg reconcile default/demo --with-source >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -eq 1 ] || fail "reconcile of a cluster still growing: exit $rc, want 1: $(cat "$T/err")"
# the pass either adds the learner or, with demo-0 up for less than 5 s, says it waits to
grep -qE "default/demo: (add-learner demo-1|waiting): scale up 1 -> 3" "$T/err" ||
  fail "no scale-up decision printed: $(cat "$T/err")"
grep -q "not converged yet" "$T/out" || fail "summary: $(cat "$T/out")"

say "a cluster the source does not have is refused (exit 2)"
set +e; eg reconcile nope >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -eq 2 ] || fail "reconcile nope: exit $rc"
grep -q "has no EtcdCluster default/nope" "$T/err" || fail "no reason: $(cat "$T/err")"

say "apply during run hands the source to the daemon instead of failing on the audit lock"
set +e; eg apply --source "$SRC" >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -le 1 ] || fail "apply during run: exit $rc: $(cat "$T/err")"
grep -q "busy" "$T/err" && fail "apply hit the audit lock: $(cat "$T/err")"
grep -q "asking it to read the source and pass" "$T/err" || fail "no hand-off said: $(cat "$T/err")"
grep -q "^1 cluster:" "$T/out" || fail "summary: $(cat "$T/out")"

say "apply of another source is refused, naming both"
mkdir -p "$T/other"
set +e; eg apply --source "$T/other" >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -eq 2 ] || fail "apply of another source: exit $rc, want 2"
grep -q "follows $SRC, not $T/other" "$T/err" || fail "no reason naming both: $(cat "$T/err")"

say "diff works read-only while the daemon runs"
set +e; eg diff --source "$SRC" >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -le 1 ] || fail "diff during run: exit $rc: $(cat "$T/err")"

say "suspend and resume go through the daemon, recorded with the caller"
eg suspend demo --reason "control test" >"$T/out" 2>"$T/err" || fail "suspend through the daemon: $(cat "$T/err")"
grep -q "busy" "$T/err" && fail "suspend hit the audit lock: $(cat "$T/err")"
audit_json --decision suspend | jget 'd[-1]["actor"]' | grep -qxF "$actor" || fail "no suspend record by '$actor'"
eg resume demo >"$T/out" 2>"$T/err" || fail "resume through the daemon: $(cat "$T/err")"
audit_json --decision resume | jget 'd[-1]["actor"]' | grep -qxF "$actor" || fail "no resume record by '$actor'"

say "a second daemon on the same socket is refused"
mkdir -p "$T/state2"
set +e
ETCD_GITOPS_STATE_DIR="$T/state2" timeout 20 "$EG_BIN" run --source "$SRC" --listen none --control-socket "$SOCK" \
  >"$T/second.log" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || fail "second daemon: exit $rc, want 2: $(cat "$T/second.log")"
grep -q "another daemon answers on the control socket $SOCK" "$T/second.log" || fail "no reason: $(cat "$T/second.log")"
[ -S "$SOCK" ] || fail "the refused daemon removed the first one's socket"

say "a client that connects, asks and never reads stalls neither /healthz nor the next pass"
python3 - "$SOCK" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
s.connect(sys.argv[1])
s.sendall(b'{"command":"reconcile"}\n')
time.sleep(60)
PY
STALL_PID=$!
python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(60)' "$SOCK" &
on_exit "kill $! 2>/dev/null"
sleep 0.5
[ "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" = 200 ] ||
  fail "/healthz stalled"
set +e; timeout 120 "$EG_BIN" reconcile --timeout 100s >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -le 1 ] || fail "reconcile next to a silent client: exit $rc: $(cat "$T/err")"
kill "$STALL_PID" 2>/dev/null || true

say "the socket and its link go when the daemon stops"
stop_daemon
[ -e "$SOCK" ] && fail "$SOCK left behind"
exit 0
