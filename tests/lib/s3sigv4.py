#!/usr/bin/env python3
"""A reverse proxy for tests that checks AWS Signature Version 4 on every request, as S3 does, before passing it to s3rver (which checks only the access key), and injects the faults a rules file asks for."""
import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import select
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = datetime.timedelta(minutes=15)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
HEX64 = re.compile(r"^[0-9a-f]{64}$")
AMZ_DATE = "%Y%m%dT%H%M%SZ"
IO_CHUNK = 1 << 16
# a request body above this spills to a temporary file while it is hashed
SPOOL_IN_MEMORY = 1 << 20
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}
# headers whose values the request log leaves out
SECRET_HEADERS = {"x-amz-security-token"}
# what AWS answers a client that should back off
SLOWDOWN = (503, "SlowDown", "Please reduce your request rate.")


def uri_encode(s, keep_slash):
    """RFC 3986 percent-encoding as SigV4 wants it: unreserved characters as is, everything else %XX upper-case."""
    return urllib.parse.quote(s, safe="/" if keep_slash else "")


def canonical_uri(raw_path):
    # S3 encodes each segment once: decode what the client sent and encode it the canonical way
    return uri_encode(urllib.parse.unquote(raw_path), keep_slash=True) or "/"


def canonical_query(raw_query):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote(name), False), uri_encode(urllib.parse.unquote(value), False)))
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def canonical_header_value(values):
    return ",".join(" ".join(v.split()) for v in values)


def canonical_request(method, raw_path, raw_query, headers, signed_headers, payload_hash):
    """headers: list of (name, value) as received; signed_headers: the lower-case names the client listed."""
    by_name = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(value)
    lines = "".join(f"{h}:{canonical_header_value(by_name.get(h, []))}\n" for h in signed_headers)
    return "\n".join([method, canonical_uri(raw_path), canonical_query(raw_query), lines, ";".join(signed_headers), payload_hash])


def signing_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def string_to_sign(amz_date, scope, creq):
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])


def signature(secret, amz_date, region, service, creq):
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sts = string_to_sign(amz_date, scope, creq)
    return hmac.new(signing_key(secret, amz_date[:8], region, service), sts.encode(), hashlib.sha256).hexdigest()


