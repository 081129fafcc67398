#!/usr/bin/env bash
# The daemon and its etcd members work inside the sandbox etcd-gitops.service sets up. Without
# systemd as PID 1 the test builds it: a mount namespace with a read-only file system but the
# state dir (ProtectSystem=strict), empty /home and /root (ProtectHome=yes), a /dev of
# pseudo-devices (PrivateDevices=yes), a /proc showing only the user's processes and nothing
# else (ProtectProc=invisible, ProcSubset=pid), an unprivileged user without capabilities
# (User=, CapabilityBoundingSet=, NoNewPrivileges=), umask 0027, cwd / and systemd's PATH.
# Inside it the daemon creates a cluster, scales it, takes a backup, reloads and restarts a
# killed member, all under strace, whose record must fit the rest of the unit: every system
# call in SystemCallFilter=, every socket in RestrictAddressFamilies=, no memory writable and
# executable (MemoryDenyWriteExecute=), nothing written outside the state directory.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
: "${EG_BUILD_DIR:?set by ctest}"

UNIT="$EG_BUILD_DIR/systemd/etcd-gitops.service"
[ -f "$UNIT" ] || fail "no generated unit at $UNIT"
for tool in strace setpriv unshare systemd-analyze; do
  command -v "$tool" >/dev/null || fail "$tool not found (Debian: apt-get install strace util-linux systemd)"
done
if [ "$(id -u)" != 0 ] ||
  ! unshare --mount --propagation private mount -t proc -o hidepid=invisible,subset=pid proc /proc 2>/dev/null; then
  say "SKIP: building the unit's sandbox needs root, mount namespaces and Linux 5.8's /proc options"
  exit 0
fi

say "the unit sets the sandbox this test builds"
for setting in ProtectSystem=strict ProtectHome=yes PrivateDevices=yes ProtectProc=invisible ProcSubset=pid \
  NoNewPrivileges=yes CapabilityBoundingSet= UMask=0027 MemoryDenyWriteExecute=yes StateDirectory=etcd-gitops; do
  grep -qx "$setting" "$UNIT" || fail "$UNIT does not set $setting: update this test with the unit"
done

# The unit's user is made by sysusers.d; here nobody stands in for it.
chmod 711 "$T"
chown nobody:nogroup "$STATE"
# The test's own commands (get) run as that user too: as root, one that came before the
# daemon had made STATE/clusters made it, root's and 0700, and the daemon was refused it
# (EACCES) until the wait ran out; under the load of a whole-suite run the daemon starts
# late enough under strace for that to happen.
eg() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$EG_BIN" "$@"; }
mkdir "$T/out"
cluster_yaml demo 1

# sandbox.sh: run in a new mount namespace as root; lays out the mounts, then starts the
# daemon under strace as nobody.
cat >"$T/sandbox.sh" <<'EOF'
set -euo pipefail
T=$1 STATE=$2 SRC=$3 EG_BIN=$4
# PrivateDevices=: null, zero, full, random, urandom, tty and an empty /dev/shm
mkdir "$T/dev"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$T/dev"
for n in null zero full random urandom tty; do
  touch "$T/dev/$n"
  mount --bind "/dev/$n" "$T/dev/$n"
done
mkdir -m 1777 "$T/dev/shm"
ln -s /proc/self/fd "$T/dev/fd"
for i in 0 1 2; do ln -s "/proc/self/fd/$i" "$T/dev/$(echo stdin stdout stderr | cut -d' ' -f$((i + 1)))"; done
mount --move "$T/dev" /dev
# ProtectHome=yes
for d in /home /root; do
  if [ -d "$d" ]; then mount -t tmpfs -o ro,mode=0755 tmpfs "$d"; fi
done
# ProtectProc=invisible, ProcSubset=pid
mount -t proc -o hidepid=invisible,subset=pid proc /proc
# ProtectSystem=strict: every mount read-only but the API file systems, then the state dir
# (StateDirectory=) writable again
for mp in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
  case $mp in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || echo "sandbox: $mp stays writable" >&2
done
for d in "$STATE" "$T/out"; do
  mount --bind "$d" "$d"
  mount -o remount,bind,rw "$d"
done
cd /
# ASAN_OPTIONS: a sanitizer build's leak check cannot run under ptrace
umask 0027
exec strace -f -y -q -o "$T/out/trace" -- setpriv --reuid=nobody --regid=nogroup --clear-groups \
  --inh-caps=-all --bounding-set=-all --no-new-privs -- \
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$STATE" ASAN_OPTIONS=detect_leaks=0 \
  ETCD_GITOPS_STATE_DIR="$STATE" "$EG_BIN" run --source "$SRC" --listen 127.0.0.1:0 --interval 2s
EOF
unshare --mount --propagation private bash "$T/sandbox.sh" "$T" "$STATE" "$SRC" "$EG_BIN" >"$T/daemon.log" 2>&1 &
STRACE_PID=$!
daemon_started() { DAEMON_PID=$(pgrep -P "$STRACE_PID" | head -n1) && [ -n "$DAEMON_PID" ] && [ "$(stat -c %U "/proc/$DAEMON_PID")" = nobody ]; }
wait_until 20 "the daemon to start as nobody" daemon_started
# the daemon's pid is no child of this shell: strace's record gives its exit status
on_exit 'kill -KILL $STRACE_PID 2>/dev/null'

say "create, scale, back up, reload, restart a killed member: inside the sandbox"
wait_until 120 "demo healthy with 1 member" healthy demo 1
cluster_yaml demo 2
wait_until 180 "demo healthy with 2 members" healthy demo 2
cat >"$SRC/backup.yaml" <<YAML
apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdBackup
metadata:
  name: demo-once
