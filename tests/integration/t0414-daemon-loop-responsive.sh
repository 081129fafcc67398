#!/usr/bin/env bash
# Under run, passes talk to etcd on a worker thread: while a member hangs (SIGSTOP, so every
# call to it waits out its timeout) /healthz, /metrics and /status answer at once, and SIGTERM
# is taken at once; the daemon exits once the step in progress is done.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

http_port() { sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1; }
has_port() { [ -n "$(http_port)" ]; }
STOPPED=
on_exit '[ -z "$STOPPED" ] || kill -CONT $STOPPED 2>/dev/null'

cluster_yaml c1 3
start_daemon --listen 127.0.0.1:0 --interval 1s
wait_until 10 "the HTTP server to start" has_port
PORT=$(http_port)
wait_until 90 "c1 healthy with 3 members" healthy c1 3

# passes_over_1s: passes of c1 that took more than a second, from /metrics
passes_over_1s() {
  curl -sS --max-time 5 "http://127.0.0.1:$PORT/metrics" | python3 -c '
import sys
count = fast = 0
for line in sys.stdin:
    if line.startswith("etcd_gitops_reconcile_duration_seconds_count{") and "name=\"c1\"" in line:
        count = float(line.split()[-1])
    if line.startswith("etcd_gitops_reconcile_duration_seconds_bucket{") and "name=\"c1\"" in line and "le=\"1\"" in line:
        fast = float(line.split()[-1])
print(int(count - fast))'
}
grep -q '^etcd_gitops_reconcile_duration_seconds_bucket{.*name="c1".*le="1"}' <(curl -sS "http://127.0.0.1:$PORT/metrics") ||
  fail "/metrics has no 1 s bucket for c1's pass durations"
slow_before=$(passes_over_1s)

say "one member hangs: passes wait on it, the endpoints do not"
STOPPED=$(member_pids c1 | cut -d' ' -f3)
kill -STOP "$STOPPED"
python3 - "$PORT" >"$T/latency" <<'PY'
import sys, time, urllib.request
port = sys.argv[1]
worst = {}
end = time.monotonic() + 6
while time.monotonic() < end:
    for path in ("/healthz", "/metrics", "/status"):
        t0 = time.monotonic()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
        except OSError:
            pass  # counted as the time it took to give up
        worst[path] = max(worst.get(path, 0), time.monotonic() - t0)
    time.sleep(0.05)
print(" ".join(f"{p}={int(w * 1000)}" for p, w in sorted(worst.items())))
PY
say "slowest answers while the member hung (ms): $(cat "$T/latency")"
slow_after=$(passes_over_1s)
[ "$slow_after" -gt "$slow_before" ] || fail "no pass took over a second while the member hung: nothing was tested"
for w in $(cat "$T/latency"); do
  [ "${w#*=}" -lt 500 ] || fail "${w%=*} took ${w#*=} ms to answer during a pass"
done

say "SIGTERM while the member hangs: taken at once; the step in progress is finished before the exit"
kill -TERM "$DAEMON_PID"
wait_until 2 "the daemon to take SIGTERM" grep -q "received Terminated, stopping" "$T/daemon.log"
# the hung member may be gone already: judged dead, it is killed at once (SIGSTOP cannot be waited out)
kill -CONT "$STOPPED" 2>/dev/null || true
STOPPED=
daemon_gone() { ! kill -0 "$DAEMON_PID" 2>/dev/null; }
wait_until 60 "the daemon to exit after its step" daemon_gone
wait "$DAEMON_PID" || fail "daemon exited non-zero after SIGTERM"
DAEMON_PID=
echo "ok"
