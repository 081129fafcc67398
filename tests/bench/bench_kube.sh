#!/usr/bin/env bash
# The kubernetes runtime on the real kube-apiserver with the node stand-in, with image pulls of
# 0 s and 2 s in the same run: bring-up of 3 members (apply --wait), fail-over of one (kill -9 to
# 3 healthy again), 3 -> 5 and 5 -> 3 under `run`. Medians over ROUNDS, and the daemon's peak RSS.
# usage: tests/bench/bench_kube.sh BINARY [ROUNDS]   (as root; ../shared/kube-apiserver beside
# the checkout, or KUBE_APISERVER_DIR)
EG_BIN=$(realpath "$1")
EG_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${2:-3}
export EG_BIN EG_SOURCE_DIR
. "$EG_SOURCE_DIR/tests/lib/lib.sh"
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# settled NAME N: N members ready and the plan converged, read from the table (no python: its
# start-up would be most of what is measured)
settled() {
  eg get clusters "$1" "${K[@]}" 2>/dev/null |
    awk -v n="$2" 'NR == 2 { split($4, r, "/"); ok = r[1] == n && r[2] == n && $NF == "converged" } END { exit !ok }'
}
# time_until CMD...: ms until CMD succeeds, polled every 50 ms (at most 300 s)
time_until() {
  local t0 deadline
  t0=$(now_ms)
  deadline=$((t0 + 300000))
  until "$@" >/dev/null 2>&1; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "timed out: $*"
    sleep 0.05
  done
  echo $(($(now_ms) - t0))
}
pods_gone() { [ -z "$(kube_pods "$1")" ]; }
without() { settled "$1" 3 && ! eg get clusters "$1" "${K[@]}" -o json | grep -q "\"$2\""; }

for pull in 0 2; do
  node_ctl /knobs "{\"pullDelay\": $pull}" >/dev/null
  name=kb$pull
  up=() fo=() grow=() shrink=()
  for _ in $(seq "$ROUNDS"); do
    cluster_yaml "$name" 3
    t0=$(now_ms)
    eg apply "${K[@]}" --source "$SRC" --wait=180s >/dev/null 2>&1 || fail "apply of $name"
    up+=($(($(now_ms) - t0)))
    rm "$SRC/$name.yaml"
    eg apply "${K[@]}" --source "$SRC" --prune --allow-empty --delete-pruned-data --wait=60s >/dev/null 2>&1 || true
    wait_until 120 "the pods of $name gone" pods_gone "$name"
  done
  cluster_yaml "$name" 3
  start_daemon "${K[@]}" --listen none
  wait_until 180 "$name settled" settled "$name" 3
  for _ in $(seq "$ROUNDS"); do
    sleep 6 # a settled cluster: etcd refuses new members for 5 s after a voter (re)joins
    victim=$(kube_follower "$name")
    kube_kill "$victim"
    fo+=($(time_until without "$name" "$victim"))
    sleep 6
    cluster_yaml "$name" 5
    grow+=($(time_until settled "$name" 5))
    cluster_yaml "$name" 3
    shrink+=($(time_until settled "$name" 3))
  done
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
  stop_daemon
  rm "$SRC/$name.yaml"
  eg apply "${K[@]}" --source "$SRC" --prune --allow-empty --delete-pruned-data --wait=60s >/dev/null 2>&1 || true
  echo "pull ${pull}s: bring-up 3 $(printf '%s\n' "${up[@]}" | median) ms, fail-over $(printf '%s\n' "${fo[@]}" | median) ms," \
    "3->5 $(printf '%s\n' "${grow[@]}" | median) ms, 5->3 $(printf '%s\n' "${shrink[@]}" | median) ms" \
    "(medians of $ROUNDS); daemon peak RSS $((rss / 1024)) MiB"
done