spec:
  etcdCluster:
    name: demo
  storageType: File
  file:
    path: $STATE/backups/demo
YAML
wait_until 120 "the backup in the state dir" sh -c "ls '$STATE/backups/demo' | grep -q ."
kill -HUP "$DAEMON_PID"
wait_until 20 "the reload" grep -q 'received SIGHUP' "$T/daemon.log"
victim=$(member_pids demo | cut -d' ' -f2)
[ -n "$victim" ] || fail "no second member pid"
kill -KILL "$victim"
restarted() { local pids; pids=$(member_pids demo) && [ "$(wc -w <<<"$pids")" = 2 ] && ! grep -qw "$victim" <<<"$pids"; }
wait_until 120 "the killed member restarted" restarted
wait_until 120 "demo healthy again" healthy demo 2
echo "ok the daemon and its members work in the sandbox"

say "stop: the daemon, then the members, so strace's record is complete"
kill -TERM "$DAEMON_PID"
wait_until 20 "the daemon to stop" pid_gone "$DAEMON_PID"
for p in $(recorded_pids); do kill -TERM "$p" 2>/dev/null || true; done
wait_until 30 "strace to finish" pid_gone "$STRACE_PID"
DAEMON_PID=

say "strace's record fits SystemCallFilter=, RestrictAddressFamilies=, MemoryDenyWriteExecute=, ProtectSystem="
python3 - "$UNIT" "$T/out/trace" "$EG_BIN" "$STATE" <<'EOF' || fail "the daemon or its members do something the unit forbids (above)"
import collections, re, subprocess, sys

unit, trace, binary, state = sys.argv[1:]
settings = collections.defaultdict(list)
for line in open(unit):
    if "=" in line and not line.startswith("#"):
        k, v = line.rstrip("\n").split("=", 1)
        settings[k].append(v)

def expand(name, seen):
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name],
                         capture_output=True, text=True, check=True).stdout
    calls = set()
    for w in out.splitlines()[1:]:
        w = w.strip()
        if w and not w.startswith("#"):
            calls |= expand(w, seen)
    return calls

allowed, denied = set(), set()
for v in settings["SystemCallFilter"]:
    deny = v.startswith("~")
    for name in v.lstrip("~").split():
        (denied if deny else allowed).update(expand(name, set()))
allowed -= denied
families = set(" ".join(settings["RestrictAddressFamilies"]).split())

def events(path):
    """(pid, call, arguments and result) per system call, its halves joined when strace
    split it between threads ("<unfinished ...>", "<... call resumed>")."""
    pending = {}
    for line in open(path):
        line = line.rstrip("\n")
        m = re.match(r"(\d+) +<\.\.\. ([a-z0-9_]+) resumed>(.*)", line)
        if m:
            pid, call, rest = m.groups()
            if pid in pending:
                yield pid, call, pending.pop(pid) + rest
            continue
        m = re.match(r"(\d+) +([a-z0-9_]+)\((.*)", line)
        if m:
            pid, call, rest = m.groups()
            if rest.endswith(" <unfinished ...>"):
                pending[pid] = rest[: -len(" <unfinished ...>")]
            else:
                yield pid, call, rest
            continue
        m = re.match(r"(\d+) +\+\+\+ exited with (\d+) \+\+\+", line)
        if m:
            yield m.group(1), "+++exit", m.group(2)

problems, calls = {}, collections.Counter()
problem = lambda key, text: problems.setdefault(key, text)
started, daemon_pid, exit_status = False, None, None
write_flags = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")
for pid, call, rest in events(trace):
    if call == "+++exit":
        if pid == daemon_pid:
            exit_status = int(rest)
        continue
    if not started:  # setpriv and env run before the sandbox's filter would apply
        if call == "execve" and rest.startswith(f'"{binary}"'):
            started, daemon_pid = True, pid
        continue
    calls[call] += 1
    line = f"{pid} {call}({rest}"[:200]
    if call not in allowed:
        problem(("call", call), f"system call {call} is not in SystemCallFilter=: {line}")
    if call == "socket":
        fam = rest.split(",", 1)[0]
        if fam not in families:
            problem(("family", fam), f"socket family {fam} is not in RestrictAddressFamilies=: {line}")
    if call in ("mmap", "mprotect", "pkey_mprotect") and "PROT_WRITE" in rest and "PROT_EXEC" in rest:
        problem(("wx", pid), f"writable and executable memory (MemoryDenyWriteExecute=): {line}")
    if call in ("openat", "open", "creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2",
                "unlink", "unlinkat", "link", "linkat", "symlink", "symlinkat") and not re.search(r"\) += -1 ", rest):
        if call in ("openat", "open") and not write_flags.search(rest):
            continue
        # strace -y names an fd argument's file: DIR<PATH>, then the quoted name
        d = re.match(r"(?:[A-Z_]+|\d+<([^>]*)>), \"([^\"]*)\"|\"([^\"]*)\"", rest)
        if not d:
            continue
        name = d.group(2) if d.group(2) is not None else d.group(3)
        path = name if name.startswith("/") else (d.group(1) or "/") + "/" + name
        if not (path == state or path.startswith(state + "/") or path.startswith("/dev/")):
            problem(("write", path), f"{call} writes {path}, outside the state directory: {line}")
if not started:
    problem("exec", f"no execve of {binary} in the record")
if exit_status != 0:
    problem("exit", f"the daemon exited with {exit_status}, want 0 after SIGTERM")
for text in problems.values():
    print(text, file=sys.stderr)
print(f"{sum(calls.values())} system calls of {len(calls)} kinds checked")
sys.exit(1 if problems else 0)
EOF
echo "ok the record fits the unit's filters"
echo "ok sandbox"
