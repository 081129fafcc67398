#!/usr/bin/env bash
# GET / under `run`: an HTML page naming the cluster, its phase, members and the source
# revision, with a CSP and no script; Chromium (headless) renders it, its DOM names the
# cluster and its screenshot is the window's size, not blank, with the green "ready"
# badge; a wrong method on / is 405 with Allow.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

command -v chromium >/dev/null || { say "skip: no chromium (Debian's chromium package)"; exit 0; }

http_port() { sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1; }
has_port() { [ -n "$(http_port)" ]; }
page_shows() { curl -sS --max-time 5 "http://127.0.0.1:$PORT/" | grep -qF "$1"; }

# Chromium's processes all carry this profile dir: any left behind are this test's own
PROFILE="$T/chromium"
stop_chromium() { local p; for p in $(pgrep -f -- "--user-data-dir=$PROFILE" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done; }
on_exit stop_chromium
browse() {
  HOME="$T" timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$PROFILE" \
    --window-size=1024,768 "$@" 2>>"$T/chromium.log"
}

cluster_yaml page-demo 1
start_daemon --listen 127.0.0.1:0 --interval 2s
wait_until 10 "the HTTP server to start" has_port
PORT=$(http_port)
wait_until 60 "page-demo healthy" healthy page-demo 1
rev=$(audit_json --cluster default/page-demo | jget 'd[0]["revision"]')
wait_until 20 "the page to show page-demo running" page_shows '<td class="ok">Running</td><td>1/1</td>'

say "/ is an HTML page with the cluster, its member and the revision"
code=$(curl -sS --max-time 5 -D "$T/headers" -o "$T/page.html" -w '%{http_code} %{content_type}' "http://127.0.0.1:$PORT/")
[ "$code" = "200 text/html; charset=utf-8" ] || fail "GET /: $code"
grep -qi "^Content-Security-Policy: default-src 'none'" "$T/headers" || fail "no CSP: $(cat "$T/headers")"
for want in '<td>default/page-demo</td>' '<td>page-demo-0</td><td>default/page-demo</td><td class="ok">healthy</td>' \
  "$rev" '<td class="ok">yes</td>' 'badge ok'; do
  grep -qF "$want" "$T/page.html" || fail "the page lacks $want"
done
grep -qi '<script' "$T/page.html" && fail "the page has a script"
say "the page lists the daemon's last decisions, the cluster's creation among them"
grep -qF '<h2>Last decisions</h2>' "$T/page.html" || fail "the page has no decisions"
grep -qF '<td>create</td>' "$T/page.html" || fail "the create decision is not on the page: $(grep -A3 'Last decisions' "$T/page.html")"

say "a wrong method on / is 405 naming GET and HEAD"
code=$(curl -sS --max-time 5 -D "$T/headers" -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/")
[ "$code" = 405 ] || fail "POST /: $code"
grep -qi '^Allow: GET, HEAD' "$T/headers" || fail "405 without Allow: $(cat "$T/headers")"
[ "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$PORT/")" = 200 ] || fail "HEAD / not 200"

say "Chromium's DOM names the cluster"
browse --dump-dom "http://127.0.0.1:$PORT/" >"$T/dom.html" || fail "chromium --dump-dom failed: $(tail -n 5 "$T/chromium.log")"
grep -qF 'default/page-demo' "$T/dom.html" || fail "the DOM lacks the cluster: $(head -c 600 "$T/dom.html")"

say "Chromium's screenshot: 1024x768, not blank, the green ready badge drawn"
(cd "$T" && browse --screenshot="$T/page.png" "http://127.0.0.1:$PORT/") >/dev/null ||
  fail "chromium --screenshot failed: $(tail -n 5 "$T/chromium.log")"
read -r w h nonwhite green < <(python3 "$EG_SOURCE_DIR/tests/lib/png_stats.py" "$T/page.png" 17,112,46) ||
  fail "cannot read $T/page.png"
[ "$w x $h" = "1024 x 768" ] || fail "screenshot is $w x $h"
[ "$nonwhite" -gt 5000 ] || fail "screenshot nearly blank: $nonwhite non-white pixels"
[ "$green" -gt 50 ] || fail "no ready badge in the screenshot ($green green pixels)"
stop_daemon
say "ok"
