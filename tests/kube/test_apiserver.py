"""Tests for the Kubernetes API test server (apiserver.py): run with `python3 -m unittest -v test_apiserver`."""

import base64
import glob
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
from schema_check import load_yaml_documents  # noqa: E402

RBAC = os.path.join(SRC, "examples", "kubernetes", "rbac.yaml")
SA_USER = "system:serviceaccount:etcd-gitops:etcd-gitops"
ETCD = shutil.which("etcd")


def wait_for(cond, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_file(path):
    with open(path) as f:
        return f.read()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


class Server:
    """One apiserver.py subprocess with its own temp dirs, stopped by pid."""

    def __init__(self, tmp, extra=(), hosts=False):
        self.tmp = tmp
        self.state = os.path.join(tmp, "state")
        self.tls = os.path.join(tmp, "tls")
        self.kc = os.path.join(tmp, "kc")
        self.ready = os.path.join(tmp, "ready")
        self.hosts = os.path.join(tmp, "hosts") if hosts else None
        ip = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.10"
        # With a hosts file the server runs inside the namespace wrapper that mounts it on /etc/hosts.
        wrapper = (os.path.join(HERE, "netns-run.sh"), self.hosts) if hosts else ()
        argv = [*wrapper, sys.executable, os.path.join(HERE, "apiserver.py"), "--state-dir", self.state,
                "--port", "0", "--tls-dir", self.tls, "--ready-file", self.ready, "--kubeconfig-out", self.kc,
                "--pod-ip-start", ip, "--verbose", *extra]
        if hosts:
            argv += ["--hosts-file", self.hosts]
        self.log = open(os.path.join(tmp, "apiserver.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.exists(self.ready) or self.proc.poll() is not None, 30, "the ready file")
            if self.proc.poll() is not None:
                raise AssertionError(f"apiserver exited {self.proc.returncode}: {self.log_text()}")
        except BaseException:
            self.stop()
            raise
        with open(self.ready) as f:
            self.url = f.read().strip()
        self.port = int(self.url.rsplit(":", 1)[1])

    def log_text(self):
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()[-4000:]

    def pod_pids(self):
        out = []
        for p in glob.glob(os.path.join(self.state, "pods", "*", "*.pid")):
            try:
                with open(p) as f:
                    out.append(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        return out

    def stop(self):
        pids = self.pod_pids()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in pids + self.pod_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()

    def context(self, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.tls, "ca.crt"))
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    def request(self, method, path, body=None, token="admin", ctype=None, cert=None, key=None, raw=False,
                headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.context(cert, key))
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = ctype or "application/json"
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            text = r.read()
        finally:
            conn.close()
        if raw:
            return r.status, text
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text.decode(errors="replace")


def pod_obj(name, command=None, image="quay.io/coreos/etcd:v3.4.23", labels=None, volumes=None, mounts=None,
            extra_spec=None):
    c = {"name": "etcd", "image": image, "command": command or ["/bin/sh", "-c", "sleep 1000"],
         "ports": [{"name": "client", "containerPort": 2379}, {"name": "server", "containerPort": 2380}]}
    if mounts:
        c["volumeMounts"] = mounts
    spec = {"restartPolicy": "Never", "containers": [c]}
    if volumes:
        spec["volumes"] = volumes
    spec.update(extra_spec or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": "etcd"}},
            "spec": spec}


def etcd_command(member, cluster="c", dns=False, state="new"):
    """The container command upstream builds; without DNS, peer names fall back to localhost."""
    if dns:
        peer = f"http://{member}.{cluster}.default.svc:2380"
        client = f"http://{member}.{cluster}.default.svc:2379"
    else:
        peer, client = "http://localhost:2380", "http://localhost:2379"
    return ["/usr/local/bin/etcd", "--data-dir=/var/etcd/data", f"--name={member}",
            f"--initial-advertise-peer-urls={peer}", "--listen-peer-urls=http://0.0.0.0:2380",
            "--listen-client-urls=http://0.0.0.0:2379", f"--advertise-client-urls={client}",
            f"--initial-cluster={member}={peer}", f"--initial-cluster-state={state}",
            f"--initial-cluster-token={cluster}-token"]


def etcd_pod(member, cluster="c", dns=False, pvc=None):
    vol = {"name": "etcd-data", "persistentVolumeClaim": {"claimName": pvc}} if pvc else \
        {"name": "etcd-data", "emptyDir": {}}
    p = pod_obj(member, etcd_command(member, cluster, dns),
                labels={"app": "etcd", "etcd_cluster": cluster, "etcd_node": member},
                volumes=[vol], mounts=[{"name": "etcd-data", "mountPath": "/var/etcd"}],
                extra_spec={"hostname": member, "subdomain": cluster})
    p["metadata"]["annotations"] = {"etcd.version": "3.4.23"}
    p["spec"]["initContainers"] = [{"name": "check-dns", "image": "busybox:1.28.0-glibc",
                                    "command": ["/bin/sh", "-c", f"until nslookup {member}.{cluster}; do sleep 1; done"]}]
    return p


def service_obj(name, labels=None, ports=None, selector=None, headless=False):
    spec = {"ports": ports if ports is not None else [{"name": "client", "port": 2379}],
            "selector": selector or {"app": "etcd"}}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec}


PODS = "/api/v1/namespaces/default/pods"
SVCS = "/api/v1/namespaces/default/services"
PVCS = "/api/v1/namespaces/default/persistentvolumeclaims"
PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"


class ServerTest(unittest.TestCase):
    server_args = ()
    hosts = False

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kube-apiserver-test.")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.srv = Server(self.tmp, self.server_args, self.hosts)
        self.addCleanup(self.srv.stop)

    def req(self, *a, **kw):
        return self.srv.request(*a, **kw)

    def assertStatus(self, got, code, reason, message=None, details=None):
        status, body = got
        self.assertEqual(status, code, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body["kind"], "Status")
        self.assertEqual(body["apiVersion"], "v1")
        self.assertEqual(body["status"], "Failure")
        self.assertEqual(body["reason"], reason)
        self.assertEqual(body["code"], code)
        if message is not None:
            self.assertEqual(body["message"], message)
        if details is not None:
            self.assertEqual(body["details"], details)
        return body

    def create(self, path, obj, code=201):
        status, body = self.req("POST", path, obj)
        self.assertEqual(status, code, body)
        return body

    def get_pod(self, name):
        status, body = self.req("GET", f"{PODS}/{name}")
        return body if status == 200 else None

    def wait_ready(self, name, timeout=30):
        def ready():
            p = self.get_pod(name)
            if p is None:
                return None
            if p["status"].get("phase") == "Failed":
                raise AssertionError(f"pod {name} failed: {p['status']}\n{self.srv.log_text()}")
            conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
            return p if p["status"].get("phase") == "Running" and conds.get("Ready") == "True" else None
        return wait_for(ready, timeout, f"pod {name} Running and Ready")

    def pod_pid(self, name):
        with open(os.path.join(self.srv.state, "pods", "default", f"{name}.pid")) as f:
            return int(f.read())


class CrudTest(ServerTest):
    def test_pod_create_get_conflict_and_delete(self):
        created = self.create(PODS, pod_obj("p1"))
        m = created["metadata"]
        self.assertEqual(m["namespace"], "default")
        self.assertEqual(len(m["uid"]), 36)
        self.assertTrue(m["resourceVersion"].isdigit())
        self.assertRegex(m["creationTimestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(m["generation"], 1)
        self.assertEqual(created["kind"], "Pod")
        self.assertEqual(created["spec"]["terminationGracePeriodSeconds"], 30)
        status, got = self.req("GET", f"{PODS}/p1")
        self.assertEqual(status, 200)
        self.assertEqual(got["metadata"]["uid"], m["uid"])
        self.assertStatus(self.req("POST", PODS, pod_obj("p1")), 409, "AlreadyExists",
                          'pods "p1" already exists', {"name": "p1", "kind": "pods"})
        self.assertStatus(self.req("GET", f"{PODS}/nope"), 404, "NotFound", 'pods "nope" not found',
                          {"name": "nope", "kind": "pods"})
        # /bin/sh is not etcd: the test kubelet refuses to run it and the pod fails with a reason.
        p = wait_for(lambda: (self.get_pod("p1") or {}).get("status", {}).get("phase") == "Failed" and
                     self.get_pod("p1"), 10, "p1 Failed")
        self.assertEqual(p["status"]["reason"], "UnsupportedCommand")
        status, body = self.req("DELETE", f"{PODS}/p1")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["metadata"]["name"], "p1")
        self.assertEqual(self.req("GET", f"{PODS}/p1")[0], 404)
        self.assertStatus(self.req("DELETE", f"{PODS}/p1"), 404, "NotFound", 'pods "p1" not found')

    def test_service_cluster_ip_headless_and_stale_update(self):
        svc = self.create(SVCS, service_obj("demo-client"))
        self.assertRegex(svc["spec"]["clusterIP"], r"^10\.96\.\d+\.\d+$")
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], 2379)
        self.assertEqual(svc["spec"]["ports"][0]["protocol"], "TCP")
        peer = self.create(SVCS, service_obj("demo", headless=True, ports=[
            {"name": "client", "port": 2379}, {"name": "peer", "port": 2380}]))
        self.assertEqual(peer["spec"]["clusterIP"], "None")
        stale = json.loads(json.dumps(svc))
        svc["metadata"]["labels"] = {"tier": "db"}
        status, updated = self.req("PUT", f"{SVCS}/demo-client", svc)
        self.assertEqual(status, 200, updated)
        self.assertGreater(int(updated["metadata"]["resourceVersion"]), int(svc["metadata"]["resourceVersion"]))
        self.assertEqual(updated["metadata"]["labels"], {"tier": "db"})
        self.assertEqual(updated["spec"]["clusterIP"], svc["spec"]["clusterIP"])
        stale["metadata"]["labels"] = {"tier": "web"}
        self.assertStatus(self.req("PUT", f"{SVCS}/demo-client", stale), 409, "Conflict",
                          'Operation cannot be fulfilled on services "demo-client": the object has been '
                          'modified; please apply your changes to the latest version and try again',
                          {"name": "demo-client", "kind": "services"})
        # A patch naming a stale resourceVersion is refused the same way.
        self.assertStatus(self.req("PATCH", f"{SVCS}/demo-client",
                                   {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"],
                                                 "labels": {"x": "y"}}},
                                   ctype="application/merge-patch+json"), 409, "Conflict")
        self.assertStatus(self.req("PUT", f"{SVCS}/missing", service_obj("missing")), 404, "NotFound")
        status, body = self.req("DELETE", f"{SVCS}/demo")
        self.assertEqual(status, 200, body)
        self.assertEqual(self.req("GET", f"{SVCS}/demo")[0], 404)

    def test_pvc_bound_and_deleted(self):
        pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "m0"},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
        got = self.create(PVCS, pvc)
        self.assertEqual(got["status"]["phase"], "Bound")
        self.assertEqual(got["metadata"]["finalizers"], ["kubernetes.io/pvc-protection"])
        self.assertEqual(self.req("GET", PVCS)[1]["items"][0]["metadata"]["name"], "m0")
        status, body = self.req("DELETE", f"{PVCS}/m0")
        self.assertEqual(status, 200, body)
        self.assertEqual(self.req("GET", f"{PVCS}/m0")[0], 404)
        bad = json.loads(json.dumps(pvc))
        del bad["spec"]["resources"]
        body = self.assertStatus(self.req("POST", PVCS, bad), 422, "Invalid")
        self.assertEqual(body["details"]["causes"][0]["field"], "spec.resources[storage]")

    def test_pdb_policy_v1(self):
        pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "demo"},
               "spec": {"minAvailable": 2, "selector": {"matchLabels": {"etcd_cluster": "demo"}}}}
        got = self.create(PDBS, pdb)
        self.assertEqual(got["apiVersion"], "policy/v1")
        self.assertEqual(got["status"]["desiredHealthy"], 2)
        status, patched = self.req("PATCH", f"{PDBS}/demo", {"spec": {"minAvailable": 1}},
                                   ctype="application/merge-patch+json")
        self.assertEqual(status, 200, patched)
        self.assertEqual(patched["spec"]["minAvailable"], 1)
        self.assertEqual(patched["metadata"]["generation"], 2)
        self.assertEqual(self.req("GET", "/api/v1/namespaces/default/poddisruptionbudgets")[0], 404)
        self.assertStatus(self.req("POST", PDBS, dict(pdb, apiVersion="policy/v1beta1")), 400, "BadRequest")
        self.assertStatus(self.req("GET", f"{PDBS}/nope"), 404, "NotFound",
                          'poddisruptionbudgets.policy "nope" not found',
                          {"name": "nope", "group": "policy", "kind": "poddisruptionbudgets"})
        status, body = self.req("DELETE", f"{PDBS}/demo")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "Success")
        self.assertEqual(body["details"]["name"], "demo")

    def test_secret_string_data_and_namespaces(self):
        sec = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"},
               "stringData": {"peer.crt": "PEM"}}
        got = self.create("/api/v1/namespaces/default/secrets", sec)
        self.assertEqual(got["data"], {"peer.crt": base64.b64encode(b"PEM").decode()})
        self.assertNotIn("stringData", got)
        self.assertEqual(got["type"], "Opaque")
        self.create("/api/v1/namespaces/payments/secrets", dict(sec, metadata={"name": "x"}))
        status, ns = self.req("GET", "/api/v1/namespaces/payments")
        self.assertEqual((status, ns["status"]["phase"]), (200, "Active"))
        self.assertStatus(self.req("GET", "/api/v1/namespaces/never-used"), 404, "NotFound",
                          'namespaces "never-used" not found')
        self.assertStatus(self.req("DELETE", "/api/v1/namespaces/payments"), 405, "MethodNotAllowed")

    def test_delete_options(self):
        self.create(SVCS, service_obj("s1"))
        self.assertStatus(self.req("DELETE", f"{SVCS}/s1?propagationPolicy=Sometimes"), 422, "Invalid")
        self.assertStatus(self.req("DELETE", f"{SVCS}/s1", {"kind": "DeleteOptions", "apiVersion": "v1",
                                                            "preconditions": {"uid": "not-the-uid"}}),
                          409, "Conflict")
        status, _ = self.req("DELETE", f"{SVCS}/s1", {"kind": "DeleteOptions", "apiVersion": "v1",
                                                       "propagationPolicy": "Foreground",
                                                       "gracePeriodSeconds": 0})
        self.assertEqual(status, 200)

    def test_discovery_and_version(self):
        status, v = self.req("GET", "/version", token=None)
        self.assertEqual((status, v["gitVersion"], v["major"], v["minor"]), (200, "v1.21.14", "1", "21"))
        self.assertEqual(self.req("GET", "/healthz", token=None), (200, "ok"))
        status, api = self.req("GET", "/api")
        self.assertEqual(api["versions"], ["v1"])
        status, res = self.req("GET", "/api/v1")
        names = {r["name"] for r in res["resources"]}
        self.assertTrue({"pods", "pods/proxy", "services", "persistentvolumeclaims", "secrets", "events",
                         "namespaces"} <= names, names)
        status, groups = self.req("GET", "/apis")
        self.assertEqual(groups["groups"][0]["name"], "policy")
        self.assertEqual(self.req("GET", "/apis/policy/v1")[1]["resources"][0]["name"], "poddisruptionbudgets")
        self.assertStatus(self.req("GET", "/api/v1/namespaces/default/widgets"), 404, "NotFound",
                          "the server could not find the requested resource")

    def test_kubeconfigs(self):
        with open(os.path.join(self.srv.tls, "ca.crt"), "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        for name, user_key in (("admin.kubeconfig", "token"), ("cert.kubeconfig", "client-certificate-data")):
            with open(os.path.join(self.srv.kc, name)) as f:
                (_, cfg), = load_yaml_documents(f.read())
            self.assertEqual(cfg["clusters"][0]["cluster"]["server"], self.srv.url)
            self.assertEqual(cfg["clusters"][0]["cluster"]["certificate-authority-data"], ca)
            self.assertIn(user_key, cfg["users"][0]["user"])
            self.assertEqual(cfg["current-context"], cfg["contexts"][0]["name"])


class ValidationTest(ServerTest):
    def invalid(self, path, obj, field, message, kind="Pod", name=None):
        body = self.assertStatus(self.req("POST", path, obj), 422, "Invalid")
        name = obj["metadata"].get("name", "") if name is None else name
        self.assertEqual(body["details"]["kind"], kind)
        self.assertEqual(body["details"].get("name", ""), name)
        fields = [(c["field"], c["message"]) for c in body["details"]["causes"]]
        self.assertIn((field, message), fields)
        self.assertIn(f"{field}: {message}", body["message"])
        self.assertTrue(body["message"].startswith(f'{kind} "{name}" is invalid: '), body["message"])
        return body

    def test_pod_invalid_cases(self):
        p = pod_obj("x")
        del p["metadata"]["name"]
        body = self.invalid(PODS, p, "metadata.name", "Required value: name or generateName is required")
        self.assertEqual(body["message"],
                         'Pod "" is invalid: metadata.name: Required value: name or generateName is required')
        self.invalid(PODS, pod_obj("My_Pod"), "metadata.name", 'Invalid value: "My_Pod": a lowercase RFC 1123 '
                     "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and "
                     "end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
        p = pod_obj("x")
        p["replicas"] = 3
        self.invalid(PODS, p, "replicas", "Forbidden: unknown field")
        p = pod_obj("x")
        del p["spec"]["containers"][0]["image"]
        self.invalid(PODS, p, "spec.containers[0].image", "Required value")
        p = pod_obj("x")
        del p["spec"]["containers"][0]["name"]
        self.invalid(PODS, p, "spec.containers[0].name", "Required value")
        p = pod_obj("x")
        p["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
        self.invalid(PODS, p, "spec.containers[0].ports[0].containerPort",
                     "Invalid value: 70000: must be between 1 and 65535, inclusive")
        p = pod_obj("x")
        p["spec"]["containers"] = []
        self.invalid(PODS, p, "spec.containers", "Required value")
        p = pod_obj("x", mounts=[{"name": "nope", "mountPath": "/var/etcd"}])
        self.invalid(PODS, p, "spec.containers[0].volumeMounts[0].name", 'Not found: "nope"')
        p = pod_obj("x")
        p["spec"]["initContainers"] = [{"name": "check-dns"}]
        self.invalid(PODS, p, "spec.initContainers[0].image", "Required value")
        p = pod_obj("x")
        p["spec"]["restartPolicy"] = "Sometimes"
        self.invalid(PODS, p, "spec.restartPolicy",
                     'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"')
        self.assertEqual(self.req("GET", PODS)[1]["items"], [])

    def test_service_and_type_errors(self):
        self.invalid(SVCS, service_obj("s", ports=[]), "spec.ports", "Required value", kind="Service")
        self.invalid(SVCS, service_obj("s", ports=[{"name": "a", "port": 0}]), "spec.ports[0].port",
                     "Invalid value: 0: must be between 1 and 65535, inclusive", kind="Service")
        self.invalid(SVCS, service_obj("s", ports=[{"port": 1}, {"port": 2}]), "spec.ports[0].name",
                     "Required value", kind="Service")
        self.invalid(SVCS, service_obj("1abc"), "metadata.name",
                     'Invalid value: "1abc": a DNS-1035 label must consist of lower case alphanumeric characters '
                     "or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
                     "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                     kind="Service")
        # A headless service may have no ports, like the real one.
        self.create(SVCS, service_obj("peer", ports=[], headless=True))
        p = pod_obj("x")
        p["metadata"]["labels"] = {"a": 1}
        self.assertStatus(self.req("POST", PODS, p), 400, "BadRequest")
        self.assertStatus(self.req("POST", PODS, b"{not json"), 400, "BadRequest")
        self.assertStatus(self.req("POST", PODS, dict(pod_obj("x"), kind="Service")), 400, "BadRequest",
                          "the kind in the data (Service) does not match the expected kind (Pod)")
        p = pod_obj("x")
        p["metadata"]["namespace"] = "other"
        self.assertStatus(self.req("POST", PODS, p), 400, "BadRequest",
                          "the namespace of the provided object does not match the namespace sent on the request")
        self.assertStatus(self.req("POST", PODS, b"a: b", ctype="application/x-yaml"), 415, "UnsupportedMediaType")

    def test_pod_spec_is_immutable_except_images(self):
        self.create(PODS, pod_obj("p"))
        status, body = self.req("PATCH", f"{PODS}/p", {"spec": {"containers": [
            {"name": "etcd", "command": ["/usr/local/bin/etcd", "--name=other"]}]}},
            ctype="application/strategic-merge-patch+json")
        body = self.assertStatus((status, body), 422, "Invalid")
        self.assertEqual(body["details"]["causes"][0]["field"], "spec")
        self.assertIn("pod updates may not change fields other than", body["message"])


class SelectorTest(ServerTest):
    def setUp(self):
        super().setUp()
        for name, labels in (("a", {"app": "etcd", "etcd_cluster": "x", "tier": "db"}),
                             ("b", {"app": "etcd", "etcd_cluster": "y"}),
                             ("c", {"app": "etcd", "etcd_cluster": "x"}),
                             ("d", {"app": "web"}),
                             ("e", {})):
            self.create(SVCS, service_obj(name, labels=labels))

    def names(self, query, path=SVCS):
        status, body = self.req("GET", f"{path}?{query}")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["kind"], "ServiceList")
        self.assertTrue(body["metadata"]["resourceVersion"].isdigit())
        return [i["metadata"]["name"] for i in body["items"]]

    def test_label_selectors(self):
        q = lambda s: "labelSelector=" + urllib.parse.quote(s)  # noqa: E731
        self.assertEqual(self.names(q("app=etcd")), ["a", "b", "c"])
        self.assertEqual(self.names(q("app==etcd,etcd_cluster=x")), ["a", "c"])
        self.assertEqual(self.names(q("app!=etcd")), ["d", "e"])
        self.assertEqual(self.names(q("etcd_cluster in (x, y)")), ["a", "b", "c"])
        self.assertEqual(self.names(q("etcd_cluster notin (x)")), ["b", "d", "e"])
        self.assertEqual(self.names(q("tier")), ["a"])
        self.assertEqual(self.names(q("!etcd_cluster")), ["d", "e"])
        self.assertEqual(self.names(q("app=etcd,!tier")), ["b", "c"])
        self.assertEqual(self.names("fieldSelector=metadata.name%3Dc"), ["c"])
        self.assertEqual(self.names("fieldSelector=metadata.name%21%3Dc&" + q("app=etcd")), ["a", "b"])
        self.assertStatus(self.req("GET", f"{SVCS}?fieldSelector=spec.foo%3Dx"), 400, "BadRequest")
        self.assertStatus(self.req("GET", f"{SVCS}?" + q("app in x")), 400, "BadRequest")
        # All namespaces: items from every namespace, items carry no kind of their own.
        self.create("/api/v1/namespaces/other/services", service_obj("z", labels={"app": "etcd"}))
        status, body = self.req("GET", "/api/v1/services?" + q("app=etcd"))
        self.assertEqual([(i["metadata"]["namespace"], i["metadata"]["name"]) for i in body["items"]],
                         [("default", "a"), ("default", "b"), ("default", "c"), ("other", "z")])
        self.assertNotIn("kind", body["items"][0])

    def test_pagination(self):
        status, page = self.req("GET", f"{SVCS}?limit=2")
        self.assertEqual([i["metadata"]["name"] for i in page["items"]], ["a", "b"])
        self.assertEqual(page["metadata"]["remainingItemCount"], 3)
        seen = [i["metadata"]["name"] for i in page["items"]]
        pages = 1
        while page["metadata"].get("continue"):
            status, page = self.req("GET", f"{SVCS}?limit=2&continue=" +
                                    urllib.parse.quote(page["metadata"]["continue"]))
            self.assertEqual(status, 200, page)
            seen += [i["metadata"]["name"] for i in page["items"]]
            pages += 1
        self.assertEqual((seen, pages), (["a", "b", "c", "d", "e"], 3))
        self.assertEqual(self.names("labelSelector=app%3Detcd&limit=2"), ["a", "b"])
        self.assertStatus(self.req("GET", f"{SVCS}?limit=2&continue=garbage"), 400, "BadRequest")

    def test_watch_sees_changes_after_a_resource_version(self):
        status, lst = self.req("GET", SVCS)
        rv = lst["metadata"]["resourceVersion"]
        conn = http.client.HTTPSConnection("127.0.0.1", self.srv.port, timeout=20, context=self.srv.context())
        conn.request("GET", f"{SVCS}?watch=1&resourceVersion={rv}&timeoutSeconds=10&labelSelector=app%3Detcd",
                     headers={"Authorization": "Bearer admin"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.create(SVCS, service_obj("web", labels={"app": "web"}))
        self.create(SVCS, service_obj("f", labels={"app": "etcd"}))
        self.req("DELETE", f"{SVCS}/a")
        events = [json.loads(r.readline()) for _ in range(2)]
        conn.close()
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in events],
                         [("ADDED", "f"), ("DELETED", "a")])


class PatchTest(ServerTest):
    def test_strategic_merge_containers_ports_and_delete(self):
        p = pod_obj("p")
        p["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
        self.create(PODS, p)
        status, got = self.req("PATCH", f"{PODS}/p", {
            "metadata": {"annotations": {"etcd.version": "3.5.0"}},
            "spec": {"containers": [{"name": "etcd", "image": "quay.io/coreos/etcd:v3.5.0"}]}},
            ctype="application/strategic-merge-patch+json")
        self.assertEqual(status, 200, got)
        c = got["spec"]["containers"]
        self.assertEqual(len(c), 1)
        self.assertEqual(c[0]["image"], "quay.io/coreos/etcd:v3.5.0")
        self.assertEqual(c[0]["command"], ["/bin/sh", "-c", "sleep 1000"])
        self.assertEqual(c[0]["env"], [{"name": "A", "value": "1"}])
        self.assertEqual(got["metadata"]["annotations"], {"etcd.version": "3.5.0"})
        self.assertEqual(got["metadata"]["generation"], 2)

        self.create(SVCS, service_obj("s", ports=[{"name": "client", "port": 2379}]))
        status, got = self.req("PATCH", f"{SVCS}/s", {"spec": {"ports": [{"name": "peer", "port": 2380}]}},
                               ctype="application/strategic-merge-patch+json")
        self.assertEqual([(x["name"], x["port"]) for x in got["spec"]["ports"]], [("client", 2379), ("peer", 2380)])
        status, got = self.req("PATCH", f"{SVCS}/s", {"spec": {"ports": [{"port": 2379, "$patch": "delete"}]}},
                               ctype="application/strategic-merge-patch+json")
        self.assertEqual([x["port"] for x in got["spec"]["ports"]], [2380])
        # A merge patch (RFC 7386) replaces lists whole.
        status, got = self.req("PATCH", f"{SVCS}/s", {"spec": {"ports": [{"name": "c", "port": 1}]},
                                                      "metadata": {"labels": {"k": "v"}}},
                               ctype="application/merge-patch+json")
        self.assertEqual([x["port"] for x in got["spec"]["ports"]], [1])
        status, got = self.req("PATCH", f"{SVCS}/s", {"metadata": {"labels": {"k": None}}},
                               ctype="application/merge-patch+json")
        self.assertEqual(got["metadata"].get("labels"), {})
        status, got = self.req("PATCH", f"{SVCS}/s", [{"op": "replace", "path": "/spec/ports/0/port", "value": 7}],
                               ctype="application/json-patch+json")
        self.assertEqual((status, got["spec"]["ports"][0]["port"]), (200, 7))
        self.assertStatus(self.req("PATCH", f"{SVCS}/s", b"spec: {}", ctype="application/apply-patch+yaml"),
                          415, "UnsupportedMediaType")
        self.assertStatus(self.req("PATCH", f"{SVCS}/nope", {}, ctype="application/merge-patch+json"),
                          404, "NotFound")


class AuthTest(ServerTest):
    server_args = ("--rbac", RBAC, "--token", f"sa-token:{SA_USER}")

    def test_no_or_unknown_credentials(self):
        for token in (None, "wrong"):
            self.assertStatus(self.req("GET", PODS, token=token), 401, "Unauthorized", "Unauthorized")

    def test_rbac_bound_token(self):
        status, body = self.req("POST", PODS, pod_obj("p"), token="sa-token")
        self.assertEqual(status, 201, body)
        self.assertEqual(self.req("GET", f"{PODS}?labelSelector=app%3Detcd", token="sa-token")[0], 200)
        self.assertEqual(self.req("GET", f"{SVCS}", token="sa-token")[0], 200)
        self.assertEqual(self.req("GET", "/api/v1/namespaces/default/secrets/nope", token="sa-token")[0], 404)
        self.assertStatus(
            self.req("DELETE", "/api/v1/namespaces/default", token="sa-token"), 403, "Forbidden",
            f'namespaces "default" is forbidden: User "{SA_USER}" cannot delete resource "namespaces" in API '
            'group "" in the namespace "default"', {"name": "default", "kind": "namespaces"})
        self.assertStatus(
            self.req("GET", "/api/v1/namespaces/default/secrets", token="sa-token"), 403, "Forbidden",
            f'secrets is forbidden: User "{SA_USER}" cannot list resource "secrets" in API group "" in the '
            'namespace "default"')
        # Bound in "default" only.
        self.assertStatus(
            self.req("POST", "/api/v1/namespaces/payments/pods", pod_obj("p"), token="sa-token"), 403, "Forbidden",
            f'pods is forbidden: User "{SA_USER}" cannot create resource "pods" in API group "" in the '
            'namespace "payments"')
        self.assertStatus(
            self.req("DELETE", f"{PDBS}/x", token="sa-token"), 404, "NotFound")
        self.assertStatus(
            self.req("GET", "/api/v1/namespaces/default/persistentvolumeclaims/x", token="sa-token"), 404,
            "NotFound")
        # claims are patched (their ownerReferences, on adoption) but never replaced
        self.assertStatus(
            self.req("PATCH", "/api/v1/namespaces/default/persistentvolumeclaims/x", {},
                     ctype="application/merge-patch+json", token="sa-token"), 404, "NotFound")
        self.assertStatus(
            self.req("PUT", "/api/v1/namespaces/default/persistentvolumeclaims/x", {}, token="sa-token"), 403,
            "Forbidden",
            f'persistentvolumeclaims "x" is forbidden: User "{SA_USER}" cannot update resource '
            '"persistentvolumeclaims" in API group "" in the namespace "default"')
        # pods/proxy is granted: the request goes through to "pod not running" instead of 403.
        self.assertStatus(self.req("GET", f"{PODS}/nope:2379/proxy/health", token="sa-token"), 404, "NotFound")

    def test_role_without_proxy_gets_exact_forbidden(self):
        rbac = os.path.join(self.tmp, "limited.yaml")
        with open(rbac, "w") as f:
            f.write("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: pods-only, "
                    "namespace: default}\nrules:\n  - apiGroups: [\"\"]\n    resources: [pods]\n"
                    "    verbs: [get, list, create, delete]\n---\n"
                    "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, "
                    "namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, "
                    "name: pods-only}\nsubjects:\n  - {kind: ServiceAccount, name: limited, namespace: default}\n"
                    "  - {kind: Group, name: devs}\n")
        tmp2 = tempfile.mkdtemp(prefix="kube-apiserver-test.")
        self.addCleanup(shutil.rmtree, tmp2, ignore_errors=True)
        srv = Server(tmp2, ("--rbac", rbac, "--token", "lim:system:serviceaccount:default:limited",
                            "--token", "dev:jane:devs"))
        self.addCleanup(srv.stop)
        self.assertEqual(srv.request("POST", PODS, pod_obj("x"), token="lim")[0], 201)
        self.assertStatus(
            srv.request("GET", f"{PODS}/x:2379/proxy/health", token="lim"), 403, "Forbidden",
            'pods "x" is forbidden: User "system:serviceaccount:default:limited" cannot get resource '
            '"pods/proxy" in API group "" in the namespace "default"', {"name": "x", "kind": "pods"})
        self.assertStatus(
            srv.request("POST", f"{PODS}/https:x:2379/proxy/v3/kv/put", {}, token="lim"), 403, "Forbidden",
            'pods "x" is forbidden: User "system:serviceaccount:default:limited" cannot create resource '
            '"pods/proxy" in API group "" in the namespace "default"')
        self.assertEqual(srv.request("GET", f"{PODS}/x", token="dev")[0], 200)
        self.assertStatus(srv.request("PUT", f"{PODS}/x", pod_obj("x"), token="dev"), 403, "Forbidden",
                          'pods "x" is forbidden: User "jane" cannot update resource "pods" in API group "" in '
                          'the namespace "default"')

    def issue_client_cert(self, name, subject, ca="client-ca"):
        d = self.tmp
        key, csr, crt = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "crt"))
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", csr, "-subj", subject], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(self.srv.tls, f"{ca}.crt"),
                        "-CAkey", os.path.join(self.srv.tls, f"{ca}.key"), "-set_serial", "7", "-days", "1",
                        "-out", crt], check=True, capture_output=True)
        return crt, key

    def test_client_certificates(self):
        with open(os.path.join(self.srv.kc, "cert.kubeconfig")) as f:
            (_, cfg), = load_yaml_documents(f.read())
        user = cfg["users"][0]["user"]
        crt, key = os.path.join(self.tmp, "adm.crt"), os.path.join(self.tmp, "adm.key")
        with open(crt, "wb") as f:
            f.write(base64.b64decode(user["client-certificate-data"]))
        with open(key, "wb") as f:
            f.write(base64.b64decode(user["client-key-data"]))
        self.assertEqual(self.req("POST", PODS, pod_obj("p"), token=None, cert=crt, key=key)[0], 201)
        # The service account's identity through a certificate: same RBAC as its token.
        crt2, key2 = self.issue_client_cert("sa", f"/CN={SA_USER}/O=system:serviceaccounts")
        self.assertEqual(self.req("GET", f"{PODS}/p", token=None, cert=crt2, key=key2)[0], 200)
        self.assertStatus(self.req("DELETE", "/api/v1/namespaces/default", token=None, cert=crt2, key=key2),
                          403, "Forbidden")
        # Signed by the serving CA, not the client CA: the handshake is refused.
        crt3, key3 = self.issue_client_cert("rogue", "/CN=admin/O=system:masters", ca="ca")
        with self.assertRaises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            self.req("GET", PODS, token=None, cert=crt3, key=key3)


