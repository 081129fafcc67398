#!/usr/bin/env python3
"""Benchmarks of the reconcile core on the local runtime, each beside its baseline:

  bring-up   `apply --wait` of a 3-member cluster vs 3 etcd processes started by hand
             with a static --initial-cluster (the physical limit); target ratio <= 1.3
  failover   kill -9 one member of 3 under `run` -> 3 healthy voters again, side by side:
             restart in place (its data intact; target <= 1 s) and replacement (its data
             removed too, so a fresh member joins; target <= 3 s)
  reboot     every member and the daemon killed (data intact), daemon started -> healthy
             with every key readable; target <= 5 s
  bigdb      the failover pair on a database of EG_BENCH_DB_MIB MiB (default 1024): a
             restart replays its own log, a replacement receives a whole snapshot
  reaction   save a manifest change under `run` -> its first audit record; target <= 100 ms
  footprint  daemon peak RSS while keeping 10 local clusters; target <= 10 MiB

usage: bench_reconcile.py BINARY [--rounds N] [--only NAME]
Everything runs on 127.0.0.1 in a temporary directory and is stopped at the end.
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ETCD = shutil.which("etcd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url, timeout=0.5):
    # /health blocks while there is no leader: ask status (immediate) first, as the
    # daemon does, so the baseline is not slowed by its own polling
    try:
        req = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            if int(json.load(r).get("leader", "0")) == 0:
                return False
        with urllib.request.urlopen(url + "/health", timeout=timeout) as r:
            return json.load(r).get("health") == "true"
    except Exception:
        return False


def wait(cond, secs, what):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {what}")


class Env:
    def __init__(self, binary):
        self.bin = binary
        self.dir = tempfile.mkdtemp(prefix="eg-bench-")
        self.state = os.path.join(self.dir, "state")
        self.src = os.path.join(self.dir, "src")
        os.makedirs(self.src)
        self.env = dict(os.environ, ETCD_GITOPS_STATE_DIR=self.state, NO_COLOR="1")
        self.daemon = None

    def eg(self, *args, check=True):
        return subprocess.run([self.bin, *args], env=self.env, capture_output=True, text=True, check=check)

    def manifest(self, name, size, extra=""):
        tmp = os.path.join(self.src, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(f"apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata:\n  name: {name}\n"
                    f"spec:\n  size: {size}\n  version: \"3.4.23\"\n{extra}")
        os.rename(tmp, os.path.join(self.src, f"{name}.yaml"))

    def status(self, name):
        out = self.eg("get", "clusters", name, "-o", "json", check=False)
        try:
            return json.loads(out.stdout)[0]["status"]
        except Exception:
            return None

    def ready(self, name, n):
        st = self.status(name)
        return bool(st) and len(st["members"]["ready"]) == n and len(st["memberDetails"]) == n and \
            all(m["role"] in ("leader", "follower") for m in st["memberDetails"])

    def start_daemon(self):
        self.daemon = subprocess.Popen([self.bin, "run", "--source", self.src], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "daemon.log"), "w"))

    def stop_daemon(self):
        if self.daemon:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(timeout=15)
            self.daemon = None

    def close(self):
        self.stop_daemon()
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


def manual_bringup():
    d = tempfile.mkdtemp(prefix="eg-bench-manual-")
    ports = [(free_port(), free_port()) for _ in range(3)]
    ic = ",".join(f"m{i}=http://127.0.0.1:{p}" for i, (_, p) in enumerate(ports))
    t0 = time.monotonic()
    procs = []
    for i, (c, p) in enumerate(ports):
        procs.append(subprocess.Popen([ETCD, f"--name=m{i}", f"--data-dir={d}/m{i}",
                                       f"--listen-client-urls=http://127.0.0.1:{c}", f"--advertise-client-urls=http://127.0.0.1:{c}",
                                       f"--listen-peer-urls=http://127.0.0.1:{p}", f"--initial-advertise-peer-urls=http://127.0.0.1:{p}",
                                       f"--initial-cluster={ic}", "--initial-cluster-state=new", "--initial-cluster-token=bench"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait(lambda: all(healthy(f"http://127.0.0.1:{c}") for c, _ in ports), 60, "manual cluster")
    dt = time.monotonic() - t0
    for p in procs:
        p.kill()
        p.wait()
    shutil.rmtree(d, ignore_errors=True)
    return dt


def ours_bringup(binary):
    e = Env(binary)
    try:
        e.manifest("bench", 3)
        t0 = time.monotonic()
        e.eg("apply", "--source", e.src, "--wait=60s")
        return time.monotonic() - t0
    finally:
        e.close()


def bench_bringup(binary, rounds):
    manual, ours = [], []
    for _ in range(rounds):
        manual.append(manual_bringup())
        ours.append(ours_bringup(binary))
    m, o = statistics.median(manual), statistics.median(ours)
    print(f"bring-up 3 members: etcd-gitops apply --wait median {o*1000:.0f} ms, by hand median {m*1000:.0f} ms, "
          f"ratio {o/m:.2f} (target <= 1.3) over {rounds} rounds")


def member_dir(e, cluster, member):
    return os.path.join(e.state, "clusters", "default", cluster, "members", member)


def put(url, key, value):
    import base64
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                       "value": base64.b64encode(value).decode()}).encode()
    with urllib.request.urlopen(urllib.request.Request(url + "/v3/kv/put", data=body), timeout=30) as r:
        r.read()


def get(url, key):
    import base64
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    with urllib.request.urlopen(urllib.request.Request(url + "/v3/kv/range", data=body), timeout=5) as r:
        kvs = json.load(r).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]) if kvs else None


def fail_one(e, name, remove_data):
    """Kills a settled follower (its data dir removed too when remove_data) and times the
    way back to 3 healthy voters: the same member restarted, or a fresh one."""
    # etcd refuses a new member until every voter has been connected 5 s (its strict
    # reconfiguration check): fail a settled cluster, as in production
    time.sleep(6)
    st = e.status(name)
    victim = next(m for m in st["memberDetails"] if m["role"] == "follower")
    data = os.path.join(member_dir(e, name, victim["name"]), "data")
    t0 = time.monotonic()
    if remove_data:
        # moved away before the kill, so that no restart can come in between
        os.rename(data, data + ".lost")
    os.kill(victim["pid"], signal.SIGKILL)

    def back(s):
        if not s or not e.ready(name, 3):
            return False
        names = {m["name"]: m for m in s["memberDetails"]}
        if remove_data:
            return victim["name"] not in names
        return victim["name"] in names and names[victim["name"]]["pid"] != victim["pid"]
    wait(lambda: back(e.status(name)), 300, "failover by " + ("replacement" if remove_data else "restart in place"))
    return time.monotonic() - t0


def failover_pair(binary, rounds, name, fill_mib=0):
    e = Env(binary)
    restart, replace = [], []
    try:
        e.manifest(name, 3)
        e.start_daemon()
        wait(lambda: e.ready(name, 3), 60, "initial cluster")
        if fill_mib:
            url = e.status(name)["clientURLs"][0]
            chunk = os.urandom(1 << 20)
            for i in range(fill_mib):
                put(url, f"/fill/{i:06d}", chunk)
        for _ in range(rounds):
            restart.append(fail_one(e, name, False))
            replace.append(fail_one(e, name, True))
    except BaseException:
        with open(os.path.join(e.dir, "daemon.log")) as f:
            sys.stderr.write("--- daemon log (tail)\n" + "".join(f.readlines()[-15:]))
        raise
    finally:
        e.close()
    return restart, replace


def ms(v):
    return f"{statistics.median(v)*1000:.0f} ms (min {min(v)*1000:.0f}, max {max(v)*1000:.0f})"


def bench_failover(binary, rounds):
    restart, replace = failover_pair(binary, rounds, "fo")
    print(f"failover (kill -9 one of 3 -> 3 healthy voters) over {rounds} rounds each, same cluster, alternating: "
          f"restart in place median {ms(restart)} (target <= 1000 ms); replacement median {ms(replace)} "
          f"(target <= 3000 ms); ratio {statistics.median(restart)/statistics.median(replace):.2f}")


def bench_bigdb(binary, rounds):
    mib = int(os.environ.get("EG_BENCH_DB_MIB", "1024"))
    restart, replace = failover_pair(binary, rounds, "big", mib)
    print(f"failover on a {mib} MiB database over {rounds} rounds each: restart in place median {ms(restart)}; "
          f"replacement median {ms(replace)}; ratio {statistics.median(restart)/statistics.median(replace):.2f}")


def bench_reboot(binary, rounds):
    e = Env(binary)
    times = []
    try:
        e.manifest("rb", 3)
        e.start_daemon()
        wait(lambda: e.ready("rb", 3), 60, "initial cluster")
        url = e.status("rb")["clientURLs"][0]
        for i in range(100):
            put(url, f"/k{i}", b"v%d" % i)
        for _ in range(rounds):
            pids = [m["pid"] for m in e.status("rb")["memberDetails"]]
            e.daemon.kill()
            e.daemon.wait()
            e.daemon = None
            for p in pids:
                os.kill(p, signal.SIGKILL)
            wait(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), 10, "members gone")
            t0 = time.monotonic()
            e.start_daemon()

            def all_keys():
                st = e.status("rb")
                if not st or not e.ready("rb", 3):
                    return False
                try:
                    return all(get(st["clientURLs"][0], f"/k{i}") == b"v%d" % i for i in (0, 50, 99))
                except Exception:
                    return False
            wait(all_keys, 60, "cluster back after the reboot")
            times.append(time.monotonic() - t0)
    finally:
        e.close()
    print(f"reboot (every member and the daemon killed, data intact -> healthy with every key): median {ms(times)} "
          f"after the daemon starts (target <= 5000 ms) over {rounds} rounds")


def bench_reaction(binary, rounds):
    e = Env(binary)
    times = []
    audit = os.path.join(e.state, "audit.jsonl")
    try:
        e.manifest("re", 1)
        e.start_daemon()
        wait(lambda: e.ready("re", 1), 60, "cluster")
        time.sleep(1.5)
        for i in range(rounds * 2):
            size = os.path.getsize(audit)
            t0 = time.monotonic()
            e.manifest("re", 1, "  paused: true\n" if i % 2 == 0 else "")
            wait(lambda: os.path.getsize(audit) > size, 10, "audit record")
            times.append(time.monotonic() - t0)
            time.sleep(0.3)
    finally:
        e.close()
    print(f"reaction (manifest saved -> first audit record): median {statistics.median(times)*1000:.1f} ms, "
          f"max {max(times)*1000:.1f} (target <= 100 ms median) over {len(times)} changes")


def bench_footprint(binary, rounds):
    e = Env(binary)
    try:
        for i in range(10):
            e.manifest(f"fp{i}", 1)
        e.start_daemon()
        wait(lambda: all(e.ready(f"fp{i}", 1) for i in range(10)), 120, "10 clusters")
        time.sleep(10)
        hwm = rss = 0
        with open(f"/proc/{e.daemon.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        anon = 0
        with open(f"/proc/{e.daemon.pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Anonymous:"):
                    anon = int(line.split()[1])
        print(f"footprint: daemon keeping 10 clusters: peak RSS {hwm/1024:.1f} MiB, RSS {rss/1024:.1f} MiB "
              f"(target <= 10 MiB; ratio {hwm/1024/10:.2f}); of which the daemon's own anonymous memory "
              f"{anon/1024:.1f} MiB, the rest shared library pages")
    finally:
        e.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only")
    a = ap.parse_args()
    for name, fn in [("bringup", bench_bringup), ("failover", bench_failover), ("reboot", bench_reboot),
                     ("reaction", bench_reaction), ("footprint", bench_footprint), ("bigdb", bench_bigdb)]:
        if not a.only or a.only == name:
            fn(os.path.abspath(a.binary), a.rounds)


if __name__ == "__main__":
    main()
