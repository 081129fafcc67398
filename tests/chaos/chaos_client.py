#!/usr/bin/env python3
"""Clients of the chaos test (tests/chaos/chaos.sh), over etcd's JSON gateway.

  writer   puts /chaos/w/<seq> continuously, failing over between the members' client
           URLs, and appends every ACKNOWLEDGED put to the ack log as
           "key value revision endpoint unix-time".
  reader   linearizable reads of the writer's latest key; a read started after a put was
           acknowledged must see it, and revisions and the latest key never go back.
  verify   every acknowledged put is present with its value and the revision it was
           acknowledged at; acknowledged revisions strictly increase.
  members  etcd's own member list (checked against the manifest's size at the end).
  orphans  etcd processes and member data dirs under the state dir that no record owns.

Endpoints come from the daemon's status file (fresh on every pass) and, when none of
those answer, from `etcd-gitops get members -o json`; every URL ever seen is kept, as a
member restarted in place keeps its URL while the status file may lag.
"""
import argparse
import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

PREFIX = "/chaos/w/"
PREFIX_END = "/chaos/w0"  # '0' follows '/': the end of the prefix range


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode()


def now():
    return time.time()


class Stop:
    flag = False


def on_term(signum, frame):
    Stop.flag = True


class Endpoints:
    def __init__(self, state, eg_bin, cluster, ns="default"):
        self.status_file = os.path.join(state, "status", ns, cluster + ".json")
        self.eg_bin = eg_bin
        self.cluster = cluster
        self.known = []  # most recently reported first
        self.i = 0
        self.last_cli = 0.0

    def _merge(self, urls):
        fresh = [u for u in urls if u]
        self.known = fresh + [u for u in self.known if u not in fresh]

    @staticmethod
    def _urls(obj):
        st = obj.get("status") or {}
        urls = list(st.get("clientURLs") or [])
        for m in st.get("memberDetails") or []:
            if m.get("clientURL") and m["clientURL"] not in urls:
                urls.append(m["clientURL"])
        return urls

    def refresh(self, use_cli=False):
        try:
            with open(self.status_file) as f:
                self._merge(self._urls(json.load(f)))
        except (OSError, ValueError):
            pass
        # the CLI asks the runtime live, but it is a process per call: at most every 2 s
        if use_cli and self.eg_bin and now() - self.last_cli > 2:
            self.last_cli = now()
            try:
                out = subprocess.run([self.eg_bin, "get", "members", self.cluster, "-o", "json"],
                                     capture_output=True, timeout=20, text=True).stdout
                for obj in json.loads(out or "[]"):
                    self._merge(self._urls(obj))
            except (OSError, ValueError, subprocess.SubprocessError):
                pass

    def current(self):
        if not self.known:
            self.refresh(use_cli=True)
        if not self.known:
            return None
        return self.known[self.i % len(self.known)]

    def rotate(self):
        self.i += 1
        if self.i % max(1, len(self.known)) == 0:
            self.refresh(use_cli=True)
        else:
            self.refresh()


def call(url, path, body, timeout):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


# Ports of a member that is down can be taken by another cluster on this host (tests
# running side by side): only answers from this cluster count.
CLUSTER_ID = None


def try_call(url, path, body, timeout):
    """The response, or None with the reason when it failed in any way."""
    try:
        d = call(url, path, body, timeout)
    except urllib.error.HTTPError as e:
        try:
            return None, "HTTP %d %s" % (e.code, e.read()[:200].decode(errors="replace"))
        except Exception:
            return None, "HTTP %d" % e.code
    except Exception as e:  # refused, reset, timeout: the outcome is unknown
        return None, type(e).__name__ + ": " + str(e)[:200]
    if "header" not in d or "error" in d:
        return None, "no header: " + json.dumps(d)[:200]
    if CLUSTER_ID and d["header"].get("cluster_id") != CLUSTER_ID:
        return None, "another cluster answers (cluster_id %s)" % d["header"].get("cluster_id")
    return d, None


