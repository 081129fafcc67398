#!/usr/bin/env bash
# After apply from git with --push-notes, the processed commit carries a note under
# refs/notes/etcd-gitops naming the cluster and its decision, visible in a fresh clone.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

. "$EG_SOURCE_DIR/tests/lib/git.sh"
SRC="$W"

cluster_yaml noted 1
git -C "$W" add -A && git -C "$W" commit -q -m "noted: 1 member" && git -C "$W" push -q origin HEAD:main 2>/dev/null
c1=$(git -C "$W" rev-parse HEAD)
eg apply --source "$URL" --push-notes --wait=60s
healthy noted 1 || fail "noted not healthy: $(eg get members)"

git clone -q "$URL" "$T/fresh"
git -C "$T/fresh" fetch -q origin 'refs/notes/*:refs/notes/*' ||
  fail "the remote has no notes: $(git -C "$T/remote.git" show-ref)"
note=$(git -C "$T/fresh" log -1 --notes=etcd-gitops --format=%N "$c1")
echo "$note" | grep -q noted || fail "the note does not name the cluster: '$note'"
echo "$note" | grep -q create || fail "the note does not name the decision: '$note'"
