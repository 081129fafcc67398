#!/usr/bin/env bash
# `etcd-gitops audit` lists and verifies a log written independently from specs/audit-log.md.
set -euo pipefail
. "${EG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/lib.sh" || exit 2

LOG="$T/logs/audit.jsonl"
mkdir -p "$T/logs"

# run WANT-RC CMD...: runs CMD with stdout in $T/out and stderr in $T/err; any other exit
# code (a crash included) fails the test.
run() {
  local want=$1 rc=0; shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, want $want; stderr: $(cat "$T/err")"
}

# Writes a chained log with python's stdlib only, following the spec: compact JSON, the
# fixed key order, absent fields left out, prev = sha256 of the previous line's bytes.
python3 - "$LOG" >"$T/hashes" <<'EOF'
import hashlib, json, sys

C1 = "3f1c2a9e0b7d4c5a6e8f90123456789abcdef012"
C2 = "9a8b7c6d5e4f30211223344556677889900aabbc"
records = [
    dict(revision="main@sha1:" + C1, commit=C1, path="clusters/a.yaml", line=4, blob="b1", cluster="ns/a",
         decision="create", member="a-0", reason="cluster does not exist", outcome="ok", duration_ms=812),
    dict(revision="main@sha1:" + C1, commit=C1, path="clusters/b.yaml", line=1, cluster="ns/b",
         decision="invalid", reason='spec.size: must be 1..7, got "9"\nsee docs', outcome="blocked",
         duration_ms=0, error="clusters/b.yaml:3:9: size out of range"),
    dict(revision="main@sha1:" + C2, commit=C2, path="clusters/a.yaml", line=4, cluster="ns/a",
         decision="add-learner", member="a-1", reason="size 1 < 3: h\u00e9llo \u2713", outcome="ok",
         duration_ms=95),
    dict(revision="sha256:77aa99bbccddeeff00112233445566778899aabbccddeeff0011223344556677", cluster="ns/a",
         decision="promote", member="a-1", reason="learner caught up", outcome="dry-run", duration_ms=3),
    dict(revision="main@sha1:" + C2, commit=C2, cluster="ns/b", decision="noop", outcome="skipped", duration_ms=0),
]
order = ["seq", "time", "revision", "commit", "path", "line", "blob", "cluster", "decision", "member",
         "reason", "outcome", "duration_ms", "error", "prev"]
prev = "0" * 64
with open(sys.argv[1], "wb") as f:
    for i, r in enumerate(records, 1):
        r = dict(r, seq=i, time="2026-11-28T03:00:%02d.%03dZ" % (i, i * 7), prev=prev)
        obj = {k: r[k] for k in order if k in r}
        line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        f.write(line + b"\n")
        prev = hashlib.sha256(line).hexdigest()
        print(prev)
EOF

say "listing as JSON returns every record, on-disk keys in order plus the hash"
run 0 eg audit --audit-log "$LOG" -o json
python3 - "$T/out" "$LOG" "$T/hashes" <<'EOF'
import json, sys
out, log, hashes = sys.argv[1:]
got = json.load(open(out))
disk = [json.loads(l) for l in open(log, encoding="utf-8")]
want_hashes = open(hashes).read().split()
assert len(got) == 5, len(got)
for g, d, h in zip(got, disk, want_hashes):
    assert list(g.keys()) == list(d.keys()) + ["hash"], (list(g.keys()), list(d.keys()))
    assert {k: v for k, v in g.items() if k != "hash"} == d, (g, d)
    assert g["hash"] == h, (g["hash"], h)
assert got[1]["reason"] == 'spec.size: must be 1..7, got "9"\nsee docs'
assert got[2]["reason"] == "size 1 < 3: h\u00e9llo \u2713"
EOF
[ ! -s "$T/err" ] || fail "unexpected stderr: $(cat "$T/err")"