def writer(a):
    ep = Endpoints(a.state, a.eg_bin, a.cluster)
    rnd = random.Random(a.seed)
    seq = 0
    acks = fails = 0
    last_ack = now()
    worst_gap, worst_at = 0.0, 0.0
    out = open(a.ack_log, "a", buffering=1)
    errs = open(a.ack_log + ".errors", "a", buffering=1)
    while not Stop.flag and not os.path.exists(a.stop_file):
        url = ep.current()
        if url is None:
            time.sleep(0.2)
            continue
        seq += 1
        # a fresh key per attempt: an unacknowledged put may still be applied later, and
        # must not be confused with an acknowledged one
        key = "%s%08d" % (PREFIX, seq)
        val = "%s-%d-%08x" % (a.seed, seq, rnd.getrandbits(32))
        d, why = try_call(url, "/v3/kv/put", {"key": b64(key), "value": b64(val)}, a.timeout)
        t = now()
        if d is None:
            fails += 1
            errs.write("%.3f %s %s %s\n" % (t, key, url, why))
            ep.rotate()
            time.sleep(0.05)
            continue
        rev = int(d["header"]["revision"])
        out.write("%s %s %d %s %.3f\n" % (key, val, rev, url, t))
        acks += 1
        if t - last_ack > worst_gap:
            worst_gap, worst_at = t - last_ack, last_ack
        last_ack = t
        # a steady, modest rate: the writer must not starve two loaded cores
        time.sleep(a.pace)
    out.close()
    print("writer: %d acknowledged, %d attempts failed or unknown; longest time without an ack "
          "%.1f s (from %s)" % (acks, fails, worst_gap,
                                time.strftime("%H:%M:%S", time.gmtime(worst_at)) if worst_at else "-"))


class AckTail:
    """The last line of the ack log, read incrementally."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.buf = ""
        self.last = None

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except OSError:
            return self.last
        self.buf += data
        lines = self.buf.split("\n")
        self.buf = lines.pop()
        for ln in reversed(lines):
            p = ln.split()
            if len(p) >= 3:
                self.last = (p[0], p[1], int(p[2]))
                break
        return self.last


def reader(a):
    ep = Endpoints(a.state, a.eg_bin, a.cluster)
    tail = AckTail(a.ack_log)
    vio = open(a.violations, "a", buffering=1)
    seen_rev, seen_key = 0, ""
    reads = fails = bad = 0
    while not Stop.flag and not os.path.exists(a.stop_file):
        url = ep.current()
        if url is None:
            time.sleep(0.2)
            continue
        # read the ack log first: every put acknowledged before this read starts must be seen
        ack = tail.poll()
        body = {"key": b64(PREFIX), "range_end": b64(PREFIX_END), "limit": 1,
                "sort_order": "DESCEND", "sort_target": "KEY"}
        d, why = try_call(url, "/v3/kv/range", body, a.timeout)
        if d is None:
            fails += 1
            ep.rotate()
            time.sleep(0.05)
            continue
        reads += 1
        rev = int(d["header"]["revision"])
        kvs = d.get("kvs") or []
        key = unb64(kvs[0]["key"]) if kvs else ""
        val = unb64(kvs[0].get("value", "")) if kvs else ""
        problems = []
        if rev < seen_rev:
            problems.append("revision went back: %d after %d" % (rev, seen_rev))
        if key < seen_key:
            problems.append("latest key went back: %s after %s" % (key, seen_key))
        if ack:
            akey, aval, arev = ack
            if rev < arev:
                problems.append("stale read: revision %d, but %s was acknowledged at %d" % (rev, akey, arev))
            if key < akey:
                problems.append("stale read: latest key %s, but %s was acknowledged" % (key, akey))
            if key == akey and val != aval:
                problems.append("%s has value %r, acknowledged %r" % (key, val, aval))
        if problems:
            bad += 1
            for p in problems:
                vio.write("%.3f %s: %s\n" % (now(), url, p))
        seen_rev, seen_key = max(seen_rev, rev), max(seen_key, key)
        time.sleep(a.pace)
    print("reader: %d linearizable reads, %d failed, %d with violations; last revision %d, latest key %s"
          % (reads, fails, bad, seen_rev, seen_key or "-"))


def read_acks(path):
    acks = []
    with open(path) as f:
        for ln in f:
            p = ln.split()
            if len(p) >= 3:
                acks.append((p[0], p[1], int(p[2])))
    return acks


def range_all(ep, timeout, deadline):
    """Every key under the prefix, paginated, from one member that answers throughout."""
    while now() < deadline:
        url = ep.current()
        if url is None:
            time.sleep(0.2)
            ep.refresh(use_cli=True)
            continue
        kvs, start, ok = {}, PREFIX, True
        while True:
            d, why = try_call(url, "/v3/kv/range",
                              {"key": b64(start), "range_end": b64(PREFIX_END), "limit": 2000}, timeout)
            if d is None:
                print("verify: %s: %s" % (url, why), file=sys.stderr)
                ok = False
                break
            page = d.get("kvs") or []
            for kv in page:
                kvs[unb64(kv["key"])] = (unb64(kv.get("value", "")), int(kv.get("mod_revision", 0)))
            if not d.get("more") or not page:
                break
            start = unb64(page[-1]["key"]) + "\0"
        if ok:
            return kvs, url
        ep.rotate()
        time.sleep(0.2)
    return None, None


def verify(a):
    acks = read_acks(a.ack_log)
    ep = Endpoints(a.state, a.eg_bin, a.cluster)
    ep.refresh(use_cli=True)
    kvs, url = range_all(ep, a.timeout, now() + a.deadline)
    if kvs is None:
        print("verify: no member answered a full range read within %d s" % a.deadline)
        return 1
    missing, wrong, moved, order = [], [], [], []
    prev = 0
    for key, val, rev in acks:
        if rev <= prev:
            order.append("%s acknowledged at revision %d after revision %d" % (key, rev, prev))
        prev = max(prev, rev)
        got = kvs.get(key)
        if got is None:
            missing.append("%s (acknowledged at revision %d)" % (key, rev))
        elif got[0] != val:
            wrong.append("%s = %r, acknowledged %r" % (key, got[0], val))
        elif got[1] != rev:
            moved.append("%s mod_revision %d, acknowledged at %d" % (key, got[1], rev))
    acked = {k for k, _, _ in acks}
    extra = sum(1 for k in kvs if k not in acked)
    print("verify (%s): %d acknowledged puts; %d missing, %d with another value, %d at another "
          "revision, %d out of order; %d keys applied without an ack (allowed)"
          % (url, len(acks), len(missing), len(wrong), len(moved), len(order), extra))
    for title, lst in (("LOST", missing), ("WRONG VALUE", wrong), ("WRONG REVISION", moved),
                       ("ACK ORDER", order)):
        for x in lst[:20]:
            print("  %s: %s" % (title, x))
        if len(lst) > 20:
            print("  ... and %d more" % (len(lst) - 20))
    return 1 if (missing or wrong or moved or order or not acks) else 0


def members(a):
    """etcd's member list as seen by a member that answers: 'name voter|learner' lines."""
    ep = Endpoints(a.state, a.eg_bin, a.cluster)
    ep.refresh(use_cli=True)
    deadline = now() + a.deadline
    while now() < deadline:
        url = ep.current()
        if url:
            d, why = try_call(url, "/v3/cluster/member/list", {}, a.timeout)
            if d is not None:
                for m in d.get("members") or []:
                    print("%s %s" % (m.get("name") or "(unstarted:%s)" % m.get("ID"),
                                     "learner" if m.get("isLearner") else "voter"))
                return 0
        ep.rotate()
        time.sleep(0.2)
    return 1


