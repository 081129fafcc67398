#!/usr/bin/env bash
# `cmake --install` into a DESTDIR lays out a service whose files name each other: the unit
# runs the installed binary with the installed settings, sysusers.d and tmpfiles.d make the
# user and directories the unit uses, `systemd-analyze verify` accepts it and `security`
# scores it 2.5 or less, and the unit's ExecStart, run as systemd would (its Environment=,
# EnvironmentFile= and a notify socket), comes up READY, and the installed CLI drives it
# through its control socket (reconcile, apply handed off, suspend, resume, get). Works
# without systemd as PID 1.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
: "${EG_BUILD_DIR:?set by ctest}"

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles cmake; do
  command -v "$tool" >/dev/null || fail "$tool not found (Debian: apt-get install systemd cmake)"
done

D="$T/root"
cache() { sed -n "s/^$1:[A-Z]*=//p" "$EG_BUILD_DIR/CMakeCache.txt"; }
prefix=$(cache CMAKE_INSTALL_PREFIX)
# GNUInstallDirs: settings in /etc for the /usr prefix, else under the prefix
case $prefix in
/usr) conf=/etc/etcd-gitops ;;
*) conf=$prefix/etc/etcd-gitops ;;
esac
unit_path=$prefix/lib/systemd/system/etcd-gitops.service

# unit_get FILE KEY: the values of KEY= in FILE, one a line
unit_get() { sed -n "s/^$2=//p" "$1"; }

say "cmake --install $EG_BUILD_DIR with DESTDIR (prefix $prefix)"
DESTDIR="$D" cmake --install "$EG_BUILD_DIR" >"$T/install.log" 2>&1 || { cat "$T/install.log" >&2; fail "cmake --install failed"; }
want=(
  "$prefix/bin/etcd-gitops"
  "$conf/etcd-gitops.env"
  "$conf/manifests/"
  "$unit_path"
  "$prefix/lib/sysusers.d/etcd-gitops.conf"
  "$prefix/lib/tmpfiles.d/etcd-gitops.conf"
  "$prefix/share/man/man1/etcd-gitops.1"
)
got=$(cd "$D" && find . \( -type f -printf '/%P\n' \) -o \( -type d -empty -printf '/%P/\n' \) | sort)
[ "$got" = "$(printf '%s\n' "${want[@]}" | sort)" ] || fail "installed files:
$got
want:
$(printf '%s\n' "${want[@]}" | sort)"
cmp -s "$D$prefix/bin/etcd-gitops" "$EG_BIN" || fail "the installed binary is not $EG_BIN"
left=$(grep -l '@[A-Za-z_]*@' -r "$D$prefix/lib" "$D$conf" || true)
[ -z "$left" ] || fail "unexpanded @VARIABLE@ in: $left"
echo "ok installed files"

say "the unit names the installed binary, settings and directories"
U="$D$unit_path"
exec_start=$(unit_get "$U" ExecStart)
[ "${exec_start%% *}" = "$prefix/bin/etcd-gitops" ] || fail "ExecStart runs ${exec_start%% *}, installed: $prefix/bin/etcd-gitops"
[ "$(unit_get "$U" EnvironmentFile)" = "$conf/etcd-gitops.env" ] ||
  fail "EnvironmentFile=$(unit_get "$U" EnvironmentFile), installed: $conf/etcd-gitops.env (and no '-' to hide a miss)"
source_dir=$(unit_get "$D$conf/etcd-gitops.env" ETCD_GITOPS_SOURCE)
[ "$source_dir" = "$conf/manifests" ] && [ -d "$D$source_dir" ] || fail "ETCD_GITOPS_SOURCE=$source_dir is not the installed $conf/manifests"
[ "$(unit_get "$U" StateDirectory)" = etcd-gitops ] || fail "StateDirectory=$(unit_get "$U" StateDirectory)"
grep -qx 'Environment=ETCD_GITOPS_STATE_DIR=/var/lib/etcd-gitops' "$U" || fail "ETCD_GITOPS_STATE_DIR is not the StateDirectory"
[ "$(unit_get "$U" RuntimeDirectory)" = etcd-gitops ] || fail "RuntimeDirectory=$(unit_get "$U" RuntimeDirectory)"
echo "ok unit paths"

