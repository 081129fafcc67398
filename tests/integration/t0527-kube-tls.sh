#!/usr/bin/env bash
# --runtime kubernetes on the real kube-apiserver (2 s image pulls) with static TLS (peer, server and operator secrets from a test CA made
# with openssl): refused up front through the pod proxy, which cannot present the operator's
# client certificate; with --etcd-access direct 3 members come up over https (peers too),
# refuse clients without a certificate, a killed member is replaced over TLS, and a backup of
# the cluster by name restores with its keys.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
# as the service account examples/kubernetes/rbac.yaml binds: it needs nothing more
start_kube_server
kube_apply "$EG_SOURCE_DIR/examples/kubernetes/rbac.yaml"
kube_sa_kubeconfig etcd-gitops etcd-gitops "$KUBE/kc/etcd-gitops.kubeconfig"
K=(--runtime kubernetes --kubeconfig "$KUBE/kc/etcd-gitops.kubeconfig" -n default)

# eg_ns ARGS: etcd-gitops inside the server's mount namespace, where member DNS names resolve
eg_ns() { bash "$EG_SOURCE_DIR/tests/kube/netns-run.sh" "$KUBE/hosts" "$EG_BIN" "$@"; }
D=(--etcd-access direct)

say "a CA and certificates for the members of tc, their peers and etcd-gitops"
P="$T/pki"
mkdir -p "$P"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tc-ca -keyout "$P/ca.key" -out "$P/ca.crt" 2>/dev/null
# sign NAME CN USAGE [SANS]: NAME.crt/key signed by the CA
sign() {
  local name=$1 cn=$2 usage=$3 sans=${4:-}
  {
    echo "extendedKeyUsage=$usage"
    [ -z "$sans" ] || echo "subjectAltName=$sans"
  } >"$P/$name.ext"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$P/$name.key" -out "$P/$name.csr" 2>/dev/null
  openssl x509 -req -in "$P/$name.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 2 \
    -extfile "$P/$name.ext" -out "$P/$name.crt" 2>/dev/null
}
members="DNS:*.tc.default.svc,DNS:*.tc.default.svc.cluster.local"
# etcd matches a peer's client certificate against the address it connects from, a pod IP:
# the certificate names every address of the pods' subnet
pod_ips=$(seq 2 254 | sed "s/^/IP:${KUBE_HOST_IP%.*}./" | paste -sd, -)
sign peer tc-peer serverAuth,clientAuth "$members,$pod_ips"
sign server tc-server serverAuth,clientAuth "$members,DNS:tc-client.default.svc,DNS:localhost,IP:127.0.0.1"
sign client etcd-gitops clientAuth

