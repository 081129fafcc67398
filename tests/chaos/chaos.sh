#!/usr/bin/env bash
# Chaos test: a cluster under `run` keeps every acknowledged write through random faults.
#
# A writer puts keys throughout and logs each acknowledged put; a reader checks that
# linearizable reads never go back and see every put acknowledged before they started.
# Faults are drawn from a seeded generator, one after the other, each healed (or not
# waited for, now and then, so that faults overlap) before a deadline:
#   member   kill -9 a member              leader   kill -9 the leader
#   two      kill -9 two members           reboot   kill -9 every member and the daemon, start the daemon
#   daemon   kill -9 the daemon at a random point, start it again
#   replace  a member loses its disk (data dir removed, kill -9); the daemon is killed mid-replace
#   create   a second cluster's manifest appears; the daemon is killed mid-create; once it
#            converged its manifest is removed (pruned, data deleted)
#   sigstop  SIGSTOP a member; SIGCONT after a while, or left to the daemon
#   scale    3 -> 5 -> 3 in the manifest      pause    paused: true for a while (a kill meanwhile), then false
# At the end: every acknowledged put is there with its value and revision, the cluster has
# the manifest's size with every member a healthy voter (etcd's own member list agrees), no
# etcd process or member data dir under the state dir that no record owns, `audit verify`
# passes, no `quorum-lost` record (no fault destroys a majority's data), no sanitizer report,
# and the daemon stops cleanly on SIGTERM.
#
# Environment:
#   EG_CHAOS_SEED=N        reproduce a run (else random; always printed first): the seed fixes
#                          the faults drawn, in order, and their parameters; which member
#                          leads, and timings, are the run's own
#   EG_CHAOS_SEEDS="1 2 3" run once per seed, each in its own state dir; a summary at the end
#   EG_CHAOS_SECONDS=150   how long faults are injected (the run takes about 30-60 s more)
#   EG_CHAOS_FAULTS="..."  the fault kinds drawn from (default: all of the above)
#   EG_CHAOS_RECOVER=120   seconds a fault may take to heal before the test fails
#   EG_CHAOS_ARTIFACTS=DIR on failure, logs, records and the audit log are kept there (no data)
#   EG_CHAOS_UNFIXED=1     also draw the crash points main does not survive yet: the daemon
#                          killed mid-replace right after the record drops the dead member
#                          and before its dir is removed (the dir then stays forever)
#   EG_CHAOS_HOST=127.0.0.1 the address members listen on. The daemon reserves a port only
#                          among its own state dir's records, so a member that is down or
#                          not yet started can lose its port to a test running beside this
#                          one; another loopback address (127.0.0.N) keeps them apart
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ -n "${EG_CHAOS_SEEDS:-}" ] && [ -z "${EG_CHAOS_SEED:-}" ]; then
  passed=() failed=()
  for s in ${EG_CHAOS_SEEDS//,/ }; do
    printf '=== chaos seed %s\n' "$s"
    if EG_CHAOS_SEED=$s EG_CHAOS_SEEDS= bash "$HERE/chaos.sh"; then passed+=("$s"); else failed+=("$s"); fi
  done
  printf '=== chaos: %d seeds passed (%s), %d failed (%s)\n' "${#passed[@]}" "${passed[*]:-}" \
    "${#failed[@]}" "${failed[*]:-}"
  [ ${#failed[@]} -eq 0 ]
  exit
fi

SEED=${EG_CHAOS_SEED:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 ))}
case $SEED in '' | *[!0-9]*) echo "EG_CHAOS_SEED must be a number, not '$SEED'" >&2; exit 2 ;; esac
printf 'chaos: seed %s (reproduce with EG_CHAOS_SEED=%s)\n' "$SEED" "$SEED"
printf 'chaos: seed %s\n' "$SEED" >&2

. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
# faults make many commands fail on purpose (a kill of a pid already gone, a member that
# does not answer): what matters is checked where it happens
set +e

