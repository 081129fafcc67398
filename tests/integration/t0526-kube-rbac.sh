#!/usr/bin/env bash
# RBAC on the kubernetes runtime, enforced by the real kube-apiserver: the service account bound
# by examples/kubernetes/rbac.yaml (its token from the TokenRequest API) can apply a cluster in
# its namespace (-n: the binding is a RoleBinding); a user (a client certificate) whose role
# lacks pods/proxy gets exit 1 or 2, an error naming it, and no pods.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
{
  cat "$EG_SOURCE_DIR/examples/kubernetes/rbac.yaml"
  # the same rules without pods/proxy, bound to the user "noproxy"
  echo "---"
  kube_role_without pods/proxy etcd-gitops-noproxy noproxy
} >"$T/rbac.yaml"
grep -q 'pods/proxy' <(sed -n '/name: etcd-gitops-noproxy/,$p' "$T/rbac.yaml") && fail "the reduced role still grants pods/proxy"
start_kube_server
kube_apply "$T/rbac.yaml"
SA_KC="$KUBE/kc/etcd-gitops.kubeconfig"
NP_KC="$KUBE/kc/noproxy.kubeconfig"
kube_sa_kubeconfig etcd-gitops etcd-gitops "$SA_KC"
kube_cert noproxy "" "$KUBE/certs"
kube_kubeconfig "$NP_KC" noproxy cert "$KUBE/certs/noproxy.crt" "$KUBE/certs/noproxy.key"

cluster_yaml kb 3
set +e
eg apply --runtime kubernetes --kubeconfig "$SA_KC" -n default --source "$SRC" --wait=120s >"$T/apply.txt" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || fail "apply as the service account: exit $rc: $(cat "$T/apply.txt")"
K=(--runtime kubernetes --kubeconfig "$SA_KC" -n default)
kube_healthy kb 3 || fail "not 3 healthy members seen by the service account: $(kube_json kb)"

say "without pods/proxy"
rm "$SRC/kb.yaml"
cluster_yaml np 3
set +e
eg apply --runtime kubernetes --kubeconfig "$NP_KC" -n default --source "$SRC" --wait=15s >"$T/apply-np.txt" 2>&1
rc=$?
set -e
say "exit $rc: $(tail -n 3 "$T/apply-np.txt")"
[ $rc -eq 1 ] || [ $rc -eq 2 ] || fail "apply without pods/proxy: exit $rc"
grep -q 'pods/proxy' "$T/apply-np.txt" || fail "the error does not name pods/proxy: $(cat "$T/apply-np.txt")"
[ -z "$(kube_pods np)" ] || fail "pods made for a cluster the credentials cannot reach: $(kube_pods np)"
[ "$(pods_created kb)" = 3 ] || fail "$(pods_created kb) pods created for 3 members"