@unittest.skipUnless(ETCD, "etcd is not installed")
class KubeletTest(ServerTest):
    def test_single_member_runs_serves_proxy_and_stops_on_delete(self):
        self.create(PODS, etcd_pod("m0"))
        pod = self.wait_ready("m0")
        self.assertRegex(pod["status"]["podIP"], r"^127\.")
        self.assertEqual(pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed")
        self.assertTrue(pod["status"]["containerStatuses"][0]["ready"])
        pid = self.pod_pid("m0")
        self.assertTrue(pid_alive(pid))
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        ip = pod["status"]["podIP"].encode()
        self.assertIn(b"--listen-client-urls=http://" + ip + b":2379", argv)
        data_dir = [a for a in argv if a.startswith(b"--data-dir=")][0].decode().split("=", 1)[1]
        self.assertTrue(data_dir.startswith(self.srv.state + "/pods/default/m0-"), data_dir)
        self.assertTrue(os.path.isdir(os.path.join(data_dir, "member")))

        self.assertEqual(self.req("GET", f"{PODS}/m0:2379/proxy/health"), (200, {"health": "true"}))
        status, body = self.req("POST", f"{PODS}/m0:client/proxy/v3/kv/put",
                                {"key": base64.b64encode(b"k").decode(), "value": base64.b64encode(b"v").decode()})
        self.assertEqual(status, 200, body)
        self.assertIn("revision", body["header"])
        status, body = self.req("POST", f"{PODS}/http:m0:2379/proxy/v3/kv/range",
                                {"key": base64.b64encode(b"k").decode()})
        self.assertEqual(base64.b64decode(body["kvs"][0]["value"]), b"v")
        self.assertStatus(self.req("GET", f"{PODS}/m0:2379/proxy/health", token=None), 401, "Unauthorized")
        status, text = self.req("GET", f"{PODS}/m0/log", raw=True)
        self.assertIn(b"ready to serve client requests", text)

        status, body = self.req("DELETE", f"{PODS}/m0?gracePeriodSeconds=10")
        self.assertEqual(status, 200)
        self.assertEqual(body["metadata"]["deletionGracePeriodSeconds"], 10)
        self.assertIn("deletionTimestamp", body["metadata"])
        wait_for(lambda: self.req("GET", f"{PODS}/m0")[0] == 404, 15, "m0 gone")
        self.assertFalse(pid_alive(pid))
        self.assertFalse(os.path.exists(os.path.join(self.srv.state, "pods", "default", "m0.pid")))
        self.assertFalse(os.path.exists(data_dir))

    def test_pvc_data_survives_pod_and_pending_without_claim(self):
        pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "m0"},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
        self.create(PODS, etcd_pod("m0", pvc="m0"))
        p = wait_for(lambda: any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
                                 for c in (self.get_pod("m0") or {}).get("status", {}).get("conditions", []))
                     and self.get_pod("m0"), 10, "m0 unschedulable")
        self.assertEqual(p["status"]["phase"], "Pending")
        self.assertStatus(self.req("GET", f"{PODS}/m0:2379/proxy/health"), 503, "ServiceUnavailable")
        self.create(PVCS, pvc)
        self.wait_ready("m0")
        key = base64.b64encode(b"survives").decode()
        self.assertEqual(self.req("POST", f"{PODS}/m0:2379/proxy/v3/kv/put", {"key": key, "value": key})[0], 200)
        # The claim cannot go while a pod uses it.
        self.assertEqual(self.req("DELETE", f"{PVCS}/m0")[0], 200)
        self.assertIn("deletionTimestamp", self.req("GET", f"{PVCS}/m0")[1]["metadata"])
        self.assertEqual(self.req("DELETE", f"{PODS}/m0?gracePeriodSeconds=5")[0], 200)
        wait_for(lambda: self.req("GET", f"{PVCS}/m0")[0] == 404, 15, "claim released once the pod went")

        self.create(PVCS, pvc)
        self.create(PODS, etcd_pod("m1", pvc="m0"))
        self.wait_ready("m1")
        self.req("DELETE", f"{PODS}/m1?gracePeriodSeconds=5")
        wait_for(lambda: self.req("GET", f"{PODS}/m1")[0] == 404, 15, "m1 gone")
        # A claim's data outlives its pods: a new pod on a surviving claim reads what was written.
        pvc_dirs = glob.glob(os.path.join(self.srv.state, "pvcs", "default", "m0-*"))
        self.assertEqual(len(pvc_dirs), 1)
        self.create(PODS, etcd_pod("m1", pvc="m0"))
        self.wait_ready("m1")
        self.assertEqual(self.req("POST", f"{PODS}/m1:2379/proxy/v3/kv/put", {"key": key, "value": "eA=="})[0], 200)
        self.req("DELETE", f"{PODS}/m1?gracePeriodSeconds=5")
        wait_for(lambda: self.req("GET", f"{PODS}/m1")[0] == 404, 15, "m1 gone again")
        self.create(PODS, etcd_pod("m2", pvc="m0"))
        self.wait_ready("m2")
        status, body = self.req("POST", f"{PODS}/m2:2379/proxy/v3/kv/range", {"key": key})
        self.assertEqual(body["kvs"][0]["value"], "eA==")

    def test_exit_fails_pod_and_image_change_restarts(self):
        p = etcd_pod("bad")
        p["spec"]["containers"][0]["command"].append("--no-such-flag")
        self.create(PODS, p)
        pod = wait_for(lambda: (self.get_pod("bad") or {}).get("status", {}).get("phase") == "Failed"
                       and self.get_pod("bad"), 15, "bad Failed")
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertNotEqual(term["exitCode"], 0)
        self.assertEqual(term["reason"], "Error")
        self.assertEqual(self.req("DELETE", f"{PODS}/bad")[0], 200)
        self.assertEqual(self.req("GET", f"{PODS}/bad")[0], 404)

        self.create(PODS, etcd_pod("m0"))
        self.wait_ready("m0")
        pid = self.pod_pid("m0")
        status, _ = self.req("PATCH", f"{PODS}/m0", {"spec": {"containers": [
            {"name": "etcd", "image": "example.org/etcd:v3.4.23"}]}},
            ctype="application/strategic-merge-patch+json")
        self.assertEqual(status, 200)
        pod = wait_for(lambda: (self.get_pod("m0")["status"].get("containerStatuses") or [{}])[0].get(
            "restartCount") == 1 and self.get_pod("m0"), 20, "m0 restarted for its new image")
        self.assertEqual(pod["status"]["containerStatuses"][0]["image"], "example.org/etcd:v3.4.23")
        self.wait_ready("m0")
        self.assertFalse(pid_alive(pid))
        self.assertNotEqual(self.pod_pid("m0"), pid)

    def make_tls_secret(self, name, prefix):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            f"{d}/ca.key", "-out", f"{d}/ca.crt", "-days", "1", "-subj", "/CN=etcd-ca")
        run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            f"{d}/leaf.key", "-out", f"{d}/leaf.csr", "-subj", "/CN=m0")
        with open(f"{d}/ext", "w") as f:
            f.write("extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,DNS:*.c.default.svc\n")
        run("x509", "-req", "-in", f"{d}/leaf.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key", "-set_serial",
            "2", "-days", "1", "-extfile", f"{d}/ext", "-out", f"{d}/leaf.crt")
        data = {}
        for src, key in (("ca.crt", f"{prefix}-ca.crt"), ("leaf.crt", f"{prefix}.crt"), ("leaf.key", f"{prefix}.key")):
            with open(os.path.join(d, src), "rb") as f:
                data[key] = base64.b64encode(f.read()).decode()
        self.create("/api/v1/namespaces/default/secrets",
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data})

    def test_tls_member_from_mounted_secrets(self):
        p = etcd_pod("m0")
        c = p["spec"]["containers"][0]
        c["command"] = [a.replace("http://", "https://") for a in c["command"]] + [
            "--peer-client-cert-auth=true", "--peer-trusted-ca-file=/etc/etcdtls/member/peer-tls/peer-ca.crt",
            "--peer-cert-file=/etc/etcdtls/member/peer-tls/peer.crt",
            "--peer-key-file=/etc/etcdtls/member/peer-tls/peer.key",
            "--client-cert-auth=true", "--trusted-ca-file=/etc/etcdtls/member/server-tls/server-ca.crt",
            "--cert-file=/etc/etcdtls/member/server-tls/server.crt",
            "--key-file=/etc/etcdtls/member/server-tls/server.key"]
        c["volumeMounts"] += [{"name": "member-peer-tls", "mountPath": "/etc/etcdtls/member/peer-tls"},
                              {"name": "member-server-tls", "mountPath": "/etc/etcdtls/member/server-tls"}]
        p["spec"]["volumes"] += [{"name": "member-peer-tls", "secret": {"secretName": "peer"}},
                                 {"name": "member-server-tls", "secret": {"secretName": "server"}}]
        self.create(PODS, p)
        # Its secrets do not exist yet: the pod waits for them instead of starting without.
        wait_for(lambda: any(c.get("reason") == "ContainerCreating" for c in
                             (self.get_pod("m0") or {}).get("status", {}).get("conditions", [])), 10,
                 "m0 waiting for its secrets")
        self.make_tls_secret("peer", "peer")
        self.make_tls_secret("server", "server")
        self.wait_ready("m0")
        with open(f"/proc/{self.pod_pid('m0')}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        cert = [a for a in argv if a.startswith(b"--cert-file=")][0].decode().split("=", 1)[1]
        with open(cert, "rb") as f, open(os.path.join(self.tmp, "server", "leaf.crt"), "rb") as g:
            self.assertEqual(f.read(), g.read())
        # The proxy presents no client certificate, so etcd's client-cert-auth refuses it, as with a real cluster.
        status, _ = self.req("GET", f"{PODS}/https:m0:2379/proxy/health")
        self.assertEqual(status, 503)

    def test_server_stop_kills_pods(self):
        self.create(PODS, etcd_pod("m0"))
        self.wait_ready("m0")
        pid = self.pod_pid("m0")
        self.srv.proc.send_signal(signal.SIGTERM)
        self.srv.proc.wait(20)
        wait_for(lambda: not pid_alive(pid), 10, "etcd stopped with the server")


def netns_permitted():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                          capture_output=True).returncode == 0