say "--cluster, --revision and --since-seq filter"
seqs() { python3 -c 'import json,sys; print(",".join(str(r["seq"]) for r in json.load(open(sys.argv[1]))))' "$T/out"; }
run 0 eg audit --audit-log "$LOG" --cluster ns/a -o json
[ "$(seqs)" = "1,3,4" ] || fail "--cluster ns/a gave seqs $(seqs)"
run 0 eg audit --audit-log "$LOG" --cluster ns -o json
[ "$(seqs)" = "" ] || fail "--cluster ns must match no record, gave $(seqs)"
run 0 eg audit --audit-log "$LOG" --revision 9a8b7c -o json
[ "$(seqs)" = "3,5" ] || fail "--revision 9a8b7c gave $(seqs)"
run 0 eg audit --audit-log "$LOG" --revision sha256:77aa -o json
[ "$(seqs)" = "4" ] || fail "--revision sha256:77aa gave $(seqs)"
run 0 eg audit --audit-log "$LOG" --cluster ns/b --revision 3f1c -o json
[ "$(seqs)" = "2" ] || fail "--cluster ns/b --revision 3f1c gave $(seqs)"
run 0 eg audit --audit-log "$LOG" --since-seq 3 -o json
[ "$(seqs)" = "4,5" ] || fail "--since-seq 3 gave $(seqs)"

say "the table shows one line per record, time to the second, revisions shortened"
run 0 eg audit --audit-log "$LOG"
[ "$(wc -l <"$T/out")" -eq 6 ] || fail "table must have a header and 5 rows:$(printf '\n')$(cat "$T/out")"
read -r -a head <"$T/out"
[ "${head[*]}" = "SEQ TIME CLUSTER DECISION MEMBER OUTCOME REVISION REASON" ] || fail "header: ${head[*]}"
row() { sed -n "$(($1 + 1))p" "$T/out" | tr -s ' '; }
[ "$(row 1)" = "1 2026-11-28T03:00:01Z ns/a create a-0 ok 3f1c2a9e0b7d cluster does not exist" ] || fail "row 1: $(row 1)"
[ "$(row 2)" = '2 2026-11-28T03:00:02Z ns/b invalid - blocked 3f1c2a9e0b7d spec.size: must be 1..7, got "9" see docs' ] ||
  fail "row 2: $(row 2)"
[ "$(row 4)" = "4 2026-11-28T03:00:04Z ns/a promote a-1 dry-run 77aa99bbccdd learner caught up" ] || fail "row 4: $(row 4)"
[ "$(row 5)" = "5 2026-11-28T03:00:05Z ns/b noop - skipped 9a8b7c6d5e4f -" ] || fail "row 5: $(row 5)"

say "the default log is STATE-DIR/audit.jsonl, ETCD_GITOPS_AUDIT_LOG overrides it"
cp "$LOG" "$STATE/audit.jsonl"
run 0 eg audit -o json
[ "$(seqs)" = "1,2,3,4,5" ] || fail "default log gave $(seqs)"
run 0 env ETCD_GITOPS_AUDIT_LOG="$T/none.jsonl" "$EG_BIN" audit -o json
[ "$(cat "$T/out")" = "[]" ] || fail "a missing log must list as [], got $(cat "$T/out")"
grep -qF "no audit log at $T/none.jsonl" "$T/err" || fail "missing log note: $(cat "$T/err")"
run 0 eg audit --audit-log "$T/none.jsonl"
[ ! -s "$T/out" ] || fail "a missing log must print no table: $(cat "$T/out")"
run 2 eg audit verify --audit-log "$T/none.jsonl"
grep -qF "no audit log at $T/none.jsonl" "$T/err" || fail "verify of a missing log: $(cat "$T/err")"