class Refusal(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_authorization(value):
    if not value.startswith(ALGORITHM + " "):
        raise Refusal(400, "InvalidArgument", "Unsupported Authorization Type")
    fields = {}
    for item in value[len(ALGORITHM) + 1:].split(","):
        k, eq, v = item.strip().partition("=")
        if not eq:
            raise Refusal(400, "AuthorizationHeaderMalformed", f"the authorization header is malformed: '{item.strip()}'")
        fields[k] = v
    for k in ("Credential", "SignedHeaders", "Signature"):
        if k not in fields:
            raise Refusal(400, "AuthorizationHeaderMalformed", f"the authorization header is malformed: no {k}")
    cred = fields["Credential"].split("/")
    if len(cred) != 5:
        raise Refusal(400, "AuthorizationHeaderMalformed", f"the authorization header is malformed; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"")
    return cred, fields["SignedHeaders"].split(";"), fields["Signature"]


def verify(method, raw_path, raw_query, headers, keys, region, service="s3", now=None):
    """Checks a request's SigV4 header authentication against keys {id: secret}.
    Returns (access key id, declared payload hash); raises Refusal as S3 would."""
    h = {}
    for name, value in headers:
        h.setdefault(name.lower(), []).append(value)
    auth = h.get("authorization", [None])[0]
    if auth is None:
        if "X-Amz-Algorithm" in urllib.parse.parse_qs(raw_query):
            raise Refusal(403, "AccessDenied", "query string authentication is not checked by this verifier")
        raise Refusal(403, "AccessDenied", "Access Denied")
    cred, signed, sig = parse_authorization(auth)
    akid, date, scope_region, scope_service, term = cred
    if akid not in keys:
        raise Refusal(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    amz_date = h.get("x-amz-date", [None])[0]
    if amz_date is None:
        raise Refusal(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    try:
        when = datetime.datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Refusal(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header") from None
    if date != amz_date[:8]:
        raise Refusal(400, "AuthorizationHeaderMalformed", f"the authorization header is malformed; Invalid credential date \"{date}\". This date is not the same as X-Amz-Date: \"{amz_date[:8]}\".")
    if scope_region != region:
        raise Refusal(400, "AuthorizationHeaderMalformed", f"the authorization header is malformed; the region '{scope_region}' is wrong; expecting '{region}'")
    if scope_service != service or term != "aws4_request":
        raise Refusal(400, "AuthorizationHeaderMalformed", f"the authorization header is malformed; incorrect service \"{scope_service}\" or terminal \"{term}\"; expecting \"{service}\" and \"aws4_request\"")
    if now is not None and abs(now - when) > MAX_SKEW:
        raise Refusal(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
    if signed != sorted(signed) or any(s != s.lower() or not s for s in signed) or "host" not in signed:
        raise Refusal(400, "AuthorizationHeaderMalformed", "the authorization header is malformed; SignedHeaders must be lower-case, sorted and include host")
    unsigned = sorted(n for n in h if n.startswith("x-amz-") and n not in signed)
    if unsigned:
        raise Refusal(403, "AccessDenied", f"There were headers present in the request which were not signed: {', '.join(unsigned)}")
    payload = h.get("x-amz-content-sha256", [None])[0]
    if payload is None:
        raise Refusal(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    if payload != "UNSIGNED-PAYLOAD" and not HEX64.match(payload):
        raise Refusal(400, "InvalidArgument", f"x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a hex sha256, not '{payload}'")
    # a header signed but not sent is signed as empty by some clients (libcurl before 8.3 does so
    # for the "Expect:" entry that removes a header): strict servers refuse such requests
    absent = [n for n in signed if n not in h]
    if absent:
        raise Refusal(403, "AccessDenied", f"There were headers signed which were not present in the request: {', '.join(absent)}")
    creq = canonical_request(method, raw_path, raw_query, headers, signed, payload)
    want = signature(keys[akid], amz_date, region, service, creq)
    if not hmac.compare_digest(want, sig):
        raise Refusal(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
    return akid, payload


class Faults:
    """Rules from a JSON file (a list, re-read when it changes, which starts their counts again),
    each {"action": "hold" | "trickle" | "error" | "reset", "method": M, "path": REGEX,
    "query": REGEX (searched), "skip": N, "times": N, "each": BOOL, "seconds": S, "status": N,
    "code": C, "message": M}: of the requests that match it and that no earlier rule took, the
    rule lets the first skip pass, then takes the next times (all when absent), counted per
    method, path and query when each is true (so per part of a multipart upload).
    hold: wait seconds (default 3600) before passing the request on, or drop it when the client
    hangs up first; trickle: pass it on, then send the answer a byte every seconds (default 1);
    error: answer status (default 503) with S3's error document for code and message (default
    SlowDown); reset: close the connection with a TCP reset instead of answering."""

    def __init__(self, path):
        self.path, self.stamp, self.rules, self.counts, self.lock = path, None, [], {}, threading.Lock()

    def take(self, method, path, query):
        """The rule that takes this request, or None."""
        with self.lock:
            self.reload()
            for i, rule in enumerate(self.rules):
                if rule.get("method", method) != method or not re.search(rule.get("path", ""), path) or \
                        not re.search(rule.get("query", ""), query or ""):
                    continue
                key = (i, method, path, query) if rule.get("each") else (i,)
                n = self.counts[key] = self.counts.get(key, 0) + 1
                skip, times = rule.get("skip", 0), rule.get("times")
                if n > skip and (times is None or n <= skip + times):
                    return rule
            return None

    def reload(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.stamp, self.rules, self.counts = None, [], {}
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self.stamp:
            with open(self.path, encoding="utf-8") as f:
                self.rules = json.load(f)
            self.stamp, self.counts = stamp, {}


def error_xml(code, message, resource):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>'
            f'<Resource>{escape(resource)}</Resource><RequestId>s3sigv4</RequestId></Error>').encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "s3sigv4"

    def log_message(self, fmt, *args):
        pass

    def record(self, path, query, verdict):
        line = f"{self.command} {path} {query or '-'} {verdict}\n"
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append("(secret)" if name.lower() in SECRET_HEADERS else value)
        auth = self.headers.get("Authorization", "")
        signed = re.search(r"SignedHeaders=([^,\s]*)", auth)
        doc = {"method": self.command, "path": path, "query": query or "", "verdict": verdict, "headers": headers,
               "signed": signed.group(1).split(";") if signed else [], "start": self.started, "end": time.time()}
        with self.server.log_lock:
            self.server.log.write(line)
            self.server.log.flush()
            if self.server.jsonl:
                self.server.jsonl.write(json.dumps(doc) + "\n")
                self.server.jsonl.flush()

    def read_body(self, spool):
        """Reads the request body into spool; returns its sha256 and whether it came chunked."""
        digest = hashlib.sha256()
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            while True:
                size_line = self.rfile.readline(1 << 12)
                if not size_line:
                    raise ConnectionError("request body ended inside a chunk")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1 << 12) not in (b"\r\n", b"\n", b""):
                        pass
                    return digest.hexdigest(), True
                self.copy_n(size, spool, digest)
                self.rfile.readline(1 << 12)
        self.copy_n(int(self.headers.get("Content-Length", "0") or 0), spool, digest)
        return digest.hexdigest(), False

    def copy_n(self, n, spool, digest):
        while n > 0:
            data = self.rfile.read(min(n, IO_CHUNK))
            if not data:
                raise ConnectionError("request body ended early")
            digest.update(data)
            spool.write(data)
            n -= len(data)

    def refuse(self, e, path, query, verdict=None):
        body = error_xml(e.code, e.message, path)
        self.send_response(e.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.record(path, query, verdict or f"{e.status} {e.code}")

    def client_gone(self):
        """Whether the client has closed its side (it sent its whole request: any byte now is EOF's)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def hold(self, seconds):
        """Waits up to seconds; False when the client hung up meanwhile."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            if self.client_gone():
                return False
            time.sleep(min(left, 0.05))
        return True

    def fault(self, rule, raw_path, raw_query, spool, chunked):
        """Applies rule; True when the request is done with (nothing is to be forwarded)."""
        action = rule["action"]
        if action == "hold":
            t0 = time.monotonic()
            if self.hold(rule.get("seconds", 3600)):
                return False
            self.close_connection = True
            self.record(raw_path, raw_query, f"fault hold: client gone after {time.monotonic() - t0:.1f}s")
        elif action == "trickle":
            self.forward(raw_path, raw_query, spool, chunked, trickle=rule.get("seconds", 1))
        elif action == "error":
            status, code, message = rule.get("status", SLOWDOWN[0]), rule.get("code", SLOWDOWN[1]), rule.get("message", SLOWDOWN[2])
            self.refuse(Refusal(status, code, message), raw_path, raw_query, verdict=f"fault {status} {code}")
        elif action == "reset":
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.record(raw_path, raw_query, "fault reset")
        else:
            raise ValueError(f"unknown fault action {action!r}")
        return True

    def handle_any(self):
        self.started = time.time()
        raw_path, _, raw_query = self.path.partition("?")
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            try:
                body_sha, chunked = self.read_body(spool)
            except (ConnectionError, ValueError) as e:
                self.close_connection = True
                self.record(raw_path, raw_query, f"400 IncompleteBody {e}")
                return
            try:
                _, payload = verify(self.command, raw_path, raw_query, list(self.headers.items()), self.server.keys,
                                    self.server.region, now=datetime.datetime.now(datetime.timezone.utc))
                if payload != "UNSIGNED-PAYLOAD" and payload != body_sha:
                    raise Refusal(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
                if self.command == "POST" and "delete" in urllib.parse.parse_qs(raw_query, keep_blank_values=True):
                    self.check_content_md5(spool)
            except Refusal as e:
                self.refuse(e, raw_path, raw_query)
                return
            spool.seek(0)
            rule = self.server.faults.take(self.command, raw_path, raw_query) if self.server.faults else None
            if rule and self.fault(rule, raw_path, raw_query, spool, chunked):
                return
            self.forward(raw_path, raw_query, spool, chunked)

    def check_content_md5(self, spool):
        """DeleteObjects wants the body's MD5, as AWS does (s3rver does not check it)."""
        given = self.headers.get("Content-MD5")
        if given is None:
            raise Refusal(400, "InvalidRequest", "Missing required header for this request: Content-Md5")
        spool.seek(0)
        digest = hashlib.md5()
        for data in iter(lambda: spool.read(IO_CHUNK), b""):
            digest.update(data)
        if given != base64.b64encode(digest.digest()).decode():
            raise Refusal(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")

    def forward(self, raw_path, raw_query, spool, chunked, trickle=None):
        up = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=120)
        try:
            up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                up.putheader(name, value)
            up.endheaders()
            while True:
                data = spool.read(IO_CHUNK)
                if not data:
                    break
                up.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            if chunked:
                up.send(b"0\r\n\r\n")
            resp = up.getresponse()
            if trickle:
                self.record(raw_path, raw_query, f"ok {resp.status} {self.dribble(resp, trickle)}")
                return
            self.relay(resp)
            self.record(raw_path, raw_query, f"ok {resp.status}")
        except (OSError, http.client.HTTPException) as e:
            self.close_connection = True
            try:
                body = error_xml("ServiceUnavailable", f"upstream: {e}", raw_path)
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass
            self.record(raw_path, raw_query, f"ok upstream-failed {e!r}")
        finally:
            up.close()

    def dribble(self, resp, seconds):
        """Sends resp a byte every seconds while the client stays; says how far it got."""
        body = b"" if self.command == "HEAD" else resp.read()
        head = [f"HTTP/1.1 {resp.status} {resp.reason}"] + \
               [f"{k}: {v}" for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
        if resp.status not in (204, 304):
            head.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        t0 = time.monotonic()
        for i in range(len(data)):
            if self.client_gone():
                self.close_connection = True
                return f"trickled {i} of {len(data)} bytes: client gone after {time.monotonic() - t0:.1f}s"
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError:
                self.close_connection = True
                return f"trickled {i} of {len(data)} bytes: client gone after {time.monotonic() - t0:.1f}s"
            if i + 1 < len(data) and not self.hold(seconds):
                self.close_connection = True
                return f"trickled {i + 1} of {len(data)} bytes: client gone after {time.monotonic() - t0:.1f}s"
        return f"trickled all {len(data)} bytes"

    def relay(self, resp):
        length = resp.getheader("Content-Length")
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        chunked = not no_body and length is None
        self.send_response_only(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            return
        while True:
            data = resp.read(IO_CHUNK)
            if not data:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server behind")
    p.add_argument("--key", action="append", required=True, metavar="ID:SECRET", help="an accepted key pair (repeatable)")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--port", type=int, default=0, help="port on --host; 0 picks a free one")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--ready-file", help="written with the port once listening")
    p.add_argument("--log", required=True, help="one line per request: method, path, query, verdict")
    p.add_argument("--jsonl", help="one JSON object per request: method, path, query, verdict, headers (secrets left out), signed, start, end")
    p.add_argument("--faults", help="a JSON file of fault rules (see Faults), read again whenever it changes")
    a = p.parse_args(argv)
    host, _, port = a.upstream.rpartition(":")
    srv = Server((a.host, a.port), Handler)
    srv.upstream_host, srv.upstream_port = host or "127.0.0.1", int(port)
    srv.keys = dict(k.split(":", 1) for k in a.key)
    srv.region = a.region
    srv.log = open(a.log, "a", encoding="utf-8")
    srv.jsonl = open(a.jsonl, "a", encoding="utf-8") if a.jsonl else None
    srv.faults = Faults(a.faults) if a.faults else None
    srv.log_lock = threading.Lock()
    port = srv.server_address[1]
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, a.ready_file)
    print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