@unittest.skipUnless(ETCD, "etcd is not installed")
@unittest.skipUnless(netns_permitted(), "needs root and unshare --mount for the private /etc/hosts")
class DnsTest(ServerTest):
    hosts = True

    def runner(self):
        return [os.path.join(HERE, "netns-run.sh"), self.srv.hosts]

    def test_member_names_resolve_inside_the_wrapper(self):
        self.create(SVCS, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"},
                           "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                                    "selector": {"app": "etcd", "etcd_cluster": "c"},
                                    "ports": [{"name": "client", "port": 2379}, {"name": "peer", "port": 2380}]}})
        self.create(SVCS, service_obj("c-client", selector={"app": "etcd", "etcd_cluster": "c"}))
        self.create(PODS, etcd_pod("m0", dns=True))
        pod = self.wait_ready("m0", timeout=40)
        ip = pod["status"]["podIP"]
        hosts = read_file(self.srv.hosts)
        self.assertIn(f"{ip}\tm0.c.default.svc m0.c.default.svc.cluster.local", hosts)
        for name in ("m0.c.default.svc", "c-client.default.svc.cluster.local", "c.default.svc"):
            r = subprocess.run([*self.runner(), "getent", "hosts", name], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.split()[0], ip, r.stdout)
        # Outside the wrapper the machine's own /etc/hosts is untouched.
        self.assertNotEqual(subprocess.run(["getent", "hosts", "m0.c.default.svc"], capture_output=True).returncode, 0)
        self.assertEqual(self.req("GET", f"{PODS}/m0:2379/proxy/health"), (200, {"health": "true"}))

        # A second member joins the way upstream grows a cluster: MemberAdd, then a pod with
        # --initial-cluster-state=existing; the peers find each other only through the hosts file.
        peer1 = "http://m1.c.default.svc:2380"
        status, body = self.req("POST", f"{PODS}/m0:2379/proxy/v3/cluster/member/add", {"peerURLs": [peer1]})
        self.assertEqual(status, 200, body)
        p = etcd_pod("m1", dns=True)
        cmd = p["spec"]["containers"][0]["command"]
        cmd[:] = [a for a in cmd if not a.startswith("--initial-cluster-token")]
        cmd[cmd.index("--initial-cluster=m1=" + peer1)] = \
            f"--initial-cluster=m0=http://m0.c.default.svc:2380,m1={peer1}"
        cmd[cmd.index("--initial-cluster-state=new")] = "--initial-cluster-state=existing"
        self.create(PODS, p)
        self.wait_ready("m1", timeout=60)
        status, body = self.req("POST", f"{PODS}/m1:2379/proxy/v3/cluster/member/list", {})
        self.assertEqual(sorted(m["name"] for m in body["members"]), ["m0", "m1"])
        self.req("DELETE", f"{PODS}/m1?gracePeriodSeconds=5")
        self.req("DELETE", f"{PODS}/m0?gracePeriodSeconds=5")
        wait_for(lambda: self.req("GET", f"{PODS}/m0")[0] == 404, 15, "m0 gone")
        wait_for(lambda: "m0.c.default.svc" not in read_file(self.srv.hosts), 5, "m0's name dropped")


if __name__ == "__main__":
    unittest.main()
