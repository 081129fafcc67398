#!/usr/bin/env bash
# The daemon killed with SIGKILL and started again adopts the running members: same pids.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cluster_yaml delta 3
start_daemon
wait_until 60 "3 healthy members" healthy delta 3
pids=$(member_pids delta)
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=
for p in $pids; do ! pid_gone "$p" || fail "member pid $p died with the daemon"; done
start_daemon
# let the new daemon run a few passes
wait_until 20 "a pass of the new daemon" grep -q "source revision" "$T/daemon.log"
sleep 2
healthy delta 3 || fail "not healthy after restart"
[ "$(member_pids delta)" = "$pids" ] || fail "members restarted: before $pids, after $(member_pids delta)"
say "SIGTERM stops the daemon cleanly"
stop_daemon
for p in $pids; do ! pid_gone "$p" || fail "member pid $p died with the daemon's SIGTERM"; done
eg audit verify >/dev/null || fail "audit chain broken"
