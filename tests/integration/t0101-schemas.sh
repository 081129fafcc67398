#!/usr/bin/env bash
# The JSON Schemas in specs/schemas are valid, accept every example, and reject bad manifests.
set -euo pipefail

SRC=${EG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SCHEMAS="$SRC/specs/schemas"
CHECK=(python3 "$SRC/tests/lib/schema_check.py" --schemas "$SCHEMAS")

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. Each schema is JSON, declares draft-07 and is the schema of the kind its name says.
for kind in EtcdCluster EtcdBackup EtcdRestore; do
        f="$SCHEMAS/${kind,,}.schema.json"
        [[ -f $f ]] || fail "missing schema $f"
        python3 -m json.tool "$f" >/dev/null || fail "$f is not valid JSON"
        python3 - "$f" "$kind" <<'EOF' || fail "$f does not describe $kind as a draft-07 schema"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["$schema"] == "http://json-schema.org/draft-07/schema#", s.get("$schema")
assert s["properties"]["kind"]["enum"] == [sys.argv[2]], s["properties"]["kind"]
assert s["properties"]["apiVersion"]["enum"] == ["etcd.database.coreos.com/v1beta2"]
assert s["additionalProperties"] is False
assert set(s["required"]) == {"apiVersion", "kind", "metadata", "spec"}
EOF
done

# 2. Every example validates against its kind's schema, and its modeline names that schema.
# The examples are the files `validate` finds objects of ours in: not examples/kubernetes/,
# which holds Kubernetes objects, nor what examples/.sourceignore names, which is no
# manifest at all (t0100 checks that list).
: "${EG_BIN:?EG_BIN must name the etcd-gitops binary (ctest sets it)}"
mapfile -t examples < <("$EG_BIN" validate -o json "$SRC/examples" |
        python3 -c 'import json, sys; print("\n".join(sorted({o["path"] for o in json.load(sys.stdin)["objects"]})))')
((${#examples[@]} >= 7)) || fail "expected at least 7 example manifests, found ${#examples[@]}"
if ! out=$("${CHECK[@]}" --modeline "${examples[@]}" 2>&1); then
        echo "$out" >&2
        fail "an example does not validate against its schema"
fi
for e in "${examples[@]}"; do
        grep -qxF "ok $e" <<<"$out" || fail "checker did not report $e as ok: $out"
done

# 3. Bad manifests must fail, each with the field and reason named.
# expect_invalid NAME EXPECTED-SUBSTRING < manifest
expect_invalid() {
        local name=$1 want=$2 f="$tmp/$1.yaml" out rc=0
        cat >"$f"
        out=$("${CHECK[@]}" "$f" 2>&1) || rc=$?
        ((rc == 1)) || fail "$name: schema check exited $rc, want 1: $out"
        grep -qF -- "$want" <<<"$out" || fail "$name: want '$want' in: $out"
        echo "ok bad manifest rejected: $name"
}

expect_invalid size-string 'spec.size: must be integer, got string' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec:
  size: "three"
EOF

expect_invalid size-zero 'spec.size: must be >= 1, got 0' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec: {size: 0}
EOF

expect_invalid unknown-spec-field 'spec.sise: unknown field' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec:
  size: 3
  sise: 3
EOF

expect_invalid missing-name 'metadata.name: required' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  namespace: default
spec: {size: 1}
EOF

expect_invalid name-too-long 'metadata.name: must be at most 52 characters, got 53' <<EOF
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  name: $(printf 'a%.0s' {1..53})
spec: {size: 1}
EOF

expect_invalid name-not-dns 'metadata.name: must match' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: My_Cluster}
spec: {size: 1}
EOF

expect_invalid wrong-api-version 'apiVersion: must be one of "etcd.database.coreos.com/v1beta2"' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta1
kind: EtcdCluster
metadata: {name: a}
spec: {size: 1}
EOF

expect_invalid bad-version 'spec.version: must match' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec: {size: 1, version: "3.4"}
EOF

expect_invalid reserved-label 'spec.pod.labels.etcd_node: key not allowed here' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec:
  size: 1
  pod:
    labels: {etcd_node: x}
EOF

expect_invalid reserved-annotation 'spec.pod.annotations.etcd.version: key not allowed here' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec:
  size: 1
  pod:
    annotations: {etcd.version: "3.4.23"}
EOF

expect_invalid negative-dns-timeout 'spec.pod.DNSTimeoutInSecond: must be >= 0, got -1' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec:
  size: 1
  pod: {DNSTimeoutInSecond: -1}
EOF

expect_invalid tls-operator-without-server 'spec.TLS.static.member.serverSecret: required' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec:
  size: 1
  TLS:
    static:
      member: {peerSecret: p}
      operatorSecret: o
EOF

expect_invalid tls-server-without-operator 'spec.TLS.static.operatorSecret: required' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec:
  size: 1
  TLS:
    static:
      member: {serverSecret: s}
EOF

expect_invalid backup-s3-missing 'spec.s3: required' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata: {name: b}
spec:
  etcdEndpoints: [http://127.0.0.1:2379]
  storageType: S3
EOF

expect_invalid backup-bad-storage 'spec.storageType: must be one of "S3", "ABS", "GCS", "OSS", "File", got "Disk"' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata: {name: b}
spec:
  etcdCluster: {name: demo}
  storageType: Disk
EOF

expect_invalid backup-endpoints-and-cluster 'spec: matches a schema it must not match' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata: {name: b}
spec:
  etcdEndpoints: [http://127.0.0.1:2379]
  etcdCluster: {name: demo}
  storageType: File
  file: {path: /tmp/b}
EOF

expect_invalid backup-no-target 'spec.etcdEndpoints: required' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata: {name: b}
spec:
  storageType: File
  file: {path: /tmp/b}
EOF

expect_invalid backup-negative-max 'spec.backupPolicy.maxBackups: must be >= 0, got -2' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata: {name: b}
spec:
  etcdCluster: {name: demo}
  storageType: File
  file: {path: /tmp/b}
  backupPolicy: {maxBackups: -2}
EOF

expect_invalid backup-bad-cron 'spec.schedule: must match' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata: {name: b}
spec:
  etcdCluster: {name: demo}
  storageType: File
  file: {path: /tmp/b}
  schedule: "@daily"
EOF

expect_invalid restore-no-cluster 'spec.etcdCluster: required' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdRestore
metadata: {name: r}
spec:
  backupStorageType: File
  file: {path: /tmp/b}
EOF

expect_invalid restore-overwrite-string 'spec.overwrite: must be boolean, got string' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdRestore
metadata: {name: r}
spec:
  etcdCluster: {name: r}
  backupStorageType: File
  file: {path: /tmp/b}
  overwrite: "yes"
EOF

# A second, bad document in a multi-document file is found.
expect_invalid second-document 'spec.size: must be integer, got string' <<'EOF'
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: a}
spec: {size: 1}
---
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata: {name: b}
spec: {size: "1"}
EOF

# A modeline naming another kind's schema is caught.
cp "$SRC/examples/local/demo.yaml" "$tmp/demo.yaml"
sed -i '1s|.*|# yaml-language-server: $schema='"$SCHEMAS"'/etcdbackup.schema.json|' "$tmp/demo.yaml"
rc=0
out=$("${CHECK[@]}" --modeline "$tmp/demo.yaml" 2>&1) || rc=$?
((rc == 1)) && grep -qF 'does not name' <<<"$out" || fail "wrong modeline not caught (rc $rc): $out"

# 4. The checker refuses schema keywords it does not implement instead of passing them.
mkdir "$tmp/s"
printf '{"type":"object","uniqueItems":true}\n' >"$tmp/s/etcdcluster.schema.json"
rc=0
out=$(python3 "$SRC/tests/lib/schema_check.py" --schemas "$tmp/s" "$SRC/examples/local/demo.yaml" 2>&1) || rc=$?
((rc == 2)) && grep -qF "keyword 'uniqueItems' is not implemented" <<<"$out" ||
        fail "unimplemented keyword not refused (rc $rc): $out"

echo "ok all schema checks passed"
