#!/usr/bin/env bash
# Under run, a backup streams on its own thread: while a slow S3 endpoint takes its upload,
# /healthz answers at once and a member killed with SIGKILL is healed; SIGTERM during the
# upload stops the daemon promptly, abandons the upload (no object) and records why.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

# An S3 stand-in that reads request bodies at about 100 KB/s and keeps what it received
# whole; it logs "start PUT <path>" and "done PUT <path>".
cat >"$T/slow_s3.py" <<'PY'
import http.server, os, sys, time
root, log, ready = sys.argv[1:4]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def note(self, what):
        with open(log, "a") as f: f.write(f"{what} {self.command} {self.path}\n")
    def do_PUT(self):
        self.note("start")
        left, data = int(self.headers.get("Content-Length", 0)), b""
        while left > 0:
            chunk = self.rfile.read(min(4096, left))
            if not chunk: return
            data += chunk; left -= len(chunk)
            time.sleep(0.04)
        path = os.path.join(root, self.path.split("?")[0].lstrip("/").replace("/", "_"))
        with open(path, "wb") as f: f.write(data)
        self.note("done")
        self.send_response(200); self.send_header("ETag", '"x"'); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
    do_DELETE = do_POST = do_HEAD = do_GET
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(ready + ".tmp", "w").write(str(s.server_address[1])); os.rename(ready + ".tmp", ready)
s.serve_forever()
PY
mkdir -p "$T/objects"
python3 "$T/slow_s3.py" "$T/objects" "$T/s3.log" "$T/s3.port" &
S3PID=$!
on_exit 'kill "$S3PID" 2>/dev/null'
wait_until 10 "the slow S3 server" test -s "$T/s3.port"
S3_ENDPOINT="http://127.0.0.1:$(cat "$T/s3.port")"
mkdir -p "$STATE/secrets/default/aws"
printf '[default]\naws_access_key_id = K\naws_secret_access_key = S\n' >"$STATE/secrets/default/aws/credentials"

cluster_yaml bg 3
start_daemon --listen 127.0.0.1:0
wait_until 60 "3 healthy members" healthy bg 3
head -c $((1 << 20)) /dev/urandom >"$T/blob"
for i in 1 2 3; do etcdctl_c bg put "/big/$i" <"$T/blob" >/dev/null; done
port=$(sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1)
[ -n "$port" ] || fail "no HTTP port in the daemon log"

backup_yaml() {
  cat >"$SRC/backup.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: $1
spec:
  etcdCluster:
    name: bg
  storageType: S3
  s3:
    path: bkt/$1.db
    awsSecret: aws
    endpoint: $S3_ENDPOINT
    forcePathStyle: true
  backupPolicy:
    # the upload takes about a minute on purpose: the default (60 s) would cut it off
    timeoutInSecond: 600
YAML
}
uploading() { grep -q "^start PUT /bkt/$1.db" "$T/s3.log" 2>/dev/null; }
uploaded() { grep -q "^done PUT /bkt/$1.db" "$T/s3.log" 2>/dev/null; }

say "a backup uploads slowly; the loop goes on"
backup_yaml one
wait_until 60 "the upload to start" uploading one
t0=$(date +%s%N)
curl -sS --max-time 2 -o /dev/null "http://127.0.0.1:$port/healthz" || fail "/healthz did not answer during the backup"
say "/healthz answered in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
victim=$(cluster_json bg | jget '[m for m in d[0]["status"]["memberDetails"] if m["role"]=="follower"][0]["name"]')
vpid=$(cluster_json bg | jget "[m['pid'] for m in d[0]['status']['memberDetails'] if m['name']=='$victim'][0]")
kill -KILL "$vpid"
healed() {
  healthy bg 3 && [ "$(cluster_json bg | jget "[m['pid'] for m in d[0]['status']['memberDetails'] if m['name']=='$victim'][0]")" != "$vpid" ]
}
wait_until 60 "$victim restarted in place" healed
uploaded one && fail "the upload finished before the failover: the test proves nothing (make the server slower)"
say "$victim restarted in place while the upload was still running"
wait_until 120 "the upload to finish" uploaded one
done_ok() { eg get backups one -o json | jget 'd[0]["succeeded"]' | grep -qx True; }
wait_until 30 "backup one recorded as succeeded" done_ok

say "SIGTERM during an upload"
backup_yaml two
wait_until 60 "the second upload to start" uploading two
t0=$(date +%s%N)
stop_daemon
say "stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
[ ! -e "$T/objects/bkt_two.db" ] || fail "an abandoned upload left an object"
audit_json --cluster default/bg | jget '[r for r in d if r["decision"]=="backup"][-1]["error"]' | grep -q cancelled ||
  fail "the abandoned backup is not recorded as cancelled"
eg get backups two -o json | jget 'd[0]["succeeded"]' | grep -qx False || fail "backup two not recorded as failed"