# secret NAME KEY=FILE...: an Opaque secret in default, as upstream's manifests expect them
secret() {
  local name=$1 data="" kv
  shift
  for kv in "$@"; do data+="${data:+,}\"${kv%%=*}\":\"$(base64 -w0 <"${kv#*=}")\""; done
  kube_api /api/v1/namespaces/default/secrets -X POST -H 'Content-Type: application/json' \
    -d "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"$name\"},\"data\":{$data}}" >/dev/null
}
secret tc-peer peer.crt="$P/peer.crt" peer.key="$P/peer.key" peer-ca.crt="$P/ca.crt"
secret tc-server server.crt="$P/server.crt" server.key="$P/server.key" server-ca.crt="$P/ca.crt"
secret tc-operator etcd-client.crt="$P/client.crt" etcd-client.key="$P/client.key" etcd-client-ca.crt="$P/ca.crt"

cluster_yaml tc 3 3.4.23 "  TLS:
    static:
      member:
        peerSecret: tc-peer
        serverSecret: tc-server
      operatorSecret: tc-operator"

say "through the pod proxy: refused before anything is created"
if eg apply --source "$SRC" "${K[@]}" --wait=30s >"$T/proxy.out" 2>&1; then
  fail "apply through the pod proxy succeeded for a cluster that wants client certificates"
fi
grep -q -- "--etcd-access direct" "$T/proxy.out" || { cat "$T/proxy.out" >&2; fail "the error does not say what to do"; }
[ -z "$(kube_pods tc)" ] || fail "pods were created although nobody could reach them: $(kube_pods tc)"

say "direct: the daemon brings up 3 members over TLS"
bash "$EG_SOURCE_DIR/tests/kube/netns-run.sh" "$KUBE/hosts" "$EG_BIN" run --source "$SRC" "${K[@]}" "${D[@]}" \
  --listen none >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
tls_healthy() {
  local n
  n=$(eg_ns get clusters tc "${K[@]}" "${D[@]}" -o json |
    jget 'len(d[0]["status"]["members"]["ready"]) if all(m["role"] in ("leader","follower") for m in d[0]["status"]["memberDetails"]) and len(d[0]["status"]["memberDetails"])==len(d[0]["status"]["members"]["ready"]) else -1') || return 1
  [ "$n" = "$1" ]
}
wait_until 180 "3 healthy TLS members" tls_healthy 3

# the server certificate names the members, so etcdctl goes by name, in the namespace
ctl() {
  bash "$EG_SOURCE_DIR/tests/kube/netns-run.sh" "$KUBE/hosts" etcdctl --command-timeout=5s \
    --endpoints=https://tc-0.tc.default.svc:2379 --cacert "$P/ca.crt" "$@"
}
ctl --cert "$P/client.crt" --key "$P/client.key" put /tls/k v1 >/dev/null || fail "put with the operator certificate failed"
[ "$(ctl --cert "$P/client.crt" --key "$P/client.key" get /tls/k --print-value-only)" = v1 ] || fail "key not read back"
if ctl get /tls/k >"$T/nocert.out" 2>&1; then fail "a client without a certificate was served"; fi
peers=$(ctl --cert "$P/client.crt" --key "$P/client.key" member list -w json |
  jget '" ".join(sorted(u for m in d["members"] for u in m["peerURLs"]))')
say "peer URLs: $peers"
for u in $peers; do [[ $u == https://*.tc.default.svc:2380 ]] || fail "peer URL $u is not https on the member name"; done
[ "$(wc -w <<<"$peers")" = 3 ] || fail "want 3 peer URLs, got '$peers'"
[ -f "$STATE/secrets/default/tc-operator/etcd-client.key" ] || fail "the operator key is not kept under the state dir"
[ "$(stat -c %a "$STATE/secrets/default/tc-operator/etcd-client.key")" = 600 ] || fail "the operator key is not 0600"

say "a killed member is replaced over TLS"
sleep 6 # etcd refuses a new member for 5 s after a voter (re)joins
victim=$(eg_ns get clusters tc "${K[@]}" "${D[@]}" -o json |
  jget '[m["name"] for m in d[0]["status"]["memberDetails"] if m["role"]=="follower"][0]')
kube_kill "$victim"
replaced() { tls_healthy 3 && ! kube_pods tc | grep -qw "$victim"; }
wait_until 150 "3 healthy TLS members without $victim" replaced

say "a backup by cluster name, over TLS"
eg_ns backup tc --to "$T/tc.db" "${K[@]}" "${D[@]}" -o json >"$T/backup.json" 2>"$T/backup.err" ||
  { cat "$T/backup.err" >&2; fail "backup of the TLS cluster failed"; }
size=$(jget 'd["size"]' <"$T/backup.json")
[ "$(head -c "$size" "$T/tc.db" | sha256sum | cut -d' ' -f1)" = "$(jget 'd["sha256"]' <"$T/backup.json")" ] ||
  fail "sha256 of the backup does not match"
etcdctl snapshot restore "$T/tc.db" --data-dir "$T/restored" >"$T/restore.log" 2>&1 || fail "etcdctl cannot restore the backup"
grep -aq /tls/k "$T/restored/member/snap/db" || fail "the key is not in the restored data"
stop_daemon
[ "$(pods_created tc)" = 4 ] || fail "$(pods_created tc) pods created: want 3 and one replacement"
