#!/usr/bin/env bash
# The CLI's small courtesies: `env` and `logs` for a cluster, one cluster-name resolver
# (backup ux finds uxtest/ux), diff hunks with - before +, diff taking ETCD_GITOPS_SOURCE,
# an option value that is another option refused, a bad ETCD_GITOPS_* value an error, and
# "did you mean" for commands, options and manifest fields.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

run() {
  local want=$1 rc=0; shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, want $want; stderr: $(cat "$T/err")"
}
ux_yaml() { cluster_yaml ux "$1" 3.4.23; sed -i 's/^  name: ux$/  name: ux\n  namespace: uxtest/' "$SRC/ux.yaml"; }

ux_yaml 1
run 0 eg apply --source "$SRC" --wait=60s

say "env prints the etcdctl environment to eval"
run 0 eg env ux
grep -qx "export ETCDCTL_ENDPOINTS='http://127.0.0.1:[0-9]*'" "$T/out" || fail "env: $(cat "$T/out")"
(eval "$(cat "$T/out")" && etcdctl --command-timeout=5s put /ux hello >/dev/null) || fail "etcdctl with the env of ux"
run 2 eg env nosuch
grep -qF "no cluster default/nosuch" "$T/err" || fail "env nosuch: $(cat "$T/err")"

say "logs prints the member logs under the state dir, -f follows them"
run 0 eg logs ux
grep -q "etcdserver" "$T/out" || fail "logs ux: $(head -n 3 "$T/out")"
run 0 eg logs uxtest/ux ux-0
run 2 eg logs ux ux-9
grep -qF "has no member named ux-9" "$T/err" || fail "logs ux ux-9: $(cat "$T/err")"
"$EG_BIN" logs ux ux-0 -f >"$T/follow" 2>&1 &
pid=$!
on_exit "kill $pid 2>/dev/null"
echo "a line appended by t0210" >>"$STATE/clusters/uxtest/ux/members/ux-0/etcd.log"
wait_until 10 "the appended line" grep -q "a line appended by t0210" "$T/follow"
kill -INT "$pid"
wait "$pid" || fail "logs -f exited non-zero after SIGINT"

say "backup NAME finds the cluster as get does; an ambiguous name is refused with the matches"
run 0 eg backup ux --to "$T/ux.db"
[ -s "$T/ux.db" ] || fail "no snapshot"
cluster_yaml ux 1 3.4.23
run 0 eg apply --source "$SRC" --wait=60s
run 2 eg backup ux --to "$T/ux2.db"
grep -qF "'ux' names more than one cluster: default/ux, uxtest/ux" "$T/err" || fail "ambiguous backup: $(cat "$T/err")"
rm "$SRC/ux.yaml"

say "diff prints - before + and takes ETCD_GITOPS_SOURCE"
ux_yaml 3
run 1 env ETCD_GITOPS_SOURCE="$SRC" "$EG_BIN" diff
hunk=$(sed -n '/^+++ desired\/uxtest\/ux/,/^cluster /p' "$T/out" | grep -E '^[-+][a-z]' | tr '\n' ' ')
[ "$hunk" = "-size: 1 +size: 3 " ] || fail "diff hunk: $hunk in $(cat "$T/out")"
run 2 eg diff

say "an option's value that is an option is refused; a bad ETCD_GITOPS_* value is an error"
run 2 eg run --source --listen 127.0.0.1:0
grep -qF "option '--source' needs SRC, got the option '--listen'" "$T/err" || fail "--source --listen: $(cat "$T/err")"
run 2 env ETCD_GITOPS_RUNTIME=foo "$EG_BIN" get
grep -qF "ETCD_GITOPS_RUNTIME='foo' is not a valid value" "$T/err" || fail "ETCD_GITOPS_RUNTIME=foo: $(cat "$T/err")"

say "did you mean: commands, options, manifest fields"
run 2 eg gett
grep -qF "did you mean 'get'?" "$T/err" || fail "gett: $(cat "$T/err")"
run 2 eg get --no-header
grep -qF "did you mean '--no-headers'?" "$T/err" || fail "--no-header: $(cat "$T/err")"
sed -i 's/^  size:/  sise:/' "$SRC/ux.yaml"
run 1 eg validate "$SRC"
grep -qF 'spec.sise: unknown field (did you mean "size"?)' "$T/err" || fail "sise: $(cat "$T/err")"
ux_yaml 3
run 0 eg validate "$SRC/ux.yaml"
grep -qx "1 object valid, 0 invalid (0 errors, 0 warnings) in 1 file" "$T/out" || fail "validate plural: $(cat "$T/out")"

say "ok"
