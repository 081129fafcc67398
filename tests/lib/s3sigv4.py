#!/usr/bin/env python3
"""A reverse proxy for tests that checks AWS Signature Version 4 on every request, as S3 does, before passing it to s3rver (which checks only the access key)."""
import argparse
import datetime
import hashlib
import hmac
import http.client
import http.server
import os
import re
import sys
import tempfile
import threading
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
    creq = canonical_request(method, raw_path, raw_query, headers, signed, payload)
    want = signature(keys[akid], amz_date, region, service, creq)
    if not hmac.compare_digest(want, sig):
        raise Refusal(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
    return akid, payload


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
        with self.server.log_lock:
            self.server.log.write(line)
            self.server.log.flush()

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

    def refuse(self, e, path, query):
        body = error_xml(e.code, e.message, path)
        self.send_response(e.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.record(path, query, f"{e.status} {e.code}")

    def handle_any(self):
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
            except Refusal as e:
                self.refuse(e, raw_path, raw_query)
                return
            spool.seek(0)
            self.forward(raw_path, raw_query, spool, chunked)

    def forward(self, raw_path, raw_query, spool, chunked):
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
    a = p.parse_args(argv)
    host, _, port = a.upstream.rpartition(":")
    srv = Server((a.host, a.port), Handler)
    srv.upstream_host, srv.upstream_port = host or "127.0.0.1", int(port)
    srv.keys = dict(k.split(":", 1) for k in a.key)
    srv.region = a.region
    srv.log = open(a.log, "a", encoding="utf-8")
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
