#!/usr/bin/env bash
# Under systemd, stderr is the journal's stream (JOURNAL_STREAM names its device and inode):
# every line then starts with its syslog priority, so `journalctl -p err` finds errors and
# warnings of the daemon and of manifests. Anywhere else, lines carry no such prefix.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

printf 'apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata: {name: bad}\nspec: {size: -1}\n' >"$SRC/bad.yaml"
journal() { # journal FILE CMD...: CMD with stderr on FILE, JOURNAL_STREAM naming it
  local f=$1; shift
  : >"$f"
  JOURNAL_STREAM="$(stat -L -c '%d:%i' "$f")" "$@" 2>>"$f" >/dev/null || true
}

say "a manifest error and a command error on the journal"
journal "$T/j1" eg apply --source "$SRC" --wait=1s
grep -q '^<3>bad.yaml:4:[0-9]*: error: spec.size' "$T/j1" || { cat "$T/j1" >&2; fail "the manifest error has no <3>"; }
journal "$T/j2" eg apply --source "$T/missing"
grep -q '^<3>etcd-gitops: error: source' "$T/j2" || { cat "$T/j2" >&2; fail "the error has no <3>"; }

say "the daemon's info and error lines"
rm "$SRC/bad.yaml"
cluster_yaml jp 1
: >"$T/daemon.log"
JOURNAL_STREAM="$(stat -L -c '%d:%i' "$T/daemon.log")" "$EG_BIN" run --source "$SRC" --listen none >/dev/null 2>>"$T/daemon.log" &
DAEMON_PID=$!
wait_until 60 "1 healthy member" healthy jp 1
printf 'kind: EtcdCluster\n' >"$SRC/broken.yaml"
kill -HUP "$DAEMON_PID"
broken_logged() { grep -q '^<3>etcd-gitops: error: broken.yaml:1:1: ' "$T/daemon.log"; }
wait_until 30 "the broken file's error with <3>" broken_logged
grep -q '^<6>etcd-gitops: default/jp: create' "$T/daemon.log" || fail "the create line has no <6>"
grep -v '^<[3467]>' "$T/daemon.log" | grep . && fail "lines without a priority on the journal"
stop_daemon

say "stderr that is not the journal stream: no prefix"
printf 'kind: EtcdCluster\n' >"$T/other.yaml"
JOURNAL_STREAM="1:2" eg validate "$T/other.yaml" 2>"$T/plain" >/dev/null || true
grep -q '^other.yaml:1:1: error\|/other.yaml:1:1: error' "$T/plain" || { cat "$T/plain" >&2; fail "validate printed no error"; }
grep -q '^<' "$T/plain" && fail "a prefix where stderr is no journal"
true
