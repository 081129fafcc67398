#!/usr/bin/env bash
# `etcd-gitops validate --strict` accepts every example and names each object in it.
set -euo pipefail

SRC=${EG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${EG_BIN:?EG_BIN must name the etcd-gitops binary (ctest sets it)}"
[[ -x $EG_BIN ]] || { echo "FAIL: EG_BIN=$EG_BIN is not executable" >&2; exit 1; }

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$SRC"

# Every example file and the objects it must yield: "file kind namespace/name".
expected=(
        "examples/upstream/example-etcd-cluster.yaml EtcdCluster default/example-etcd-cluster"
        "examples/local/demo.yaml EtcdCluster default/demo"
        "examples/pod-policy/cluster-5.yaml EtcdCluster payments/orders-etcd"
        "examples/tls/tls-cluster.yaml EtcdCluster default/secure-etcd"
        "examples/backup/periodic-s3-backup.yaml EtcdBackup default/example-etcd-cluster-periodic-backup"
        "examples/backup/file-backup.yaml EtcdBackup default/demo-nightly"
        "examples/restore/restore-s3.yaml EtcdRestore default/example-etcd-cluster"
)
printf '%s\n' "${expected[@]}" >"$tmp/expected"

# readable DIR: the manifest files `validate DIR` reads, one a line, as DIR/path. What its
# .sourceignore files name is left out, as git itself sees it: .sourceignore has the
# syntax of .gitignore, so a copy with the files renamed is asked with `git ls-files`.
readable() {
        local copy="$tmp/readable"
        rm -rf "$copy" && mkdir -p "$copy" && cp -r "$1/." "$copy/root"
        find "$copy/root" -name .sourceignore -execdir mv .sourceignore .gitignore \;
        git -C "$copy/root" init -q
        git -C "$copy/root" -c core.excludesFile=/dev/null ls-files --others --exclude-standard |
                grep -E '\.(yaml|yml|json)$' | grep -Ev '(^|/)\.' | sed "s|^|${1%/}/|" | sort
}
readable examples >"$tmp/read"
grep -q '^examples/local/demo.yaml$' "$tmp/read" || fail "readable examples does not list examples/local/demo.yaml"
if grep -q '^examples/monitoring/' "$tmp/read"; then fail "examples/.sourceignore does not leave out examples/monitoring/"; fi

# No example may go unchecked: every manifest file validate reads under examples/ is listed
# above (examples/kubernetes/ holds Kubernetes objects such as RBAC, which validate ignores).
while IFS= read -r f; do
        grep -q "^$f " "$tmp/expected" || fail "$f is not listed in the expected objects of $0"
done < <(grep -v '^examples/kubernetes/' "$tmp/read")

# check_json ARG JSON-FILE [READABLE-FILE]: the JSON report for `validate ARG` is valid,
# error-free and lists exactly the expected objects below ARG, each at its file and first
# content line; for a folder, it read the files READABLE-FILE lists.
check_json() {
        python3 - "$1" "$2" "$tmp/expected" "${3:-/dev/null}" <<'EOF'
import json, os, sys

arg, report, expected_file, readable_file = sys.argv[1:]
with open(report) as f:
    try:
        r = json.load(f)
    except ValueError as e:
        sys.exit(f"validate -o json {arg}: output is not JSON: {e}")

def first_content_line(path):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if s and not s.startswith("#") and s != "---":
                return n
    return 0

want = {}
files = set()
for row in open(expected_file):
    path, kind, nsname = row.split()
    if path == arg or path.startswith(arg.rstrip("/") + "/"):
        ns, name = nsname.split("/")
        want[(kind, ns, name)] = path
        files.add(path)

problems = []
if r.get("valid") is not True:
    problems.append(f"valid is {r.get('valid')!r}, want true")
if r.get("errors") != 0:
    problems.append(f"errors is {r.get('errors')!r}, want 0")
# every manifest file read counts, also those holding only other API groups' objects
if os.path.isdir(arg):
    files = set(open(readable_file).read().split())
if r.get("files") != len(files):
    problems.append(f"files is {r.get('files')!r}, want {len(files)}")
for d in r.get("diagnostics", []):
    if d.get("severity") == "error":
        problems.append(f"error diagnostic: {d}")

got = {}
for o in r.get("objects", []):
    key = (o.get("kind"), o.get("namespace"), o.get("name"))
    if key in got:
        problems.append(f"object {key} listed twice")
    got[key] = o
for key in sorted(set(want) | set(got)):
    if key not in got:
        problems.append(f"missing object {key[0]} {key[1]}/{key[2]} (from {want[key]})")
        continue
    if key not in want:
        problems.append(f"unexpected object {key}")
        continue
    o, path = got[key], want[key]
    # A file argument is reported as given; files found in a directory relative to it.
    p = o.get("path") or ""
    candidates = [p, os.path.join(arg, p)]
    if not any(os.path.isfile(c) and os.path.samefile(c, path) for c in candidates):
        problems.append(f"{key}: path {p!r} does not name {path}")
    if o.get("line") != first_content_line(path):
        problems.append(f"{key}: line {o.get('line')!r}, want {first_content_line(path)} in {path}")
    if o.get("column") != 1:
        problems.append(f"{key}: column {o.get('column')!r}, want 1")

if problems:
    sys.exit(f"validate --strict -o json {arg}:\n  " + "\n  ".join(problems))
EOF
}

# run_validate ARG...: runs validate, leaves stdout in $tmp/out, stderr in $tmp/err, sets rc.
run_validate() {
        rc=0
        "$EG_BIN" validate "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
        if ((rc > 2)); then
                cat "$tmp/err" >&2
                fail "validate $* exited $rc (crash or signal?)"
        fi
}

# 1. Each example file, each example folder validate reads and the whole examples/ tree.
targets=(examples)
while IFS= read -r d; do targets+=("$d"); done < <(sed 's|/[^/]*$||' "$tmp/read" | grep -vx examples | sort -u)
while IFS= read -r row; do targets+=("${row%% *}"); done <"$tmp/expected"
for t in "${targets[@]}"; do
        run_validate --strict -o json "$t"
        if ((rc != 0)); then
                cat "$tmp/out" "$tmp/err" >&2
                fail "validate --strict -o json $t exited $rc, want 0"
        fi
        [[ -d $t ]] && readable "$t" >"$tmp/read-target"
        check_json "$t" "$tmp/out" "$tmp/read-target" || fail "wrong JSON report for $t"
        echo "ok validate --strict $t"
done

# 2. Text output: one "ok" line per object and the summary line.
run_validate --strict examples
((rc == 0)) || { cat "$tmp/out" "$tmp/err" >&2; fail "validate --strict examples exited $rc"; }
while IFS=' ' read -r path kind nsname; do
        grep -Eq "^ok +$kind +$nsname +([^ ]*/)?${path#examples/}:[0-9]+$" "$tmp/out" ||
                fail "no 'ok  $kind  $nsname  ...${path#examples/}:LINE' line in: $(cat "$tmp/out")"
done <"$tmp/expected"
n=${#expected[@]}
nf=$(wc -l <"$tmp/read")
cat "$tmp/out" "$tmp/err" | grep -Eq "^$n objects valid, 0 invalid \(0 errors, [0-9]+ warnings\) in $nf files$" ||
        fail "no summary '$n objects valid, 0 invalid (0 errors, W warnings) in $nf files' in: $(cat "$tmp/out" "$tmp/err")"
echo "ok text output"

# 3. The same check must be able to fail: a broken copy of an example is rejected.
mkdir "$tmp/bad"
sed 's/^  size: 3$/  size: "three"/' examples/local/demo.yaml >"$tmp/bad/demo.yaml"
grep -q 'size: "three"' "$tmp/bad/demo.yaml" || fail "could not make the broken example"
size_line=$(grep -n '^  size:' "$tmp/bad/demo.yaml" | cut -d: -f1)
run_validate -o json "$tmp/bad"
((rc == 1)) || { cat "$tmp/out" "$tmp/err" >&2; fail "validate of a broken manifest exited $rc, want 1"; }
python3 - "$tmp/out" "$size_line" <<'EOF' || fail "broken manifest not reported as spec.size error on default/demo"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["valid"] is False and r["errors"] >= 1, r
assert not any(o["name"] == "demo" for o in r["objects"]), r["objects"]
d = [d for d in r["diagnostics"] if d["severity"] == "error" and d["field"] == "spec.size"]
assert d and d[0]["name"] == "demo" and d[0]["namespace"] == "default", r["diagnostics"]
assert d[0]["line"] == int(sys.argv[2]), (d, sys.argv[2])
EOF
echo "ok broken manifest rejected"

# 4. An unknown field is a warning (exit 0), and an error with --strict (exit 1).
sed 's/^  size: 3$/  size: 3\n  sise: 3/' examples/local/demo.yaml >"$tmp/bad/demo.yaml"
sise_line=$(grep -n '^  sise: 3$' "$tmp/bad/demo.yaml" | cut -d: -f1)
[[ -n $sise_line ]] || fail "could not add an unknown field to the example"
run_validate "$tmp/bad/demo.yaml"
((rc == 0)) || { cat "$tmp/out" "$tmp/err" >&2; fail "unknown field without --strict exited $rc, want 0"; }
grep -Eq "demo.yaml:$sise_line:[0-9]+: warning: spec.sise: " "$tmp/err" ||
        fail "no 'demo.yaml:$sise_line:COL: warning: spec.sise: ...' on stderr: $(cat "$tmp/err")"
run_validate --strict "$tmp/bad/demo.yaml"
((rc == 1)) || { cat "$tmp/out" "$tmp/err" >&2; fail "unknown field with --strict exited $rc, want 1"; }
grep -Eq "demo.yaml:$sise_line:[0-9]+: error: spec.sise: " "$tmp/err" ||
        fail "no 'demo.yaml:$sise_line:COL: error: spec.sise: ...' on stderr: $(cat "$tmp/err")"
echo "ok unknown field: warning, error with --strict"

echo "ok all examples validate"
