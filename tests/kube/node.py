#!/usr/bin/env python3
"""A node stand-in for a real kube-apiserver: scheduler, kubelet and the few controllers tests need.

Standard library only, plus the iproute2 `ip` binary; runs as root. See README.md beside this file.
"""

import argparse
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver import image_version, now_rfc3339, selector_map_match  # noqa: E402

HEALTH_INTERVAL = 0.5
# kubelet's container restart back-off starts at 10 s and doubles up to 5 min
BACKOFF_MAX = 300.0
TERMINAL = ("Succeeded", "Failed")
# check-dns init containers call busybox's nslookup; on this host the pod's /etc/hosts answers
NSLOOKUP_SHIM = '#!/bin/sh\ngetent hosts "$1" >/dev/null || { echo "nslookup: can\'t resolve \'$1\'" >&2; exit 1; }\n'
# a name not in the hosts file fails at once, as cluster DNS answers NXDOMAIN at once (the host's
# resolver is not reachable from a pod's namespace: every lookup would wait out its timeout)
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


def log(msg):
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} node: {msg}\n")
    sys.stderr.flush()


class ApiError(Exception):
    def __init__(self, code, body):
        super().__init__(f"HTTP {code}: {body.get('message') if isinstance(body, dict) else body}")
        self.code = code
        self.body = body


class Client:
    """The API server as the admin: one request per connection, JSON in and out."""

    def __init__(self, url, token, cafile):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 443
        self.token = token
        self.ctx = ssl.create_default_context(cafile=cafile)

    def _conn(self, timeout):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def request(self, method, path, body=None, ctype="application/json", timeout=30):
        conn = self._conn(timeout)
        try:
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                       "User-Agent": "etcd-gitops-test-node"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = ctype
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = {"message": raw.decode(errors="replace")}
        if r.status >= 400:
            raise ApiError(r.status, doc)
        return doc

    def get(self, path):
        return self.request("GET", path)

    def watch(self, path, rv):
        """Yields watch events from resourceVersion rv until the server ends the stream."""
        sep = "&" if "?" in path else "?"
        conn = self._conn(120)
        try:
            conn.request("GET", f"{path}{sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion={rv}",
                         headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                                  "User-Agent": "etcd-gitops-test-node"})
            r = conn.getresponse()
            if r.status >= 400:
                raise ApiError(r.status, r.read().decode(errors="replace"))
            while True:
                line = r.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()


class Informer(threading.Thread):
    """List then watch one collection, reconnecting on errors; relists on 410 Gone."""

    def __init__(self, node, path, on_event):
        super().__init__(daemon=True, name=f"watch {path}")
        self.node, self.path, self.on_event = node, path, on_event
        self.known = {}
        self.synced = threading.Event()

    def run(self):
        rv = None
        while not self.node.stopping.is_set():
            try:
                if rv is None:
                    lst = self.node.api.get(self.path)
                    rv = lst["metadata"]["resourceVersion"]
                    seen = {}
                    for o in lst.get("items") or []:
                        seen[o["metadata"]["uid"]] = o
                        self._deliver("MODIFIED" if o["metadata"]["uid"] in self.known else "ADDED", o)
                    for uid, o in list(self.known.items()):
                        if uid not in seen:
                            self._deliver("DELETED", o)
                    self.synced.set()
                for ev in self.node.api.watch(self.path, rv):
                    if ev["type"] == "ERROR":
                        rv = None if (ev.get("object") or {}).get("code") == 410 else rv
                        if rv is not None:
                            time.sleep(0.2)
                        break
                    rv = ev["object"]["metadata"]["resourceVersion"]
                    if ev["type"] != "BOOKMARK":
                        self._deliver(ev["type"], ev["object"])
            except Exception as e:  # the server restarting or a dropped stream: try again
                if not self.node.stopping.is_set():
                    log(f"watch {self.path}: {e!r}")
                    time.sleep(0.5)

    def _deliver(self, etype, o):
        uid = o["metadata"]["uid"]
        if etype == "DELETED":
            self.known.pop(uid, None)
        else:
            self.known[uid] = o
        try:
            self.on_event(etype, o)
        except Exception as e:
            log(f"{self.path} {etype} {o['metadata'].get('name')}: {e!r}")


def matches(patterns, text):
    return any(re.search(p, text) for p in patterns or ())


class Knobs:
    """What tests turn at run time (POST /knobs merges a JSON object into these)."""

    def __init__(self, pull_delay):
        self.lock = threading.Lock()
        self.v = {
            "pullDelay": pull_delay,   # seconds every pod spends pulling before its first container
            "pullDelays": {},          # {regex on "ns/name": seconds} overriding pullDelay
            "readyDelay": 0.0,         # seconds after a container starts before it may be Ready
            "readyDelays": {},         # {regex on "ns/name": seconds}
            "unpullable": [],          # regexes on image names: ErrImagePull, then ImagePullBackOff
            "unschedulable": [],       # regexes on "ns/name": left unbound, PodScheduled=False
            "crashBackoff": 10.0,      # first restart back-off of a crashed container
        }

    def get(self, key):
        with self.lock:
            return self.v[key]

    def per_pod(self, key, pod_key):
        with self.lock:
            for pat, val in self.v[key + "s"].items():
                if re.search(pat, pod_key):
                    return float(val)
            return float(self.v[key])

    def update(self, patch):
        with self.lock:
            for k, val in patch.items():
                if k not in self.v:
                    raise ValueError(f"unknown knob {k!r}")
                self.v[k] = val
            return dict(self.v)


