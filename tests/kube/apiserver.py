#!/usr/bin/env python3
"""A strict Kubernetes API test server that runs the etcd pods it accepts as local etcd processes.

Standard library only. See README.md beside this file for the command line and what it supports.
"""

import argparse
import base64
import collections
import copy
import datetime
import http.client
import json
import os
import re
import secrets as pysecrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from schema_check import YamlError, load_yaml_documents  # noqa: E402

MAX_BODY = 3 * 1024 * 1024
VERSION_INFO = {"major": "1", "minor": "21", "gitVersion": "v1.21.14", "gitCommit": "",
                "gitTreeState": "clean", "buildDate": "2022-06-15T14:22:29Z",
                "goVersion": "go1.16.15", "compiler": "gc", "platform": "linux/amd64"}
HEALTH_INTERVAL = 0.5


def now_rfc3339(offset=0.0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def log(msg):
    sys.stderr.write(f"{now_rfc3339()} {msg}\n")
    sys.stderr.flush()


# ---- errors ------------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, headers=()):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers

    def body(self):
        b = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason}
        if self.details is not None:
            b["details"] = self.details
        b["code"] = self.code
        return b


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def not_found(res, name):
    return ApiError(404, "NotFound", f'{res.group_resource()} "{name}" not found',
                    res.details(name))


def conflict(res, name):
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {res.group_resource()} "{name}": the object '
                    "has been modified; please apply your changes to the latest version and try again",
                    res.details(name))


