# Shared helpers for integration tests: a private state dir, the binary, bounded waits,
# and a cleanup that stops every etcd process the test's state dir recorded, by pid.
# Tests source this file; ctest sets EG_BIN and EG_SOURCE_DIR.
set -euo pipefail

: "${EG_BIN:?EG_BIN must point at the etcd-gitops binary}"
: "${EG_SOURCE_DIR:?EG_SOURCE_DIR must point at the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/eg-test.XXXXXX")
STATE="$T/state"
SRC="$T/manifests"
mkdir -p "$STATE" "$SRC"
DAEMON_PID=
export ETCD_GITOPS_STATE_DIR="$STATE"
export NO_COLOR=1
export ETCDCTL_API=3

say() { printf '# %s\n' "$*" >&2; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  if [ -f "$T/daemon.log" ]; then echo "--- daemon log (tail)" >&2; tail -n 40 "$T/daemon.log" >&2; fi
  local log
  for log in $(find "$STATE/clusters" -name etcd.log 2>/dev/null | head -n 10); do
    echo "--- ${log#"$STATE"/} (tail)" >&2; tail -n 3 "$log" >&2
  done
  exit 1
}

# Every pid recorded in the state dir's cluster records.
recorded_pids() {
  find "$STATE" -name 'cluster.json*' -print0 2>/dev/null |
    xargs -0 -r python3 -c '
import json,sys
for p in sys.argv[1:]:
    try:
        d=json.load(open(p))
    except Exception:
        continue
    for m in d.get("members",[]):
        if m.get("pid"): print(m["pid"])' 2>/dev/null || true
}

# pid_gone PID: the process has exited. Members are detached (double fork), so their
# parent is whatever reaps orphans; in a container that may be nothing, and an exited
# member stays a zombie that `kill -0` still finds.
pid_gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# kill_daemon: the daemon, if one runs, stopped with SIGTERM, then SIGKILL after 5 s
kill_daemon() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
}

# on_exit COMMAND...: run at exit, before the daemon and members are stopped, newest first;
# TEST_RC holds the test's exit status by then (so a hook may print logs on failure).
EG_ON_EXIT=()
on_exit() { EG_ON_EXIT+=("$*"); }

cleanup() {
  TEST_RC=$?
  local rc=$TEST_RC i
  # a hook's own status must neither end the cleanup nor become the test's
  set +e
  for ((i = ${#EG_ON_EXIT[@]} - 1; i >= 0; i--)); do eval "${EG_ON_EXIT[i]}"; done
  kill_daemon
  # members run detached: find them by the pids recorded, and by their data dir
  local pids
  pids="$(recorded_pids) $(pgrep -f -- "--data-dir=$STATE/" 2>/dev/null || true)"
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT

eg() { "$EG_BIN" "$@"; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 100 ms until it
# succeeds, failing the test after SECONDS.
wait_until() {
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
  while ! "$@" >/dev/null 2>&1; do
    if [ $(( $(date +%s%N) / 1000000 )) -ge $deadline ]; then fail "timed out after ${secs}s waiting for: $what"; fi
    sleep 0.1
  done
}

# cluster_json NAME: `get clusters -o json` for one cluster (default namespace)
cluster_json() { eg get clusters "$1" -o json; }

# jq-like field extraction with python: jget 'expr' (reads JSON on stdin, d is the doc)
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

ready_count() { cluster_json "$1" | jget 'len(d[0]["status"]["members"]["ready"])'; }
voter_count() { cluster_json "$1" | jget 'sum(1 for m in d[0]["status"]["memberDetails"] if m["inMembership"] and m["role"]!="learner")'; }
member_count() { cluster_json "$1" | jget 'len(d[0]["status"]["memberDetails"])'; }
endpoints() { cluster_json "$1" | jget '",".join(d[0]["status"]["clientURLs"])'; }
member_pids() { cluster_json "$1" | jget '" ".join(str(m["pid"]) for m in sorted(d[0]["status"]["memberDetails"], key=lambda m: m["name"]) if m["pid"])'; }

# healthy NAME N: exactly N members, all ready, all voters
healthy() {
  local n
  n=$(cluster_json "$1" | jget 'len(d[0]["status"]["members"]["ready"]) if len(d[0]["status"]["memberDetails"])==len(d[0]["status"]["members"]["ready"]) and all(m["role"] in ("leader","follower") for m in d[0]["status"]["memberDetails"]) else -1') || return 1
  [ "$n" = "$2" ]
}

etcdctl_c() { local name=$1; shift; etcdctl --command-timeout=5s --endpoints="$(endpoints "$name")" "$@"; }

# cluster_yaml NAME SIZE [VERSION] [extra spec lines]: writes $SRC/NAME.yaml
cluster_yaml() {
  local name=$1 size=$2 version=${3:-3.4.23} extra=${4:-}
  cat >"$SRC/$name.yaml.tmp" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  name: $name
spec:
  size: $size
  version: "$version"
$extra
YAML
  mv "$SRC/$name.yaml.tmp" "$SRC/$name.yaml"
}

start_daemon() {
  "$EG_BIN" run --source "$SRC" "$@" >"$T/daemon.log" 2>&1 &
  DAEMON_PID=$!
}

stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  kill -TERM "$DAEMON_PID"
  local i
  for i in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$DAEMON_PID" 2>/dev/null && fail "daemon did not stop within 10s of SIGTERM"
  wait "$DAEMON_PID" || fail "daemon exited non-zero after SIGTERM"
  DAEMON_PID=
}

audit_json() { eg audit -o json "$@"; }

# check_snapshot FILE SHA SIZE: a snapshot as etcd sends it (the db, then its 32-byte sha256)
# whose db has the sha256 and size reported, and that etcdctl restores
check_snapshot() {
  local f=$1 sha=$2 size=$3 d
  [ -f "$f" ] || fail "no object $f"
  [ "$(stat -c %s "$f")" = $((size + 32)) ] || fail "$f is $(stat -c %s "$f") bytes, want $size + 32"
  [ "$(head -c "$size" "$f" | sha256sum | cut -d' ' -f1)" = "$sha" ] || fail "sha256 of $f is not $sha"
  d=$(mktemp -d "$T/restore.XXXXXX")
  etcdctl snapshot restore "$f" --data-dir "$d/data" >"$d/log" 2>&1 || { cat "$d/log" >&2; fail "etcdctl cannot restore $f"; }
}
