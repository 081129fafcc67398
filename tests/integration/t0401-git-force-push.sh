#!/usr/bin/env bash
# A force-pushed branch (rewritten history) is held at the last commit read with
# --refuse-force-push, across runs, and followed without it.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

. "$EG_SOURCE_DIR/tests/lib/git.sh"
SRC="$W"
push() {
  git -C "$W" add -A && git -C "$W" commit -q -m "$1" && git -C "$W" push -q -f origin HEAD:main 2>/dev/null
  git -C "$W" rev-parse HEAD
}

cluster_yaml fp 1
c1=$(push "fp: 1 member")
cluster_yaml fp 3
c2=$(push "fp: 3 members")
eg apply --source "$URL" --refuse-force-push --wait=120s
healthy fp 3 || fail "fp not 3 healthy members: $(eg get members)"
pids=$(member_pids fp)

say "history rewritten: c3 has 1 member and does not descend from c2"
git -C "$W" reset -q --hard "$c1"
echo "rewritten" >"$W/README"
c3=$(push "rewritten history")
git -C "$T/remote.git" merge-base --is-ancestor "$c2" "$c3" && fail "test setup: c3 descends from c2"

for run in 1 2; do
  eg apply --source "$URL" --refuse-force-push --wait=10s || fail "held apply $run did not converge"
  healthy fp 3 || fail "apply $run followed the force-push despite --refuse-force-push: $(eg get members)"
  [ "$(member_pids fp)" = "$pids" ] || fail "apply $run changed members while held"
done
audit_json --revision "${c3:0:12}" --cluster default/fp | jget 'len(d)' | grep -qx 0 ||
  fail "records were written under the refused commit ${c3:0:12}"

say "without --refuse-force-push the new history is followed"
eg apply --source "$URL" --wait=120s
healthy fp 1 || fail "fp did not follow the force-push to 1 member: $(eg get members)"
audit_json --revision "${c3:0:12}" --cluster default/fp | jget 'len(d)' | grep -qvx 0 || fail "no record under ${c3:0:12}"
eg audit verify >/dev/null || fail "audit chain broken"
