#!/usr/bin/env bash
# apply from a git remote (file://): clusters follow pushed commits, audit records name the
# commit, file and blob, diff takes an older commit, credentials never reach the output,
# a deleted manifest is pruned and an invalid one leaves its cluster alone.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

. "$EG_SOURCE_DIR/tests/lib/git.sh"
SRC="$W/clusters"
mkdir -p "$SRC"
# push MESSAGE: commits the work tree, pushes main, prints the commit id
push() {
  git -C "$W" add -A && git -C "$W" commit -q -m "$1" && git -C "$W" push -q origin HEAD:main 2>/dev/null
  git -C "$W" rev-parse HEAD
}
gapply() { eg apply --source "$URL" --path clusters "$@"; }

say "a pushed manifest is applied"
cluster_yaml alpha 1
cluster_yaml keep 1
c1=$(push "alpha and keep")
gapply --wait=60s
healthy alpha 1 || fail "alpha not healthy: $(eg get members)"
healthy keep 1 || fail "keep not healthy: $(eg get members)"
blob=$(git -C "$W" rev-parse "$c1:clusters/alpha.yaml")
rec=$(audit_json --revision "${c1:0:12}" --cluster default/alpha | jget 'json.dumps([r for r in d if r["decision"]=="create"][-1])') ||
  fail "no create record for alpha under ${c1:0:12}"
for want in "\"commit\": \"$c1\"" "\"path\": \"alpha.yaml\"" "\"blob\": \"$blob\"" "\"revision\": \"main@sha1:$c1\""; do
  echo "$rec" | grep -qF "$want" || fail "create record lacks $want: $rec"
done

say "a pushed resize is applied"
cluster_yaml alpha 3
c2=$(push "alpha: 3 members")
gapply --wait=120s
healthy alpha 3 || fail "alpha not 3 healthy members: $(eg get members)"
audit_json --revision "${c2:0:12}" --cluster default/alpha | jget 'len(d)' | grep -qvx 0 || fail "no record under ${c2:0:12}"

say "diff against the older commit: changes, exit 1"
set +e; eg diff --source "$URL" --path clusters --ref "$c1" >"$T/diff.txt" 2>"$T/diff.err"; rc=$?; set -e
[ $rc -eq 1 ] || fail "diff --ref <old> exit $rc, want 1: $(cat "$T/diff.txt" "$T/diff.err")"
grep -q alpha "$T/diff.txt" || fail "diff does not mention alpha: $(cat "$T/diff.txt")"
eg diff --source "$URL" --path clusters >/dev/null || fail "diff at the tip reports changes"

say "credentials stay out of the output"
echo "tok-SECRET-4711" >"$T/token"
set +e
eg diff --source "https://user:pa55word@127.0.0.1:1/x.git" --token-file "$T/token" >"$T/out.txt" 2>"$T/err.txt"; rc=$?
set -e
[ $rc -eq 2 ] || fail "diff of an unreachable remote exit $rc, want 2"
grep -q 'https://\*\*\*@127.0.0.1:1/x.git' "$T/err.txt" || fail "error does not name the redacted URL: $(cat "$T/err.txt")"
if grep -qE 'pa55word|tok-SECRET' "$T/out.txt" "$T/err.txt"; then fail "a credential was printed: $(cat "$T/err.txt")"; fi
if grep -rqE 'pa55word|tok-SECRET' "$STATE/git"; then fail "a credential was written to the cache"; fi

say "a deleted manifest is pruned"
alpha_pids=$(member_pids alpha)
keep_pid=$(member_pids keep)
git -C "$W" rm -q clusters/alpha.yaml
c3=$(push "drop alpha")
gapply --prune --wait=30s
for p in $alpha_pids; do
  wait_until 10 "alpha member $p to stop" pid_gone "$p"
done
audit_json --revision "${c3:0:12}" --cluster default/alpha | jget '[r["outcome"] for r in d if r["decision"]=="prune"]' |
  grep -q ok || fail "no prune record under ${c3:0:12}"

say "an invalid manifest leaves its cluster alone"
cluster_yaml keep three
c4=$(push "keep: invalid size")
set +e; gapply --prune --wait=10s; rc=$?; set -e
[ $rc -eq 1 ] || fail "apply with an invalid manifest exit $rc, want 1"
[ "$(member_pids keep)" = "$keep_pid" ] || fail "keep was changed"
! pid_gone "$keep_pid" || fail "keep was stopped"
rec=$(audit_json --cluster default/keep | jget 'json.dumps([r for r in d if r["decision"]=="invalid"][-1])') ||
  fail "no invalid record for keep"
line=$(grep -n 'size: three' "$SRC/keep.yaml" | cut -d: -f1)
for want in "\"commit\": \"$c4\"" "\"path\": \"keep.yaml\"" "\"line\": $line" "spec.size"; do
  echo "$rec" | grep -qF "$want" || fail "invalid record lacks $want: $rec"
done
eg audit verify >/dev/null || fail "audit chain broken"
