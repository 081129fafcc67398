#!/usr/bin/env bash
# kubeconfig credentials and TLS forms end to end against the real kube-apiserver: a client
# certificate, and an exec plugin (client.authentication.k8s.io/v1, EKS style) whose first
# token is refused: the 401 makes the runtime run the plugin once more, then its credential is
# cached until expirationTimestamp. Every way of trusting the server (certificate-authority-data,
# certificate-authority, insecure-skip-tls-verify, tls-server-name) works for the REST calls and
# for etcd through the pod proxy alike: the member is seen healthy through each. So does
# proxy-url: an HTTP CONNECT proxy (tests/lib/connect_proxy.py) is the only way to a server
# named kubernetes.default.svc, for the REST calls and etcd alike; with it gone, the error
# names it (without its password).
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

say "client certificate"
kube_cert cert-admin system:masters "$KUBE/certs"
kube_kubeconfig "$KUBE/kc/cert.kubeconfig" cert-admin cert "$KUBE/certs/cert-admin.crt" "$KUBE/certs/cert-admin.key"
cluster_yaml kc 1
eg apply --source "$SRC" --runtime kubernetes --kubeconfig "$KUBE/kc/cert.kubeconfig" --wait=120s >"$T/cert.out" 2>&1 ||
  { cat "$T/cert.out" >&2; fail "apply with a client certificate"; }
K=(--runtime kubernetes --kubeconfig "$KUBE/kc/cert.kubeconfig")
kube_healthy kc 1 || fail "not 1 healthy member seen with the client certificate"

# tls_form NAME CLUSTER-LINES: a token kubeconfig whose cluster entry is CLUSTER-LINES
tls_form() {
  cat >"$KUBE/kc/$1.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
$2
users:
- name: admin
  user:
    token: $KUBE_TOKEN
contexts:
- name: test
  context: {cluster: test, user: admin, namespace: default}
current-context: test
YAML
}
tls_form ca-file "    server: $URL
    certificate-authority: $KUBE_CA"
tls_form insecure "    server: $URL
    insecure-skip-tls-verify: true"
# a name the serving certificate carries but this host cannot resolve: only a connection made
# to the server's address with that name checked gets through
tls_form server-name "    server: $URL
    certificate-authority: $KUBE_CA
    tls-server-name: kubernetes.default.svc"
for form in ca-file insecure server-name; do
  K=(--runtime kubernetes --kubeconfig "$KUBE/kc/$form.kubeconfig")
  kube_healthy kc 1 || fail "not 1 healthy member seen with the $form kubeconfig: $(kube_json kc 2>&1 | tail -n 3)"
  say "$form: the member is healthy through the pod proxy"
done

say "proxy-url"
python3 "$EG_SOURCE_DIR/tests/lib/connect_proxy.py" "$T/proxy.port" "$T/proxy.log" $$ \
  kubernetes.default.svc=127.0.0.1 >"$T/proxy.out" 2>&1 &
PROXY_PID=$!
on_exit 'kill $PROXY_PID 2>/dev/null'
wait_until 30 "the CONNECT proxy" test -s "$T/proxy.port"
PROXY_URL="http://127.0.0.1:$(cat "$T/proxy.port")"
# only the proxy resolves this name: nothing reaches the server but through it
PROXIED="kubernetes.default.svc:${URL##*:}"
tls_form proxy "    server: https://$PROXIED
    certificate-authority: $KUBE_CA
    proxy-url: http://user:s3cret@${PROXY_URL#http://}"
K=(--runtime kubernetes --kubeconfig "$KUBE/kc/proxy.kubeconfig")
kube_healthy kc 1 || fail "not 1 healthy member seen through proxy-url: $(kube_json kc 2>&1 | tail -n 3); proxy: $(tail -n 3 "$T/proxy.out")"
grep -qx "$PROXIED" "$T/proxy.log" || fail "the proxy saw no CONNECT to $PROXIED: $(sort "$T/proxy.log" | uniq -c)"
say "proxy-url: the member is healthy through $PROXY_URL ($(wc -l <"$T/proxy.log") CONNECTs to $PROXIED)"
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
if kube_json kc >"$T/noproxy.out" 2>&1; then
  fail "the member seen with the proxy stopped: $(cat "$T/noproxy.out")"
fi
grep -q "through proxy $PROXY_URL" "$T/noproxy.out" || fail "the error does not name the proxy: $(cat "$T/noproxy.out")"
! grep -q s3cret "$T/noproxy.out" || fail "the error shows the proxy's password: $(cat "$T/noproxy.out")"
say "proxy-url, proxy stopped: $(tail -n 1 "$T/noproxy.out")"

say "exec plugin"
cat >"$T/plugin" <<'SH'
#!/bin/sh
# a credential plugin: the first token it hands out is stale
n=$(cat "$PLUGIN_DIR/calls" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" >"$PLUGIN_DIR/calls"
tok=$PLUGIN_TOKEN
[ "$n" = 1 ] && tok=stale-token
[ "$1" = get-token ] || exit 3
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"2099-01-01T00:00:00Z"}}\n' "$tok"
SH
chmod +x "$T/plugin"
python3 - "$KUBE/kc/admin.kubeconfig" "$T/exec.kubeconfig" "$T/plugin" "$T" "$KUBE_TOKEN" <<'PY'
import json, sys, re
src, dst, plugin, pdir, token = sys.argv[1:]
text = open(src).read()
server = re.search(r"server:\s*(\S+)", text).group(1)
ca = re.search(r"certificate-authority-data:\s*(\S+)", text).group(1)
cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "eks",
       "clusters": [{"name": "eks", "cluster": {"server": server, "certificate-authority-data": ca}}],
       "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "aws"}}],
       "users": [{"name": "aws", "user": {"exec": {
           "apiVersion": "client.authentication.k8s.io/v1", "command": plugin,
           "args": ["get-token", "--cluster-name", "test"], "env": [{"name": "PLUGIN_DIR", "value": pdir}, {"name": "PLUGIN_TOKEN", "value": token}],
           "interactiveMode": "Never"}}}]}
open(dst, "w").write(json.dumps(cfg, indent=2))
PY
rm "$SRC/kc.yaml"
cluster_yaml ke 1
eg apply --source "$SRC" --runtime kubernetes --kubeconfig "$T/exec.kubeconfig" --wait=120s >"$T/exec.out" 2>&1 ||
  { cat "$T/exec.out" >&2; fail "apply with the exec plugin"; }
calls=$(cat "$T/calls")
say "plugin ran $calls times for the whole apply"
[ "$calls" = 2 ] || fail "the plugin ran $calls times: want once stale, once after the 401, then cached"
K=(--runtime kubernetes --kubeconfig "$T/exec.kubeconfig")
kube_healthy ke 1 || fail "not 1 healthy member seen through the exec plugin"
[ "$(kube_pods ke)" = ke-0 ] || fail "pods: $(kube_pods ke)"
[ "$(pods_created kc)" = 1 ] && [ "$(pods_created ke)" = 1 ] || fail "pods created: kc $(pods_created kc), ke $(pods_created ke)"
