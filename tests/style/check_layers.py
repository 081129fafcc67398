#!/usr/bin/env python3
"""The module graph of specs/architecture.md, checked: every #include of a source file or a
public header names a module its own module may use. Prints each upward edge as
FILE:LINE and exits 1 when there is one.

usage: check_layers.py SOURCE_ROOT"""
import os, re, sys

# module -> the modules it may use (besides itself); the order of specs/architecture.md
MAY_USE = {
    "util": set(),
    "spec": {"util"},
    "source": {"spec", "util"},
    "etcd": {"util"},
    "kube": {"spec", "util"},
    "runtime": {"kube", "etcd", "spec", "util"},
    "plan": {"spec", "util"},
    "audit": {"util"},
    "backup": {"etcd", "spec", "util"},
    "reconcile": {"plan", "runtime", "kube", "etcd", "backup", "audit", "source", "spec", "util"},
    "daemon": {"reconcile", "plan", "runtime", "kube", "etcd", "backup", "audit", "source", "spec", "util"},
    "cli": {"daemon", "reconcile", "plan", "runtime", "kube", "etcd", "backup", "audit", "source", "spec", "util"},
}
# public headers that belong to a module of another name
HEADER_MODULE = {"yaml": "spec", "ignore": "spec", "lease": "kube", "journal": "audit", "cycle": "reconcile",
                 "http": "daemon", "metrics": "daemon"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def header_module(name):
    base = os.path.splitext(os.path.basename(name))[0]
    return HEADER_MODULE.get(base, base)


def main():
    root = sys.argv[1]
    bad = []
    files = []
    for m in MAY_USE:
        d = os.path.join(root, "src", m)
        if os.path.isdir(d):
            files += [(m, os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.endswith((".c", ".h"))]
    inc = os.path.join(root, "include", "etcd-gitops")
    files += [(header_module(f), os.path.join(inc, f)) for f in sorted(os.listdir(inc)) if f.endswith(".h")]
    for m, path in files:
        if m not in MAY_USE:
            bad.append(f"{path}: belongs to no known module ({m}): add it to specs/architecture.md and here")
            continue
        with open(path) as f:
            for n, line in enumerate(f, 1):
                g = INCLUDE.match(line)
                if not g:
                    continue
                target = g.group(1)
                if target.startswith("etcd-gitops/"):
                    dep = header_module(target)
                elif target.startswith("../"):
                    dep = target.split("/")[1]
                else:
                    continue  # the module's own internal headers
                if dep != m and dep not in MAY_USE.get(m, set()):
                    bad.append(f"{os.path.relpath(path, root)}:{n}: {m} includes {target} ({dep}), "
                               f"which {m} may not use")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} upward or sideways edge(s) in the module graph")
        return 1
    print(f"module graph: {len(files)} files, no upward edge")
    return 0


if __name__ == "__main__":
    sys.exit(main())