class Causes:
    """Field errors collected during validation, rendered like apimachinery's field.ErrorList."""

    def __init__(self):
        self.items = []

    def add(self, reason, field, message):
        self.items.append({"reason": reason, "message": message, "field": field})

    def required(self, field, detail=""):
        self.add("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else ""))

    def invalid(self, field, value, detail):
        self.add("FieldValueInvalid", field, f"Invalid value: {json.dumps(value)}: {detail}")

    def unsupported(self, field, value, supported):
        vals = ", ".join(json.dumps(s) for s in supported)
        self.add("FieldValueNotSupported", field,
                 f"Unsupported value: {json.dumps(value)}: supported values: {vals}")

    def forbidden(self, field, detail):
        self.add("FieldValueForbidden", field, f"Forbidden: {detail}")

    def duplicate(self, field, value):
        self.add("FieldValueDuplicate", field, f"Duplicate value: {json.dumps(value)}")

    def not_found(self, field, value):
        self.add("FieldValueNotFound", field, f"Not found: {json.dumps(value)}")

    def raise_if_any(self, kind, name, res):
        if not self.items:
            return
        parts = [f"{c['field']}: {c['message']}" for c in self.items]
        text = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        details = res.details(name)
        details["kind"] = kind
        details["causes"] = self.items
        raise ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {text}', details)


# ---- resources ---------------------------------------------------------------------------

class Resource:
    def __init__(self, group, plural, kind, namespaced=True, status_sub=False, name_rule="subdomain",
                 top_fields=None, verbs=("create", "delete", "get", "list", "patch", "update", "watch")):
        self.group = group
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.status_sub = status_sub
        self.name_rule = name_rule
        self.top_fields = top_fields
        self.verbs = verbs

    @property
    def api_version(self):
        return f"{self.group}/v1" if self.group else "v1"

    def group_resource(self):
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def details(self, name):
        d = {"name": name} if name else {}
        if self.group:
            d["group"] = self.group
        d["kind"] = self.plural
        return d


_STD_TOP = {"apiVersion", "kind", "metadata", "spec", "status"}
RESOURCES = {r.group + "/" + r.plural: r for r in [
    Resource("", "pods", "Pod", status_sub=True, top_fields=_STD_TOP),
    Resource("", "services", "Service", status_sub=True, name_rule="dns1035", top_fields=_STD_TOP),
    Resource("", "persistentvolumeclaims", "PersistentVolumeClaim", status_sub=True, top_fields=_STD_TOP),
    Resource("", "secrets", "Secret",
             top_fields={"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}),
    Resource("", "events", "Event"),
    Resource("", "endpoints", "Endpoints", top_fields={"apiVersion", "kind", "metadata", "subsets"}),
    Resource("policy", "poddisruptionbudgets", "PodDisruptionBudget", status_sub=True, top_fields=_STD_TOP),
    Resource("", "namespaces", "Namespace", namespaced=False, name_rule="label", verbs=("get", "list")),
]}
POD = RESOURCES["/pods"]
SERVICE = RESOURCES["/services"]
PVC = RESOURCES["/persistentvolumeclaims"]
SECRET = RESOURCES["/secrets"]
PDB = RESOURCES["policy/poddisruptionbudgets"]
NAMESPACE = RESOURCES["/namespaces"]

SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL1123_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QNAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
IANA_SVC_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                 "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                 "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                 "[a-z0-9])?)*')")
MSG_LABEL1123 = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                 "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
                 "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
MSG_LABEL1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
                 "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
                 "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def check_dns(causes, field, value, rule):
    if not isinstance(value, str):
        causes.invalid(field, value, "must be a string")
        return
    if rule == "subdomain":
        if len(value) > 253:
            causes.invalid(field, value, "must be no more than 253 characters")
        if not SUBDOMAIN_RE.match(value):
            causes.invalid(field, value, MSG_SUBDOMAIN)
        return
    if len(value) > 63:
        causes.invalid(field, value, "must be no more than 63 characters")
    if rule == "dns1035":
        if not LABEL1035_RE.match(value):
            causes.invalid(field, value, MSG_LABEL1035)
    elif not LABEL1123_RE.match(value):
        causes.invalid(field, value, MSG_LABEL1123)


def check_qualified_key(causes, field, key):
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not SUBDOMAIN_RE.match(prefix)):
        causes.invalid(field, key, "prefix part " + MSG_SUBDOMAIN)
    if not name or len(name) > 63 or not QNAME_RE.match(name):
        causes.invalid(field, key, "name part must consist of alphanumeric characters, '-', '_' or '.', "
                       "and must start and end with an alphanumeric character (e.g. 'MyName',  or "
                       "'my.name',  or '123-abc', regex used for validation is "
                       "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


# ---- label selectors ---------------------------------------------------------------------

_SEL_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


def parse_label_selector(text):
    """Returns a list of (key, op, values) requirements; raises ApiError on bad syntax."""
    reqs = []
    if not text or not text.strip():
        return reqs
    toks = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _SEL_TOKEN.match(text, pos)
        if not m:
            raise bad_request(f"unable to parse requirement: invalid label selector {text!r}")
        toks.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    i = 0

    def err():
        return bad_request(f"unable to parse requirement: found '{toks[i] if i < len(toks) else ''}', "
                           f"expected: in, notin, =, ==, !=, gt, lt")

    while i < len(toks):
        if toks[i] == "!":
            if i + 1 >= len(toks):
                raise err()
            reqs.append((toks[i + 1], "!", None))
            i += 2
        else:
            key = toks[i]
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append((key, "exists", None))
            elif toks[i] in ("=", "==", "!="):
                op = "!=" if toks[i] == "!=" else "="
                i += 1
                val = ""
                if i < len(toks) and toks[i] != ",":
                    val = toks[i]
                    i += 1
                if not LABEL_VALUE_RE.match(val) or len(val) > 63:
                    raise bad_request(f"invalid label value: {val!r}")
                reqs.append((key, op, [val]))
            elif toks[i] in ("in", "notin"):
                op = toks[i]
                i += 1
                if i >= len(toks) or toks[i] != "(":
                    raise err()
                i += 1
                vals = []
                while i < len(toks) and toks[i] != ")":
                    if toks[i] != ",":
                        vals.append(toks[i])
                    i += 1
                if i >= len(toks):
                    raise err()
                i += 1
                reqs.append((key, op, vals))
            else:
                raise err()
        c = Causes()
        check_qualified_key(c, "labelSelector", reqs[-1][0])
        if c.items:
            raise bad_request(f"unable to parse requirement: {c.items[0]['message']}")
        if i < len(toks):
            if toks[i] != ",":
                raise err()
            i += 1
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
        if op in ("=", "in") and labels.get(key) not in vals:
            return False
        if op in ("!=", "notin") and key in labels and labels[key] in vals:
            return False
    return True


def selector_map_match(selector, labels):
    """A services' spec.selector: every key/value present in labels (an empty selector matches nothing)."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def label_selector_object_match(sel, labels):
    """A metav1.LabelSelector (matchLabels, matchExpressions)."""
    if sel is None:
        return False
    labels = labels or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def parse_field_selector(text, res):
    allowed = {"metadata.name", "metadata.namespace"}
    if res is POD:
        allowed |= {"status.phase", "spec.nodeName", "status.podIP"}
    reqs = []
    if not text:
        return reqs
    for part in text.split(","):
        m = re.match(r"^([^!=]+)(==|=|!=)(.*)$", part.strip())
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field = m.group(1)
        if field not in allowed:
            raise bad_request(f'"{field}" is not a known field selector: only "metadata.name", '
                              '"metadata.namespace"')
        reqs.append((field, m.group(2) != "!=", m.group(3)))
    return reqs


def fields_match(reqs, obj):
    for field, eq, want in reqs:
        cur = obj
        for p in field.split("."):
            cur = cur.get(p) if isinstance(cur, dict) else None
        if (str(cur or "") == want) != eq:
            return False
    return True


# ---- patches -----------------------------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _smp_merge_key(field, path):
    if field == "ports":
        return "containerPort" if any(p in ("containers", "initContainers") for p in path) else "port"
    return {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
            "volumes": "name", "env": "name", "volumeMounts": "mountPath", "imagePullSecrets": "name",
            "conditions": "type", "ownerReferences": "uid", "hostAliases": "ip",
            "topologySpreadConstraints": "topologyKey", "containerStatuses": "name",
            "initContainerStatuses": "name"}.get(field)


_SMP_PRIMITIVE_MERGE = {"finalizers"}


def _strip_directives(v):
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v if not (isinstance(x, dict) and "$patch" in x)]
    return v


def strategic_merge(orig, patch, path=()):
    if not isinstance(patch, dict):
        return _strip_directives(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive}")
    out = dict(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if k == "$patch" or k.startswith("$setElementOrder/") or k == "$retainKeys":
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            if isinstance(out.get(name), list) and isinstance(v, list):
                out[name] = [x for x in out[name] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            if v.get("$patch") == "delete":
                out.pop(k, None)
            else:
                out[k] = strategic_merge(out.get(k), v, path + (k,))
        elif isinstance(v, list):
            out[k] = _smp_list(out.get(k), v, k, path)
        else:
            out[k] = v
    return out


def _smp_list(orig, patch, field, path):
    orig = orig if isinstance(orig, list) else []
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return _strip_directives([x for x in patch if not (isinstance(x, dict) and "$patch" in x)])
    if field in _SMP_PRIMITIVE_MERGE:
        return orig + [x for x in patch if x not in orig]
    key = _smp_merge_key(field, path)
    if not key or not all(isinstance(x, dict) for x in patch):
        return _strip_directives(patch)
    out = [copy.deepcopy(x) for x in orig]
    for item in patch:
        if key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(strategic_merge({}, item, path + (field,)))
        else:
            out[idx] = strategic_merge(out[idx], item, path + (field,))
    return out


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc, ops):
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(doc)

    def fail(msg):
        return ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {msg}")

    def walk(parts):
        cur = doc
        for p in parts[:-1]:
            if isinstance(cur, dict) and p in cur:
                cur = cur[p]
            elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
                cur = cur[int(p)]
            else:
                raise fail(f"doc is missing path: {'/' + '/'.join(parts)}")
        return cur

    def get(parts):
        if not parts:
            return doc
        parent = walk(parts)
        last = parts[-1]
        if isinstance(parent, dict) and last in parent:
            return parent[last]
        if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
            return parent[int(last)]
        raise fail(f"doc is missing path: {'/' + '/'.join(parts)}")

    def remove(parts):
        parent = walk(parts)
        last = parts[-1]
        if isinstance(parent, dict) and last in parent:
            return parent.pop(last)
        if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
            return parent.pop(int(last))
        raise fail(f"doc is missing path: {'/' + '/'.join(parts)}")

    def add(parts, value):
        nonlocal doc
        if not parts:
            doc = value
            return
        parent = walk(parts)
        last = parts[-1]
        if isinstance(parent, dict):
            parent[last] = value
        elif isinstance(parent, list):
            if last == "-":
                parent.append(value)
            elif last.isdigit() and int(last) <= len(parent):
                parent.insert(int(last), value)
            else:
                raise fail(f"index out of range: {last}")
        else:
            raise fail(f"doc is missing path: {'/' + '/'.join(parts)}")

    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request("json patch operations need 'op' and 'path'")
        parts = _pointer(op["path"])
        kind = op["op"]
        if kind == "add":
            add(parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            remove(parts)
        elif kind == "replace":
            get(parts)
            if parts:
                remove(parts)
            add(parts, copy.deepcopy(op.get("value")))
        elif kind == "move":
            add(parts, remove(_pointer(op["from"])))
        elif kind == "copy":
            add(parts, copy.deepcopy(get(_pointer(op["from"]))))
        elif kind == "test":
            if get(parts) != op.get("value"):
                raise fail(f"testing value {op['path']} failed")
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    return doc


# ---- validation and defaults -------------------------------------------------------------

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]


def _is_port(v):
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535


def validate_meta(causes, obj, res, creating):
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        causes.required("metadata.name", "name or generateName is required")
        return
    name = meta.get("name")
    if not name and not (creating and meta.get("generateName")):
        causes.required("metadata.name", "name or generateName is required")
    elif name:
        check_dns(causes, "metadata.name", name, res.name_rule)
    for k, v in (meta.get("labels") or {}).items():
        check_qualified_key(causes, "metadata.labels", k)
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE_RE.match(v):
            causes.invalid(f"metadata.labels", v, "a valid label must be an empty string or consist of "
                           "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                           "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
                           "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
    for k, v in (meta.get("annotations") or {}).items():
        check_qualified_key(causes, "metadata.annotations", k)
        if not isinstance(v, str):
            causes.invalid(f"metadata.annotations", v, "must be a string")


def check_types(obj):
    """Wrong JSON types are decode errors (400) in the real server, before validation."""
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise bad_request("json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta")
    for f in ("labels", "annotations"):
        v = (meta or {}).get(f)
        if v is None:
            continue
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise bad_request(f"json: cannot unmarshal into Go struct field ObjectMeta.metadata.{f} of "
                              "type map[string]string")
    for f in ("spec", "status"):
        if f in obj and obj[f] is not None and not isinstance(obj[f], dict):
            raise bad_request(f"json: cannot unmarshal into Go struct field .{f} of type object")


def validate_container(causes, c, field, volume_names, names):
    if not isinstance(c, dict):
        causes.invalid(field, c, "must be an object")
        return
    name = c.get("name")
    if not name:
        causes.required(f"{field}.name")
    else:
        check_dns(causes, f"{field}.name", name, "label")
        if name in names:
            causes.duplicate(f"{field}.name", name)
        names.add(name)
    if not c.get("image") or not isinstance(c.get("image"), str):
        causes.required(f"{field}.image")
    for key in ("command", "args"):
        v = c.get(key)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            causes.invalid(f"{field}.{key}", v, "must be a list of strings")
    port_names = set()
    for i, p in enumerate(c.get("ports") or []):
        pf = f"{field}.ports[{i}]"
        if not isinstance(p, dict):
            causes.invalid(pf, p, "must be an object")
            continue
        if "containerPort" not in p:
            causes.required(f"{pf}.containerPort")
        elif not _is_port(p["containerPort"]):
            causes.invalid(f"{pf}.containerPort", p["containerPort"], "must be between 1 and 65535, inclusive")
        if "hostPort" in p and p["hostPort"] not in (0, None) and not _is_port(p["hostPort"]):
            causes.invalid(f"{pf}.hostPort", p["hostPort"], "must be between 1 and 65535, inclusive")
        proto = p.setdefault("protocol", "TCP")
        if proto not in PROTOCOLS:
            causes.unsupported(f"{pf}.protocol", proto, PROTOCOLS)
        pn = p.get("name")
        if pn:
            if not isinstance(pn, str) or len(pn) > 15 or not IANA_SVC_RE.match(pn) or "--" in pn \
                    or not re.search("[a-z]", pn):
                causes.invalid(f"{pf}.name", pn, "must be no more than 15 characters and a valid IANA "
                               "service name")
            elif pn in port_names:
                causes.duplicate(f"{pf}.name", pn)
            port_names.add(pn)
    for i, e in enumerate(c.get("env") or []):
        if not isinstance(e, dict) or not e.get("name"):
            causes.required(f"{field}.env[{i}].name")
    mounts = set()
    for i, m in enumerate(c.get("volumeMounts") or []):
        mf = f"{field}.volumeMounts[{i}]"
        if not isinstance(m, dict):
            causes.invalid(mf, m, "must be an object")
            continue
        if not m.get("name"):
            causes.required(f"{mf}.name")
        elif m["name"] not in volume_names:
            causes.not_found(f"{mf}.name", m["name"])
        mp = m.get("mountPath")
        if not mp:
            causes.required(f"{mf}.mountPath")
        elif mp in mounts:
            causes.invalid(f"{mf}.mountPath", mp, "must be unique")
        mounts.add(mp)
    if c.get("imagePullPolicy") not in (None, "Always", "IfNotPresent", "Never"):
        causes.unsupported(f"{field}.imagePullPolicy", c["imagePullPolicy"], ["Always", "IfNotPresent", "Never"])
    if "imagePullPolicy" not in c and isinstance(c.get("image"), str):
        c["imagePullPolicy"] = "Always" if c["image"].endswith(":latest") or ":" not in c["image"] \
            else "IfNotPresent"
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})


VOLUME_SOURCES = ["emptyDir", "persistentVolumeClaim", "secret", "configMap", "hostPath", "projected",
                  "downwardAPI"]


def validate_pod(obj, causes):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.required("spec")
        return
    volume_names = set()
    for i, v in enumerate(spec.get("volumes") or []):
        vf = f"spec.volumes[{i}]"
        if not isinstance(v, dict):
            causes.invalid(vf, v, "must be an object")
            continue
        if not v.get("name"):
            causes.required(f"{vf}.name")
        else:
            check_dns(causes, f"{vf}.name", v["name"], "label")
            if v["name"] in volume_names:
                causes.duplicate(f"{vf}.name", v["name"])
            volume_names.add(v["name"])
        srcs = [s for s in VOLUME_SOURCES if s in v]
        if not srcs:
            causes.required(vf, "must specify a volume type")
        elif len(srcs) > 1:
            causes.forbidden(f"{vf}.{srcs[1]}", "may not specify more than 1 volume type")
        if "persistentVolumeClaim" in v and not (v["persistentVolumeClaim"] or {}).get("claimName"):
            causes.required(f"{vf}.persistentVolumeClaim.claimName")
        if "secret" in v and not (v["secret"] or {}).get("secretName"):
            causes.required(f"{vf}.secret.secretName")
        if "emptyDir" in v and v["emptyDir"] is None:
            v["emptyDir"] = {}
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.required("spec.containers")
        containers = []
    names = set()
    for i, c in enumerate(spec.get("initContainers") or []):
        validate_container(causes, c, f"spec.initContainers[{i}]", volume_names, names)
    for i, c in enumerate(containers):
        validate_container(causes, c, f"spec.containers[{i}]", volume_names, names)
    rp = spec.setdefault("restartPolicy", "Always")
    if rp not in RESTART_POLICIES:
        causes.unsupported("spec.restartPolicy", rp, RESTART_POLICIES)
    for f in ("hostname", "subdomain"):
        if spec.get(f):
            check_dns(causes, f"spec.{f}", spec[f], "label")
    dp = spec.setdefault("dnsPolicy", "ClusterFirst")
    if dp not in ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"):
        causes.unsupported("spec.dnsPolicy", dp, ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"])
    tg = spec.setdefault("terminationGracePeriodSeconds", 30)
    if not isinstance(tg, int) or tg < 0:
        causes.invalid("spec.terminationGracePeriodSeconds", tg, "must be greater than or equal to 0")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})


SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def validate_service(obj, causes):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.required("spec")
        return
    stype = spec.setdefault("type", "ClusterIP")
    if stype not in SERVICE_TYPES:
        causes.unsupported("spec.type", stype, SERVICE_TYPES)
    headless = spec.get("clusterIP") == "None"
    ports = spec.get("ports")
    if ports is not None and not isinstance(ports, list):
        causes.invalid("spec.ports", ports, "must be a list")
        ports = []
    if not ports and not headless and stype != "ExternalName":
        causes.required("spec.ports")
    names = set()
    for i, p in enumerate(ports or []):
        pf = f"spec.ports[{i}]"
        if not isinstance(p, dict):
            causes.invalid(pf, p, "must be an object")
            continue
        if "port" not in p:
            causes.required(f"{pf}.port")
        elif not _is_port(p["port"]):
            causes.invalid(f"{pf}.port", p["port"], "must be between 1 and 65535, inclusive")
        name = p.get("name")
        if not name and len(ports) > 1:
            causes.required(f"{pf}.name")
        elif name:
            check_dns(causes, f"{pf}.name", name, "label")
            if name in names:
                causes.duplicate(f"{pf}.name", name)
            names.add(name)
        proto = p.setdefault("protocol", "TCP")
        if proto not in PROTOCOLS:
            causes.unsupported(f"{pf}.protocol", proto, PROTOCOLS)
        tp = p.setdefault("targetPort", p.get("port"))
        if isinstance(tp, int) and not isinstance(tp, bool):
            if not _is_port(tp):
                causes.invalid(f"{pf}.targetPort", tp, "must be between 1 and 65535, inclusive")
        elif not isinstance(tp, str) or not IANA_SVC_RE.match(tp) or len(tp) > 15:
            causes.invalid(f"{pf}.targetPort", tp, "must contain at least one letter (a-z) and be a valid "
                           "IANA service name")
    sel = spec.get("selector")
    if sel is not None and (not isinstance(sel, dict) or not all(isinstance(v, str) for v in sel.values())):
        causes.invalid("spec.selector", sel, "must be a map of strings")
    spec.setdefault("sessionAffinity", "None")


PVC_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]


def validate_pvc(obj, causes):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.required("spec")
        return
    modes = spec.get("accessModes")
    if not modes:
        causes.required("spec.accessModes", "at least 1 access mode is required")
    else:
        for m in modes:
            if m not in PVC_MODES:
                causes.unsupported("spec.accessModes", m, PVC_MODES)
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None:
        causes.required("spec.resources[storage]")
    elif not re.match(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$", str(storage)):
        causes.invalid("spec.resources[storage]", storage, "quantities must match the regular expression "
                       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    spec.setdefault("volumeMode", "Filesystem")


def _int_or_percent(v):
    if isinstance(v, int) and not isinstance(v, bool):
        return v >= 0
    return isinstance(v, str) and re.match(r"^[0-9]+%$", v) is not None


def validate_pdb(obj, causes):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.required("spec")
        return
    if "minAvailable" in spec and "maxUnavailable" in spec:
        causes.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")
    for f in ("minAvailable", "maxUnavailable"):
        if f in spec and not _int_or_percent(spec[f]):
            causes.invalid(f"spec.{f}", spec[f], "must be a non-negative integer or a percentage")
    sel = spec.get("selector")
    if sel is not None and not isinstance(sel, dict):
        causes.invalid("spec.selector", sel, "must be a label selector")


def validate_secret(obj, causes):
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise bad_request("json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8")
    for k, v in (data or {}).items():
        if not isinstance(v, str):
            raise bad_request(f"json: cannot unmarshal into Go struct field Secret.data of type []uint8")
        try:
            base64.b64decode(v, validate=True)
        except ValueError:
            raise bad_request(f"illegal base64 data in Secret.data[{k!r}]")
    sd = obj.pop("stringData", None)
    if sd:
        data = obj.setdefault("data", {}) if data is not None else obj.setdefault("data", {})
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
    for k in (obj.get("data") or {}):
        if not re.match(r"^[-._a-zA-Z0-9]+$", k):
            causes.invalid(f"data[{k}]", k, "a valid config key must consist of alphanumeric characters, "
                           "'-', '_' or '.'")
    obj.setdefault("type", "Opaque")


VALIDATORS = {"pods": validate_pod, "services": validate_service, "persistentvolumeclaims": validate_pvc,
              "poddisruptionbudgets": validate_pdb, "secrets": validate_secret}


def validate_object(obj, res, creating):
    check_types(obj)
    causes = Causes()
    if res.top_fields is not None:
        for k in obj:
            if k not in res.top_fields:
                causes.forbidden(k, "unknown field")
    validate_meta(causes, obj, res, creating)
    fn = VALIDATORS.get(res.plural)
    if fn:
        fn(obj, causes)
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    causes.raise_if_any(res.kind, meta.get("name") or "", res)


POD_MUTABLE_CONTAINER = {"image"}


def check_pod_update(old, new, causes):
    """Pods: only images (and a few scheduling fields) may change after creation."""
    a = copy.deepcopy(old.get("spec") or {})
    b = copy.deepcopy(new.get("spec") or {})
    for spec in (a, b):
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                c.pop("image", None)
        spec.pop("activeDeadlineSeconds", None)
        spec.pop("tolerations", None)
    if a != b:
        causes.forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`, "
                         "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or "
                         "`spec.tolerations` (only additions to existing tolerations)")


# ---- RBAC --------------------------------------------------------------------------------

class Rbac:
    def __init__(self, docs):
        self.roles = {}     # ("ClusterRole", "", name) / ("Role", ns, name) -> rules
        self.bindings = []  # (namespace or None, roleRef key, subjects)
        for d in docs:
            if not isinstance(d, dict):
                continue
            kind = d.get("kind")
            meta = d.get("metadata") or {}
            if kind in ("ClusterRole", "Role"):
                ns = meta.get("namespace", "default") if kind == "Role" else ""
                self.roles[(kind, ns, meta.get("name"))] = d.get("rules") or []
            elif kind in ("ClusterRoleBinding", "RoleBinding"):
                ns = meta.get("namespace", "default") if kind == "RoleBinding" else None
                ref = d.get("roleRef") or {}
                rk = ref.get("kind")
                key = (rk, ns if rk == "Role" else "", ref.get("name"))
                self.bindings.append((ns, key, d.get("subjects") or []))
            elif kind == "List":
                sub = Rbac(d.get("items") or [])
                self.roles.update(sub.roles)
                self.bindings.extend(sub.bindings)

    @staticmethod
    def _subject_matches(s, user, groups):
        kind = s.get("kind")
        if kind == "ServiceAccount":
            return user == f"system:serviceaccount:{s.get('namespace', 'default')}:{s.get('name')}"
        if kind == "User":
            return user == s.get("name")
        if kind == "Group":
            return s.get("name") in groups
        return False

    @staticmethod
    def _rule_matches(rule, verb, group, resource, sub, name):
        if not any(v in ("*", verb) for v in rule.get("verbs") or []):
            return False
        if not any(g in ("*", group) for g in rule.get("apiGroups") or []):
            return False
        full = f"{resource}/{sub}" if sub else resource
        ok = False
        for r in rule.get("resources") or []:
            if r in ("*", full) or (sub and r in (f"*/{sub}", f"{resource}/*")):
                ok = True
        if not ok:
            return False
        names = rule.get("resourceNames")
        if names:
            return bool(name) and name in names
        return True

    def allowed(self, user, groups, verb, group, resource, sub, ns, name):
        for bns, key, subjects in self.bindings:
            if bns is not None and bns != ns:
                continue
            if not any(self._subject_matches(s, user, groups) for s in subjects):
                continue
            for rule in self.roles.get(key, []):
                if self._rule_matches(rule, verb, group, resource, sub, name):
                    return True
        return False


def forbidden_error(user, verb, res, sub, ns, name):
    what = f'{res.group_resource()} "{name}"' if name else res.group_resource()
    full = f"{res.plural}/{sub}" if sub else res.plural
    scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
    msg = (f'{what} is forbidden: User "{user}" cannot {verb} resource "{full}" in API group '
           f'"{res.group}" {scope}')
    return ApiError(403, "Forbidden", msg, res.details(name or ""))


# ---- TLS material ------------------------------------------------------------------------

def _openssl(*args):
    r = subprocess.run(["openssl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.decode(errors='replace')}")


def make_ca(d, name, cn):
    key, crt = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.crt")
    if os.path.exists(key) and os.path.exists(crt):
        return key, crt
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", crt, "-days", "3650", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return key, crt


def issue_cert(d, name, ca_key, ca_crt, subject, server):
    """Signs a leaf certificate; server certs get 127.0.0.1/localhost SANs, client certs clientAuth."""
    key, crt = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.crt")
    if os.path.exists(key) and os.path.exists(crt):
        return key, crt
    csr = os.path.join(d, f"{name}.csr")
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
        if server:
            f.write("extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n")
        else:
            f.write("extendedKeyUsage=clientAuth\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", subject)
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-set_serial",
             str(int.from_bytes(os.urandom(8), "big")), "-days", "3650", "-extfile", ext, "-out", crt)
    os.unlink(csr)
    os.unlink(ext)
    return key, crt


def cert_subject(user, groups):
    s = f"/CN={user}"
    for g in groups:
        s += f"/O={g}"
    return s


# ---- store -------------------------------------------------------------------------------

class Store:
    def __init__(self, history=20000):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.objs = {}
        self.rv = 1000
        self.events = collections.deque(maxlen=history)
        self.oldest_rv = self.rv
        self.namespaces = {}
        self.hooks = []

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _emit(self, etype, res, obj):
        if len(self.events) == self.events.maxlen:
            self.oldest_rv = int(self.events[0][0])
        self.events.append((int(obj["metadata"]["resourceVersion"]), etype, res, copy.deepcopy(obj)))
        self.cond.notify_all()
        for h in self.hooks:
            h(etype, res, obj)

    def ensure_namespace(self, name):
        with self.lock:
            if name in self.namespaces:
                return
            ns = {"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": name, "uid": str(uuid.uuid4()), "resourceVersion": self.next_rv(),
                               "creationTimestamp": now_rfc3339(),
                               "labels": {"kubernetes.io/metadata.name": name}},
                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            self.namespaces[name] = ns
            self._emit("ADDED", NAMESPACE, ns)

    def get(self, res, ns, name):
        return self.objs.get((res.group + "/" + res.plural, ns, name))

    def items(self, res, ns=None):
        key = res.group + "/" + res.plural
        out = [(k, o) for k, o in self.objs.items() if k[0] == key and (ns is None or k[1] == ns)]
        out.sort(key=lambda x: (x[0][1], x[0][2]))
        return [o for _, o in out]

    def put(self, res, obj, etype):
        meta = obj["metadata"]
        meta["resourceVersion"] = self.next_rv()
        self.objs[(res.group + "/" + res.plural, meta.get("namespace", ""), meta["name"])] = obj
        self._emit(etype, res, obj)

    def remove(self, res, obj):
        meta = obj["metadata"]
        key = (res.group + "/" + res.plural, meta.get("namespace", ""), meta["name"])
        if self.objs.get(key) is not obj:
            return False
        del self.objs[key]
        meta["resourceVersion"] = self.next_rv()
        self._emit("DELETED", res, obj)
        return True


# ---- kubelet -----------------------------------------------------------------------------

class IpAllocator:
    def __init__(self, start):
        parts = [int(x) for x in start.split(".")]
        if len(parts) != 4 or parts[0] != 127:
            raise ValueError("--pod-ip-start must be a 127.x.y.z address")
        self.next = (parts[1] << 16) | (parts[2] << 8) | parts[3]
        self.lock = threading.Lock()

    @staticmethod
    def _free(ip):
        for port in (2379, 2380):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip, port))
            except OSError:
                return False
            finally:
                s.close()
        return True

    def allocate(self):
        with self.lock:
            while self.next < (1 << 24) - 1:
                n = self.next
                self.next += 1
                if n & 0xFF in (0, 255):
                    continue
                ip = f"127.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}"
                if self._free(ip):
                    return ip
        raise RuntimeError("pod IP range exhausted")


def image_version(image):
    """repository:v3.4.23 -> 3.4.23; no tag -> None."""
    if not isinstance(image, str):
        return None
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        last = last.split("@", 1)[0]
    if ":" not in last:
        return None
    tag = last.rsplit(":", 1)[1]
    return tag[1:] if tag.startswith("v") else tag


class PodRunner(threading.Thread):
    """Plays kubelet for one pod: mounts, runs the etcd container, reports status, kills on delete."""

    def __init__(self, api, uid, ns, name):
        super().__init__(daemon=True, name=f"pod-{ns}-{name}")
        self.api = api
        self.uid = uid
        self.ns = ns
        self.name = name
        self.proc = None
        self.ip = None
        self.deleting = threading.Event()
        self.grace = 30.0
        self.restart_wanted = threading.Event()
        self.wake = threading.Event()
        self.finished = False  # set under the store lock once the runner will touch nothing more
        self.pod_dir = os.path.join(api.state_dir, "pods", ns, f"{name}-{uid}")
        self.pid_file = os.path.join(api.state_dir, "pods", ns, f"{name}.pid")
        self.log_file = os.path.join(api.state_dir, "pods", ns, f"{name}.log")

    # status helpers
    def pod(self):
        o = self.api.store.get(POD, self.ns, self.name)
        return o if o is not None and o["metadata"]["uid"] == self.uid else None

    def update_status(self, fn):
        with self.api.store.lock:
            o = self.pod()
            if o is None:
                return
            new = copy.deepcopy(o)
            st = new.setdefault("status", {})
            before = copy.deepcopy(st)
            fn(st, new)
            if st != before:
                self.api.store.put(POD, new, "MODIFIED")

    @staticmethod
    def set_condition(st, ctype, status, reason=None, message=None):
        conds = st.setdefault("conditions", [])
        for c in conds:
            if c["type"] == ctype:
                if c["status"] != status or c.get("reason") != reason:
                    c["status"] = status
                    c["lastTransitionTime"] = now_rfc3339()
                    c.pop("reason", None)
                    c.pop("message", None)
                    if reason:
                        c["reason"] = reason
                    if message:
                        c["message"] = message
                return
        c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        conds.append(c)

    # life cycle
    def run(self):
        try:
            self._run()
        except Exception as e:  # a kubelet bug must show up in the pod, not vanish with the thread
            log(f"kubelet {self.ns}/{self.name}: {e!r}")
            self.update_status(lambda st, o: st.update(phase="Failed", reason="KubeletError", message=str(e)))
        finally:
            self._finish()

    def _wait(self, seconds):
        self.wake.wait(seconds)
        self.wake.clear()

    def _prerequisites(self, pod):
        """PVCs and secrets a pod mounts must exist, like the scheduler and kubelet require."""
        with self.api.store.lock:
            for v in pod["spec"].get("volumes") or []:
                if "persistentVolumeClaim" in v:
                    claim = v["persistentVolumeClaim"]["claimName"]
                    pvc = self.api.store.get(PVC, self.ns, claim)
                    if pvc is None or pvc["metadata"].get("deletionTimestamp"):
                        return ("PodScheduled", "Unschedulable",
                                f'persistentvolumeclaim "{claim}" not found')
                if "secret" in v:
                    sname = v["secret"]["secretName"]
                    if self.api.store.get(SECRET, self.ns, sname) is None and \
                            not v["secret"].get("optional"):
                        return ("ContainersReady", "ContainerCreating",
                                f'MountVolume.SetUp failed for volume "{v["name"]}" : secret "{sname}" not found')
        return None

    def _run(self):
        pod = self.pod()
        if pod is None:
            return
        self.update_status(lambda st, o: (st.update(phase="Pending", qosClass="BestEffort"),
                                          self.set_condition(st, "PodScheduled", "False")))
        while not self.deleting.is_set():
            pod = self.pod()
            if pod is None:
                return
            missing = self._prerequisites(pod)
            if missing is None:
                break
            ctype, reason, msg = missing

            def waiting(st, o, ctype=ctype, reason=reason, msg=msg):
                if ctype == "PodScheduled":
                    self.set_condition(st, "PodScheduled", "False", reason, msg)
                else:
                    self.set_condition(st, "PodScheduled", "True")
                    self.set_condition(st, "ContainersReady", "False", reason, msg)
            self.update_status(waiting)
            self._wait(HEALTH_INTERVAL)
        if self.deleting.is_set():
            return
        self.ip = self.api.ips.allocate()
        start = now_rfc3339()

        def scheduled(st, o):
            self.set_condition(st, "PodScheduled", "True")
            self.set_condition(st, "Initialized", "False", "ContainersNotInitialized")
            self.set_condition(st, "Ready", "False", "ContainersNotReady")
            self.set_condition(st, "ContainersReady", "False", "ContainersNotReady")
            st.update(hostIP="127.0.0.1", podIP=self.ip, podIPs=[{"ip": self.ip}], startTime=start)
            o["spec"]["nodeName"] = "local"
        self.update_status(scheduled)
        self.api.hosts_changed()
        pod = self.pod()
        if pod is None:
            return
        if not self._init_containers(pod):
            return
        restart_count = 0
        while not self.deleting.is_set():
            pod = self.pod()
            if pod is None:
                return
            code = self._run_main(pod, restart_count)
            if self.deleting.is_set() or code is None:
                return
            if self.restart_wanted.is_set():
                self.restart_wanted.clear()
                restart_count += 1
                continue
            rp = pod["spec"].get("restartPolicy", "Always")
            if rp == "Always" or (rp == "OnFailure" and code != 0):
                restart_count += 1
                self._wait(1.0)
                continue
            phase = "Succeeded" if code == 0 else "Failed"
            self.update_status(lambda st, o: st.update(phase=phase))
            self.api.hosts_changed()
            return

    def _mounts(self, pod, container):
        """mountPath -> host directory for one container, materialising secrets and dirs."""
        vols = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        out = []
        for m in container.get("volumeMounts") or []:
            v = vols[m["name"]]
            if "persistentVolumeClaim" in v:
                pvc = self.api.store.get(PVC, self.ns, v["persistentVolumeClaim"]["claimName"])
                host = self.api.pvc_dir(pvc)
            elif "secret" in v:
                host = os.path.join(self.pod_dir, "volumes", v["name"])
                self._materialise_secret(v, host)
            else:
                host = os.path.join(self.pod_dir, "volumes", v["name"])
            os.makedirs(host, exist_ok=True)
            if m.get("subPath"):
                host = os.path.join(host, m["subPath"])
                os.makedirs(host, exist_ok=True)
            out.append((m["mountPath"].rstrip("/") or "/", host))
        out.sort(key=lambda x: -len(x[0]))
        return out

    def _materialise_secret(self, vol, host):
        sec = self.api.store.get(SECRET, self.ns, vol["secret"]["secretName"]) or {}
        data = sec.get("data") or {}
        os.makedirs(host, exist_ok=True)
        items = vol["secret"].get("items")
        pairs = [(i["key"], i.get("path", i["key"]), i.get("mode")) for i in items] if items else \
            [(k, k, None) for k in data]
        default_mode = vol["secret"].get("defaultMode", 0o644)
        for key, path, mode in pairs:
            if key not in data:
                continue
            dest = os.path.join(host, path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(base64.b64decode(data[key]))
            os.chmod(dest, mode if mode is not None else default_mode)

    def _argv(self, pod, container):
        cmd = list(container.get("command") or []) + list(container.get("args") or [])
        if not container.get("command"):
            cmd = ["etcd"] + cmd
        prog = os.path.basename(cmd[0])
        if prog not in ("etcd", "etcdctl"):
            raise ValueError(f"this test kubelet runs only etcd and etcdctl commands, not {cmd[0]!r}")
        binary = self.api.find_binary(prog, image_version(container.get("image")))
        if binary is None:
            raise ValueError(f"no {prog} binary for image {container.get('image')!r}")
        path = self._path_mapper(pod, container)
        out = [binary]
        for a in cmd[1:]:
            a = a.replace("0.0.0.0", self.ip)
            if a.startswith("-") and "=" in a:
                flag, value = a.split("=", 1)
                a = flag + "=" + ",".join(path(v) for v in value.split(","))
            else:
                a = path(a)
            out.append(a)
        return out

    def _path_mapper(self, pod, container):
        """A container path -> the host path behind it, through the container's volume mounts."""
        mounts = self._mounts(pod, container)

        def path(p):
            # Paths outside every mount live in the container's own (per-pod) root filesystem.
            if not p.startswith("/"):
                return p
            for mp, host in mounts:
                if p == mp or p.startswith(mp.rstrip("/") + "/"):
                    return host + p[len(mp):]
            full = os.path.join(self.pod_dir, "rootfs", p.lstrip("/"))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            return full
        return path

    def _env(self, container, path=None):
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOSTNAME": self.name}
        for e in container.get("env") or []:
            if "value" in e:
                v = str(e["value"])
                env[e["name"]] = path(v) if path and v.startswith("/") else v
        return env

    @staticmethod
    def _is_curl_script(c):
        """An init container of a curl image running `sh -c SCRIPT` (e.g. fetching a snapshot)."""
        cmd = list(c.get("command") or []) + list(c.get("args") or [])
        repo = (c.get("image") or "").rsplit(":", 1)[0]
        return repo.rsplit("/", 1)[-1] == "curl" and len(cmd) == 3 and \
            os.path.basename(cmd[0]) == "sh" and cmd[1] == "-c"

    def _container_status(self, c, state, ready, restart_count, started):
        return {"name": c["name"], "state": state, "lastState": {}, "ready": ready,
                "restartCount": restart_count, "image": c.get("image"), "imageID": "",
                "containerID": f"local://{self.proc.pid}" if self.proc else "", "started": started}

    def _init_containers(self, pod):
        statuses = []
        for c in pod["spec"].get("initContainers") or []:
            prog = os.path.basename((c.get("command") or [""])[0])
            if prog in ("etcd", "etcdctl"):
                argv = self._argv(pod, c)
                with open(self.log_file, "ab") as logf:
                    r = subprocess.run(argv, env=self._env(c), cwd=self.pod_dir, stdout=logf,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                code = r.returncode
            elif self._is_curl_script(c):
                # the host's sh and curl stand in for the image; paths reach the script only
                # through env values, which are mapped like etcd's arguments
                path = self._path_mapper(pod, c)
                script = (list(c.get("command") or []) + list(c.get("args") or []))[2]
                with open(self.log_file, "ab") as logf:
                    r = subprocess.run(["/bin/sh", "-c", script], env=self._env(c, path), cwd=self.pod_dir,
                                       stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                code = r.returncode
            else:
                code = 0  # shell DNS waits: resolution is already guaranteed by the hosts file
            term = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                   "startedAt": now_rfc3339(), "finishedAt": now_rfc3339()}}
            statuses.append({"name": c["name"], "state": term, "lastState": {}, "ready": code == 0,
                             "restartCount": 0, "image": c.get("image"), "imageID": "", "containerID": ""})
            if code != 0:
                self.update_status(lambda st, o: st.update(phase="Failed", initContainerStatuses=statuses))
                return False
        self.update_status(lambda st, o: (st.update(initContainerStatuses=statuses) if statuses else None,
                                          self.set_condition(st, "Initialized", "True")))
        return True

    def _run_main(self, pod, restart_count):
        """Runs the pod's etcd container until it exits, is deleted or must restart; returns its exit code."""
        containers = pod["spec"]["containers"]
        c = containers[0]
        os.makedirs(self.pod_dir, exist_ok=True)
        try:
            argv = self._argv(pod, c)
        except ValueError as e:
            msg = str(e)
            self.update_status(lambda st, o: st.update(
                phase="Failed", reason="UnsupportedCommand", message=msg,
                containerStatuses=[self._container_status(c, {"waiting": {"reason": "CreateContainerError",
                                                                           "message": msg}}, False, 0, False)]))
            return None
        if len(containers) > 1:
            msg = "this test kubelet runs one container per pod"
            self.update_status(lambda st, o: st.update(phase="Failed", reason="UnsupportedPod", message=msg))
            return None
        scheme = "https" if any(a.startswith("--cert-file=") for a in argv) else "http"
        tls_files = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv if "=" in a}
        with open(self.log_file, "ab") as logf:
            logf.write(f"--- {now_rfc3339()} {' '.join(argv)}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(argv, env=self._env(c), cwd=self.pod_dir, stdout=logf,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        with open(self.pid_file + ".tmp", "w") as f:
            f.write(f"{self.proc.pid}\n")
        os.replace(self.pid_file + ".tmp", self.pid_file)
        started = now_rfc3339()
        running = {"running": {"startedAt": started}}
        self.update_status(lambda st, o: st.update(
            phase="Running", containerStatuses=[self._container_status(c, running, False, restart_count, True)]))
        ready = None
        deadline = None
        while True:
            code = self.proc.poll()
            if code is not None:
                break
            if self.deleting.is_set() or self.restart_wanted.is_set():
                if deadline is None:
                    grace = self.grace if self.deleting.is_set() else 2.0
                    deadline = time.monotonic() + grace
                    self._signal(signal.SIGKILL if grace <= 0 else signal.SIGTERM)
                elif time.monotonic() >= deadline:
                    self._signal(signal.SIGKILL)
                try:
                    code = self.proc.wait(0.1)
                    break
                except subprocess.TimeoutExpired:
                    continue
            healthy = self._healthy(scheme, tls_files)
            if healthy != ready:
                ready = healthy
                rs = "True" if healthy else "False"

                def upd(st, o, rs=rs, healthy=healthy):
                    st["containerStatuses"] = [self._container_status(c, running, healthy, restart_count, True)]
                    self.set_condition(st, "ContainersReady", rs, None if healthy else "ContainersNotReady")
                    self.set_condition(st, "Ready", rs, None if healthy else "ContainersNotReady")
                self.update_status(upd)
                self.api.hosts_changed()
            self._wait(HEALTH_INTERVAL)
        try:
            os.unlink(self.pid_file)
        except FileNotFoundError:
            pass
        term = {"terminated": {"exitCode": code if code >= 0 else 128 - code,
                               "reason": "Completed" if code == 0 else "Error",
                               "startedAt": started, "finishedAt": now_rfc3339()}}
        exit_code = term["terminated"]["exitCode"]

        def done(st, o):
            st["containerStatuses"] = [self._container_status(c, term, False, restart_count, False)]
            self.set_condition(st, "ContainersReady", "False", "ContainersNotReady")
            self.set_condition(st, "Ready", "False", "ContainersNotReady")
        self.update_status(done)
        self.proc = None
        return exit_code

    def _healthy(self, scheme, files):
        try:
            if scheme == "https":
                ctx = ssl.create_default_context(cafile=files.get("--trusted-ca-file"))
                ctx.check_hostname = False
                if files.get("--cert-file") and files.get("--key-file"):
                    ctx.load_cert_chain(files["--cert-file"], files["--key-file"])
                conn = http.client.HTTPSConnection(self.ip, self._client_port(files), timeout=0.4, context=ctx)
            else:
                conn = http.client.HTTPConnection(self.ip, self._client_port(files), timeout=0.4)
            try:
                conn.request("GET", "/health")
                r = conn.getresponse()
                body = r.read()
            finally:
                conn.close()
            return r.status == 200 and json.loads(body).get("health") == "true"
        except (OSError, ValueError, ssl.SSLError, http.client.HTTPException):
            return False

    def _client_port(self, files):
        urls = files.get("--listen-client-urls", "")
        m = re.search(r":(\d+)(?:,|$)", urls.split(",")[0]) if urls else None
        return int(m.group(1)) if m else 2379

    def _signal(self, sig):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _finish(self):
        """After the process is gone: complete a pending delete and free what the pod held."""
        with self.api.store.lock:
            self.finished = True
            pod = self.pod()
            if self.deleting.is_set() or (pod is not None and pod["metadata"].get("deletionTimestamp")):
                self.api.finish_pod_delete(self.ns, self.name, self.uid)

    def request_delete(self, grace):
        self.grace = min(self.grace, grace) if self.deleting.is_set() else grace
        self.deleting.set()
        self.wake.set()

    def request_restart(self):
        self.restart_wanted.set()
        self.wake.set()

    def stop_now(self):
        self.grace = 2.0
        self.deleting.set()
        self.wake.set()
        proc = self.proc
        if proc is not None:
            self._signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(5)
            try:
                os.unlink(self.pid_file)
            except FileNotFoundError:
                pass


# ---- the API server ----------------------------------------------------------------------

class Api:
    def __init__(self, args):
        self.args = args
        self.state_dir = os.path.abspath(args.state_dir)
        os.makedirs(os.path.join(self.state_dir, "pods"), exist_ok=True)
        os.makedirs(os.path.join(self.state_dir, "pvcs"), exist_ok=True)
        self.store = Store()
        self.ips = IpAllocator(args.pod_ip_start)
        self.runners = {}
        self.cluster_ip_next = 10
        self.tokens = {"admin": ("admin", ["system:masters", "system:authenticated"])}
        for t in args.token or []:
            tok, user, groups = parse_token_arg(t)
            self.tokens[tok] = (user, groups)
        self.rbac = Rbac([])
        if args.rbac:
            with open(args.rbac, encoding="utf-8") as f:
                self.rbac = Rbac([d for _, d in load_yaml_documents(f.read())])
        self.throttle_lock = threading.Lock()
        self.throttle = {"requests": 0}
        self.hosts_lock = threading.Lock()
        self.hosts_dirty = threading.Event()
        self.store.hooks.append(self._on_event)
        for ns in ("default", "kube-system", "kube-public"):
            self.store.ensure_namespace(ns)
        if args.hosts_file:
            self.write_hosts()
            threading.Thread(target=self._hosts_loop, daemon=True, name="hosts").start()

    def set_throttle(self, body):
        """POST /testing/throttle (admin only), a test hook: the next `requests` requests are
        answered with `code` (429 as API Priority and Fairness does, or a 5xx as an overloaded
        server does), with Retry-After when `retryAfterSeconds` is given."""
        try:
            t = json.loads(body or b"{}")
            n, code, after = int(t.get("requests", 0)), int(t.get("code", 429)), t.get("retryAfterSeconds")
        except (ValueError, TypeError, AttributeError) as e:
            raise bad_request(f"throttle: {e}")
        if n < 0 or not (code == 429 or 500 <= code <= 599) or (after is not None and not isinstance(after, int)):
            raise bad_request("throttle: requests >= 0, code 429 or 5xx, retryAfterSeconds an integer")
        with self.throttle_lock:
            self.throttle = {"requests": n, "code": code, "retryAfterSeconds": after}

    def check_throttle(self):
        with self.throttle_lock:
            t = self.throttle
            if t["requests"] <= 0:
                return
            t["requests"] -= 1
        after = t["retryAfterSeconds"]
        headers = [("Retry-After", str(after))] if after is not None else []
        if t["code"] == 429:
            raise ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                           {"retryAfterSeconds": after} if after is not None else None, headers)
        raise ApiError(t["code"], "ServiceUnavailable", "the server is currently unable to handle the request",
                       None, headers)

    # helpers for the kubelet
    def find_binary(self, prog, version):
        d = self.args.etcd_bin_dir
        if d and version:
            for cand in (os.path.join(d, version, prog), os.path.join(d, "v" + version, prog),
                         os.path.join(d, f"{prog}-{version}")):
                if os.access(cand, os.X_OK):
                    return cand
        return shutil.which(prog)

    def pvc_dir(self, pvc):
        m = pvc["metadata"]
        d = os.path.join(self.state_dir, "pvcs", m["namespace"], f"{m['name']}-{m['uid']}")
        os.makedirs(d, exist_ok=True)
        return d

    def hosts_changed(self):
        if self.args.hosts_file:
            self.hosts_dirty.set()

    def _hosts_loop(self):
        while True:
            self.hosts_dirty.wait()
            self.hosts_dirty.clear()
            try:
                self.write_hosts()
            except OSError as e:
                log(f"hosts file: {e}")

    def hosts_content(self):
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        domains = ["svc", f"svc.{self.args.cluster_domain}"]
        with self.store.lock:
            pods = [p for p in self.store.items(POD) if (p.get("status") or {}).get("podIP")
                    and p["status"].get("phase") not in ("Succeeded", "Failed")]
            services = self.store.items(SERVICE)

        def ready(p):
            return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
        for svc in services:
            ns = svc["metadata"]["namespace"]
            name = svc["metadata"]["name"]
            spec = svc.get("spec") or {}
            publish = spec.get("publishNotReadyAddresses") or (svc["metadata"].get("annotations") or {}).get(
                "service.alpha.kubernetes.io/tolerate-unready-endpoints") == "true"
            members = [p for p in pods if p["metadata"]["namespace"] == ns
                       and selector_map_match(spec.get("selector"), p["metadata"].get("labels"))
                       and (publish or ready(p))]
            for p in members:
                ip = p["status"]["podIP"]
                lines.append(ip + "\t" + " ".join(f"{name}.{ns}.{d}" for d in domains))
                if spec.get("clusterIP") == "None" and p["spec"].get("subdomain") == name and p["spec"].get(
                        "hostname"):
                    h = p["spec"]["hostname"]
                    lines.append(ip + "\t" + " ".join(f"{h}.{name}.{ns}.{d}" for d in domains))
        return "\n".join(lines) + "\n"

    def write_hosts(self):
        data = self.hosts_content().encode()
        with self.hosts_lock:
            # In place: the file is bind-mounted over /etc/hosts, so its inode must not change.
            fd = os.open(self.args.hosts_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.pwrite(fd, data, 0)
                os.ftruncate(fd, len(data))
            finally:
                os.close(fd)

    # object life cycle hooks
    def _on_event(self, etype, res, obj):
        """Runs under the store lock for every change, whichever request path made it."""
        if etype != "DELETED":
            return
        m = obj["metadata"]
        if res is PVC:
            # Reclaim policy Delete: the claim's volume goes with it.
            shutil.rmtree(os.path.join(self.state_dir, "pvcs", m["namespace"], f"{m['name']}-{m['uid']}"),
                          ignore_errors=True)
        if res in (POD, SERVICE):
            self.hosts_changed()

    def on_created(self, res, obj):
        if res is POD:
            m = obj["metadata"]
            r = PodRunner(self, m["uid"], m["namespace"], m["name"])
            self.runners[m["uid"]] = r
            r.start()
        elif res is SERVICE:
            self.hosts_changed()

    def on_updated(self, res, old, new):
        if res is POD:
            oi = [c.get("image") for c in old["spec"].get("containers") or []]
            ni = [c.get("image") for c in new["spec"].get("containers") or []]
            r = self.runners.get(new["metadata"]["uid"])
            if oi != ni and r is not None:
                r.request_restart()
            self.hosts_changed()
        elif res is SERVICE:
            self.hosts_changed()
        if res in (POD, PVC):
            self.sweep_pvcs()

    def finish_pod_delete(self, ns, name, uid):
        with self.store.lock:
            o = self.store.get(POD, ns, name)
            if o is not None and o["metadata"]["uid"] == uid and not o["metadata"].get("finalizers"):
                self.store.remove(POD, o)
            self.runners.pop(uid, None)
        shutil.rmtree(os.path.join(self.state_dir, "pods", ns, f"{name}-{uid}"), ignore_errors=True)
        self.hosts_changed()
        self.sweep_pvcs()

    def sweep_pvcs(self):
        """kubernetes.io/pvc-protection: a deleted claim goes once no pod uses it."""
        with self.store.lock:
            for pvc in self.store.items(PVC):
                m = pvc["metadata"]
                if not m.get("deletionTimestamp"):
                    continue
                used = any(v.get("persistentVolumeClaim", {}).get("claimName") == m["name"]
                           for p in self.store.items(POD, m["namespace"])
                           for v in p["spec"].get("volumes") or [])
                fins = m.get("finalizers") or []
                if not used and "kubernetes.io/pvc-protection" in fins:
                    new = copy.deepcopy(pvc)
                    new["metadata"]["finalizers"] = [f for f in fins if f != "kubernetes.io/pvc-protection"]
                    if not new["metadata"]["finalizers"]:
                        del new["metadata"]["finalizers"]
                        self.store.objs[(PVC.group + "/" + PVC.plural, m["namespace"], m["name"])] = new
                        self.store.remove(PVC, new)
                    else:
                        self.store.put(PVC, new, "MODIFIED")

    def stop(self):
        for r in list(self.runners.values()):
            r.stop_now()


def parse_token_arg(t):
    """TOKEN:USER[:GROUPS]; a system:serviceaccount:NS:NAME user is taken whole, GROUPS comma-separated."""
    tok, sep, rest = t.partition(":")
    if not sep or not tok or not rest:
        raise ValueError(f"--token {t!r}: want TOKEN:USER[:GROUP,...]")
    if rest.startswith("system:serviceaccount:"):
        parts = rest.split(":")
        if len(parts) < 4:
            raise ValueError(f"--token {t!r}: service account users are system:serviceaccount:NS:NAME")
        user = ":".join(parts[:4])
        groups = [g for g in ":".join(parts[4:]).split(",") if g]
        groups += ["system:serviceaccounts", f"system:serviceaccounts:{parts[2]}"]
    else:
        user, _, g = rest.partition(":")
        groups = [x for x in g.split(",") if x]
    return tok, user, groups + ["system:authenticated"]


def api_resource_list(group_version, resources):
    out = []
    for r in resources:
        out.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": list(r.verbs)})
        if r.status_sub:
            out.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                        "kind": r.kind, "verbs": ["get", "patch", "update"]})
        if r is POD:
            out.append({"name": "pods/proxy", "singularName": "", "namespaced": True, "kind": "PodProxyOptions",
                        "verbs": ["create", "delete", "get", "patch", "update"]})
            out.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                        "verbs": ["get"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": out}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-test-apiserver/1.21"
    timeout = 300

    def log_message(self, fmt, *a):
        if self.server.api.args.verbose:
            log(f"{self.client_address[0]} " + (fmt % a))

    # plumbing
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                out += self.rfile.read(size)
                self.rfile.readline(1024)
                if len(out) > MAX_BODY:
                    raise ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}")
            return bytes(out)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}")
        return self.rfile.read(n) if n else b""

    def send_json(self, code, obj, extra_headers=()):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def dispatch(self):
        self.user = "-"
        try:
            body = self.read_body()
            self.route(body)
        except ApiError as e:
            self.send_json(e.code, e.body(), e.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:
            log(f"internal error on {self.command} {self.path}: {e!r}")
            import traceback
            traceback.print_exc()
            self.send_json(500, ApiError(500, "InternalError", f"Internal error occurred: {e}").body())

    def authenticate(self):
        api = self.server.api
        auth = self.headers.get("Authorization")
        if auth is not None:
            if not auth.startswith("Bearer "):
                raise ApiError(401, "Unauthorized", "Unauthorized")
            u = api.tokens.get(auth[7:].strip())
            if u is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return u
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        if cert:
            cn, orgs = None, []
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
                    elif k == "organizationName":
                        orgs.append(v)
            if cn:
                return cn, orgs + ["system:authenticated"]
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def authorize(self, verb, res, sub, ns, name):
        user, groups = self.principal
        if user == "admin" or "system:masters" in groups:
            return
        if not self.server.api.rbac.allowed(user, groups, verb, res.group, res.plural, sub, ns, name):
            raise forbidden_error(user, verb, res, sub, ns, name)

    def route(self, body):
        split = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        raw_parts = [p for p in split.path.split("/")]
        parts = [urllib.parse.unquote(p) for p in split.path.strip("/").split("/")] if split.path.strip("/") \
            else []
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return self.send_text(200, "ok")
        if parts == ["version"]:
            return self.send_json(200, VERSION_INFO)
        self.principal = self.authenticate()
        self.user = self.principal[0]
        if parts == ["testing", "throttle"] and self.command == "POST" and self.user == "admin":
            self.server.api.set_throttle(body)
            return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                        "code": 200})
        self.server.api.check_throttle()
        if not parts:
            return self.send_json(200, {"paths": ["/api", "/api/v1", "/apis", "/apis/policy", "/apis/policy/v1",
                                                  "/healthz", "/version"]})
        if parts[0] == "api":
            if len(parts) == 1:
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [
                                                {"clientCIDR": "0.0.0.0/0",
                                                 "serverAddress": f"127.0.0.1:{self.server.server_address[1]}"}]})
            if parts[1] != "v1":
                raise self.not_found_path()
            group, rest, prefix_len = "", parts[2:], 3
        elif parts[0] == "apis":
            if len(parts) == 1:
                return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                    {"name": "policy", "versions": [{"groupVersion": "policy/v1", "version": "v1"}],
                     "preferredVersion": {"groupVersion": "policy/v1", "version": "v1"}}]})
            if parts[1] != "policy":
                raise self.not_found_path()
            if len(parts) == 2:
                return self.send_json(200, {"kind": "APIGroup", "apiVersion": "v1", "name": "policy",
                                            "versions": [{"groupVersion": "policy/v1", "version": "v1"}],
                                            "preferredVersion": {"groupVersion": "policy/v1", "version": "v1"}})
            if parts[2] != "v1":
                raise self.not_found_path()
            group, rest, prefix_len = "policy", parts[3:], 4
        else:
            raise self.not_found_path()
        if not rest:
            if self.command != "GET":
                raise self.method_not_allowed()
            rs = [r for r in RESOURCES.values() if r.group == group]
            return self.send_json(200, api_resource_list(f"{group}/v1" if group else "v1", rs))
        ns = name = sub = None
        subpath = []
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns = rest[1]
            res_name = rest[2]
            if len(rest) >= 4:
                name = rest[3]
            if len(rest) >= 5:
                sub = rest[4]
                subpath = raw_parts[prefix_len + 5:]
        else:
            res_name = rest[0]
            if len(rest) >= 2:
                name = rest[1]
            if len(rest) >= 3:
                sub = rest[2]
            if len(rest) >= 4:
                raise self.not_found_path()
        res = RESOURCES.get(group + "/" + res_name)
        if res is None:
            raise self.not_found_path()
        if res is NAMESPACE:
            return self.handle_namespace(name, sub, query)
        if ns is None and name is not None:
            raise self.not_found_path()
        if ns is not None:
            c = Causes()
            check_dns(c, "metadata.namespace", ns, "label")
            if c.items:
                raise self.not_found_path()
        if sub is not None:
            if res is POD and sub == "proxy":
                return self.handle_proxy(ns, name, subpath, split.query, body)
            if res is POD and sub == "log":
                return self.handle_log(ns, name)
            if sub == "status" and res.status_sub and not subpath:
                return self.handle_item(res, ns, name, query, body, status=True)
            raise self.not_found_path()
        if name is None:
            return self.handle_collection(res, ns, query, body)
        return self.handle_item(res, ns, name, query, body)

    def not_found_path(self):
        return ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def method_not_allowed(self):
        return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource",
                        {})

    def send_text(self, code, text):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def parse_body(self, body):
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype not in ("application/json", "*/*", ""):
            raise ApiError(415, "UnsupportedMediaType",
                           f'the body of the request was in an unknown format - accepted media types include: '
                           'application/json, application/yaml, application/vnd.kubernetes.protobuf')
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise bad_request(f"the object provided is unrecognized: {e}")
        if not isinstance(obj, dict):
            raise bad_request("the object provided is unrecognized (must be of type Object)")
        return obj

    # namespaces
    def handle_namespace(self, name, sub, query):
        api = self.server.api
        verb = {"GET": "get" if name else ("watch" if query.get("watch") in ("1", "true") else "list"),
                "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(self.command, "get")
        self.authorize(verb, NAMESPACE, sub, name, name)
        if self.command != "GET" or sub:
            raise self.method_not_allowed()
        with api.store.lock:
            if name:
                ns = api.store.namespaces.get(name)
                if ns is None:
                    raise not_found(NAMESPACE, name)
                return self.send_json(200, dict(ns))
            items = [{k: v for k, v in n.items() if k not in ("apiVersion", "kind")}
                     for _, n in sorted(api.store.namespaces.items())]
            return self.send_json(200, {"kind": "NamespaceList", "apiVersion": "v1",
                                        "metadata": {"resourceVersion": str(api.store.rv)}, "items": items})

    # collections
    def handle_collection(self, res, ns, query, body):
        if self.command == "GET":
            watch = query.get("watch") in ("1", "true")
            self.authorize("watch" if watch else "list", res, None, ns, None)
            if watch:
                return self.handle_watch(res, ns, query)
            return self.handle_list(res, ns, query)
        if self.command == "POST":
            if ns is None:
                raise self.method_not_allowed()
            self.authorize("create", res, None, ns, None)
            return self.handle_create(res, ns, self.parse_body(body), query)
        if self.command == "DELETE":
            self.authorize("deletecollection", res, None, ns, None)
        raise self.method_not_allowed()

    def _filters(self, res, query):
        return parse_label_selector(query.get("labelSelector", "")), parse_field_selector(
            query.get("fieldSelector", ""), res)

    def handle_list(self, res, ns, query):
        api = self.server.api
        lsel, fsel = self._filters(res, query)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise bad_request(f"invalid limit {query.get('limit')!r}")
        start_after = None
        if query.get("continue"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(query["continue"].encode()))
                start_after = (tok["ns"], tok["name"])
                list_rv = tok["rv"]
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                  "(version meta.k8s.io/v1)")
        with api.store.lock:
            items = [o for o in api.store.items(res, ns)
                     if labels_match(lsel, o["metadata"].get("labels")) and fields_match(fsel, o)]
            if start_after is None:
                list_rv = str(api.store.rv)
        if start_after is not None:
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start_after]
        meta = {"resourceVersion": list_rv}
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                {"v": "meta.k8s.io/v1", "rv": list_rv, "ns": last.get("namespace", ""),
                 "name": last["name"]}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        out = []
        for o in items:
            o = copy.deepcopy(o)
            o.pop("apiVersion", None)
            o.pop("kind", None)
            out.append(o)
        return self.send_json(200, {"kind": res.kind + "List", "apiVersion": res.api_version, "metadata": meta,
                                    "items": out})

    def handle_watch(self, res, ns, query):
        api = self.server.api
        lsel, fsel = self._filters(res, query)
        try:
            timeout = float(query.get("timeoutSeconds") or 1800)
        except ValueError:
            raise bad_request("invalid timeoutSeconds")
        rv = query.get("resourceVersion") or ""
        initial = []
        with api.store.lock:
            if rv in ("", "0"):
                last = api.store.rv
                initial = [("ADDED", copy.deepcopy(o)) for o in api.store.items(res, ns)]
            else:
                try:
                    last = int(rv)
                except ValueError:
                    raise bad_request(f"invalid resourceVersion {rv!r}")
                if last < api.store.oldest_rv:
                    initial = [("ERROR", ApiError(410, "Expired",
                                                  f"too old resource version: {last} ({api.store.oldest_rv})").body())]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.close_connection = True

        def send(etype, obj):
            line = json.dumps({"type": etype, "object": obj}).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        def wanted(o):
            if ns is not None and o["metadata"].get("namespace") != ns:
                return False
            return labels_match(lsel, o["metadata"].get("labels")) and fields_match(fsel, o)

        for etype, o in initial:
            if etype == "ERROR" or wanted(o):
                send(etype, o)
        if initial and initial[0][0] == "ERROR":
            self.wfile.write(b"0\r\n\r\n")
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = []
            with api.store.cond:
                api.store.cond.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                for erv, etype, eres, o in api.store.events:
                    if erv > last and eres is res:
                        batch.append((etype, o))
                if api.store.events:
                    last = max(last, api.store.events[-1][0])
            for etype, o in batch:
                if wanted(o):
                    send(etype, o)
        self.wfile.write(b"0\r\n\r\n")

    def handle_create(self, res, ns, obj, query):
        api = self.server.api
        self.check_identity(res, obj, ns, None)
        obj = copy.deepcopy(obj)
        validate_object(obj, res, creating=True)
        meta = obj["metadata"]
        if not meta.get("name"):
            meta["name"] = meta["generateName"] + "".join(
                pysecrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        dry = query.get("dryRun") == "All"
        with api.store.lock:
            api.store.ensure_namespace(ns)
            if api.store.get(res, ns, meta["name"]) is not None:
                raise ApiError(409, "AlreadyExists", f'{res.group_resource()} "{meta["name"]}" already exists',
                               res.details(meta["name"]))
            obj["apiVersion"] = res.api_version
            obj["kind"] = res.kind
            meta["namespace"] = ns
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta["generation"] = 1
            for f in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink",
                      "managedFields"):
                meta.pop(f, None)
            self.initial_status(res, obj)
            if dry:
                meta["resourceVersion"] = str(api.store.rv)
                return self.send_json(201, obj)
            api.store.put(res, obj, "ADDED")
            out = copy.deepcopy(obj)
            api.on_created(res, obj)
        return self.send_json(201, out)

    def initial_status(self, res, obj):
        api = self.server.api
        if res is POD:
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif res is SERVICE:
            spec = obj["spec"]
            if spec.get("clusterIP") != "None":
                n = api.cluster_ip_next
                api.cluster_ip_next += 1
                spec["clusterIP"] = f"10.96.{(n >> 8) & 0xFF}.{n & 0xFF}"
            spec["clusterIPs"] = [spec["clusterIP"]]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            obj["status"] = {"loadBalancer": {}}
        elif res is PVC:
            m = obj["metadata"]
            m["finalizers"] = sorted(set((m.get("finalizers") or []) + ["kubernetes.io/pvc-protection"]))
            obj["spec"]["volumeName"] = f"pvc-{m['uid']}"
            obj["spec"].setdefault("storageClassName", "standard")
            obj["status"] = {"phase": "Bound", "accessModes": obj["spec"]["accessModes"],
                             "capacity": {"storage": obj["spec"]["resources"]["requests"]["storage"]}}
        elif res is PDB:
            obj["status"] = self.pdb_status(obj)

    def pdb_status(self, pdb):
        api = self.server.api
        sel = pdb["spec"].get("selector")
        pods = [p for p in api.store.items(POD, pdb["metadata"]["namespace"])
                if label_selector_object_match(sel, p["metadata"].get("labels"))
                and not p["metadata"].get("deletionTimestamp")]
        healthy = sum(1 for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                             for c in (p.get("status") or {}).get("conditions") or []))
        expected = len(pods)

        def resolve(v):
            if isinstance(v, str) and v.endswith("%"):
                return -(-int(v[:-1]) * expected // 100)
            return int(v)
        spec = pdb["spec"]
        if "minAvailable" in spec:
            desired = resolve(spec["minAvailable"])
        elif "maxUnavailable" in spec:
            desired = max(0, expected - resolve(spec["maxUnavailable"]))
        else:
            desired = expected
        return {"observedGeneration": pdb["metadata"].get("generation", 1), "currentHealthy": healthy,
                "desiredHealthy": desired, "expectedPods": expected,
                "disruptionsAllowed": max(0, healthy - desired)}

    def check_identity(self, res, obj, ns, name):
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if av is not None and av != res.api_version:
            raise bad_request(f"the API version in the data ({av}) does not match the expected API version "
                              f"({res.api_version})")
        if kind is not None and kind != res.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({res.kind})")
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            if meta.get("namespace") not in (None, "", ns):
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")
            if name is not None and meta.get("name") not in (None, "", name):
                raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the "
                                  f"URL ({name})")

    # items
    def handle_item(self, res, ns, name, query, body, status=False):
        sub = "status" if status else None
        verb = {"GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(self.command)
        if verb is None:
            if self.command == "POST":
                self.authorize("create", res, sub, ns, name)
            raise self.method_not_allowed()
        self.authorize(verb, res, sub, ns, name)
        api = self.server.api
        if verb == "get":
            with api.store.lock:
                o = api.store.get(res, ns, name)
                if o is None:
                    raise not_found(res, name)
                o = copy.deepcopy(o)
                if res is PDB:
                    o["status"] = self.pdb_status(o)
            return self.send_json(200, o)
        if verb == "delete":
            if status:
                raise self.method_not_allowed()
            return self.handle_delete(res, ns, name, query, body)
        with api.store.lock:
            old = api.store.get(res, ns, name)
            if old is None:
                raise not_found(res, name)
            if verb == "update":
                new = self.parse_body(body)
                want_rv = (new.get("metadata") or {}).get("resourceVersion") if isinstance(
                    new.get("metadata"), dict) else None
            else:
                new, want_rv = self.apply_patch(old, body)
            self.check_identity(res, new, ns, name)
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            new = copy.deepcopy(new)
            if not isinstance(new.get("metadata"), dict):
                new["metadata"] = {}
            new["metadata"]["name"] = name
            validate_object(new, res, creating=False)
            new = self.merge_update(res, old, new, status)
            causes = Causes()
            if res is POD and not status:
                check_pod_update(old, new, causes)
            if res is SERVICE and (old["spec"].get("clusterIP") != new["spec"].get("clusterIP")):
                causes.invalid("spec.clusterIP", new["spec"].get("clusterIP"), "field is immutable")
            if res is PVC and not status:
                a, b = copy.deepcopy(old["spec"]), copy.deepcopy(new["spec"])
                a.pop("resources", None)
                b.pop("resources", None)
                if a != b:
                    causes.forbidden("spec", "spec is immutable after creation except resources.requests for "
                                     "bound claims")
            causes.raise_if_any(res.kind, name, res)
            if query.get("dryRun") == "All":
                return self.send_json(200, new)
            if new == old:
                return self.send_json(200, copy.deepcopy(old))
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") and \
                    not (res is POD and new["metadata"]["uid"] in api.runners):
                api.store.objs[(res.group + "/" + res.plural, ns, name)] = new
                api.store.remove(res, new)
                return self.send_json(200, copy.deepcopy(new))
            api.store.put(res, new, "MODIFIED")
            out = copy.deepcopy(new)
            api.on_updated(res, old, new)
            if res is POD and new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                r = api.runners.get(new["metadata"]["uid"])
                if r is not None and r.finished:
                    api.finish_pod_delete(ns, name, new["metadata"]["uid"])
        return self.send_json(200, out)

    def merge_update(self, res, old, new, status):
        """Keeps what clients cannot change: system metadata, and status (or spec, for /status)."""
        if status:
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status") or {}
            return merged
        new["apiVersion"] = res.api_version
        new["kind"] = res.kind
        m, om = new["metadata"], old["metadata"]
        for f in ("uid", "creationTimestamp", "namespace", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "resourceVersion"):
            if f in om:
                m[f] = om[f]
            else:
                m.pop(f, None)
        if res.status_sub:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        if res is SERVICE:
            new["spec"].setdefault("clusterIP", old["spec"].get("clusterIP"))
            new["spec"].setdefault("clusterIPs", old["spec"].get("clusterIPs"))
            new["spec"].setdefault("ipFamilies", old["spec"].get("ipFamilies"))
            new["spec"].setdefault("ipFamilyPolicy", old["spec"].get("ipFamilyPolicy"))
        if res is POD:
            new["spec"].setdefault("nodeName", old["spec"].get("nodeName"))
            if new["spec"].get("nodeName") is None:
                new["spec"].pop("nodeName", None)
        if res is PVC:
            for f in ("volumeName", "storageClassName"):
                if f in old["spec"]:
                    new["spec"].setdefault(f, old["spec"][f])
            if "kubernetes.io/pvc-protection" in (om.get("finalizers") or []) and not om.get("deletionTimestamp"):
                fins = m.get("finalizers") or []
                if "kubernetes.io/pvc-protection" not in fins:
                    m["finalizers"] = fins + ["kubernetes.io/pvc-protection"]
        for body_key in ("spec", "data"):
            if old.get(body_key) != new.get(body_key):
                m["generation"] = om.get("generation", 1) + 1
        return new

    def apply_patch(self, old, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                         "application/json-patch+json"):
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types include: "
                           "application/json-patch+json, application/merge-patch+json, "
                           "application/strategic-merge-patch+json")
        try:
            patch = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise bad_request(f"error decoding patch: {e}")
        if ctype == "application/merge-patch+json":
            if not isinstance(patch, dict):
                raise bad_request("merge patch must be a JSON object")
            new = merge_patch(old, patch)
        elif ctype == "application/strategic-merge-patch+json":
            if not isinstance(patch, dict):
                raise bad_request("strategic merge patch must be a JSON object")
            new = strategic_merge(old, patch)
        else:
            new = json_patch(old, patch)
        if not isinstance(new, dict):
            raise bad_request("the patch produced something that is not an object")
        want_rv = None
        if isinstance(patch, dict) and isinstance(patch.get("metadata"), dict):
            want_rv = patch["metadata"].get("resourceVersion")
        return new, want_rv

    def handle_delete(self, res, ns, name, query, body):
        api = self.server.api
        opts = {}
        if body.strip():
            try:
                opts = json.loads(body)
            except ValueError as e:
                raise bad_request(f"error decoding DeleteOptions: {e}")
            if not isinstance(opts, dict):
                raise bad_request("DeleteOptions must be an object")
        grace = query.get("gracePeriodSeconds", opts.get("gracePeriodSeconds"))
        if grace is not None:
            try:
                grace = int(grace)
            except (TypeError, ValueError):
                raise bad_request(f"invalid gracePeriodSeconds {grace!r}")
        prop = query.get("propagationPolicy", opts.get("propagationPolicy"))
        if prop not in (None, "Orphan", "Background", "Foreground"):
            raise ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                           f'Unsupported value: "{prop}": supported values: "Foreground", "Background", "Orphan", '
                           'or nil')
        pre = opts.get("preconditions") or {}
        with api.store.lock:
            o = api.store.get(res, ns, name)
            if o is None:
                raise not_found(res, name)
            m = o["metadata"]
            if pre.get("uid") and pre["uid"] != m["uid"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.group_resource()} "{name}": '
                               f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: '
                               f'{m["uid"]}', res.details(name))
            if pre.get("resourceVersion") and pre["resourceVersion"] != m["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.group_resource()} "{name}": '
                               f'Precondition failed: ResourceVersion in precondition: {pre["resourceVersion"]}, '
                               f'ResourceVersion in object meta: {m["resourceVersion"]}', res.details(name))
            if query.get("dryRun") == "All":
                return self.send_json(200, copy.deepcopy(o))
            runner = api.runners.get(m["uid"]) if res is POD else None
            graceful = res is POD and runner is not None and not runner.finished
            if graceful:
                if grace is None:
                    grace = o["spec"].get("terminationGracePeriodSeconds", 30)
                new = copy.deepcopy(o)
                if not m.get("deletionTimestamp") or grace < (m.get("deletionGracePeriodSeconds") or 0):
                    new["metadata"]["deletionTimestamp"] = now_rfc3339(grace)
                    new["metadata"]["deletionGracePeriodSeconds"] = grace
                    api.store.put(res, new, "MODIFIED")
                runner.request_delete(float(grace))
                out = copy.deepcopy(new)
            elif m.get("finalizers"):
                new = copy.deepcopy(o)
                if not m.get("deletionTimestamp"):
                    new["metadata"]["deletionTimestamp"] = now_rfc3339()
                    new["metadata"]["deletionGracePeriodSeconds"] = 0
                    api.store.put(res, new, "MODIFIED")
                out = copy.deepcopy(new)
            else:
                api.store.remove(res, o)
                out = copy.deepcopy(o)
                if res is POD:
                    api.finish_pod_delete(ns, name, m["uid"])
            if res is PVC:
                api.sweep_pvcs()
            if res is SERVICE:
                api.hosts_changed()
        if res in (POD, SERVICE) or out["metadata"].get("deletionTimestamp"):
            return self.send_json(200, out)
        return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                    "details": {"name": name, "group": res.group, "kind": res.plural,
                                                "uid": out["metadata"]["uid"]}})

    # pods/log and pods/proxy
    def handle_log(self, ns, name):
        api = self.server.api
        self.authorize("get", POD, "log", ns, name)
        with api.store.lock:
            if api.store.get(POD, ns, name) is None:
                raise not_found(POD, name)
        path = os.path.join(api.state_dir, "pods", ns, f"{name}.log")
        try:
            with open(path, "rb") as f:
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            text = ""
        return self.send_text(200, text)

    def handle_proxy(self, ns, target, subpath, query, body):
        api = self.server.api
        verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete", "OPTIONS": "get"}[self.command]
        scheme, pname, port = "http", target, ""
        bits = target.split(":")
        if len(bits) == 3:
            scheme, pname, port = bits
        elif len(bits) == 2:
            pname, port = bits
        elif len(bits) > 3:
            raise bad_request(f"invalid pod proxy target {target!r}")
        self.authorize(verb, POD, "proxy", ns, pname)
        if scheme not in ("http", "https"):
            raise bad_request(f"invalid scheme {scheme!r}")
        with api.store.lock:
            pod = api.store.get(POD, ns, pname)
            if pod is None:
                raise not_found(POD, pname)
            st = pod.get("status") or {}
            ip = st.get("podIP")
            phase = st.get("phase")
            cports = [p for c in pod["spec"]["containers"] for p in c.get("ports") or []]
        if not port:
            port_num = 80
        elif port.isdigit():
            port_num = int(port)
        else:
            named = [p["containerPort"] for p in cports if p.get("name") == port]
            if not named:
                raise ApiError(503, "ServiceUnavailable", f"no endpoints available for pod {pname!r} port {port!r}")
            port_num = named[0]
        if not ip or phase != "Running":
            raise ApiError(503, "ServiceUnavailable", f'pod "{pname}" is not running')
        path = "/" + "/".join(subpath)
        if query:
            path += "?" + query
        headers = {}
        for h in ("Content-Type", "Accept", "Accept-Encoding"):
            if self.headers.get(h):
                headers[h] = self.headers[h]
        try:
            if scheme == "https":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                conn = http.client.HTTPSConnection(ip, port_num, timeout=30, context=ctx)
            else:
                conn = http.client.HTTPConnection(ip, port_num, timeout=30)
            conn.request(self.command, path, body=body if self.command not in ("GET", "HEAD") or body else None,
                         headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            raise ApiError(503, "ServiceUnavailable",
                           f"error trying to reach service: dial tcp {ip}:{port_num}: {e}")
        try:
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() in ("content-type", "content-encoding", "grpc-metadata-content-type"):
                    self.send_header(k, v)
            length = resp.getheader("Content-Length")
            if self.command == "HEAD":
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                return
            if length is not None:
                self.send_header("Content-Length", length)
                self.end_headers()
                remaining = int(length)
                while remaining > 0:
                    chunk = resp.read(min(65536, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, http.client.HTTPException) as e:
            # The status line is out already: all that is left is to cut the stream short.
            log(f"proxy {ns}/{pname}:{port_num}{path}: {e!r}")
            self.close_connection = True
        finally:
            conn.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, api, ctx):
        self.api = api
        self.ssl_ctx = ctx
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's own thread, so one slow client cannot block accept().
        request.settimeout(30)
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            conn.settimeout(Handler.timeout)
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            conn.close()


# ---- kubeconfigs and main ------------------------------------------------------------------

def b64file(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def write_kubeconfig(path, server, ca_path, user_name, user_fields):
    lines = ["apiVersion: v1", "kind: Config", "clusters:", "- name: test", "  cluster:",
             f"    server: {server}", f"    certificate-authority-data: {b64file(ca_path)}", "users:",
             f"- name: {json.dumps(user_name)}", "  user:"]
    lines += [f"    {k}: {json.dumps(v)}" for k, v in user_fields.items()]
    lines += ["contexts:", "- name: test", "  context:", "    cluster: test", f"    user: {json.dumps(user_name)}",
              "    namespace: default", "current-context: test"]
    atomic_write(path, "\n".join(lines) + "\n")


def atomic_write(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--state-dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-dir", required=True)
    p.add_argument("--token", action="append", help="TOKEN:USER[:GROUP,...] (repeatable)")
    p.add_argument("--rbac", help="YAML with Roles/ClusterRoles and their bindings")
    p.add_argument("--etcd-bin-dir", help="DIR/<version>/etcd per image version; PATH etcd otherwise")
    p.add_argument("--ready-file", help="written with the server URL once listening")
    p.add_argument("--kubeconfig-out", help="directory for admin/cert/per-token kubeconfigs")
    p.add_argument("--hosts-file", help="hosts file kept in sync with pod and service DNS names")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--pod-ip-start", default="127.0.0.10", help="first loopback address handed to pods")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = p.parse_args(argv)
    for t in args.token or []:
        try:
            parse_token_arg(t)
        except ValueError as e:
            p.error(str(e))

    os.makedirs(args.tls_dir, exist_ok=True)
    ca_key, ca_crt = make_ca(args.tls_dir, "ca", "kube-test-ca")
    srv_key, srv_crt = issue_cert(args.tls_dir, "server", ca_key, ca_crt, "/CN=kube-apiserver", True)
    cca_key, cca_crt = make_ca(args.tls_dir, "client-ca", "kube-test-client-ca")
    adm_key, adm_crt = issue_cert(args.tls_dir, "client-admin", cca_key, cca_crt,
                                  cert_subject("cert-admin", ["system:masters"]), False)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(srv_crt, srv_key)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cca_crt)

    try:
        api = Api(args)
    except (OSError, YamlError, ValueError) as e:
        print(f"apiserver: {e}", file=sys.stderr)
        return 2
    server = Server(("127.0.0.1", args.port), api, ctx)
    url = f"https://127.0.0.1:{server.server_address[1]}"

    if args.kubeconfig_out:
        os.makedirs(args.kubeconfig_out, exist_ok=True)
        write_kubeconfig(os.path.join(args.kubeconfig_out, "admin.kubeconfig"), url, ca_crt, "admin",
                         {"token": "admin"})
        write_kubeconfig(os.path.join(args.kubeconfig_out, "cert.kubeconfig"), url, ca_crt, "cert-admin",
                         {"client-certificate-data": b64file(adm_crt), "client-key-data": b64file(adm_key)})
        for t in args.token or []:
            tok, user, _ = parse_token_arg(t)
            fname = re.sub(r"[^A-Za-z0-9_.-]", "-", user) + ".kubeconfig"
            write_kubeconfig(os.path.join(args.kubeconfig_out, fname), url, ca_crt, user, {"token": tok})

    def on_signal(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.ready_file:
        atomic_write(args.ready_file, url + "\n")
    log(f"apiserver listening on {url}, state in {api.state_dir}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        api.stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
