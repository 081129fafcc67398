#!/usr/bin/env bash
# apply killed at each point of a create (before any member starts, between starting a
# member and recording it, between two member starts): the next apply completes the
# same cluster, with the members it meant to create, and leaves no orphan process.
# Interrupted with SIGINT, apply finishes its step first.
# strace delivers the SIGKILL at an exact system call, so each crash point is hit every time.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
command -v strace >/dev/null || { say "SKIP: strace is not installed (.ci/install-deps installs it)"; exit 0; }

recorded_states() { python3 -c 'import json,sys; print(" ".join(m["state"] for m in json.load(open(sys.argv[1]))["members"]))' "$STATE/clusters/default/$1/cluster.json"; }
processes() { pgrep -f -- "--data-dir=$STATE/clusters/default/$1/" | wc -l; }

# crash NAME SYSCALL N: apply a new cluster NAME, killed at the Nth SYSCALL
crash() {
  cluster_yaml "$1" 3
  set +e
  strace -o /dev/null -e trace="$2" -e inject="$2":signal=SIGKILL:when="$3" "$EG_BIN" apply --source "$SRC" >"$T/apply.log" 2>&1
  local rc=$?
  set -e
  [ $rc -eq 137 ] || { cat "$T/apply.log" >&2; fail "apply was not killed at $2 #$3 (exit $rc)"; }
}

# resumed NAME: a second apply finishes the create: the same three members, healthy, one process each
resumed() {
  eg apply --source "$SRC" --wait=60s >"$T/apply2.log" 2>&1 || { cat "$T/apply2.log" >&2; fail "$1: the apply after the crash did not converge"; }
  cat "$T/apply2.log" >&2
  healthy "$1" 3 || fail "$1 not healthy after the second apply"
  [ "$(cluster_json "$1" | jget '" ".join(sorted(m["name"] for m in d[0]["status"]["memberDetails"]))')" = "$1-0 $1-1 $1-2" ] ||
    fail "$1: not the members the create meant: $(cluster_json "$1" | jget '[m["name"] for m in d[0]["status"]["memberDetails"]]')"
  [ "$(processes "$1")" = 3 ] || fail "$1: $(processes "$1") etcd processes, expected 3 (an orphan?)"
  etcdctl_c "$1" put /after-crash ok >/dev/null || fail "$1: cannot write after the resumed create"
  rm -f "$SRC/$1.yaml"
}

say "killed before the first member starts"
crash a clone 1
[ "$(recorded_states a)" = "prepared prepared prepared" ] || fail "crash point missed: $(recorded_states a)"
[ "$(processes a)" = 0 ] || fail "a member ran before the crash"
resumed a

say "killed between starting the first member and recording it"
crash b rename 2
[ "$(recorded_states b)" = "prepared prepared prepared" ] || fail "crash point missed: $(recorded_states b)"
[ "$(processes b)" = 1 ] || fail "expected the first member running unrecorded"
resumed b

say "killed between the first and second member starts"
crash c clone 2
[ "$(recorded_states c)" = "started prepared prepared" ] || fail "crash point missed: $(recorded_states c)"
resumed c

say "Ctrl-C during apply: the step under way finishes, apply says so and exits 1"
cluster_yaml d 3
"$EG_BIN" apply --source "$SRC" --wait=2m >"$T/apply.log" 2>&1 &
apid=$!
record_made() { [ -s "$STATE/clusters/default/d/cluster.json" ]; }
wait_until 30 "the create under way" record_made
kill -INT "$apid"
set +e
wait "$apid"
rc=$?
set -e
[ $rc -eq 1 ] || { cat "$T/apply.log" >&2; fail "apply interrupted exited $rc, expected 1"; }
grep -q "stopped after the step under way" "$T/apply.log" || { cat "$T/apply.log" >&2; fail "apply did not say why it stopped"; }
[ "$(recorded_states d)" = "started started started" ] || fail "the create was left half-done: $(recorded_states d)"
resumed d

eg audit verify >/dev/null || fail "audit chain broken"
