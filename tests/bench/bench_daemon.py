#!/usr/bin/env python3
"""Benchmarks of `etcd-gitops run`, each against its target:

  webhook  git push -> first audit record of the pushed commit, with a signed webhook
           sent right after the push (polling set to 60 s); target <= 300 ms median
  polling  the same with polling only (--interval 2s); target <= interval + 1 s
  idle     daemon following a directory with 10 one-member clusters, converged: CPU % of
           one core over 30 s (utime+stime from /proc/<pid>/stat) and RSS;
           targets <= 1 % and <= 16 MiB

usage: bench_daemon.py BINARY [--rounds N] [--only webhook|polling|idle]
Everything runs on 127.0.0.1 in a temporary directory and is stopped at the end.
"""
import argparse, hashlib, hmac, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time
import urllib.request

SECRET = b"bench-secret"
GIT_ENV = dict(GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com", GIT_COMMITTER_NAME="Bench",
               GIT_COMMITTER_EMAIL="bench@example.com", GIT_CONFIG_NOSYSTEM="1")


def wait(cond, secs, what):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {what}")


def manifest_text(name, size, paused=False):
    return (f"apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata:\n  name: {name}\n"
            f"spec:\n  size: {size}\n  version: \"3.4.23\"\n" + ("  paused: true\n" if paused else ""))


class Env:
    def __init__(self, binary):
        self.bin = binary
        self.dir = tempfile.mkdtemp(prefix="eg-bench-daemon-")
        self.state = os.path.join(self.dir, "state")
        self.src = os.path.join(self.dir, "src")
        os.makedirs(self.src)
        self.audit = os.path.join(self.state, "audit.jsonl")
        self.env = dict(os.environ, ETCD_GITOPS_STATE_DIR=self.state, NO_COLOR="1", **GIT_ENV)
        self.daemon = None
        self.log = os.path.join(self.dir, "daemon.log")
        self.port = None

    def git(self, *args, cwd=None):
        return subprocess.run(["git", *args], cwd=cwd or self.src, env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def init_git(self):
        self.remote = os.path.join(self.dir, "remote.git")
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", self.remote], check=True, env=self.env)
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", self.remote)

    def write(self, name, text):
        tmp = os.path.join(self.src, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.src, f"{name}.yaml"))

    def commit(self, msg):
        self.git("add", "-A")
        self.git("commit", "-q", "-m", msg)
        return self.git("rev-parse", "HEAD")

    def push(self):
        self.git("push", "-q", "origin", "HEAD:main")

    def start(self, source, *args):
        secret = os.path.join(self.dir, "secret")
        with open(secret, "wb") as f:
            f.write(SECRET)
        self.daemon = subprocess.Popen([self.bin, "run", "--source", source, "--listen", "127.0.0.1:0",
                                        "--webhook-secret-file", secret, *args], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))

        def port():
            m = re.search(r"serving .* \(port (\d+)\)", open(self.log).read())
            if m:
                self.port = int(m.group(1))
            return self.port is not None
        wait(port, 10, "the HTTP server")

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                return r.status == 200
        except Exception:
            return False

    def converged(self, names):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=2) as r:
                st = json.load(r)
        except Exception:
            return False
        ok = {c["metadata"]["name"] for c in st["clusters"] if c["status"].get("plan") == "converged"}
        return all(n in ok for n in names)

    def hook(self, commit):
        body = json.dumps({"ref": "refs/heads/main", "after": commit}).encode()
        sig = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/hook", data=body, method="POST",
                                     headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sig,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 202, r.status

    def has_record(self, commit):
        try:
            with open(self.audit) as f:
                return any(json.loads(line).get("commit") == commit for line in f if line.strip())
        except FileNotFoundError:
            return False

    def close(self):
        if self.daemon:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(timeout=15)
        for root, _, files in os.walk(self.state):
            for f in files:
                if f.startswith("cluster.json"):
                    try:
                        for m in json.load(open(os.path.join(root, f))).get("members", []):
                            if m.get("pid"):
                                os.kill(m["pid"], signal.SIGKILL)
                    except Exception:
                        pass
        shutil.rmtree(self.dir, ignore_errors=True)


def push_to_record(binary, rounds, webhook, interval):
    e = Env(binary)
    times = []
    try:
        e.init_git()
        e.write("gp", manifest_text("gp", 1))
        c = e.commit("gp: 1 member")
        e.push()
        e.start("file://" + e.remote, "--interval", interval)
        wait(e.ready, 60, "ready")
        wait(lambda: e.converged(["gp"]), 60, "gp converged")
        for i in range(rounds):
            e.write("gp", manifest_text("gp", 1, paused=i % 2 == 0))
            c = e.commit(f"round {i}")
            t0 = time.monotonic()
            e.push()
            if webhook:
                e.hook(c)
            wait(lambda: e.has_record(c), 30, f"a record of {c}")
            times.append(time.monotonic() - t0)
            time.sleep(0.5)
    finally:
        e.close()
    return times


def bench_webhook(binary, rounds):
    t = push_to_record(binary, rounds, True, "60s")
    med = statistics.median(t) * 1000
    print(f"webhook (git push -> first audit record, webhook sent after the push): median {med:.0f} ms, "
          f"max {max(t)*1000:.0f} ms (target <= 300 ms, ratio {med/300:.2f}) over {len(t)} pushes")


def bench_polling(binary, rounds):
    t = push_to_record(binary, rounds, False, "2s")
    med = statistics.median(t) * 1000
    print(f"polling (git push -> first audit record, --interval 2s, no webhook): median {med:.0f} ms, "
          f"max {max(t)*1000:.0f} ms (target <= 3000 ms, ratio {med/3000:.2f}) over {len(t)} pushes")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def bench_idle(binary, rounds):
    e = Env(binary)
    names = [f"idle{i}" for i in range(10)]
    try:
        for n in names:
            e.write(n, manifest_text(n, 1))
        e.start(e.src)
        wait(e.ready, 60, "ready")
        wait(lambda: e.converged(names), 180, "10 clusters converged")
        time.sleep(5)
        hz = os.sysconf("SC_CLK_TCK")
        pid = e.daemon.pid
        c0, t0 = cpu_ticks(pid), time.monotonic()
        time.sleep(30)
        c1, t1 = cpu_ticks(pid), time.monotonic()
        cpu = (c1 - c0) / hz / (t1 - t0) * 100
        rss = hwm = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
        print(f"idle (10 converged clusters, default 15 s interval, HTTP on): CPU {cpu:.2f} % of one core over "
              f"{t1-t0:.0f} s (target <= 1 %, ratio {cpu/1:.2f}); RSS {rss:.1f} MiB, peak {hwm:.1f} MiB "
              f"(target <= 16 MiB, ratio {rss/16:.2f})")
    finally:
        e.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only")
    a = ap.parse_args()
    for name, fn in [("webhook", bench_webhook), ("polling", bench_polling), ("idle", bench_idle)]:
        if not a.only or a.only == name:
            fn(os.path.abspath(a.binary), a.rounds)


if __name__ == "__main__":
    main()
