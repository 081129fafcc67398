#!/usr/bin/env bash
# `etcd-gitops audit`: --follow prints records as they are appended, --since (a duration or
# an RFC 3339 time), --outcome and --decision filter, --cluster NAME finds its namespace,
# and `verify` says what is wrong with its arguments.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

LOG="$T/audit.jsonl"

run() {
  local want=$1 rc=0; shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, want $want; stderr: $(cat "$T/err")"
}
seqs() { python3 -c 'import json,sys; print(",".join(str(r["seq"]) for r in json.load(open(sys.argv[1]))))' "$T/out"; }

# A chained log (specs/audit-log.md): records 1-4 two days old, 5-6 from a minute ago.
python3 - "$T/all.jsonl" <<'EOF2'
import datetime, hashlib, json, sys
now = datetime.datetime.now(datetime.timezone.utc)
old, new = now - datetime.timedelta(days=2), now - datetime.timedelta(minutes=1)
records = [
    dict(cluster="uxtest/ux", decision="create", outcome="ok", t=old),
    dict(cluster="uxtest/ux", decision="add-learner", member="ux-1", outcome="failed", error="boom", t=old),
    dict(cluster="a/dup", decision="create", outcome="ok", t=old),
    dict(cluster="b/dup", decision="create", outcome="blocked", t=old),
    dict(cluster="uxtest/ux", decision="add-learner", member="ux-1", outcome="ok", t=new),
    dict(cluster="uxtest/ux", decision="promote", member="ux-1", outcome="ok", t=new),
]
order = ["seq", "time", "revision", "cluster", "decision", "member", "reason", "outcome", "duration_ms", "error", "prev"]
prev = "0" * 64
with open(sys.argv[1], "wb") as f:
    for i, r in enumerate(records, 1):
        t = r.pop("t").strftime("%Y-%m-%dT%H:%M:%S.000Z")
        r = dict(r, seq=i, time=t, revision="sha256:" + "ab" * 32, reason="r", duration_ms=1, prev=prev)
        line = json.dumps({k: r[k] for k in order if k in r}, separators=(",", ":")).encode()
        f.write(line + b"\n")
        prev = hashlib.sha256(line).hexdigest()
EOF2
cp "$T/all.jsonl" "$LOG"

say "--since takes a duration or a time; --outcome and --decision filter"
run 0 eg audit --audit-log "$LOG" --since 1h -o json
[ "$(seqs)" = "5,6" ] || fail "--since 1h gave $(seqs)"
run 0 eg audit --audit-log "$LOG" --since 2000-01-01T00:00:00Z -o json
[ "$(seqs)" = "1,2,3,4,5,6" ] || fail "--since 2000-01-01 gave $(seqs)"
run 0 eg audit --audit-log "$LOG" --since 2999-01-01T00:00:00+02:00 -o json
[ "$(seqs)" = "" ] || fail "--since 2999 gave $(seqs)"
run 2 eg audit --audit-log "$LOG" --since yesterday
grep -qF "duration such as 1h or a time such as" "$T/err" || fail "--since yesterday: $(cat "$T/err")"
run 0 eg audit --audit-log "$LOG" --outcome failed -o json
[ "$(seqs)" = "2" ] || fail "--outcome failed gave $(seqs)"
run 0 eg audit --audit-log "$LOG" --decision add-learner --outcome ok -o json
[ "$(seqs)" = "5" ] || fail "--decision add-learner --outcome ok gave $(seqs)"

say "--cluster NAME finds the one namespace that has it, and refuses an ambiguous name"
run 0 eg audit --audit-log "$LOG" --cluster ux -o json
[ "$(seqs)" = "1,2,5,6" ] || fail "--cluster ux gave $(seqs)"
run 2 eg audit --audit-log "$LOG" --cluster dup
grep -qF "'dup' names more than one cluster: a/dup, b/dup" "$T/err" || fail "ambiguous --cluster: $(cat "$T/err")"
run 0 eg audit --audit-log "$LOG" --cluster b/dup -o json
[ "$(seqs)" = "4" ] || fail "--cluster b/dup gave $(seqs)"

say "verify names what is wrong with its arguments"
run 2 eg audit --audit-log "$LOG" verify extra
grep -qF "verify takes no argument, got 'extra'" "$T/err" || fail "verify extra: $(cat "$T/err")"
run 2 eg audit --audit-log "$LOG" verify --follow

say "--follow prints the records appended, one JSON object a line with -o json, and Ctrl-C exits 0"
head -n 3 "$T/all.jsonl" >"$LOG"
"$EG_BIN" audit --audit-log "$LOG" --follow --cluster uxtest/ux -o json >"$T/follow" 2>"$T/follow.err" &
pid=$!
on_exit "kill $pid 2>/dev/null"
lines_are() { [ "$(wc -l <"$1")" -eq "$2" ]; }
wait_until 10 "the records there" lines_are "$T/follow" 2
sed -n 4,5p "$T/all.jsonl" >>"$LOG"
wait_until 10 "record 5 once appended" grep -q '"seq": *5' "$T/follow"
sed -n 6p "$T/all.jsonl" >>"$LOG"
wait_until 10 "record 6 once appended" grep -q '"seq": *6' "$T/follow"
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "audit --follow exited $rc after SIGINT: $(cat "$T/follow.err")"
[ "$(python3 -c 'import json,sys; print(",".join(str(json.loads(l)["seq"]) for l in open(sys.argv[1])))' "$T/follow")" = "1,2,5,6" ] ||
  fail "followed: $(cat "$T/follow")"

say "--follow on a table prints the header once"
head -n 1 "$T/all.jsonl" >"$LOG"
"$EG_BIN" audit --audit-log "$LOG" -f >"$T/follow" 2>"$T/follow.err" &
pid=$!
on_exit "kill $pid 2>/dev/null"
wait_until 10 "the first row" grep -q "^1 " "$T/follow"
sed -n 2p "$T/all.jsonl" >>"$LOG"
wait_until 10 "the second row" grep -q "^2 " "$T/follow"
kill -INT "$pid"
wait "$pid" || fail "audit -f exited non-zero after SIGINT"
[ "$(grep -c '^SEQ' "$T/follow")" -eq 1 ] || fail "header not once: $(cat "$T/follow")"

say "ok"
