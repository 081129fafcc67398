#!/usr/bin/env python3
"""`kubectl apply -f` for tests, with the standard library: creates each YAML document's object
(and the namespace it names, when missing), or replaces it when it exists.

Usage: apply.py --server URL --token-file FILE --ca-file FILE MANIFEST...
"""

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from schema_check import YamlError, load_yaml_documents  # noqa: E402

# kind -> (API prefix, plural, namespaced): what test manifests hold
KINDS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Secret": ("/api/v1", "secrets", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--ca-file", required=True)
    p.add_argument("manifests", nargs="+")
    args = p.parse_args(argv)
    token = open(args.token_file).read().strip()
    ctx = ssl.create_default_context(cafile=args.ca_file)

    def call(method, path, obj=None):
        req = urllib.request.Request(args.server + path, method=method,
                                     data=json.dumps(obj).encode() if obj is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
            return json.loads(r.read() or b"{}")

    def create_or_replace(coll, obj):
        try:
            call("POST", coll, obj)
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise RuntimeError(f"POST {coll}: {e.code} {e.read().decode(errors='replace')}")
            if obj.get("kind") == "Namespace":
                return
            path = f"{coll}/{obj['metadata']['name']}"
            have = call("GET", path)
            obj["metadata"]["resourceVersion"] = have["metadata"]["resourceVersion"]
            call("PUT", path, obj)

    for f in args.manifests:
        try:
            with open(f, encoding="utf-8") as fh:
                docs = [d for _, d in load_yaml_documents(fh.read())]
        except (OSError, YamlError) as e:
            print(f"apply.py: {f}: {e}", file=sys.stderr)
            return 2
        for d in docs:
            if not d:
                continue
            kind = d.get("kind")
            if kind not in KINDS:
                print(f"apply.py: {f}: kind {kind!r} is not one this helper knows", file=sys.stderr)
                return 2
            prefix, plural, namespaced = KINDS[kind]
            ns = (d.get("metadata") or {}).get("namespace") or "default"
            if namespaced:
                create_or_replace("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": ns}})
                coll = f"{prefix}/namespaces/{ns}/{plural}"
            else:
                coll = f"{prefix}/{plural}"
            try:
                create_or_replace(coll, d)
            except (RuntimeError, urllib.error.URLError) as e:
                print(f"apply.py: {f}: {kind} {d['metadata'].get('name')}: {e}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