class Network:
    """A bridge on this host and one network namespace per pod with a veth on it."""

    def __init__(self, run_id, subnet):
        self.run_id = run_id
        self.bridge = f"egb{run_id}"
        self.prefix = subnet.rsplit(".", 1)[0]
        self.gateway = f"{self.prefix}.1"
        self.lock = threading.Lock()
        self.free = [f"{self.prefix}.{i}" for i in range(2, 255)]
        self.seq = 0

    @staticmethod
    def ip(*args, check=True):
        r = subprocess.run(["ip", *args], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
        return r

    def up(self):
        self.ip("link", "add", self.bridge, "type", "bridge")
        self.ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        self.ip("link", "set", self.bridge, "up")

    def sandbox(self):
        """A new namespace with its address: (netns name, pod IP)."""
        with self.lock:
            if not self.free:
                raise RuntimeError("pod address range exhausted")
            addr = self.free.pop(0)
            self.seq += 1
            seq = self.seq
        ns, veth = f"eg{self.run_id}-{seq}", f"v{self.run_id}{seq:x}"
        try:
            self.ip("netns", "add", ns)
            self.ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.ip("link", "set", veth, "master", self.bridge, "up")
            self.ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            self.ip("-n", ns, "link", "set", "eth0", "up")
            self.ip("-n", ns, "link", "set", "lo", "up")
            self.ip("-n", ns, "route", "add", "default", "via", self.gateway)
        except RuntimeError:
            self.release(ns, addr)
            raise
        return ns, addr

    def release(self, ns, addr):
        pids = self.ip("netns", "pids", ns, check=False).stdout.split()
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        self.ip("netns", "del", ns, check=False)
        with self.lock:
            self.free.append(addr)

    def down(self):
        for line in self.ip("netns", "list", check=False).stdout.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(f"eg{self.run_id}-"):
                self.release(ns, None)
        self.ip("link", "del", self.bridge, check=False)


class Stop(Exception):
    """The pod is being deleted (or is gone): stop whatever it was doing."""


class PodWorker(threading.Thread):
    """Scheduler and kubelet for one pod, from binding to the final DELETE."""

    def __init__(self, node, pod):
        m = pod["metadata"]
        super().__init__(daemon=True, name=f"pod {m['namespace']}/{m['name']}")
        self.node = node
        self.uid, self.ns, self.name = m["uid"], m["namespace"], m["name"]
        self.key = f"{self.ns}/{self.name}"
        self.obj = pod
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.gone = False          # the API object is deleted
        self.lost = False          # its node is lost: nothing more happens here
        self.proc = None
        self.exit_code = None      # forced by POST /exit
        self.netns = self.ip = None
        self.status = {}
        self.unscheduled = None    # the reason last reported for not binding it
        self.node_name = pod["spec"].get("nodeName")
        self.pod_dir = os.path.join(node.state_dir, "pods", self.ns, f"{self.name}-{self.uid}")
        self.pid_file = os.path.join(node.state_dir, "pods", self.ns, f"{self.name}.pid")
        self.log_file = os.path.join(node.state_dir, "pods", self.ns, f"{self.name}.log")

    # ---- events from the informer and the control endpoint
    def update(self, pod, deleted=False):
        with self.lock:
            self.obj = pod
            if deleted:
                self.gone = True
        self.wake.set()

    def pod(self):
        with self.lock:
            return self.obj

    def deleting(self):
        with self.lock:
            return self.gone or bool(self.obj["metadata"].get("deletionTimestamp"))

    def check(self):
        if self.lost:
            raise Stop()
        if self.deleting():
            raise Stop()

    def sleep(self, seconds):
        """Waits, but returns early (raising Stop) when the pod is deleted."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wake.wait(min(left, HEALTH_INTERVAL))
            self.wake.clear()

    # ---- status, the way a kubelet reports it
    def set_condition(self, ctype, status, reason=None, message=None):
        conds = self.status.setdefault("conditions", [])
        c = next((c for c in conds if c["type"] == ctype), None)
        if c is None:
            c = {"type": ctype}
            conds.append(c)
        if c.get("status") != status:
            c["lastTransitionTime"] = now_rfc3339()
        c.update(status=status, lastProbeTime=None)
        for k, v in (("reason", reason), ("message", message)):
            if v:
                c[k] = v
            else:
                c.pop(k, None)

    def push(self):
        if self.lost:
            raise Stop()
        body = {"metadata": {"uid": self.uid}, "status": self.status}
        try:
            self.node.api.request("PATCH", f"/api/v1/namespaces/{self.ns}/pods/{self.name}/status", body,
                                  "application/merge-patch+json")
        except ApiError as e:
            if e.code in (404, 409):
                raise Stop()
            raise

    def cstatus(self, c, state, ready=False, restarts=0, last=None, started=None):
        s = {"name": c["name"], "state": state, "lastState": last or {}, "ready": ready, "restartCount": restarts,
             "image": c.get("image"), "imageID": "", "containerID": ""}
        if started is not None:
            s["started"] = started
        if self.proc is not None and "running" in state:
            s["containerID"] = f"process://{self.proc.pid}"
        return s

    # ---- life
    def run(self):
        try:
            if not self.node_name:
                self.schedule()
            self.kubelet()
        except Stop:
            pass
        except Exception as e:  # a bug here must show in the pod, not vanish with the thread
            log(f"{self.key}: {e!r}")
            try:
                self.status.update(phase="Failed", reason="NodeStandInError", message=str(e))
                self.push()
            except Exception:
                pass
        try:
            self.finish()
        except Exception as e:
            log(f"{self.key}: cleanup: {e!r}")

    def schedule(self):
        while True:
            self.check()
            why = self.unschedulable()
            if why is None:
                node = self.node.pick_node()
                if node is not None:
                    try:
                        self.node.api.request("POST", f"/api/v1/namespaces/{self.ns}/pods/{self.name}/binding",
                                              {"apiVersion": "v1", "kind": "Binding",
                                               "metadata": {"name": self.name, "uid": self.uid},
                                               "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
                        self.node_name = node
                        return
                    except ApiError as e:
                        if e.code in (404, 409):
                            raise Stop()
                        raise
                why = f"0/{len(self.node.nodes)} nodes are available: {len(self.node.nodes)} node(s) had " \
                      "untolerated taint {node.kubernetes.io/unreachable: }."
            if why != self.unscheduled:
                self.unscheduled = why
                self.status = {"phase": "Pending"}
                self.set_condition("PodScheduled", "False", "Unschedulable", why)
                self.push()
            self.sleep(1.0)

    def unschedulable(self):
        n = len(self.node.nodes)
        if matches(self.node.knobs.get("unschedulable"), self.key):
            return f"0/{n} nodes are available: {n} Insufficient cpu. preemption: 0/{n} nodes are available: " \
                   f"{n} No preemption victims found for incoming pod.."
        for v in self.pod()["spec"].get("volumes") or []:
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                pvc = self.node.pvc(self.ns, claim) or self.node.fetch_pvc(self.ns, claim)
                if pvc is None:
                    return f'0/{n} nodes are available: persistentvolumeclaim "{claim}" not found. ' \
                           f'preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling..'
                if pvc["metadata"].get("deletionTimestamp"):
                    return f'0/{n} nodes are available: persistentvolumeclaim "{claim}" is being deleted. ' \
                           f'preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling..'
        return None

    def kubelet(self):
        pod = self.pod()
        spec = pod["spec"]
        inits, mains = spec.get("initContainers") or [], spec["containers"]
        os.makedirs(self.pod_dir, exist_ok=True)
        self.status = {"phase": "Pending", "hostIP": self.node.net.gateway, "startTime": now_rfc3339(),
                       "qosClass": "BestEffort"}
        self.set_condition("Initialized", "False" if inits else "True", "ContainersNotInitialized" if inits else None,
                           f"containers with incomplete status: [{' '.join(c['name'] for c in inits)}]" if inits else None)
        self.set_condition("Ready", "False", "ContainersNotReady",
                           f"containers with unready status: [{' '.join(c['name'] for c in mains)}]")
        self.set_condition("ContainersReady", "False", "ContainersNotReady",
                           f"containers with unready status: [{' '.join(c['name'] for c in mains)}]")
        self.set_condition("PodScheduled", "True")
        waiting_main = "PodInitializing" if inits else "ContainerCreating"
        if inits:
            self.status["initContainerStatuses"] = [
                self.cstatus(c, {"waiting": {"reason": "PodInitializing"}}) for c in inits]
        self.status["containerStatuses"] = [self.cstatus(c, {"waiting": {"reason": waiting_main}}, started=False)
                                            for c in mains]
        self.push()
        self.netns, self.ip = self.node.net.sandbox()
        self.status.update(podIP=self.ip, podIPs=[{"ip": self.ip}])
        self.push()
        self.sleep(self.node.knobs.per_pod("pullDelay", self.key))
        for i, c in enumerate(inits):
            if not self.run_init(i, c):
                return self.wait_for_delete()
        self.set_condition("Initialized", "True")
        self.main(mains)
        self.wait_for_delete()

    def pull(self, c, where, idx):
        """Image pull errors, as a kubelet reports them, while the knob says so."""
        failures = 0
        while matches(self.node.knobs.get("unpullable"), c.get("image") or ""):
            reason = "ErrImagePull" if failures % 2 == 0 else "ImagePullBackOff"
            msg = f'rpc error: code = NotFound desc = failed to pull and unpack image "{c.get("image")}": not found' \
                if reason == "ErrImagePull" else f'Back-off pulling image "{c.get("image")}"'
            self.status[where][idx] = self.cstatus(c, {"waiting": {"reason": reason, "message": msg}},
                                                   started=False if where == "containerStatuses" else None)
            self.push()
            failures += 1
            self.sleep(1.0 if reason == "ErrImagePull" else 2.0)

    def run_init(self, i, c):
        restarts = 0
        while True:
            self.pull(c, "initContainerStatuses", i)
            started = now_rfc3339()
            self.status["initContainerStatuses"][i] = self.cstatus(c, {"running": {"startedAt": started}},
                                                                   restarts=restarts)
            self.push()
            proc = self.spawn(c, main=False)
            code = self.wait_exit(proc, grace=2.0)
            term = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                   "startedAt": started, "finishedAt": now_rfc3339()}}
            self.status["initContainerStatuses"][i] = self.cstatus(c, term, ready=code == 0, restarts=restarts)
            if code == 0:
                return True
            if self.pod()["spec"].get("restartPolicy", "Always") == "Never":
                self.status.update(phase="Failed")
                self.push()
                return False
            restarts += 1
            self.status["initContainerStatuses"][i] = self.cstatus(
                c, {"waiting": {"reason": "CrashLoopBackOff",
                                "message": f"back-off restarting failed container {c['name']}"}},
                restarts=restarts, last=term)
            self.push()
            self.sleep(self.backoff(restarts))

    def backoff(self, restarts):
        return min(BACKOFF_MAX, float(self.node.knobs.get("crashBackoff")) * (2 ** (restarts - 1)))

    def main(self, mains):
        # the first container only: etcd pods have one (more would each need their own life here)
        c = mains[0]
        restarts, last = 0, None
        image = c.get("image")
        while True:
            self.pull(c, "containerStatuses", 0)
            self.exit_code = None
            self.proc = self.spawn(c, main=True)
            started = now_rfc3339()
            start_mono = time.monotonic()
            self.status["phase"] = "Running"
            self.status["containerStatuses"] = [self.cstatus(c, {"running": {"startedAt": started}}, restarts=restarts,
                                                             last=last, started=True)]
            self.push()
            ready = False
            ready_delay = self.node.knobs.per_pod("readyDelay", self.key)
            health = self.health_check(c)
            code, image_changed = None, False
            while code is None:
                if self.deleting() or self.lost:
                    self.stop_process()
                    raise Stop()
                new_image = self.current_image()
                if new_image != image:
                    # an image change in place: the kubelet kills the container and starts the new one
                    image = new_image
                    c = dict(c, image=image)
                    self.stop_process(grace=2.0)
                    code, image_changed = self.proc.returncode, True
                    break
                code = self.proc.poll()
                if code is not None:
                    break
                now_ready = time.monotonic() - start_mono >= ready_delay and health()
                if now_ready != ready:
                    ready = now_ready
                    rs = "True" if ready else "False"
                    self.status["containerStatuses"] = [self.cstatus(c, {"running": {"startedAt": started}}, ready,
                                                                     restarts, last, True)]
                    self.set_condition("ContainersReady", rs, None if ready else "ContainersNotReady",
                                       None if ready else f"containers with unready status: [{c['name']}]")
                    self.set_condition("Ready", rs, None if ready else "ContainersNotReady",
                                       None if ready else f"containers with unready status: [{c['name']}]")
                    self.push()
                self.wake.wait(HEALTH_INTERVAL)
                self.wake.clear()
            self.unlink_pid()
            code = self.proc_code(code)
            self.proc = None
            term = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                   "startedAt": started, "finishedAt": now_rfc3339(), "containerID": ""}}
            self.set_condition("ContainersReady", "False", "ContainersNotReady",
                               f"containers with unready status: [{c['name']}]")
            self.set_condition("Ready", "False", "ContainersNotReady", f"containers with unready status: [{c['name']}]")
            policy = self.pod()["spec"].get("restartPolicy", "Always")
            if image_changed:
                restarts += 1
                last = term
                self.status["containerStatuses"] = [self.cstatus(c, {"waiting": {"reason": "ContainerCreating"}},
                                                                 restarts=restarts, last=last, started=False)]
                self.push()
                self.sleep(self.node.knobs.per_pod("pullDelay", self.key))
                continue
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                self.status["containerStatuses"] = [self.cstatus(c, term, restarts=restarts, last=last, started=False)]
                self.status["phase"] = "Succeeded" if code == 0 else "Failed"
                self.push()
                self.node.net.release(self.netns, self.ip)
                self.netns = None
                return
            restarts += 1
            last = term
            self.status["containerStatuses"] = [self.cstatus(
                c, {"waiting": {"reason": "CrashLoopBackOff",
                                "message": f"back-off {int(self.backoff(restarts))}s restarting failed "
                                           f"container={c['name']} pod={self.name}_{self.ns}({self.uid})"}},
                restarts=restarts, last=last, started=False)]
            self.push()
            self.sleep(self.backoff(restarts))

    def proc_code(self, rc):
        if self.exit_code is not None:
            return self.exit_code
        return rc if rc >= 0 else 128 - rc

    def current_image(self):
        for c in self.pod()["spec"]["containers"]:
            return c.get("image")

    def wait_for_delete(self):
        while True:
            self.sleep(3600)

    # ---- processes
    def mounts(self, c):
        """mountPath -> host directory, materialising secrets, config maps and claims."""
        vols = {v["name"]: v for v in self.pod()["spec"].get("volumes") or []}
        out = []
        for m in c.get("volumeMounts") or []:
            v = vols[m["name"]]
            host = os.path.join(self.pod_dir, "volumes", v["name"])
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                pvc = self.node.pvc(self.ns, claim) or self.node.fetch_pvc(self.ns, claim)
                if pvc is None:
                    raise RuntimeError(f"claim {claim} is gone")
                host = self.node.pvc_dir(pvc)
            elif "secret" in v or "configMap" in v:
                self.materialise(v, host)
            elif "hostPath" in v:
                host = v["hostPath"]["path"]
            os.makedirs(host, exist_ok=True)
            if m.get("subPath"):
                host = os.path.join(host, m["subPath"])
                os.makedirs(host, exist_ok=True)
            out.append((m["mountPath"].rstrip("/") or "/", host))
        out.sort(key=lambda x: -len(x[0]))
        return out

    def materialise(self, vol, host):
        kind, res = ("secret", "secrets") if "secret" in vol else ("configMap", "configmaps")
        src = vol[kind]
        name = src.get("secretName") or src.get("name")
        try:
            obj = self.node.api.get(f"/api/v1/namespaces/{self.ns}/{res}/{name}")
        except ApiError as e:
            if e.code == 404 and src.get("optional"):
                obj = {}
            elif e.code == 404:
                raise MountError(f'MountVolume.SetUp failed for volume "{vol["name"]}" : {kind.lower()} "{name}" '
                                 f'not found')
            else:
                raise
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        if kind == "configMap":
            data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        os.makedirs(host, exist_ok=True)
        items = src.get("items")
        pairs = [(i["key"], i.get("path", i["key"]), i.get("mode")) for i in items] if items else \
            [(k, k, None) for k in data]
        for key, path, mode in pairs:
            if key not in data:
                continue
            dest = os.path.join(host, path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(data[key])
            os.chmod(dest, mode if mode is not None else src.get("defaultMode", 0o644))

    def path_mapper(self, c):
        mounts = self.mounts(c)

        def path(p):
            # paths outside every mount live in the pod's own root filesystem, never the host's
            if not p.startswith("/"):
                return p
            for mp, host in mounts:
                if p == mp or p.startswith(mp.rstrip("/") + "/"):
                    return host + p[len(mp):]
            full = os.path.join(self.pod_dir, "rootfs", p.lstrip("/"))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            return full
        return path

    def argv(self, c):
        """The host command standing in for the container: etcd/etcdctl of the image's version,
        or `sh -c SCRIPT` with the host's shell; paths mapped through the volume mounts."""
        cmd = list(c.get("command") or []) + list(c.get("args") or [])
        if not c.get("command"):
            cmd = ["etcd"] + cmd
        path = self.path_mapper(c)
        prog = os.path.basename(cmd[0])
        if prog in ("sh", "bash") and len(cmd) >= 3 and cmd[1] in ("-c", "-ec"):
            return ["/bin/sh", cmd[1], cmd[2]] + cmd[3:], path
        if prog not in ("etcd", "etcdctl"):
            raise MountError(f"this node runs etcd, etcdctl and sh -c commands, not {cmd[0]!r}", "CreateContainerError")
        binary = self.node.find_binary(prog, image_version(c.get("image")))
        if binary is None:
            raise MountError(f"no {prog} binary for image {c.get('image')!r}", "CreateContainerError")
        out = [binary]
        for a in cmd[1:]:
            if a.startswith("-") and "=" in a:
                flag, value = a.split("=", 1)
                a = flag + "=" + ",".join(path(v) for v in value.split(","))
            else:
                a = path(a)
            out.append(a)
        return out, path

    def env(self, c, path):
        env = {"PATH": f"{self.node.shim_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
               "HOSTNAME": self.name}
        for e in c.get("env") or []:
            if "value" in e:
                v = str(e["value"])
                env[e["name"]] = path(v) if v.startswith("/") else v
        return env

    def spawn(self, c, main):
        where = "containerStatuses" if main else "initContainerStatuses"
        while True:
            try:
                argv, path = self.argv(c)
                break
            except MountError as e:
                idx = 0 if main else next(i for i, s in enumerate(self.status[where]) if s["name"] == c["name"])
                self.status[where][idx] = self.cstatus(c, {"waiting": {"reason": e.reason, "message": str(e)}},
                                                       started=False if main else None)
                self.push()
                self.sleep(2.0)
        # the pod's network namespace, and its own mount namespace where the node's hosts file
        # (cluster DNS) is /etc/hosts
        full = ["ip", "netns", "exec", self.netns, "/bin/sh", "-c",
                'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"',
                self.node.hosts_file, self.node.resolv_conf] + argv
        with open(self.log_file, "ab") as logf:
            logf.write(f"--- {now_rfc3339()} {c['name']}: {' '.join(argv)}\n".encode())
            logf.flush()
            proc = subprocess.Popen(full, env=self.env(c, path), cwd=self.pod_dir, stdout=logf,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        if main:
            with open(self.pid_file + ".tmp", "w") as f:
                f.write(f"{proc.pid}\n")
            os.replace(self.pid_file + ".tmp", self.pid_file)
        return proc

    def wait_exit(self, proc, grace):
        while True:
            try:
                return self.proc_code(proc.wait(HEALTH_INTERVAL))
            except subprocess.TimeoutExpired:
                pass
            if self.deleting() or self.lost:
                self.proc = proc
                self.stop_process(grace)
                raise Stop()

    def health_check(self, c):
        cmd = list(c.get("command") or []) + list(c.get("args") or [])
        if cmd and os.path.basename(cmd[0]) not in ("etcd",):
            return lambda: True
        flags = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in cmd if a.startswith("--") and "=" in a}
        urls = flags.get("--listen-client-urls", "http://0.0.0.0:2379").split(",")[0]
        m = re.search(r":(\d+)$", urls)
        port = int(m.group(1)) if m else 2379
        https = urls.startswith("https")
        path = self.path_mapper(c)
        files = {k: path(v) for k, v in flags.items() if k in ("--trusted-ca-file", "--cert-file", "--key-file")}

        def healthy():
            try:
                if https:
                    ctx = ssl.create_default_context(cafile=files.get("--trusted-ca-file"))
                    ctx.check_hostname = False
                    if files.get("--cert-file") and files.get("--key-file"):
                        ctx.load_cert_chain(files["--cert-file"], files["--key-file"])
                    conn = http.client.HTTPSConnection(self.ip, port, timeout=0.4, context=ctx)
                else:
                    conn = http.client.HTTPConnection(self.ip, port, timeout=0.4)
                try:
                    conn.request("GET", "/health")
                    r = conn.getresponse()
                    body = r.read()
                finally:
                    conn.close()
                return r.status == 200 and json.loads(body).get("health") == "true"
            except (OSError, ValueError, ssl.SSLError, http.client.HTTPException):
                return False
        return healthy

    def stop_process(self, grace=None):
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if grace is None:
            grace = float(self.pod()["metadata"].get("deletionGracePeriodSeconds") or 30)
        if self.lost:
            grace = 0
        self.signal(proc, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.signal(proc, signal.SIGKILL)
            proc.wait()

    @staticmethod
    def signal(proc, sig):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def unlink_pid(self):
        try:
            os.unlink(self.pid_file)
        except FileNotFoundError:
            pass

    def finish(self):
        """After Stop: a lost node does nothing more; otherwise the kubelet's part of a delete."""
        if self.lost:
            return
        self.stop_process()
        self.unlink_pid()
        if self.netns:
            self.node.net.release(self.netns, self.ip)
            self.netns = None
        if not self.gone and self.node_name:
            try:
                self.node.api.request("DELETE", f"/api/v1/namespaces/{self.ns}/pods/{self.name}",
                                      {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                                       "preconditions": {"uid": self.uid}})
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
        shutil.rmtree(self.pod_dir, ignore_errors=True)
        self.node.pod_finished(self)

    def lose(self):
        """The node this pod is on stops answering: its processes die with it, nothing reports."""
        self.lost = True
        self.wake.set()
        proc = self.proc
        if proc is not None:
            self.signal(proc, signal.SIGKILL)


class MountError(Exception):
    def __init__(self, msg, reason="ContainerCreating"):
        super().__init__(msg)
        self.reason = reason


class Node:
    def __init__(self, args):
        self.args = args
        self.state_dir = os.path.abspath(args.state_dir)
        os.makedirs(os.path.join(self.state_dir, "pods"), exist_ok=True)
        os.makedirs(os.path.join(self.state_dir, "pvcs"), exist_ok=True)
        token = open(args.token_file).read().strip()
        self.api = Client(args.server, token, args.ca_file)
        self.knobs = Knobs(args.pull_delay)
        self.net = Network(args.run_id, args.subnet)
        self.nodes = [f"node-{i}" for i in range(args.nodes)]
        self.lost_nodes = set()
        self.next_node = 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.workers = {}
        self.pods = {}      # uid -> latest pod object (for DNS)
        self.services = {}  # uid -> service
        self.pvcs = {}      # (ns, name) -> claim
        self.hosts_file = os.path.abspath(args.hosts_file or os.path.join(self.state_dir, "hosts"))
        self.hosts_dirty = threading.Event()
        self.shim_dir = os.path.join(self.state_dir, "bin")
        self.resolv_conf = os.path.join(self.state_dir, "resolv.conf")
        self.pods_log = os.path.join(self.state_dir, "pods.log")

    # ---- helpers for workers
    def find_binary(self, prog, version):
        d = self.args.etcd_bin_dir
        if d and version:
            for cand in (os.path.join(d, version, prog), os.path.join(d, "v" + version, prog),
                         os.path.join(d, f"{prog}-{version}")):
                if os.access(cand, os.X_OK):
                    return cand
        return shutil.which(prog)

    def pvc(self, ns, name):
        with self.lock:
            return self.pvcs.get((ns, name))

    def fetch_pvc(self, ns, name):
        """A claim the watch has not delivered yet: it is made just before its pod, on another stream."""
        try:
            return self.api.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}")
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def pvc_dir(self, pvc):
        m = pvc["metadata"]
        return os.path.join(self.state_dir, "pvcs", m["namespace"], f"{m['name']}-{m['uid']}")

    def pick_node(self):
        with self.lock:
            alive = [n for n in self.nodes if n not in self.lost_nodes]
            if not alive:
                return None
            self.next_node += 1
            return alive[self.next_node % len(alive)]

    def pod_seen(self, pod):
        """One line per pod ever created: tests count them (no churn)."""
        m = pod["metadata"]
        with open(self.pods_log, "a") as f:
            f.write(f"{now_rfc3339()} {m['namespace']} {m['name']} {m['uid']}\n")

    def pod_finished(self, w):
        with self.lock:
            self.workers.pop(w.uid, None)
        self.sweep_pvcs()

    # ---- start and stop
    def start(self):
        os.makedirs(self.shim_dir, exist_ok=True)
        with open(os.path.join(self.shim_dir, "nslookup"), "w") as f:
            f.write(NSLOOKUP_SHIM)
        os.chmod(os.path.join(self.shim_dir, "nslookup"), 0o755)
        with open(self.resolv_conf, "w") as f:
            f.write(RESOLV_CONF)
        self.write_hosts()
        self.net.up()
        for n in self.nodes:
            self.register_node(n)
        informers = [Informer(self, "/api/v1/namespaces", self.on_namespace),
                     Informer(self, "/api/v1/persistentvolumeclaims", self.on_pvc),
                     Informer(self, "/api/v1/services", self.on_service),
                     Informer(self, "/api/v1/pods", self.on_pod)]
        for i in informers:
            i.start()
            # claims before pods: a pod's scheduling looks its claims up
            i.synced.wait(30)
        threading.Thread(target=self.hosts_loop, daemon=True, name="hosts").start()

    def stop(self):
        self.stopping.set()
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.lost = True
            w.wake.set()
            proc = w.proc
            if proc is not None:
                w.signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for w in workers:
            proc = w.proc
            if proc is not None:
                try:
                    proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    w.signal(proc, signal.SIGKILL)
            w.unlink_pid()
        self.net.down()

    def register_node(self, name):
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}}}
        try:
            self.api.request("POST", "/api/v1/nodes", node)
        except ApiError as e:
            if e.code != 409:
                raise
        self.node_status(name, "True", "KubeletReady", "kubelet is posting ready status")

    def node_status(self, name, ready, reason, message):
        cap = {"cpu": "8", "memory": "16Gi", "pods": "110"}
        st = {"conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message,
                              "lastHeartbeatTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()}],
              "addresses": [{"type": "InternalIP", "address": self.net.gateway}, {"type": "Hostname", "address": name}],
              "capacity": cap, "allocatable": cap,
              "nodeInfo": {"kubeletVersion": "v1.27.11", "operatingSystem": "linux", "architecture": "amd64",
                           "containerRuntimeVersion": "process://node.py", "kernelVersion": "", "osImage": "",
                           "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""}}
        self.api.request("PATCH", f"/api/v1/nodes/{name}/status", {"status": st}, "application/merge-patch+json")

    # ---- informers
    def on_pod(self, etype, pod):
        uid = pod["metadata"]["uid"]
        with self.lock:
            if etype == "DELETED":
                self.pods.pop(uid, None)
            else:
                self.pods[uid] = pod
            w = self.workers.get(uid)
            if w is None and etype != "DELETED" and not pod["metadata"].get("deletionTimestamp") and \
                    not pod["spec"].get("nodeName") and not self.stopping.is_set():
                w = PodWorker(self, pod)
                self.workers[uid] = w
                self.pod_seen(pod)
                w.start()
                w = None
        if w is not None:
            w.update(pod, deleted=etype == "DELETED")
        self.hosts_dirty.set()
        self.sweep_pvcs()

    def on_service(self, etype, svc):
        with self.lock:
            if etype == "DELETED":
                self.services.pop(svc["metadata"]["uid"], None)
            else:
                self.services[svc["metadata"]["uid"]] = svc
        self.hosts_dirty.set()

    def on_pvc(self, etype, pvc):
        m = pvc["metadata"]
        key = (m["namespace"], m["name"])
        with self.lock:
            if etype == "DELETED":
                if self.pvcs.get(key, {}).get("metadata", {}).get("uid") == m["uid"]:
                    del self.pvcs[key]
            else:
                self.pvcs[key] = pvc
        if etype == "DELETED":
            # reclaim policy Delete: the volume goes with its claim
            shutil.rmtree(self.pvc_dir(pvc), ignore_errors=True)
            return
        if (pvc.get("status") or {}).get("phase") != "Bound" and not m.get("deletionTimestamp"):
            # the provisioner and the binder: a directory on this host is the volume
            os.makedirs(self.pvc_dir(pvc), exist_ok=True)
            spec = pvc.get("spec") or {}
            st = {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                  "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")}}
            try:
                self.api.request("PATCH", f"/api/v1/namespaces/{m['namespace']}/persistentvolumeclaims/{m['name']}/status",
                                 {"metadata": {"uid": m["uid"]}, "status": st}, "application/merge-patch+json")
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
        self.sweep_pvcs()

    def sweep_pvcs(self):
        """kubernetes.io/pvc-protection, as its controller does: a deleted claim goes once no pod uses it."""
        with self.lock:
            pvcs = [p for p in self.pvcs.values() if p["metadata"].get("deletionTimestamp")]
            pods = list(self.pods.values())
        for pvc in pvcs:
            m = pvc["metadata"]
            used = any(p["metadata"]["namespace"] == m["namespace"] and (p.get("status") or {}).get("phase") not in TERMINAL
                       and any((v.get("persistentVolumeClaim") or {}).get("claimName") == m["name"]
                               for v in p["spec"].get("volumes") or []) for p in pods)
            fins = m.get("finalizers") or []
            if used or "kubernetes.io/pvc-protection" not in fins:
                continue
            try:
                self.api.request("PATCH", f"/api/v1/namespaces/{m['namespace']}/persistentvolumeclaims/{m['name']}",
                                 {"metadata": {"uid": m["uid"], "resourceVersion": m["resourceVersion"],
                                               "finalizers": [f for f in fins if f != "kubernetes.io/pvc-protection"]}},
                                 "application/merge-patch+json")
            except ApiError as e:
                if e.code not in (404, 409):
                    log(f"claim {m['namespace']}/{m['name']}: {e}")

    def on_namespace(self, etype, ns):
        if etype == "DELETED":
            return
        name = ns["metadata"]["name"]
        if ns["metadata"].get("deletionTimestamp"):
            threading.Thread(target=self.finalize_namespace, args=(name,), daemon=True).start()
            return
        # the token controller's part: pods are refused in a namespace without its default account
        try:
            self.api.request("POST", f"/api/v1/namespaces/{name}/serviceaccounts",
                             {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
        except ApiError as e:
            if e.code not in (409, 403):
                raise

    def finalize_namespace(self, name):
        """The namespace controller: empty it, then clear its finalizer."""
        colls = ["/api/v1/namespaces/{}/pods", "/api/v1/namespaces/{}/services",
                 "/api/v1/namespaces/{}/persistentvolumeclaims", "/api/v1/namespaces/{}/secrets",
                 "/api/v1/namespaces/{}/configmaps", "/api/v1/namespaces/{}/serviceaccounts",
                 "/api/v1/namespaces/{}/endpoints", "/api/v1/namespaces/{}/events",
                 "/apis/policy/v1/namespaces/{}/poddisruptionbudgets",
                 "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
                 "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/roles",
                 "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/rolebindings"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not self.stopping.is_set():
            left = 0
            for c in colls:
                path = c.format(name)
                try:
                    items = self.api.get(path).get("items") or []
                except ApiError:
                    continue
                for it in items:
                    left += 1
                    try:
                        self.api.request("DELETE", f"{path}/{it['metadata']['name']}")
                    except ApiError:
                        pass
            if left == 0:
                try:
                    ns = self.api.get(f"/api/v1/namespaces/{name}")
                    ns["spec"]["finalizers"] = []
                    self.api.request("PUT", f"/api/v1/namespaces/{name}/finalize", ns)
                except ApiError as e:
                    if e.code != 404:
                        log(f"namespace {name}: {e}")
                return
            time.sleep(0.5)

    # ---- cluster DNS as a hosts file
    def hosts_loop(self):
        while not self.stopping.is_set():
            self.hosts_dirty.wait()
            self.hosts_dirty.clear()
            try:
                self.write_hosts()
            except OSError as e:
                log(f"hosts file: {e}")
            time.sleep(0.1)

    def hosts_content(self):
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        domains = ["svc", f"svc.{self.args.cluster_domain}"]
        with self.lock:
            pods = [p for p in self.pods.values() if (p.get("status") or {}).get("podIP")
                    and p["status"].get("phase") not in TERMINAL]
            services = list(self.services.values())

        def ready(p):
            return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
        for svc in sorted(services, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            spec = svc.get("spec") or {}
            publish = spec.get("publishNotReadyAddresses") or (svc["metadata"].get("annotations") or {}).get(
                "service.alpha.kubernetes.io/tolerate-unready-endpoints") == "true"
            if not spec.get("selector"):
                continue
            for p in pods:
                if p["metadata"]["namespace"] != ns or not selector_map_match(spec.get("selector"),
                                                                               p["metadata"].get("labels")):
                    continue
                if not (publish or ready(p)):
                    continue
                ip = p["status"]["podIP"]
                lines.append(ip + "\t" + " ".join(f"{name}.{ns}.{d}" for d in domains))
                if spec.get("clusterIP") == "None" and p["spec"].get("subdomain") == name and p["spec"].get("hostname"):
                    h = p["spec"]["hostname"]
                    lines.append(ip + "\t" + " ".join(f"{h}.{name}.{ns}.{d}" for d in domains))
        return "\n".join(lines) + "\n"

    def write_hosts(self):
        data = self.hosts_content().encode()
        # in place: pods and tests bind-mount the file over /etc/hosts, which pins its inode
        fd = os.open(self.hosts_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)

    # ---- the control endpoint's actions
    def worker(self, key):
        ns, _, name = key.rpartition("/")
        with self.lock:
            for w in self.workers.values():
                if w.name == name and w.ns == (ns or "default"):
                    return w
        return None

    def force_exit(self, key, code):
        w = self.worker(key)
        if w is None or w.proc is None:
            raise LookupError(f"no running container in pod {key}")
        w.exit_code = code
        w.signal(w.proc, signal.SIGKILL)

    def lose_node(self, name):
        if name not in self.nodes:
            raise LookupError(f"no node {name}")
        with self.lock:
            self.lost_nodes.add(name)
            victims = [w for w in self.workers.values() if w.node_name == name]
        self.node_status(name, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        for w in victims:
            w.lose()
            # the node lifecycle controller's word on the pods of a node that stopped answering
            st = {"phase": "Unknown", "reason": "NodeLost",
                  "message": f"Node {name} which was running pod {w.name} is unresponsive",
                  "conditions": [dict(c, status="False", reason="NodeNotReady") if c["type"] == "Ready" else c
                                 for c in w.status.get("conditions") or []]}
            try:
                self.api.request("PATCH", f"/api/v1/namespaces/{w.ns}/pods/{w.name}/status",
                                 {"metadata": {"uid": w.uid}, "status": st}, "application/merge-patch+json")
            except ApiError as e:
                log(f"lost pod {w.key}: {e}")
        return [w.key for w in victims]

    def node_of(self, key):
        w = self.worker(key)
        if w is None or not w.node_name:
            raise LookupError(f"pod {key} is on no node")
        return w.node_name


class Control(BaseHTTPRequestHandler):
    """POST /knobs {...}; POST /exit {"pod": "ns/name", "code": N}; POST /lose-node {"node"|"pod"};
    GET /knobs."""

    def log_message(self, fmt, *a):
        pass

    def reply(self, code, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/knobs":
            return self.reply(200, self.server.node.knobs.update({}))
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        node = self.server.node
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path == "/knobs":
                return self.reply(200, node.knobs.update(body))
            if self.path == "/exit":
                node.force_exit(body["pod"], int(body.get("code", 1)))
                return self.reply(200, {})
            if self.path == "/lose-node":
                name = body.get("node") or node.node_of(body["pod"])
                return self.reply(200, {"node": name, "pods": node.lose_node(name)})
            self.reply(404, {"error": "not found"})
        except (ValueError, KeyError, LookupError, TypeError) as e:
            self.reply(400, {"error": str(e)})


def free_subnet():
    """A 10.x.y.0/24 that no interface of this host is on."""
    used = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    for _ in range(200):
        s = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        if f" {s}." not in used:
            return f"{s}.0/24"
    raise RuntimeError("no free 10.x.y.0/24")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--server", required=True, help="https://127.0.0.1:PORT")
    p.add_argument("--token-file", required=True, help="a token of a system:masters user")
    p.add_argument("--ca-file", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--run-id", required=True, help="names the bridge egbID and the namespaces egID-N")
    p.add_argument("--subnet", help="10.x.y.0/24 for pods (default: a free one)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--pull-delay", type=float, default=2.0)
    p.add_argument("--etcd-bin-dir", help="DIR/<version>/etcd per image version; PATH etcd otherwise")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--hosts-file", help="kept as the cluster's DNS (default STATE/hosts)")
    p.add_argument("--ready-file", help="written with the control URL once serving")
    args = p.parse_args(argv)
    if not re.fullmatch(r"[a-z0-9]{1,6}", args.run_id):
        p.error("--run-id: 1 to 6 lowercase letters or digits")
    args.subnet = args.subnet or free_subnet()

    node = Node(args)
    ctl = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    ctl.node = node

    def on_signal(signum, frame):
        threading.Thread(target=ctl.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        node.start()
        with open(os.path.join(node.state_dir, "network"), "w") as f:
            f.write(f"{node.net.bridge} {args.subnet} {node.net.gateway}\n")
        if args.ready_file:
            with open(args.ready_file + ".tmp", "w") as f:
                f.write(f"http://127.0.0.1:{ctl.server_address[1]}\n")
            os.replace(args.ready_file + ".tmp", args.ready_file)
        log(f"nodes {', '.join(node.nodes)} on {node.net.bridge} {args.subnet}, control on port "
            f"{ctl.server_address[1]}")
        ctl.serve_forever(poll_interval=0.2)
    finally:
        node.stop()
        ctl.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