say "the example in specs/audit-log.md is a valid chain, by etcd-gitops and by the spec's own checker"
python3 - "$EG_SOURCE_DIR/specs/audit-log.md" "$T/ex" <<'EOF'
import os, re, sys
doc = open(sys.argv[1], encoding="utf-8").read()
blocks = re.findall(r"```(\w+)\n(.*?)```", doc, re.S)
jsonl = [b for lang, b in blocks if lang == "jsonl"]
py = [b for lang, b in blocks if lang == "python"]
assert len(jsonl) == 1 and len(py) == 1, "want one jsonl example and one python checker"
head = re.search(r"The hash of the last line, `([0-9a-f]{64})`", doc).group(1)
os.makedirs(sys.argv[2])
open(os.path.join(sys.argv[2], "audit.jsonl"), "w", encoding="utf-8").write(jsonl[0])
open(os.path.join(sys.argv[2], "check.py"), "w").write(py[0])
open(os.path.join(sys.argv[2], "head"), "w").write(head)
EOF
head_hash=$(cat "$T/ex/head")
run 0 eg audit verify --audit-log "$T/ex/audit.jsonl"
[ "$(cat "$T/out")" = "audit log $T/ex/audit.jsonl: 3 records, chain intact" ] || fail "spec example: $(cat "$T/out")"
run 0 eg audit --audit-log "$T/ex/audit.jsonl" -o json
last=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[-1]["hash"])' "$T/out")
[ "$last" = "$head_hash" ] || fail "spec example head is $last, the spec says $head_hash"
(cd "$T/ex" && python3 check.py) >"$T/out" || fail "the spec's checker rejects the spec's example"
[ "$(cat "$T/out")" = "3 records, chain intact, head $head_hash" ] || fail "spec checker: $(cat "$T/out")"
cp "$LOG" "$T/ex/audit.jsonl"
(cd "$T/ex" && python3 check.py) >"$T/out" || fail "the spec's checker rejects the generated log"

say "verify accepts the independently written chain"
run 0 eg audit verify --audit-log "$LOG"
[ "$(cat "$T/out")" = "audit log $LOG: 5 records, chain intact" ] || fail "verify said: $(cat "$T/out")"

say "usage errors exit 2"
run 2 eg audit --audit-log "$LOG" -o yaml
run 2 eg audit --audit-log "$LOG" frobnicate
run 2 eg audit verify --audit-log "$LOG" --cluster ns/a
run 2 eg audit --audit-log "$LOG" --since-seq -1

say "a torn last line is a warning, not a break"
cp "$LOG" "$T/torn.jsonl"
printf '{"seq":6,"time":"2026-' >>"$T/torn.jsonl"
run 0 eg audit verify --audit-log "$T/torn.jsonl"
[ "$(cat "$T/out")" = "audit log $T/torn.jsonl: 5 records, chain intact" ] || fail "torn verify: $(cat "$T/out")"
grep -qF "line 6: torn last record of 22 bytes without a newline" "$T/err" || fail "torn warning: $(cat "$T/err")"
run 0 eg audit --audit-log "$T/torn.jsonl" -o json
[ "$(seqs)" = "1,2,3,4,5" ] || fail "torn log lists $(seqs)"

say "an edited record is blamed: the chain breaks at its line"
sed -i '4s/learner caught up/learner is caught up/' "$LOG"
run 1 eg audit verify --audit-log "$LOG"
[ "$(cat "$T/out")" = "audit log $LOG: chain broken after 3 good records: line 4: its hash is not what line 5 records as prev (record edited?)" ] ||
  fail "edited verify: $(cat "$T/out")"

say "a removed record breaks the chain where it was"
sed -i '2d' "$T/torn.jsonl"
run 1 eg audit verify --audit-log "$T/torn.jsonl"
[ "$(cat "$T/out")" = "audit log $T/torn.jsonl: chain broken after 1 good record: line 2: seq is 3, expected 2 (record removed, reordered or duplicated?)" ] ||
  fail "removed verify: $(cat "$T/out")"

say "listing skips what is not a record and says so"
printf 'garbage\n' >"$T/garbage.jsonl"
cat "$STATE/audit.jsonl" >>"$T/garbage.jsonl"
run 0 eg audit --audit-log "$T/garbage.jsonl" -o json
[ "$(seqs)" = "1,2,3,4,5" ] || fail "garbage log lists $(seqs)"
grep -qF "skipped 1 line of $T/garbage.jsonl that is not a valid record" "$T/err" || fail "skip note: $(cat "$T/err")"
run 1 eg audit verify --audit-log "$T/garbage.jsonl"
grep -qF "line 1: not valid JSON" "$T/out" || fail "garbage verify: $(cat "$T/out")"

say "ok"