say "sysusers.d makes the unit's user and group, tmpfiles.d its directories"
[ "$(unit_get "$U" User)" = etcd-gitops ] && [ "$(unit_get "$U" Group)" = etcd-gitops ] || fail "User=/Group= not etcd-gitops"
mkdir -p "$D/etc"
systemd-sysusers --root="$D" "$D$prefix/lib/sysusers.d/etcd-gitops.conf" 2>"$T/sysusers.err" || fail "systemd-sysusers: $(cat "$T/sysusers.err")"
IFS=: read -r _ _ uid gid _ home shell < <(grep '^etcd-gitops:' "$D/etc/passwd") || fail "no etcd-gitops user made: $(cat "$D/etc/passwd")"
grep -q "^etcd-gitops:x:$gid:" "$D/etc/group" || fail "no etcd-gitops group $gid made"
[ "$home" = /var/lib/etcd-gitops ] && [ "$shell" = /usr/sbin/nologin ] || fail "etcd-gitops user: home $home, shell $shell"
systemd-tmpfiles --root="$D" --create "$D$prefix/lib/tmpfiles.d/etcd-gitops.conf" 2>"$T/tmpfiles.err" || fail "systemd-tmpfiles: $(cat "$T/tmpfiles.err")"
for row in "/var/lib/etcd-gitops 750 $uid $gid" "/var/lib/etcd-gitops/clusters 700 $uid $gid" "/run/etcd-gitops 750 $uid $gid" "$conf 750 0 $gid"; do
  read -r dir mode o g <<<"$row"
  [ "$(stat -c '%a %u %g' "$D$dir")" = "$mode $o $g" ] || fail "$dir: $(stat -c '%a %u %g' "$D$dir"), want $mode $o $g"
done
echo "ok sysusers.d, tmpfiles.d"

say "systemd-analyze verify and security, on the installed tree with the host's units beside it"
# verify resolves the unit's dependencies (sysinit.target, ...) and commands under --root
V="$T/verify-root"
cp -a "$D" "$V"
mkdir -p "$V/usr/lib/systemd"
cp -r /lib/systemd/system "$V/usr/lib/systemd/"
reload=$(unit_get "$U" ExecReload | cut -d' ' -f1)
[ -x "$reload" ] || fail "ExecReload runs $reload, not on this host"
mkdir -p "$V$(dirname "$reload")"
cp "$reload" "$V$reload"
man_check=(--man=yes)
if ! command -v man >/dev/null; then
  say "man not found (Debian: man-db): verify skips Documentation=man:etcd-gitops(1)"
  man_check=(--man=no)
fi
MANPATH="$D$prefix/share/man" systemd-analyze verify "${man_check[@]}" --root="$V" "$unit_path" >"$T/verify.out" 2>&1 ||
  fail "systemd-analyze verify: $(cat "$T/verify.out")"
# it exits 0 on unknown keys and bad values: any word from it is a failure
[ ! -s "$T/verify.out" ] || fail "systemd-analyze verify: $(cat "$T/verify.out")"
systemd-analyze security --offline=true --root="$V" etcd-gitops.service >"$T/security.out" 2>&1 || true
# "→" in a UTF-8 locale, "->" in C
score=$(sed -n 's/^.* Overall exposure level for etcd-gitops.service: \([0-9.]*\) .*/\1/p' "$T/security.out")
[ -n "$score" ] || fail "no exposure level in: $(cat "$T/security.out")"
python3 -c "import sys; sys.exit(float('$score') > 2.5)" || fail "exposure $score > 2.5:
$(cat "$T/security.out")"
echo "ok verify, exposure level $score"

say "the installed binary with the installed settings validates examples/"
cp -r "$EG_SOURCE_DIR/examples/." "$D$source_dir/"
(
  set -a
  . "$D$conf/etcd-gitops.env"
  set +a
  "$D$prefix/bin/etcd-gitops" validate --strict "$D$ETCD_GITOPS_SOURCE"
) >"$T/validate.out" 2>&1 || fail "validate of examples/ in the installed source: $(cat "$T/validate.out")"
grep -Eq '^[0-9]+ objects valid, 0 invalid' "$T/validate.out" || fail "validate: $(cat "$T/validate.out")"
rm -rf "${D:?}$source_dir"/*
echo "ok validate examples/"

say "an edited settings file survives a new install"
sed -i 's/^ETCD_GITOPS_LISTEN=.*/ETCD_GITOPS_LISTEN=127.0.0.1:0/' "$D$conf/etcd-gitops.env"
DESTDIR="$D" cmake --install "$EG_BUILD_DIR" >"$T/install.log" 2>&1 || { cat "$T/install.log" >&2; fail "second cmake --install failed"; }
grep -qx 'ETCD_GITOPS_LISTEN=127.0.0.1:0' "$D$conf/etcd-gitops.env" || fail "a new install overwrote $conf/etcd-gitops.env"
grep -q "Kept: $D$conf/etcd-gitops.env" "$T/install.log" || fail "the install does not say it kept the settings: $(cat "$T/install.log")"
echo "ok settings kept"

