#!/usr/bin/env bash
# Every failure visible under `run`: a manifest made invalid shows in /status (its file,
# line and column), on the page, in etcd_gitops_source_errors and in the cluster's
# condition gauges (Stalled, InvalidManifest); the last pass's outcome is in /status; a
# source that cannot be read makes /readyz 503 with the reason and etcd_gitops_source_ready
# 0 until it is back (unless --readyz-source=optional), as does a git remote that cannot be
# fetched; process_* and build_info are sane.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

http_port() { sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1; }
has_port() { [ -n "$(http_port)" ]; }
get() { curl -sS --max-time 5 -o "$T/body" -w '%{http_code}' "http://127.0.0.1:$PORT$1"; }
answers() { [ "$(get "$1")" = "$2" ]; }
metric() { curl -sS --max-time 5 -o "$T/scrape" "http://127.0.0.1:$PORT/metrics" && grep -qx "$1" "$T/scrape"; }
# status_has PYTHON-EXPR: the expression holds of /status (d)
status_has() { curl -sS --max-time 5 "http://127.0.0.1:$PORT/status" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }
condition() { metric "etcd_gitops_cluster_condition{namespace=\"default\",name=\"$1\",type=\"$2\",reason=\"$3\"} $4"; }

cluster_yaml demo 1
start_daemon --listen 127.0.0.1:0 --interval 1s
wait_until 10 "the HTTP server to start" has_port
PORT=$(http_port)
wait_until 60 "demo healthy" healthy demo 1
wait_until 30 "/readyz 200" answers /readyz 200

say "a converged cluster is Ready, not Stalled; the source has no error; the last pass converged"
wait_until 20 "demo Ready" condition demo Ready Converged 1
condition demo Stalled Converged 0 || fail "demo Stalled: $(curl -sS "http://127.0.0.1:$PORT/metrics" | grep condition)"
metric 'etcd_gitops_source_errors 0' || fail "source errors not 0"
metric 'etcd_gitops_source_ready 1' || fail "source not ready"
wait_until 20 "/status to show the last pass converged" status_has \
  'd["ready"] is True and d["notReady"] is None and d["lastPass"]["outcome"]=="converged" and d["lastPass"]["clusters"]==1 and d["lastPass"]["converged"]==1 and d["source"]["diagnostics"]==[] and d["source"]["errors"]==0'

say "process_* and build_info describe this daemon"
curl -sS --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$T/metrics"
python3 - "$T/metrics" "$(date +%s)" <<'EOF' || fail "process metrics not sane: $(grep -E '^(process_|etcd_gitops_build)' "$T/metrics")"
import sys
v = {}
for line in open(sys.argv[1]):
    if line.startswith("process_"):
        name, value = line.split()
        v[name] = float(value)
now = float(sys.argv[2])
assert v["process_resident_memory_bytes"] > 0, v
assert v["process_virtual_memory_bytes"] >= v["process_resident_memory_bytes"], v
assert now - 3600 < v["process_start_time_seconds"] <= now + 1, v
assert 0 < v["process_open_fds"] <= v["process_max_fds"], v
assert v["process_cpu_seconds_total"] >= 0, v
EOF
commit=$(eg version -o json | jget 'd["gitCommit"]')
grep -q "^etcd_gitops_build_info{version=\"[0-9.]*\",commit=\"$commit\",libyaml=\"[^\"]*\",libgit2=\"[^\"]*\",libcurl=\"" "$T/metrics" ||
  fail "no build_info with commit $commit: $(grep build_info "$T/metrics")"

say "an invalid manifest: /status names file, line and column; errors 1; demo is Stalled on it"
cluster_yaml demo three
wait_until 20 "/status to carry the diagnostic" status_has \
  '[x for x in d["source"]["diagnostics"] if x["file"]=="demo.yaml" and x["line"]==6 and x["column"]>0 and x["severity"]=="error" and x["field"]=="spec.size"] and d["source"]["errors"]==1'
wait_until 20 "etcd_gitops_source_errors 1" metric 'etcd_gitops_source_errors 1'
wait_until 20 "demo Stalled on its manifest" condition demo Stalled InvalidManifest 1
condition demo Ready InvalidManifest 0 || fail "demo still Ready"
metric 'etcd_gitops_cluster_condition{namespace="default",name="demo",type="Ready",reason="Converged"} 1' &&
  fail "the Converged series stayed beside InvalidManifest"