def cluster_id(a):
    """The cluster's ID, from a member whose member list holds every member the status names."""
    deadline = now() + a.deadline
    while now() < deadline:
        try:
            with open(os.path.join(a.state, "status", "default", a.cluster + ".json")) as f:
                st = json.load(f)["status"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
            continue
        ids = {int(m["id"], 16) for m in st.get("memberDetails") or [] if m.get("id")}
        for url in Endpoints._urls({"status": st}):
            d, why = try_call(url, "/v3/cluster/member/list", {}, a.timeout)
            if d is None:
                continue
            got = {int(m["ID"]) for m in d.get("members") or []}
            if ids and ids <= got:
                print(d["header"]["cluster_id"])
                return 0
        time.sleep(0.2)
    return 1


def kill_when(a):
    """SIGKILLs --pid the moment the cluster record (members as m) satisfies --cond; the
    record as it was then is printed. A shell loop polls too slowly: a create starts its
    members a few milliseconds apart."""
    path = os.path.join(a.state, "clusters", "default", a.cluster, "cluster.json")
    cond = compile(a.cond, "cond", "eval")
    deadline = now() + a.deadline
    if a.ready_file:
        open(a.ready_file, "w").close()
    while now() < deadline:
        try:
            with open(path) as f:
                m = json.load(f).get("members") or []
        except (OSError, ValueError):
            m = None
        if m is not None and eval(cond, {"m": m}):
            try:
                os.kill(a.pid, signal.SIGKILL)
            except ProcessLookupError:
                print("the process was gone already")
                return 2
            print(", ".join("%s %s" % (x["name"], x.get("state")) for x in m))
            return 0
        time.sleep(0.001)
    print("not seen within %d s" % a.deadline)
    return 1


def cmdline_data_dir(pid):
    return cmdline_flag(pid, "--data-dir")


def cmdline_flag(pid, flag):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = [x.decode(errors="replace") for x in f.read().split(b"\0")]
    except OSError:
        return None
    for i, x in enumerate(args):
        if x.startswith(flag + "="):
            return x[len(flag) + 1:]
        if x == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def procs(a):
    """Shell assignments PIDS=(...) NAMES=(...) LEADER_PID=...: the cluster's etcd processes
    as /proc has them (zombies left out) and the leader as etcd itself names it. The status
    `get` prints can still show a member killed a moment ago as running, with its old role."""
    base = os.path.realpath(os.path.join(a.state, "clusters", "default", a.cluster, "members")) + "/"
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        dd = cmdline_flag(pid, "--data-dir")
        if not dd or not os.path.realpath(dd).startswith(base) or proc_state(pid) in (None, "Z", "X"):
            continue
        name = os.path.relpath(os.path.realpath(dd), base).split(os.sep)[0]
        found.append((name, pid, (cmdline_flag(pid, "--listen-client-urls") or "").split(",")[0]))
    found.sort()
    leader = ""
    for name, pid, url in found:
        if not url or proc_state(pid) == "T":
            continue
        d, why = try_call(url, "/v3/maintenance/status", {}, 1.0)
        if d is not None and d.get("leader") and d["leader"] == d["header"].get("member_id"):
            leader = str(pid)
            break
    print("PIDS=(%s)" % " ".join(str(p) for _, p, _ in found))
    print("NAMES=(%s)" % " ".join(n for n, _, _ in found))
    print("LEADER_PID=%s" % leader)
    return 0


def orphans(a):
    """Prints one line per orphan; exit 1 when there is any."""
    clusters_dir = os.path.join(a.state, "clusters")
    records = {}  # (ns, cluster) -> {member: pid}
    for ns in sorted(os.listdir(clusters_dir)) if os.path.isdir(clusters_dir) else []:
        for cl in sorted(os.listdir(os.path.join(clusters_dir, ns))):
            p = os.path.join(clusters_dir, ns, cl, "cluster.json")
            try:
                with open(p) as f:
                    rec = json.load(f)
            except (OSError, ValueError):
                rec = {"members": []}
            records[(ns, cl)] = {m["name"]: m.get("pid") for m in rec.get("members") or []}
    wanted = set(a.clusters.split(",")) if a.clusters else set()
    bad = []
    state = os.path.realpath(a.state) + "/"
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        dd = cmdline_data_dir(pid)
        if not dd or not os.path.realpath(dd).startswith(state):
            continue
        rel = os.path.relpath(os.path.realpath(dd), os.path.realpath(clusters_dir)).split(os.sep)
        # clusters/<ns>/<cluster>/members/<member>/data
        if len(rel) < 5 or rel[2] != "members":
            bad.append("process %d has data dir %s outside any member's" % (pid, dd))
            continue
        ns, cl, mem = rel[0], rel[1], rel[3]
        rec = records.get((ns, cl))
        if "%s/%s" % (ns, cl) not in wanted and cl not in wanted:
            bad.append("process %d runs a member of %s/%s, which no manifest wants" % (pid, ns, cl))
        elif rec is None or mem not in rec:
            bad.append("process %d runs %s/%s member %s, which the record does not hold" % (pid, ns, cl, mem))
        elif rec[mem] != pid:
            bad.append("process %d runs %s/%s member %s, recorded with pid %s" % (pid, ns, cl, mem, rec[mem]))
    for (ns, cl), rec in sorted(records.items()):
        mdir = os.path.join(clusters_dir, ns, cl, "members")
        for mem in sorted(os.listdir(mdir)) if os.path.isdir(mdir) else []:
            if "%s/%s" % (ns, cl) not in wanted and cl not in wanted:
                bad.append("member dir %s of %s/%s, which no manifest wants" % (mem, ns, cl))
            elif mem not in rec:
                held = sorted(os.listdir(os.path.join(mdir, mem))) if os.path.isdir(os.path.join(mdir, mem)) else []
                bad.append("member dir %s of %s/%s (holding %s), which the record does not hold"
                           % (mem, ns, cl, ", ".join(held) or "nothing"))
    for b in bad:
        print(b)
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["writer", "reader", "verify", "members", "orphans", "cluster-id", "kill-when", "procs"])
    p.add_argument("--state", required=True)
    p.add_argument("--eg-bin", default="")
    p.add_argument("--cluster", default="chaos")
    p.add_argument("--cluster-id", default="", help="answers from any other cluster are refused")
    p.add_argument("--clusters", default="", help="orphans: the clusters manifests want, comma-separated")
    p.add_argument("--pid", type=int)
    p.add_argument("--cond", default="False")
    p.add_argument("--ready-file")
    p.add_argument("--ack-log")
    p.add_argument("--violations")
    p.add_argument("--stop-file", default="/nonexistent")
    p.add_argument("--seed", default="0")
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--pace", type=float, default=0.02)
    p.add_argument("--deadline", type=float, default=60)
    a = p.parse_args()
    global CLUSTER_ID
    CLUSTER_ID = a.cluster_id or None
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if a.mode == "writer":
        writer(a)
        return 0
    if a.mode == "reader":
        reader(a)
        return 0
    return {"verify": verify, "members": members, "orphans": orphans, "cluster-id": cluster_id,
            "kill-when": kill_when, "procs": procs}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
