#!/usr/bin/env python3
"""How the one cycle scales: one `etcd-gitops run` following a directory of N local
single-member clusters, measured at N = 50 beside a baseline run at N = 3 (same binary,
same machine, one after the other), each against its target:

  reaction  a manifest saved (rename into place) -> the first audit record naming that
            cluster: the pause of one cluster toggled, median over the rounds;
            target <= 100 ms at 50 clusters
  idle      converged, default interval: CPU % of one core over 30 s (utime+stime from
            /proc/<pid>/stat), first while the clusters settle (the 30 s after they
            converged, looked at every 1.5 s), then steady (every 3 s); target <= 2 % steady
  memory    the daemon's private anonymous memory (Anonymous: in /proc/<pid>/smaps_rollup)
            and RSS once converged and idle; target <= 8 MiB anonymous

usage: bench_cycle.py BINARY [--clusters 50] [--baseline 3] [--rounds 9] [--idle-seconds 30]
       [--baseline-binary OLD]   (also run OLD at N clusters, side by side)
Everything runs on 127.0.0.1 in a temporary directory; every etcd the daemon started is
killed by pid at the end.
"""
import argparse, json, os, re, statistics, subprocess, sys, time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_daemon import Env, cpu_ticks, wait  # noqa: E402


def manifest_text(name, paused=False):
    return (f"apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata:\n  name: {name}\n"
            f"spec:\n  size: 1\n  version: \"3.4.23\"\n" + ("  paused: true\n" if paused else ""))


class Daemon(Env):
    """Env's directory, source, state and clean-up; a run of N clusters on a directory."""

    def __init__(self, binary, n):
        super().__init__(binary)
        self.n = n
        self.names = [f"c{i:03d}" for i in range(n)]
        self.audit_pos = 0

    def start(self):
        for n in self.names:
            self.write(n, manifest_text(n))
        self.daemon = subprocess.Popen([self.bin, "run", "--source", self.src, "--listen", "127.0.0.1:0"],
                                       env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))

        def port():
            m = re.search(r"serving .* \(port (\d+)\)", open(self.log).read())
            if m:
                self.port = int(m.group(1))
            return self.port is not None
        wait(port, 20, "the HTTP server")

    def converged(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=5) as r:
                st = json.load(r)
        except Exception:
            return False
        ok = {c["metadata"]["name"] for c in st["clusters"] if c["status"].get("plan") in ("converged", "paused")}
        return all(n in ok for n in self.names)

    def new_records(self):
        try:
            with open(self.audit) as f:
                f.seek(self.audit_pos)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind("\n") + 1
        self.audit_pos += len(data[:end].encode())
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]

    def reaction(self, rounds):
        times = []
        target = self.names[-1]  # the last in every pass order: the worst case
        self.new_records()
        for i in range(rounds):
            t0 = time.monotonic()
            self.write(target, manifest_text(target, paused=i % 2 == 0))
            seen = []

            def recorded():
                seen.extend(self.new_records())
                return any(r.get("cluster") == f"default/{target}" for r in seen)
            wait(recorded, 30, f"a record of {target}")
            times.append((time.monotonic() - t0) * 1000)
            wait(self.converged, 30, "converged again")
            time.sleep(0.3)
            self.new_records()
        return times

    def idle(self, secs):
        hz = os.sysconf("SC_CLK_TCK")
        c0, t0 = cpu_ticks(self.daemon.pid), time.monotonic()
        time.sleep(secs)
        c1, t1 = cpu_ticks(self.daemon.pid), time.monotonic()
        return (c1 - c0) / hz / (t1 - t0) * 100

    def memory(self):
        anon = rss = 0.0
        with open(f"/proc/{self.daemon.pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Anonymous:"):
                    anon = int(line.split()[1]) / 1024
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) / 1024
        return anon, rss


def measure(binary, n, rounds, idle_secs):
    d = Daemon(binary, n)
    try:
        t0 = time.monotonic()
        d.start()
        wait(d.converged, 60 + 6 * n, f"{n} clusters converged")
        bring_up = time.monotonic() - t0
        time.sleep(5)
        settling = d.idle(idle_secs)
        cpu = d.idle(idle_secs)
        anon, rss = d.memory()
        react = d.reaction(rounds)
        return dict(n=n, bring_up=bring_up, cpu=cpu, settling=settling, anon=anon, rss=rss,
                    react=statistics.median(react), react_max=max(react))
    finally:
        d.close()


def show(label, m, base=None):
    def ratio(key):
        return f", x{m[key] / base[key]:.2f} of baseline" if base and base[key] else ""
    print(f"{label}: {m['n']} clusters up in {m['bring_up']:.1f} s")
    print(f"  reaction (file saved -> first decision of the last cluster): median {m['react']:.0f} ms, "
          f"max {m['react_max']:.0f} ms (target <= 100 ms, ratio {m['react'] / 100:.2f}{ratio('react')})")
    print(f"  idle CPU: {m['cpu']:.2f} % of one core steady (target <= 2 %, ratio {m['cpu'] / 2:.2f}{ratio('cpu')}), "
          f"{m['settling']:.2f} % settling{ratio('settling')}")
    print(f"  memory: anonymous {m['anon']:.1f} MiB (target <= 8 MiB, ratio {m['anon'] / 8:.2f}{ratio('anon')}), "
          f"RSS {m['rss']:.1f} MiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--clusters", type=int, default=50)
    ap.add_argument("--baseline", type=int, default=3)
    ap.add_argument("--baseline-binary")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--idle-seconds", type=int, default=30)
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    base = measure(binary, a.baseline, a.rounds, a.idle_seconds)
    show("baseline", base)
    big = measure(binary, a.clusters, a.rounds, a.idle_seconds)
    show("scaled", big, base)
    if a.baseline_binary:
        old = measure(os.path.abspath(a.baseline_binary), a.clusters, a.rounds, a.idle_seconds)
        show("previous binary, scaled", old)
        print(f"  this binary against it: reaction x{big['react'] / old['react']:.2f}, CPU x"
              f"{big['cpu'] / old['cpu'] if old['cpu'] else float('nan'):.2f}, anonymous x{big['anon'] / old['anon']:.2f}")
    sys.exit(0)


if __name__ == "__main__":
    main()