wait_until 20 "the last pass to count demo blocked" status_has 'd["lastPass"]["blocked"]==1 and d["lastPass"]["outcome"]=="blocked"'
get / >/dev/null
grep -qF '<h2>Source diagnostics</h2>' "$T/body" || fail "the page has no diagnostics"
grep -qF '<td>demo.yaml:6:' "$T/body" || fail "the page does not place the error: $(grep -A3 'Source diagnostics' "$T/body")"
grep -qF 'spec.size' "$T/body" || fail "the page does not name the field"

say "fixed: the errors go, demo is Ready again"
cluster_yaml demo 1
wait_until 20 "source errors 0" metric 'etcd_gitops_source_errors 0'
wait_until 20 "demo Ready again" condition demo Ready Converged 1
status_has 'd["source"]["diagnostics"]==[]' || fail "diagnostics left in /status"

say "the source folder gone: /readyz 503 saying why, source_ready 0; back: 200"
mv "$SRC" "$SRC.away"
wait_until 20 "/readyz 503" answers /readyz 503
get /readyz >/dev/null
grep -q "^source unreadable: .*manifests.*; revision sha256:[0-9a-f]* stays applied$" "$T/body" ||
  fail "/readyz does not say why: $(cat "$T/body")"
wait_until 20 "source_ready 0" metric 'etcd_gitops_source_ready 0'
status_has 'd["ready"] is False and d["notReady"].startswith("source unreadable") and d["source"]["readFailed"] is True and d["source"]["lastError"]' ||
  fail "/status does not say the source failed"
healthy demo 1 || fail "demo changed while the source was away"
mv "$SRC.away" "$SRC"
wait_until 20 "/readyz 200 again" answers /readyz 200
wait_until 20 "source_ready 1" metric 'etcd_gitops_source_ready 1'
stop_daemon

say "--readyz-source=optional: ready on the last good revision, the failure still in metrics and /status"
start_daemon --listen 127.0.0.1:0 --interval 1s --readyz-source=optional
wait_until 10 "the HTTP server to start" has_port
PORT=$(http_port)
wait_until 30 "/readyz 200" answers /readyz 200
mv "$SRC" "$SRC.away"
wait_until 20 "source_ready 0" metric 'etcd_gitops_source_ready 0'
answers /readyz 200 || fail "--readyz-source=optional: /readyz $(cat "$T/body")"
status_has 'd["ready"] is True and d["source"]["readFailed"] is True' || fail "/status lost the failure"
mv "$SRC.away" "$SRC"
stop_daemon

say "a git remote gone: /readyz 503 naming the failed fetch and the commit still applied; back: 200"
. "$EG_SOURCE_DIR/tests/lib/git.sh"
cp "$SRC/demo.yaml" "$W/" && git -C "$W" add -A && git -C "$W" commit -q -m demo && git -C "$W" push -q origin HEAD:main
commit=$(git -C "$W" rev-parse HEAD)
"$EG_BIN" run --source "$URL" --listen 127.0.0.1:0 --interval 1s >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_until 10 "the HTTP server to start" has_port
PORT=$(http_port)
wait_until 30 "/readyz 200" answers /readyz 200
mv "$T/remote.git" "$T/remote.away"
wait_until 20 "/readyz 503" answers /readyz 503
get /readyz >/dev/null
grep -q "^source unreadable: .*; still at main@sha1:$commit$" "$T/body" || fail "/readyz does not say why: $(cat "$T/body")"
status_has "d['source']['readFailed'] is False and d['source']['commit']=='$commit' and d['notReady'].startswith('source unreadable')" ||
  fail "/status does not tell a failed fetch from a failed read"
metric 'etcd_gitops_source_ready 0' || fail "source_ready not 0 while the remote is gone"
mv "$T/remote.away" "$T/remote.git"
wait_until 20 "/readyz 200 again" answers /readyz 200
stop_daemon

say "a bad --readyz-source is a usage error"
set +e; eg run --source "$SRC" --readyz-source=sometimes >/dev/null 2>"$T/err"; rc=$?; set -e
[ $rc -eq 2 ] || fail "--readyz-source=sometimes exit $rc, want 2"
grep -q "required" "$T/err" || fail "bad --readyz-source message: $(cat "$T/err")"
say "ok"
