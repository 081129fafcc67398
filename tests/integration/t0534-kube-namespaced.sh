#!/usr/bin/env bash
# Namespaced operation on the real kube-apiserver: the service account of
# examples/kubernetes/rbac.yaml, its ClusterRole bound only by RoleBindings (no ClusterRoleBinding,
# so it may not list pods across namespaces), runs apply, diff, get and run with and without -n in
# the namespaces the source names. A namespace without the RoleBinding is named with the verb,
# resource and the kubectl command that adds it; the daemon is not ready while it cannot see
# it, and is once the RoleBinding is there. A cluster whose manifest is deleted is still pruned:
# its namespace, which the source no longer names, is remembered in the state dir.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"

# ns_cluster NAME NS: a one-member cluster in namespace NS, $SRC/NAME.yaml
ns_cluster() {
  cat >"$SRC/$1.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  name: $1
  namespace: $2
spec:
  size: 1
  version: "3.4.23"
YAML
}
# role_binding NS: the RoleBinding rbac.yaml has in default, in NS
role_binding() {
  cat <<YAML
---
apiVersion: v1
kind: Namespace
metadata:
  name: $1
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: etcd-gitops-runtime
  namespace: $1
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: etcd-gitops-runtime
subjects:
  - kind: ServiceAccount
    name: etcd-gitops
    namespace: etcd-gitops
YAML
}
# ns_pods NS CLUSTER: names of the cluster's pods that are not being deleted
ns_pods() {
  kube_api "/api/v1/namespaces/$1/pods?labelSelector=etcd_cluster%3D$2" |
    jget '" ".join(sorted(p["metadata"]["name"] for p in d["items"] if not p["metadata"].get("deletionTimestamp")))'
}
# ready_in NAME: the cluster's ready members as `get` (no -n) reports them
ready_in() { eg get clusters "$1" "${SA[@]}" -o json | jget 'len(d[0]["status"]["members"]["ready"])'; }
one_ready() { [ "$(ready_in "$1")" = 1 ]; }
# run CMD...: exit status in RC, stdout and stderr in $T/out
run() {
  set +e
  "$@" >"$T/out" 2>&1
  RC=$?
  set -e
}
GRANT_B="kubectl create rolebinding etcd-gitops-runtime --namespace team-b --clusterrole etcd-gitops-runtime --serviceaccount etcd-gitops:etcd-gitops"

start_kube_server
# rbac.yaml as it is (its RoleBinding in default, the Lease's Role), and the RoleBinding in team-a
{
  cat "$EG_SOURCE_DIR/examples/kubernetes/rbac.yaml"
  role_binding team-a
  printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n'
} >"$T/rbac.yaml"
kube_apply "$T/rbac.yaml"
SA_KC="$KUBE/kc/etcd-gitops.kubeconfig"
kube_sa_kubeconfig etcd-gitops etcd-gitops "$SA_KC"
SA=(--runtime kubernetes --kubeconfig "$SA_KC")

say "apply without -n, a RoleBinding in the source's namespace only"
ns_cluster na team-a
run eg apply "${SA[@]}" --source "$SRC" --wait=120s
[ $RC -eq 0 ] || fail "apply without -n: exit $RC: $(cat "$T/out")"
[ "$(ns_pods team-a na)" = "na-0" ] || fail "pods of team-a/na: '$(ns_pods team-a na)'"
[ -e "$STATE/kube/namespaces/team-a/na" ] || fail "team-a/na is not recorded under $STATE/kube/namespaces"
one_ready na || fail "get without -n does not see team-a/na ready: $(eg get clusters na "${SA[@]}" -o json 2>&1)"