SECONDS_FAULTS=${EG_CHAOS_SECONDS:-150}
RECOVER=${EG_CHAOS_RECOVER:-120}
FAULTS=${EG_CHAOS_FAULTS:-member leader two reboot daemon replace create sigstop scale pause}
FAULTS=${FAULTS//,/ }
VERSION=3.4.23
CL=chaos
# only this shell draws from the generator (never a subshell), so a seed gives one sequence
RANDOM=$SEED

CLIENT=(python3 "$HERE/chaos_client.py" --state "$STATE" --eg-bin "$EG_BIN")
ACKS="$T/acks.log"
VIOLATIONS="$T/violations.log"
STOP="$T/stop-clients"
FLOG="$T/faults.log"
: >"$ACKS" >"$VIOLATIONS" >"$FLOG"
SIZE=3 PAUSED=0 NFAULT=0 DAEMON_STARTS=0 SIDES=0
WRITER_PID= READER_PID=
T0=$(($(date +%s%N) / 1000000))

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# rnd N: R = a number in [0, N) from the seeded generator (a global, to stay in this shell)
rnd() { R=$((RANDOM % $1)); }
flog() {
  local line
  line=$(printf '%s +%6.1fs %s' "$(date -u +%H:%M:%S.%3N)" "$(( $(now_ms) - T0 ))e-3" "${TAG:-}$*")
  echo "$line" >>"$FLOG"
  echo "# $line" >&2
}

manifest() {
  local extra=
  [ "$PAUSED" = 1 ] && extra="  paused: true"
  cluster_yaml "$CL" "$SIZE" "$VERSION" "$extra" || fail "cannot write the manifest"
}

start_eg() {
  DAEMON_STARTS=$((DAEMON_STARTS + 1))
  echo "=== chaos: daemon start #$DAEMON_STARTS at $(date -u +%H:%M:%S.%3N)" >>"$T/daemon.log"
  # no HTTP listener: the default port is shared by every daemon on this host
  "$EG_BIN" run --source "$SRC" --listen none --prune --delete-pruned-data \
    --advertise-host "${EG_CHAOS_HOST:-127.0.0.1}" >>"$T/daemon.log" 2>&1 &
  DAEMON_PID=$!
}

# A daemon that is gone although nobody killed it crashed: that is a finding, not a fault.
daemon_check() {
  [ -n "$DAEMON_PID" ] || return 0
  kill -0 "$DAEMON_PID" 2>/dev/null && return 0
  local rc=0
  wait "$DAEMON_PID" 2>/dev/null || rc=$?
  DAEMON_PID=
  fail "the daemon exited on its own (status $rc)"
}

kill9_daemon() {
  daemon_check
  kill -KILL "$DAEMON_PID" 2>/dev/null || true
  wait "$DAEMON_PID" 2>/dev/null || true
  echo "=== chaos: daemon #$DAEMON_STARTS killed with SIGKILL at $(date -u +%H:%M:%S.%3N)" >>"$T/daemon.log"
  DAEMON_PID=
}

# await SECS WHAT CMD...: polls CMD until it succeeds; the time taken in WAITED (seconds)
await() {
  local secs=$1 what=$2; shift 2
  local t0 deadline
  t0=$(now_ms); deadline=$((t0 + secs * 1000))
  while ! "$@" >/dev/null 2>&1; do
    daemon_check
    [ "$(now_ms)" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.2
  done
  WAITED=$(printf '%.1f' "$(( $(now_ms) - t0 ))e-3")
}

# Sets PIDS (the members' etcd processes, by name), NAMES and LEADER_PID (empty when etcd
# names no leader) from /proc and etcd itself.
look() {
  local out
  out=$("${CLIENT[@]}" procs --cluster "$CL" 2>/dev/null) || out=
  PIDS=() NAMES=() LEADER_PID=
  eval "$out"
}

converged() { healthy "$CL" "$SIZE"; }
side_healthy() { healthy "$1" 3; }
# a zombie counts as gone: where no init reaps orphans (a bare container), it stays
pid_not_stopped() { pid_gone "$1" || ! grep -q '^State:.*T (stopped)' "/proc/$1/status" 2>/dev/null; }
pids_gone() { local p; for p in "$@"; do pid_gone "$p" || return 1; done; return 0; }
member_procs() { pgrep -f -- "--data-dir=$STATE/clusters/default/$1/members/" || true; }
no_member_procs() { [ -z "$(member_procs "$1")" ]; }
not_listed() { ! eg get clusters "$1" -o json; }
# the status file the daemon writes each pass: `get` can take tens of seconds on a loaded host
paused_seen() {
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["status"].get("controlPaused") else 1)' \
    "$STATE/status/default/$CL.json"
}

# random_member: VICTIM_PID/VICTIM a random running member (empty when none runs)
random_member() {
  look
  VICTIM_PID= VICTIM=
  [ ${#PIDS[@]} -gt 0 ] || return 0
  rnd ${#PIDS[@]}
  VICTIM_PID=${PIDS[R]} VICTIM=${NAMES[R]}
}

heal() {
  local what=${1:-"$SIZE healthy members"}
  await "$RECOVER" "$what" converged
  flog "   healed: $SIZE healthy in ${WAITED}s"
}

# ---- faults: each leaves the cluster to heal; the caller waits (or, now and then, does not)

f_member() {
  random_member
  [ -n "$VICTIM_PID" ] || { flog "member: no member runs"; return; }
  flog "member: kill -9 $VICTIM (pid $VICTIM_PID)"
  kill -KILL "$VICTIM_PID" 2>/dev/null || true
}

f_leader() {
  look
  if [ -z "$LEADER_PID" ]; then flog "leader: no leader now, a member instead"; f_member; return; fi
  local i name=?
  for i in "${!PIDS[@]}"; do [ "${PIDS[i]}" = "$LEADER_PID" ] && name=${NAMES[i]}; done
  flog "leader: kill -9 $name (pid $LEADER_PID)"
  kill -KILL "$LEADER_PID" 2>/dev/null || true
}

f_two() {
  look
  [ ${#PIDS[@]} -ge 2 ] || { flog "two: fewer than two members run, one instead"; f_member; return; }
  rnd ${#PIDS[@]}; local a=$R
  rnd $((${#PIDS[@]} - 1)); local b=$(((a + 1 + R) % ${#PIDS[@]}))
  flog "two: kill -9 ${NAMES[a]} (pid ${PIDS[a]}) and ${NAMES[b]} (pid ${PIDS[b]})"
  kill -KILL "${PIDS[a]}" "${PIDS[b]}" 2>/dev/null || true
}

f_reboot() {
  local pids
  pids=$(member_procs "$CL")
  flog "reboot: kill -9 the daemon and every member ($(echo $pids))"
  kill9_daemon
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  # shellcheck disable=SC2086
  await 30 "the killed members to be gone" pids_gone $pids
  start_eg
  flog "   daemon started again"
}

f_daemon() {
  rnd 2000; local at=$R
  flog "daemon: kill -9 the daemon in ${at} ms"
  sleep_ms "$at"
  kill9_daemon
  rnd 2
  if [ "$R" = 1 ]; then
    rnd 3000
    flog "   daemon down for ${R} ms"
    sleep_ms "$R"
  fi
  start_eg
  flog "   daemon started again"
}

# A member's disk is lost, so it must be replaced by a new identity; the daemon is killed
# during the replacement: when the record drops the member, when its successor is prepared
# or started, or after a random delay.
f_replace() {
  if ! converged; then flog "replace: not converged, a plain member kill instead"; f_member; return; fi
  random_member
  [ -n "$VICTIM_PID" ] || { flog "replace: no member runs"; return; }
  local next idx="int(x['name'].rsplit('-',1)[1])"
  next=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["next_index"])' \
    "$STATE/clusters/default/$CL/cluster.json")
  rnd 4
  if [ "$R" = 0 ] && [ "${EG_CHAOS_UNFIXED:-0}" != 1 ]; then
    # the point main does not survive yet: see EG_CHAOS_UNFIXED above
    rnd 3; R=$((R + 1))
  fi
  case $R in
    0) POINT=removed POINT_COND="not any(x['name']=='$VICTIM' for x in m)" ;;
    1) POINT=prepared POINT_COND="any($idx>=$next and not $STARTED for x in m)" ;;
    2) POINT=started POINT_COND="any($idx>=$next and $STARTED for x in m)" ;;
    3) rnd 4000; POINT="${R}ms" POINT_COND= ;;
  esac
  flog "replace: $VICTIM (pid $VICTIM_PID) loses its data dir and is killed; the daemon is killed at: $POINT"
  arm_crash "$CL" 30
  rm -rf "$STATE/clusters/default/$CL/members/$VICTIM/data"
  kill -KILL "$VICTIM_PID" 2>/dev/null
  crash
  flog "   daemon killed; $KILLED_AT"
  start_eg
  flog "   daemon started again"
}

# await_quiet SECS CMD...: like await, but a timeout is the caller's business
await_quiet() {
  local secs=$1; shift
  local deadline=$(($(now_ms) + secs * 1000))
  while ! "$@" >/dev/null 2>&1; do
    daemon_check
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# arm_crash CLUSTER SECS: when POINT_COND is set, a watcher SIGKILLs the daemon the moment
# the condition (Python, over the cluster record's members m) holds, or gives up after SECS;
# it is polling when this returns, so the change that leads there may be made next
arm_crash() {
  WATCHER= WATCHED=$1
  [ -n "$POINT_COND" ] || return 0
  daemon_check
  rm -f "$T/watcher.ready"
  "${CLIENT[@]}" kill-when --cluster "$1" --pid "$DAEMON_PID" --deadline "$2" --cond "$POINT_COND" \
    --ready-file "$T/watcher.ready" >"$T/watcher.out" 2>&1 &
  WATCHER=$!
  # a process start can take long on a loaded host; the watcher polls from then on
  await 60 "the crash watcher to start" test -e "$T/watcher.ready"
}

# crash: the daemon killed at POINT; KILLED_AT tells what the record held then
crash() {
  if [ -z "$WATCHER" ]; then
    sleep_ms "${POINT%ms}"
    kill9_daemon
    KILLED_AT="record: $(record_summary "$WATCHED")"
    return
  fi
  local rc=0
  wait "$WATCHER" || rc=$?
  WATCHER=
  case $rc in
    0)
      wait "$DAEMON_PID" 2>/dev/null
      echo "=== chaos: daemon #$DAEMON_STARTS killed with SIGKILL at $(date -u +%H:%M:%S.%3N)" >>"$T/daemon.log"
      DAEMON_PID=
      KILLED_AT="record: $(cat "$T/watcher.out")" ;;
    2) daemon_check ;;
    *)
      KILLED_AT="(not seen: $(cat "$T/watcher.out")) record: $(record_summary "$WATCHED")"
      kill9_daemon ;;
  esac
}

# a member of the record started, or not (prepared), by its state
STARTED="x.get('state')=='started'"
# kill_point KIND...: a kill point drawn among the record conditions named (prepared:
# no member started yet; half: some started, some not; started: all started) or a random
# delay; sets POINT and POINT_COND
kill_point() {
  local n=$(($# + 1))
  rnd $n
  if [ "$R" -ge $# ]; then
    rnd 2500; POINT="${R}ms" POINT_COND=
    return
  fi
  shift "$R"; POINT=$1
  case $POINT in
    prepared) POINT_COND="len(m)>0 and not any($STARTED for x in m)" ;;
    half) POINT_COND="any($STARTED for x in m) and any(not $STARTED for x in m)" ;;
    started) POINT_COND="len(m)==3 and all($STARTED for x in m)" ;;
  esac
}

# sleep_ms N: a fault's own timing (how long a process stays down), never a wait for a state
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

record_summary() {
  python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("unreadable: %s" % e); sys.exit()
print(", ".join("%s %s%s" % (m["name"], m.get("state"), " pid %s" % m["pid"] if m.get("pid") else "") for m in d.get("members") or []))
' "$STATE/clusters/default/$1/cluster.json"
}

f_create() {
  SIDES=$((SIDES + 1))
  local side=side$SIDES
  kill_point prepared half started
  flog "create: manifest of $side (3 members); the daemon is killed at: $POINT"
  arm_crash "$side" 60
  cluster_yaml "$side" 3 "$VERSION"
  crash
  flog "   daemon killed; $KILLED_AT"
  start_eg
  await "$RECOVER" "$side to have 3 healthy members after a crash mid-create" side_healthy "$side"
  flog "   $side: 3 healthy in ${WAITED}s"
  etcdctl --command-timeout=10s --endpoints="$(endpoints "$side")" put /side yes >/dev/null ||
    fail "$side does not take a put"
  rm "$SRC/$side.yaml"
  await "$RECOVER" "$side to be pruned" no_member_procs "$side"
  await "$RECOVER" "$side to be gone from get clusters" not_listed "$side"
  flog "   $side pruned in ${WAITED}s"
}

f_sigstop() {
  random_member
  [ -n "$VICTIM_PID" ] || { flog "sigstop: no member runs"; return; }
  rnd 2
  if [ "$R" = 1 ]; then
    rnd 7000; local hold=$((R + 1000))
    flog "sigstop: $VICTIM (pid $VICTIM_PID) stopped for $hold ms"
    kill -STOP "$VICTIM_PID" 2>/dev/null || true
    sleep_ms "$hold"
    kill -CONT "$VICTIM_PID" 2>/dev/null || true
  else
    flog "sigstop: $VICTIM (pid $VICTIM_PID) stopped, left to the daemon"
    kill -STOP "$VICTIM_PID" 2>/dev/null || true
    STOPPED_PID=$VICTIM_PID
  fi
}

f_scale() {
  local from=$SIZE
  if [ "$SIZE" = 3 ]; then SIZE=5; else SIZE=3; fi
  flog "scale: $from -> $SIZE in the manifest"
  manifest
}

f_pause() {
  PAUSED=1; manifest
  flog "pause: paused: true"
  await "$RECOVER" "paused in status" paused_seen
  rnd 2
  [ "$R" = 1 ] && f_member
  rnd 4000
  sleep_ms $((R + 1000))
  PAUSED=0; manifest
  flog "   paused: false"
}

# ---- failure report

report() {
  [ "${TEST_RC:-0}" -ne 0 ] || return 0
  {
    echo "=== chaos FAILED: seed $SEED (reproduce: EG_CHAOS_SEED=$SEED EG_CHAOS_SECONDS=$SECONDS_FAULTS EG_CHAOS_FAULTS='$FAULTS')"
    echo "--- faults"; cat "$FLOG"
    echo "--- members now"; eg get members "$CL" 2>&1 | head -20
    echo "--- record: $(record_summary "$CL")"
    echo "--- last audit records"
    audit_json 2>/dev/null | python3 -c '
import json, sys
for r in json.load(sys.stdin)[-25:]:
    print("%s %-14s %-10s %-8s %s %s" % (r["time"][11:23], r.get("cluster", "-"), r["decision"], r.get("outcome", ""),
          r.get("member") or "", (r.get("reason") or "") + ("; error: " + r["error"] if r.get("error") else "")))' 2>&1
    echo "--- writer errors (last 10)"; tail -n 10 "$ACKS.errors" 2>/dev/null
    [ -s "$VIOLATIONS" ] && { echo "--- reader violations"; head -n 20 "$VIOLATIONS"; }
    echo "--- daemon log (last 60 lines)"; tail -n 60 "$T/daemon.log"
  } >&2
  if [ -n "${EG_CHAOS_ARTIFACTS:-}" ]; then
    mkdir -p "$EG_CHAOS_ARTIFACTS"
    local f
    f="$EG_CHAOS_ARTIFACTS/chaos-seed$SEED-$(date -u +%Y%m%dT%H%M%S).tar.gz"
    tar -C "$T" --exclude=data -czf "$f" . 2>/dev/null && echo "=== chaos: logs and records kept in $f" >&2
  fi
}
on_exit report

stop_clients() {
  touch "$STOP"
  local p
  for p in $WRITER_PID $READER_PID; do
    await_quiet 15 pid_gone "$p" || kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  WRITER_PID= READER_PID=
  cat "$T/writer.out" "$T/reader.out" 2>/dev/null
}
on_exit 'touch "$STOP"; [ -z "$WRITER_PID$READER_PID" ] || kill -KILL $WRITER_PID $READER_PID 2>/dev/null || true'

# ---- the run

have() { case " $FAULTS " in *" $1 "*) return 0 ;; esac; return 1; }
for f in $FAULTS; do declare -F "f_$f" >/dev/null || { echo "unknown fault kind '$f'" >&2; exit 2; }; done
say "faults: $FAULTS; ${SECONDS_FAULTS}s of faults, ${RECOVER}s to heal each"

start_eg
rnd 2
if have create && [ "$R" = 1 ]; then
  kill_point prepared half started
  flog "create: the daemon is killed while it creates $CL, at: $POINT"
  arm_crash "$CL" 60
  manifest
  crash
  flog "   daemon killed; $KILLED_AT"
  start_eg
else
  manifest
fi
await "$RECOVER" "$CL to be created" converged
flog "$CL: $SIZE healthy in ${WAITED}s"
CID=$("${CLIENT[@]}" cluster-id --deadline 30) || fail "no member of $CL tells its cluster ID"
CLIENT+=(--cluster-id "$CID")

"${CLIENT[@]}" writer --ack-log "$ACKS" --stop-file "$STOP" --seed "$SEED" >"$T/writer.out" 2>&1 &
WRITER_PID=$!
"${CLIENT[@]}" reader --ack-log "$ACKS" --violations "$VIOLATIONS" --stop-file "$STOP" >"$T/reader.out" 2>&1 &
READER_PID=$!
await "$RECOVER" "a first acknowledged put" test -s "$ACKS"
flog "writer and reader started (cluster ID $CID)"

WEIGHTS="member:3 leader:3 two:2 reboot:1 daemon:2 replace:2 create:1 sigstop:2 scale:2 pause:1"
POOL=()
for w in $WEIGHTS; do
  have "${w%:*}" || continue
  for _ in $(seq "${w#*:}"); do POOL+=("${w%:*}"); done
done
[ ${#POOL[@]} -gt 0 ] || { echo "EG_CHAOS_FAULTS names no fault" >&2; exit 2; }

END=$(($(now_ms) + SECONDS_FAULTS * 1000))
STOPPED=() KINDS=()
while [ "$(now_ms)" -lt "$END" ]; do
  rnd ${#POOL[@]}; kind=${POOL[R]}
  NFAULT=$((NFAULT + 1))
  KINDS+=("$kind")
  printf -v TAG '#%-3d ' "$NFAULT"
  STOPPED_PID=
  "f_$kind"
  daemon_check
  [ -z "$STOPPED_PID" ] || STOPPED+=("$STOPPED_PID")
  # overlapping kills can take a majority down, as `two` does: only where `two` is drawn
  rnd 4
  if [ "$R" = 0 ] && have two && case $kind in member | leader | daemon) true ;; *) false ;; esac; then
    flog "   not waiting for it to heal"
    continue
  fi
  heal
  # a member left stopped is the daemon's to kill once it judged it dead
  for p in "${STOPPED[@]}"; do
    await_quiet 30 pid_not_stopped "$p" || fail "pid $p, stopped with SIGSTOP, is still stopped 30 s after the cluster healed without it"
  done
  STOPPED=()
done
TAG=

flog "faults over ($NFAULT); the manifest as it stands: size $SIZE"
if [ "$PAUSED" = 1 ]; then PAUSED=0; manifest; fi
await "$RECOVER" "final convergence to $SIZE healthy members" converged
flog "converged: $SIZE healthy in ${WAITED}s"
stop_clients

# ---- the checks
problems=()
[ -s "$VIOLATIONS" ] && problems+=("the reader saw $(wc -l <"$VIOLATIONS") linearizability violations")
if ! "${CLIENT[@]}" verify --ack-log "$ACKS" >"$T/verify.out" 2>&1; then problems+=("acknowledged writes lost or changed"); fi
cat "$T/verify.out"

etcd_members=$("${CLIENT[@]}" members --deadline 30) || problems+=("no member answered a member list")
voters=$(grep -c ' voter$' <<<"$etcd_members" || true)
learners=$(grep -c ' learner$' <<<"$etcd_members" || true)
[ "$voters" = "$SIZE" ] && [ "$learners" = 0 ] ||
  problems+=("etcd's member list has $voters voters and $learners learners, the manifest $SIZE members: $(echo $etcd_members)")
look
[ "$(printf '%s\n' "${NAMES[@]}" | sort)" = "$(awk '{print $1}' <<<"$etcd_members" | sort)" ] ||
  problems+=("running members (${NAMES[*]}) are not etcd's ($(echo $etcd_members))")

orphans=$("${CLIENT[@]}" orphans --clusters "default/$CL") || problems+=("orphans: $(echo "$orphans" | paste -sd';')")
[ -z "$orphans" ] || echo "$orphans" >&2

stop_daemon
eg audit verify >/dev/null || problems+=("audit verify fails: $(eg audit verify 2>&1 | tail -n 2)")
ql=$(audit_json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r["decision"] == "quorum-lost":
        print("%s %s: %s" % (r["time"][11:23], r.get("cluster"), r.get("reason")))')
if [ -n "$ql" ]; then
  echo "--- quorum-lost records, with the fault before each" >&2
  while read -r t rest; do
    printf '%s %s\n   after: %s\n' "$t" "$rest" "$(awk -v t="$t" '$1 <= t' "$FLOG" | grep ' #' | tail -n 1)" >&2
  done <<<"$ql"
  problems+=("$(wc -l <<<"$ql") quorum-lost records, although no fault destroyed a majority's data")
fi
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/daemon.log"; then
  grep -nE -A5 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/daemon.log" | head -n 40 >&2
  problems+=("a sanitizer report in the daemon log")
fi

printf 'chaos: seed %s, %d faults in %ds (%s), %d daemon starts, %s acknowledged puts\n' "$SEED" "$NFAULT" \
  "$(( ($(now_ms) - T0) / 1000 ))" "$(printf '%s\n' "${KINDS[@]}" | sort | uniq -c | awk '{printf "%s%s %s", (NR>1?", ":""), $1, $2}')" \
  "$DAEMON_STARTS" "$(wc -l <"$ACKS")"
if [ ${#problems[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "chaos: seed $SEED passed"
