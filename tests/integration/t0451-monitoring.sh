#!/usr/bin/env bash
# examples/monitoring: promtool accepts the alert rules and their unit tests pass (each
# alert fires on its series and not on the series beside them); the Grafana dashboard is
# JSON whose every query parses as PromQL; and every etcd_gitops_ metric the rules and the
# dashboard name is one a running daemon's /metrics declares (which promtool's lint accepts).
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

command -v promtool >/dev/null || { say "skip: no promtool (Debian's prometheus package)"; exit 0; }
MON="$EG_SOURCE_DIR/examples/monitoring"

say "promtool check rules, then its unit tests of them"
promtool check rules "$MON/etcd-gitops.rules.yml" >"$T/check" 2>&1 || fail "promtool check rules: $(cat "$T/check")"
(cd "$MON" && promtool test rules etcd-gitops.rules.test.yml) >"$T/test" 2>&1 || fail "promtool test rules: $(cat "$T/test")"
grep -q SUCCESS "$T/test" || fail "promtool test rules said: $(cat "$T/test")"

say "every alert of the rules is exercised by the unit tests"
python3 - "$MON" <<'EOF' || fail "an alert has no unit test"
import sys, yaml
mon = sys.argv[1]
alerts = {r["alert"] for g in yaml.safe_load(open(f"{mon}/etcd-gitops.rules.yml"))["groups"] for r in g["rules"]}
tested = {t["alertname"] for c in yaml.safe_load(open(f"{mon}/etcd-gitops.rules.test.yml"))["tests"]
          for t in c["alert_rule_test"] if t["exp_alerts"]}
missing = sorted(alerts - tested)
if missing:
    sys.exit(f"never seen firing in the tests: {missing}")
EOF

say "the dashboard's queries parse as PromQL (checked as recording rules)"
python3 - "$MON/grafana-dashboard.json" "$T/dashboard-rules.yml" "$T/exprs" <<'EOF' || fail "the dashboard is not what Grafana reads"
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("title") and d.get("uid") and isinstance(d.get("panels"), list), "no title, uid or panels"
exprs = []
for p in d["panels"]:
    if p["type"] == "row":
        continue
    assert p.get("targets"), f"panel {p.get('title')!r} has no query"
    for t in p["targets"]:
        exprs.append(t["expr"])
# Grafana's variables, as Grafana would fill them in
rules = [{"record": f"dashboard:query{i}", "expr": e.replace("$__rate_interval", "5m").replace("$namespace", ".*")}
         for i, e in enumerate(exprs)]
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
open(sys.argv[3], "w").write("\n".join(exprs) + "\n")
EOF
promtool check rules "$T/dashboard-rules.yml" >"$T/check" 2>&1 || fail "a dashboard query does not parse: $(cat "$T/check")"

say "every metric named is one the daemon declares on /metrics"
http_port() { sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1; }
has_port() { [ -n "$(http_port)" ]; }
start_daemon --listen 127.0.0.1:0
wait_until 20 "the HTTP server to start" has_port
curl -sS --max-time 5 "http://127.0.0.1:$(http_port)/metrics" >"$T/metrics" || fail "cannot scrape /metrics"
stop_daemon
promtool check metrics <"$T/metrics" >"$T/lint" 2>&1 || fail "promtool check metrics: $(cat "$T/lint")"
# a histogram family's series are its _bucket, _sum and _count; etcd_gitops_leader is
# declared only under leader election, which takes a Kubernetes API server (t0531 checks it)
{ echo etcd_gitops_leader; sed -n 's/^# TYPE \([a-z_:]*\) \(.*\)$/\1 \2/p' "$T/metrics" |
  while read -r name type; do
    echo "$name"
    if [ "$type" = histogram ]; then printf '%s\n' "${name}_bucket" "${name}_sum" "${name}_count"; fi
  done; } | sort -u >"$T/declared"
[ -s "$T/declared" ] || fail "no metric declared on /metrics: $(head -c 500 "$T/metrics")"
{ grep -o 'etcd_gitops_[a-z_]*' "$MON/etcd-gitops.rules.yml" "$MON/etcd-gitops.rules.test.yml" | cut -d: -f2
  grep -o 'etcd_gitops_[a-z_]*' "$T/exprs"; } | sort -u >"$T/named"
unknown=$(comm -23 "$T/named" "$T/declared")
[ -z "$unknown" ] || fail "named by the monitoring kit, not declared by the daemon: $unknown"
[ "$(grep -c . "$T/named")" -ge 10 ] || fail "too few metrics named: $(cat "$T/named")"
say "ok"