say "diff and get, with and without -n"
run eg diff "${SA[@]}" --source "$SRC"
[ $RC -eq 0 ] || fail "diff without -n: exit $RC: $(cat "$T/out")"
run eg diff "${SA[@]}" -n team-a --source "$SRC"
[ $RC -eq 0 ] || fail "diff -n team-a: exit $RC: $(cat "$T/out")"
run eg get clusters "${SA[@]}" -n team-a
[ $RC -eq 0 ] && grep -q '^team-a *na ' "$T/out" || fail "get -n team-a: exit $RC: $(cat "$T/out")"

say "a namespace without the RoleBinding"
ns_cluster nb team-b
run eg diff "${SA[@]}" --source "$SRC"
[ $RC -eq 1 ] || fail "diff with team-b ungranted: exit $RC: $(cat "$T/out")"
grep -qF "cannot list pods in namespace team-b: bind the ClusterRole etcd-gitops-runtime of examples/kubernetes/rbac.yaml there with a RoleBinding: $GRANT_B" \
  "$T/out" || fail "diff does not name the grant to add: $(cat "$T/out")"
run eg apply "${SA[@]}" --source "$SRC" --wait=5s
say "apply: exit $RC: $(tail -n 2 "$T/out")"
[ $RC -eq 1 ] || fail "apply with team-b ungranted: exit $RC: $(cat "$T/out")"
grep -qF "$GRANT_B" "$T/out" || fail "apply does not name the grant to add: $(cat "$T/out")"
grep -q "grant it in\|(cluster-wide)" "$T/out" && fail "apply still points at a cluster-wide grant: $(cat "$T/out")"
one_ready na || fail "team-a/na is no longer seen while team-b is not granted"
run eg get clusters "${SA[@]}" -n team-b
[ $RC -eq 2 ] || fail "get -n team-b without a grant there: exit $RC: $(cat "$T/out")"
grep -qF "$GRANT_B" "$T/out" || fail "get -n team-b does not name the grant to add: $(cat "$T/out")"

say "run: not ready while it cannot see team-b, ready once the RoleBinding is there"
PORT=$(_free_port 1)
start_daemon "${SA[@]}" --listen "127.0.0.1:$PORT"
readyz() { curl -s --max-time 2 -o "$T/readyz" -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" || true; }
names_grant() { [ "$(readyz)" = 503 ] && grep -qF "$GRANT_B" "$T/readyz"; }
wait_until 60 "/readyz 503 naming the RoleBinding for team-b" names_grant
say "/readyz: $(cat "$T/readyz")"
curl -sS --max-time 2 "http://127.0.0.1:$PORT/status" | jget 'd["listError"]' | grep -qF "$GRANT_B" ||
  fail "/status has no listError naming the grant"
[ "$(grep -c "cannot look in namespace team-b" "$T/daemon.log")" = 1 ] || fail "the missing grant is not logged exactly once"
role_binding team-b >"$T/rb-b.yaml"
kube_apply "$T/rb-b.yaml"
is_ready() { [ "$(readyz)" = 200 ]; }
wait_until 60 "/readyz 200 once team-b is granted" is_ready
grep -q "every cluster of the kubernetes runtime can be seen again" "$T/daemon.log" ||
  fail "the daemon does not say that it sees every cluster again"
wait_until 120 "team-b/nb ready" one_ready nb
stop_daemon

say "prune a cluster whose manifest is gone: its namespace is remembered"
rm "$SRC/na.yaml"
run eg apply "${SA[@]}" --source "$SRC" --prune --wait=60s
[ $RC -eq 0 ] || fail "apply --prune: exit $RC: $(cat "$T/out")"
[ -z "$(ns_pods team-a na)" ] || fail "team-a/na was not pruned: pods $(ns_pods team-a na)"
[ ! -e "$STATE/kube/namespaces/team-a/na" ] || fail "team-a/na is still recorded after its prune"
run eg get clusters "${SA[@]}"
[ $RC -eq 0 ] && grep -q '^team-b *nb ' "$T/out" && ! grep -q ' na ' "$T/out" ||
  fail "get without -n after the prune: exit $RC: $(cat "$T/out")"
