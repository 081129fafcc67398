#!/usr/bin/env bash
# Backup benchmarks on a single etcd holding >= 256 MiB, each beside its baseline:
#   snapshot to File     `etcd-gitops backup` vs `etcdctl snapshot save`; target throughput ratio >= 0.8
#   snapshot to S3       s3rver on 127.0.0.1 (multipart)
#   peak RSS             the backup process's VmHWM; target <= 32 MiB whatever the snapshot size
#   restore              eg_restore_fetch + eg_restore_data_dir vs `etcdctl snapshot restore` by hand
# usage: EG_BUILD_DIR=build bench_backup.sh [MiB]   (everything on 127.0.0.1, stopped at the end)
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${EG_BUILD_DIR:-$SRC_DIR/build}
BIN=$BUILD/etcd-gitops
MIB=${1:-256}
export EG_SOURCE_DIR=$SRC_DIR ETCDCTL_API=3
. "$SRC_DIR/tests/lib/s3rver.sh"

T=$(mktemp -d /tmp/eg-bench-backup.XXXXXX)
EPID=
finish() { [ -n "$EPID" ] && { kill -KILL "$EPID"; wait "$EPID"; } 2>/dev/null; s3rver_stop; rm -rf "$T"; }
trap finish EXIT

CP=$(s3_free_port); PP=$(s3_free_port)
EP=http://127.0.0.1:$CP
etcd --name b1 --data-dir "$T/etcd" --quota-backend-bytes $((4 << 30)) --snapshot-count 1000000 \
  --listen-client-urls "$EP" --advertise-client-urls "$EP" --listen-peer-urls "http://127.0.0.1:$PP" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PP" --initial-cluster "b1=http://127.0.0.1:$PP" >"$T/etcd.log" 2>&1 &
EPID=$!
for _ in $(seq 100); do curl -s "$EP/health" | grep -q true && break; sleep 0.1; done

echo "# filling etcd with $MIB MiB" >&2
head -c $((1 << 20)) /dev/urandom >"$T/blob"
fill_start=$(date +%s%N)
for i in $(seq "$MIB"); do etcdctl --endpoints="$EP" put "/bench/$i" <"$T/blob" >/dev/null; done
echo "# filled in $(( ($(date +%s%N) - fill_start) / 1000000 )) ms" >&2

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
hwm_kib() { grep -o 'Maximum resident set size (kbytes): [0-9]*' "$1" | grep -o '[0-9]*$'; }

t=$(date +%s%N); etcdctl --endpoints="$EP" snapshot save "$T/etcdctl.db" >/dev/null 2>&1; ctl_ms=$(ms "$t")
size=$(stat -c %s "$T/etcdctl.db")

t=$(date +%s%N)
/usr/bin/time -v "$BIN" backup --state-dir "$T/state" --endpoints "$EP" --to "$T/eg.db" -o json >"$T/eg.json" 2>"$T/eg.time"
eg_ms=$(ms "$t"); eg_rss=$(hwm_kib "$T/eg.time")

s3rver_available || { echo "s3rver missing: run .ci/install-deps" >&2; exit 1; }
s3rver_start "$T/s3" bkt >/dev/null
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$T/creds"
t=$(date +%s%N)
/usr/bin/time -v "$BIN" backup --state-dir "$T/state" --endpoints "$EP" --to s3://bkt/bench.db --s3-endpoint "$S3_ENDPOINT" \
  --s3-force-path-style --aws-credentials-file "$T/creds" -o json >"$T/s3.json" 2>"$T/s3.time"
s3_ms=$(ms "$t"); s3_rss=$(hwm_kib "$T/s3.time")
s3rver_stop

t=$(date +%s%N)
etcdctl snapshot restore "$T/eg.db" --name m1 --initial-cluster m1=http://127.0.0.1:2380 \
  --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster-token bench --data-dir "$T/by-hand" >/dev/null 2>&1
hand_ms=$(ms "$t")
"$BUILD/bench_backup" "$T/eg.db" "$T/state" "$T/eg-restore" >"$T/restore.json"

python3 - "$size" "$ctl_ms" "$eg_ms" "$eg_rss" "$s3_ms" "$s3_rss" "$hand_ms" "$T/restore.json" "$T/eg.json" <<'EOF'
import json, sys
size, ctl, eg, eg_rss, s3, s3_rss, hand = (int(x) for x in sys.argv[1:8])
rest = json.load(open(sys.argv[8])); egj = json.load(open(sys.argv[9]))
mib = size / 2**20
tp = lambda ms: mib / (ms / 1000)
print(f"snapshot size           {mib:.0f} MiB (etcd-gitops db {egj['size']/2**20:.0f} MiB + 32-byte trailer)")
print(f"etcdctl snapshot save   {ctl} ms  {tp(ctl):.0f} MiB/s")
print(f"backup to File          {eg} ms  {tp(eg):.0f} MiB/s  ratio {ctl/eg:.2f} (target >= 0.8)  peak RSS {eg_rss/1024:.1f} MiB (target <= 32)")
print(f"backup to S3 (s3rver)   {s3} ms  {tp(s3):.0f} MiB/s  peak RSS {s3_rss/1024:.1f} MiB (target <= 32)")
print(f"restore by hand         {hand} ms (etcdctl snapshot restore)")
print(f"restore etcd-gitops     {rest['total_ms']} ms (fetch+verify {rest['fetch_verify_ms']} ms, etcdctl {rest['etcdctl_restore_ms']} ms)")
EOF
