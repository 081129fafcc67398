#!/usr/bin/env bash
# `etcd-gitops completion bash|zsh|fish` follows the command and option tables (every
# command and every option its --help shows completes), and `version -o json` names the
# build and the libraries it runs with.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

run() {
  local want=$1 rc=0; shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, want $want; stderr: $(cat "$T/err")"
}

say "bash: commands, options, option values and kinds complete"
run 0 eg completion bash
bash -n "$T/out" || fail "the bash script does not parse"
cp "$T/out" "$T/completion.bash"
complete_words() { # complete_words WORD...: COMPREPLY for the last word, one a line
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _etcd_gitops; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$T/completion.bash" etcd-gitops "$@"
}
commands=$("$EG_BIN" --help | sed -n '/^commands:/,/^$/p' | awk 'NF>1 {print $1}' | sort)
[ -n "$commands" ] || fail "no commands in --help"
[ "$(complete_words "" | sort)" = "$commands" ] || fail "commands: $(complete_words "")"
[ "$(complete_words ap)" = "apply" ] || fail "ap: $(complete_words ap)"
for c in $commands; do
  for o in $("$EG_BIN" "$c" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
    got=$(complete_words "$c" "$o")
    grep -qx -- "$o" <<<"$got" || fail "$c: option $o does not complete"
  done
done
[ "$(complete_words get -o w)" = "wide" ] || fail "get -o w: $(complete_words get -o w)"
[ "$(complete_words get clu | sort | tr '\n' ' ')" = "cluster clusters " ] || fail "get clu: $(complete_words get clu)"
[ "$(complete_words audit ver)" = "verify" ] || fail "audit ver: $(complete_words audit ver)"

say "zsh and fish scripts name every command"
run 0 eg completion zsh
head -n 1 "$T/out" | grep -qx '#compdef etcd-gitops' || fail "zsh: no #compdef line"
run 0 eg completion fish
for c in $commands; do
  grep -q -- "-a $c -d" "$T/out" || fail "fish: no command $c"
done
grep -qF "__fish_seen_subcommand_from get' -l output -s o -x -a 'table wide name json yaml'" "$T/out" ||
  fail "fish: get -o values: $(grep 'from get' "$T/out")"
run 2 eg completion tcsh
grep -qF "bash, zsh or fish" "$T/err" || fail "completion tcsh: $(cat "$T/err")"

say "version -o json: the version, the commit, the libraries at run time"
run 0 eg version -o json
python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
assert d["version"] and d["gitCommit"], d
for lib in ("libgit2","libcurl","jansson","libyaml","libmicrohttpd","openssl"):
    assert d["libraries"][lib], lib' "$T/out" || fail "version -o json: $(cat "$T/out")"
run 0 eg version
grep -q "^etcd-gitops " "$T/out" || fail "version: $(cat "$T/out")"
run 2 eg version -o yaml

say "ok"