say "ExecStart as systemd runs it: Environment=, then EnvironmentFile=, \${VAR} and \$VAR expanded"
NOTIFY="$T/notify.log"
: >"$NOTIFY"
python3 "$EG_SOURCE_DIR/tests/lib/notify_listener.py" "$T/notify.sock" "$NOTIFY" $$ &
wait_until 10 "the notify socket" test -S "$T/notify.sock"
# Paths are taken inside DESTDIR; the settings above listen on a free port.
NOTIFY_SOCKET="$T/notify.sock" python3 - "$U" "$D" "$T/argv" "$T/envv" <<'EOF' || fail "could not expand the unit's ExecStart"
import os, re, shlex, sys

unit, root, argv_out, env_out = sys.argv[1:]
env, exec_start, env_files = {}, None, []
for line in open(unit):
    line = line.rstrip("\n")
    if line.startswith("Environment="):
        k, v = line[len("Environment="):].split("=", 1)
        env[k] = v
    elif line.startswith("EnvironmentFile="):
        env_files.append(line[len("EnvironmentFile="):])
    elif line.startswith("ExecStart="):
        exec_start = line[len("ExecStart="):]
for f in env_files:  # after Environment=: its settings win
    for line in open(root + f):
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            k, v = line.split("=", 1)
            env[k] = " ".join(shlex.split(v))
rebase = lambda v: root + v if v.startswith("/") else v
env = {k: rebase(v) for k, v in env.items()}
argv = []
for word in shlex.split(exec_start):
    m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
    if m:  # $VAR: split into words, none when empty
        argv += env.get(m.group(1), "").split()
    else:
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
argv[0] = rebase(argv[0])
env.update(PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME=root + "/var/lib/etcd-gitops",
           STATE_DIRECTORY=root + "/var/lib/etcd-gitops", RUNTIME_DIRECTORY=root + "/run/etcd-gitops",
           NOTIFY_SOCKET=os.environ["NOTIFY_SOCKET"])
