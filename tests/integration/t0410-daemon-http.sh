#!/usr/bin/env bash
# run --listen: /healthz, /readyz after the first revision, /status with the cluster and
# the revision, /metrics with decision counters and member gauges; --listen none serves nothing.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

# the port the daemon bound when asked for port 0, from its log
http_port() { sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1; }
get() { curl -sS --max-time 5 -o "$T/body" -w '%{http_code}' "http://127.0.0.1:$PORT$1"; }
has_port() { [ -n "$(http_port)" ]; }
answers() { [ "$(get "$1")" = "$2" ]; }

cluster_yaml demo 1
start_daemon --listen 127.0.0.1:0 --interval 2s
wait_until 10 "the HTTP server to start" has_port
PORT=$(http_port)

say "/healthz answers as soon as the process runs"
[ "$(get /healthz)" = 200 ] || fail "/healthz: $(cat "$T/body")"
[ "$(cat "$T/body")" = ok ] || fail "/healthz body: $(cat "$T/body")"

say "/readyz turns 200 once the first revision is processed"
wait_until 30 "/readyz 200" answers /readyz 200
wait_until 60 "demo healthy" healthy demo 1

say "/status lists the cluster and the revision"
rev=$(audit_json --cluster default/demo | jget 'd[0]["revision"]')
wait_until 20 "/status to show demo ready" sh -c "
  curl -sS --max-time 5 http://127.0.0.1:$PORT/status | python3 -c '
import json,sys
d=json.load(sys.stdin)
assert d[\"ready\"] is True
assert d[\"source\"][\"kind\"]==\"dir\" and d[\"source\"][\"revision\"]==\"$rev\", d[\"source\"]
c=[x for x in d[\"clusters\"] if x[\"metadata\"]==dict(name=\"demo\",namespace=\"default\")]
assert len(c)==1 and c[0][\"status\"][\"lastAppliedRevision\"]==\"$rev\" and len(c[0][\"status\"][\"members\"][\"ready\"])==1
'"

say "/metrics: Prometheus text with the create decision and member gauges"
wait_until 20 "members ready 1 in /metrics" sh -c "curl -sS http://127.0.0.1:$PORT/metrics | grep -qx 'etcd_gitops_cluster_members_ready{namespace=\"default\",name=\"demo\"} 1'"
ct=$(curl -sS -o "$T/metrics" -w '%{content_type}' "http://127.0.0.1:$PORT/metrics")
[ "$ct" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "metrics content type: $ct"
grep -qx 'etcd_gitops_decisions_total{decision="create",outcome="ok"} 1' "$T/metrics" || fail "no create counter: $(grep decisions "$T/metrics")"
grep -qx 'etcd_gitops_cluster_members_desired{namespace="default",name="demo"} 1' "$T/metrics" || fail "no desired gauge"
grep -qx 'etcd_gitops_cluster_quorum{namespace="default",name="demo"} 1' "$T/metrics" || fail "no quorum gauge"
grep -qx "etcd_gitops_source_revision_info{revision=\"$rev\",commit=\"\"} 1" "$T/metrics" || fail "no revision info: $(grep revision_info "$T/metrics")"
grep -q '^etcd_gitops_reconcile_duration_seconds_bucket{namespace="default",name="demo",le="+Inf"} [1-9]' "$T/metrics" ||
  fail "no histogram for demo"
grep -qx 'etcd_gitops_source_read_failures_total 0' "$T/metrics" || fail "read failures not 0"

say "unknown paths are 404, wrong methods 405"
[ "$(get /nope)" = 404 ] || fail "/nope not 404"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/metrics")" = 405 ] || fail "POST /metrics not 405"
stop_daemon

say "--listen none serves nothing; a bad --listen is a usage error"
start_daemon --listen none
wait_until 30 "daemon ready again" grep -q "revision" "$T/daemon.log"
grep -q "serving" "$T/daemon.log" && fail "--listen none still serves"
stop_daemon
set +e; eg run --source "$SRC" --listen 127.0.0.1 >/dev/null 2>"$T/err"; rc=$?; set -e
[ $rc -eq 2 ] || fail "bad --listen exit $rc, want 2"
grep -q "HOST:PORT" "$T/err" || fail "bad --listen message: $(cat "$T/err")"
say "ok"
