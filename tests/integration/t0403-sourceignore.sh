#!/usr/bin/env bash
# .sourceignore: what it names is not read by validate, diff or apply, from a directory or
# from a git remote (where it is read from the commit, not from a work tree); a bad line is
# a warning; an invalid file it does not name still fails, and one it stops naming too.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

# expect_rc WANT WHAT COMMAND...: runs COMMAND with its output in $T/out and $T/err
expect_rc() {
  local want=$1 what=$2 rc=0
  shift 2
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ $rc -eq "$want" ] || fail "$what: exit $rc, want $want: $(cat "$T/out" "$T/err")"
}

# not manifests: a rules file that is not even valid YAML, and a dashboard
put_monitoring() {
  mkdir -p "$1/monitoring"
  printf 'groups:\n  - name: etcd\n    rules: [\n' >"$1/monitoring/rules.yml"
  printf '{"title": "etcd"}\n' >"$1/monitoring/dashboard.json"
}

say "directory: files beside the manifests fail validate without a .sourceignore"
cluster_yaml alpha 1
put_monitoring "$SRC"
expect_rc 1 "validate without .sourceignore" eg validate "$SRC"
grep -q 'monitoring/rules.yml:' "$T/err" || fail "rules.yml not reported: $(cat "$T/err")"

say "directory: what .sourceignore names is not read; a bad line is a warning"
printf '# alert rules and dashboards\n/monitoring/\n[oops\n' >"$SRC/.sourceignore"
expect_rc 0 "validate with .sourceignore" eg validate "$SRC"
grep -Eq '(^|/)\.sourceignore:3:1: warning: ' "$T/err" || fail "no warning at .sourceignore:3: $(cat "$T/err")"
if grep -q monitoring "$T/out" "$T/err"; then fail "an ignored file was read: $(cat "$T/out" "$T/err")"; fi
grep -Eq '^1 objects? valid, 0 invalid .* in 1 files?$' "$T/out" || fail "wrong summary: $(cat "$T/out")"
expect_rc 0 "apply from the directory" eg apply --source "$SRC" --wait=60s
healthy alpha 1 || fail "alpha not healthy: $(eg get members)"

say "directory: an invalid manifest it does not name still fails"
printf 'kind: [\n' >"$SRC/broken.yaml"
expect_rc 1 "validate with an invalid manifest" eg validate "$SRC"
expect_rc 1 "apply with an invalid manifest" eg apply --source "$SRC" --wait=5s
rm "$SRC/broken.yaml"
printf '[oops\n' >"$SRC/.sourceignore"
expect_rc 1 "validate once .sourceignore no longer names monitoring/" eg validate "$SRC"

say "git: .sourceignore files at the path and below it, read from the commit"
. "$EG_SOURCE_DIR/tests/lib/git.sh"
SRC="$W/clusters"
mkdir -p "$SRC/team"
cluster_yaml alpha 1
put_monitoring "$SRC"
printf '/monitoring/\n' >"$SRC/.sourceignore"
printf 'kind: [\n' >"$SRC/team/draft-next.yaml"
printf 'draft-*.yaml\n' >"$SRC/team/.sourceignore"
git -C "$W" add -A && git -C "$W" commit -q -m "alpha, monitoring, a draft" && git -C "$W" push -q origin HEAD:main 2>/dev/null
# the work tree no longer ignoring anything must not matter: the commit is read
: >"$SRC/.sourceignore"
: >"$SRC/team/.sourceignore"
expect_rc 0 "diff from git" eg diff --source "$URL" --path clusters
expect_rc 0 "apply from git" eg apply --source "$URL" --path clusters --wait=60s
if grep -qE 'monitoring|draft' "$T/out" "$T/err"; then fail "an ignored file was read: $(cat "$T/out" "$T/err")"; fi
healthy alpha 1 || fail "alpha not healthy: $(eg get members)"

say "git: a commit that stops ignoring the draft makes apply fail and leaves alpha alone"
alpha_pid=$(member_pids alpha)
printf '/monitoring/\n' >"$SRC/.sourceignore"
git -C "$W" add -A && git -C "$W" commit -q -m "team: read drafts" && git -C "$W" push -q origin HEAD:main 2>/dev/null
expect_rc 1 "apply with the draft read" eg apply --source "$URL" --path clusters --wait=5s
grep -q 'team/draft-next.yaml' "$T/out" "$T/err" || fail "the draft is not reported: $(cat "$T/out" "$T/err")"
if grep -q monitoring "$T/out" "$T/err"; then fail "monitoring/ was read: $(cat "$T/out" "$T/err")"; fi
[ "$(member_pids alpha)" = "$alpha_pid" ] || fail "alpha was changed"
echo "ok .sourceignore"