open(argv_out, "w").write("\0".join(argv) + "\0")
open(env_out, "w").write("\0".join(f"{k}={v}" for k, v in env.items()) + "\0")
EOF
mapfile -d '' argv <"$T/argv"
mapfile -d '' envv <"$T/envv"
[ "${argv[*]:1:5}" = "run --source $D$source_dir --listen 127.0.0.1:0" ] || fail "ExecStart expands to: ${argv[*]}"
env -i "${envv[@]}" "${argv[@]}" >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_until 60 "READY=1 from the daemon the unit starts" grep -qx READY=1 "$NOTIFY"
port=$(sed -n 's/.*serving .* (port \([0-9][0-9]*\)).*/\1/p' "$T/daemon.log" | head -n1)
[ -n "$port" ] || fail "no HTTP port in the daemon log"
[ "$(curl -sS --max-time 5 "http://127.0.0.1:$port/healthz")" = ok ] || fail "/healthz of the daemon the unit starts"
echo "ok ExecStart runs the installed daemon on the installed settings"

say "the CLI drives the installed daemon through its control socket, with no flag but the state dir"
sock="$D/run/etcd-gitops/control.sock"
wait_until 10 "the control socket in RuntimeDirectory" test -S "$sock"
[ "$(stat -c %a "$sock")" = 660 ] || fail "control socket mode $(stat -c %a "$sock"), want 660"
[ "$(readlink "$D/var/lib/etcd-gitops/control.sock")" = "$sock" ] || fail "no link to the socket in the state dir"
cli() { ETCD_GITOPS_STATE_DIR="$D/var/lib/etcd-gitops" "$D$prefix/bin/etcd-gitops" "$@"; }
cli reconcile --with-source >"$T/cli.out" 2>"$T/cli.err" || fail "reconcile: $(cat "$T/cli.err")"
grep -qx "0 clusters: 0 converged, 0 blocked, 0 failing" "$T/cli.out" || fail "reconcile printed: $(cat "$T/cli.out")"
cli apply --source "$D$source_dir" >"$T/cli.out" 2>"$T/cli.err" || fail "apply handed off: $(cat "$T/cli.err")"
grep -q "asking it to read the source and pass" "$T/cli.err" || fail "apply did not hand off: $(cat "$T/cli.err")"
rc=0
cli apply --source "$T" >"$T/cli.out" 2>"$T/cli.err" || rc=$?
((rc == 2)) && grep -q "follows $D$source_dir, not $T" "$T/cli.err" || fail "apply of another source: exit $rc, $(cat "$T/cli.err")"
cli get clusters >"$T/cli.out" 2>"$T/cli.err" || fail "get clusters: $(cat "$T/cli.err")"
# the daemon answers for its state: with no cluster there is nothing to suspend
for verb in suspend resume; do
  rc=0
  cli "$verb" --all >"$T/cli.out" 2>"$T/cli.err" || rc=$?
  ! grep -q busy "$T/cli.err" && grep -q cluster "$T/cli.out" "$T/cli.err" || fail "$verb --all: exit $rc, $(cat "$T/cli.err")"
done
stop_daemon
[ ! -e "$sock" ] && [ ! -L "$D/var/lib/etcd-gitops/control.sock" ] || fail "the control socket or its link outlived the daemon"
grep -qx STOPPING=1 "$NOTIFY" || fail "no STOPPING=1 on SIGTERM: $(cat "$NOTIFY")"
echo "ok the CLI drives the installed daemon"

say "an install with another --prefix than configured is refused, not laid out half right"
rc=0
cmake --install "$EG_BUILD_DIR" --component systemd --prefix "$T/elsewhere" >"$T/install.log" 2>&1 || rc=$?
((rc != 0)) || fail "cmake --install --prefix $T/elsewhere succeeded with a unit naming $prefix"
# cmake wraps the message: compare it as one line
tr -s ' \n' '  ' <"$T/install.log" | grep -q "configure with -DCMAKE_INSTALL_PREFIX=$T/elsewhere rather than" || fail "no reason given: $(cat "$T/install.log")"
[ ! -e "$T/elsewhere$unit_path" ] || fail "a unit naming $prefix was installed under $T/elsewhere"
echo "ok --prefix refused"

say "prefix /usr: settings in /etc, the unit runs /usr/bin/etcd-gitops"
cmake -S "$EG_SOURCE_DIR" -B "$T/build-usr" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF >"$T/cmake.log" 2>&1 ||
  fail "configure with prefix /usr: $(tail -20 "$T/cmake.log")"
DESTDIR="$T/root-usr" cmake --install "$T/build-usr" --component systemd >"$T/install.log" 2>&1 ||
  fail "install with prefix /usr: $(cat "$T/install.log")"
U="$T/root-usr/usr/lib/systemd/system/etcd-gitops.service"
[ -f "$U" ] || fail "no unit in /usr/lib/systemd/system"
[ "$(unit_get "$U" ExecStart | cut -d' ' -f1)" = /usr/bin/etcd-gitops ] || fail "prefix /usr: ExecStart=$(unit_get "$U" ExecStart)"
[ "$(unit_get "$U" EnvironmentFile)" = /etc/etcd-gitops/etcd-gitops.env ] || fail "prefix /usr: EnvironmentFile=$(unit_get "$U" EnvironmentFile)"
[ "$(unit_get "$T/root-usr/etc/etcd-gitops/etcd-gitops.env" ETCD_GITOPS_SOURCE)" = /etc/etcd-gitops/manifests ] ||
  fail "prefix /usr: no /etc/etcd-gitops/etcd-gitops.env naming /etc/etcd-gitops/manifests"
grep -qx 'd /etc/etcd-gitops 0750 root etcd-gitops -' "$T/root-usr/usr/lib/tmpfiles.d/etcd-gitops.conf" || fail "prefix /usr: tmpfiles.d does not name /etc/etcd-gitops"
[ -f "$T/root-usr/usr/lib/sysusers.d/etcd-gitops.conf" ] || fail "prefix /usr: no sysusers.d file"
echo "ok prefix /usr"

echo "ok install"
