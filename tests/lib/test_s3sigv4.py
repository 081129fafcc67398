"""Checks s3sigv4.py against AWS's published S3 SigV4 examples, then runs it as a proxy in front of a recording server, with the faults it injects."""
import base64
import datetime
import hashlib
import http.client
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3sigv4  # noqa: E402

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEYS = {AKID: SECRET}
HOST = "examplebucket.s3.amazonaws.com"
DATE = "20130524T000000Z"


def auth(signed, sig, scope="20130524/us-east-1/s3/aws4_request", akid=AKID):
    return f"AWS4-HMAC-SHA256 Credential={akid}/{scope},SignedHeaders={signed},Signature={sig}"


class AwsExamples(unittest.TestCase):
    """The four examples of "Signature Calculations for the Authorization Header" in the S3 API reference."""

    GET_OBJECT_SIG = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"

    def get_object(self, sig=GET_OBJECT_SIG, **over):
        h = {"Host": HOST, "Range": "bytes=0-9", "x-amz-content-sha256": s3sigv4.EMPTY_SHA256, "x-amz-date": DATE}
        h.update(over)
        h["Authorization"] = auth("host;range;x-amz-content-sha256;x-amz-date", sig)
        return [(k, v) for k, v in h.items() if v is not None]

    def test_get_object_canonical_request_and_signature(self):
        creq = s3sigv4.canonical_request("GET", "/test.txt", "", self.get_object(),
                                         ["host", "range", "x-amz-content-sha256", "x-amz-date"], s3sigv4.EMPTY_SHA256)
        self.assertEqual(creq, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                               "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                               "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
                               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        self.assertEqual(s3sigv4.string_to_sign(DATE, "20130524/us-east-1/s3/aws4_request", creq),
                         "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                         "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
        self.assertEqual(s3sigv4.signature(SECRET, DATE, "us-east-1", "s3", creq), self.GET_OBJECT_SIG)
        self.assertEqual(s3sigv4.verify("GET", "/test.txt", "", self.get_object(), KEYS, "us-east-1"),
                         (AKID, s3sigv4.EMPTY_SHA256))

    def test_put_object(self):
        body = b"Welcome to Amazon S3."
        sha = hashlib.sha256(body).hexdigest()
        self.assertEqual(sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        h = [("Host", HOST), ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-date", DATE),
             ("x-amz-storage-class", "REDUCED_REDUNDANCY"), ("x-amz-content-sha256", sha),
             ("Authorization", auth("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                                    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"))]
        # the key is test$file.text: '$' is encoded in the canonical URI whether or not the client did
        for path in ("/test%24file.text", "/test$file.text"):
            self.assertEqual(s3sigv4.verify("PUT", path, "", h, KEYS, "us-east-1")[1], sha)

    def test_get_bucket_lifecycle(self):
        h = [("Host", HOST), ("x-amz-date", DATE), ("x-amz-content-sha256", s3sigv4.EMPTY_SHA256),
             ("Authorization", auth("host;x-amz-content-sha256;x-amz-date",
                                    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"))]
        self.assertEqual(s3sigv4.verify("GET", "/", "lifecycle", h, KEYS, "us-east-1")[0], AKID)

    def test_list_objects_query_sorted(self):
        h = [("Host", HOST), ("x-amz-date", DATE), ("x-amz-content-sha256", s3sigv4.EMPTY_SHA256),
             ("Authorization", auth("host;x-amz-content-sha256;x-amz-date",
                                    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"))]
        self.assertEqual(s3sigv4.canonical_query("prefix=J&max-keys=2"), "max-keys=2&prefix=J")
        for q in ("max-keys=2&prefix=J", "prefix=J&max-keys=2"):
            self.assertEqual(s3sigv4.verify("GET", "/", q, h, KEYS, "us-east-1")[0], AKID)

    def refused(self, code, status, headers, path="/test.txt", query="", now=None):
        with self.assertRaises(s3sigv4.Refusal) as cm:
            s3sigv4.verify("GET", path, query, headers, KEYS, "us-east-1", now=now)
        self.assertEqual((cm.exception.code, cm.exception.status), (code, status))

    def test_any_change_breaks_the_signature(self):
        self.refused("SignatureDoesNotMatch", 403, self.get_object(Range="bytes=0-10"))
        self.refused("SignatureDoesNotMatch", 403, self.get_object(Host="other.s3.amazonaws.com"))
        self.refused("SignatureDoesNotMatch", 403, self.get_object(), path="/test.txt2")
        self.refused("SignatureDoesNotMatch", 403, self.get_object(), query="uploads=")
        self.refused("SignatureDoesNotMatch", 403, self.get_object(sig="0" * 64))

    def test_signed_header_not_sent(self):
        # what libcurl 7.88 does with an "Expect:" entry: signed (as empty), never sent
        h = [(k, auth("expect;host;range;x-amz-content-sha256;x-amz-date", self.GET_OBJECT_SIG) if k == "Authorization" else v)
             for k, v in self.get_object()]
        with self.assertRaises(s3sigv4.Refusal) as cm:
            s3sigv4.verify("GET", "/test.txt", "", h, KEYS, "us-east-1")
        self.assertEqual((cm.exception.code, cm.exception.status), ("AccessDenied", 403))
        self.assertIn("expect", cm.exception.message)
        with self.assertRaises(s3sigv4.Refusal) as cm:
            s3sigv4.verify("GET", "/test.txt", "", self.get_object(), {AKID: SECRET + "x"}, "us-east-1")
        self.assertEqual(cm.exception.code, "SignatureDoesNotMatch")
        with self.assertRaises(s3sigv4.Refusal) as cm:
            s3sigv4.verify("HEAD", "/test.txt", "", self.get_object(), KEYS, "us-east-1")
        self.assertEqual(cm.exception.code, "SignatureDoesNotMatch")

    def test_scope_key_date_and_headers(self):
        h = self.get_object()
        for scope in ("20130524/eu-west-1/s3/aws4_request", "20130524/us-east-1/ec2/aws4_request",
                      "20130525/us-east-1/s3/aws4_request", "20130524/us-east-1/s3/aws4"):
            bad = [(k, auth("host;range;x-amz-content-sha256;x-amz-date", self.GET_OBJECT_SIG, scope) if k == "Authorization" else v)
                   for k, v in h]
            self.refused("AuthorizationHeaderMalformed", 400, bad)
        unknown = [(k, auth("host;range;x-amz-content-sha256;x-amz-date", self.GET_OBJECT_SIG, akid="AKIDUNKNOWN") if k == "Authorization" else v)
                   for k, v in h]
        self.refused("InvalidAccessKeyId", 403, unknown)
        self.refused("AccessDenied", 403, [(k, v) for k, v in h if k != "Authorization"])
        self.refused("AccessDenied", 403, h + [("x-amz-meta-extra", "1")])
        self.refused("InvalidRequest", 400, self.get_object(**{"x-amz-content-sha256": None}))
        when = datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc)
        s3sigv4.verify("GET", "/test.txt", "", h, KEYS, "us-east-1", now=when + datetime.timedelta(minutes=14))
        self.refused("RequestTimeTooSkewed", 403, h, now=when + datetime.timedelta(minutes=16))
        self.refused("RequestTimeTooSkewed", 403, h, now=when - datetime.timedelta(minutes=16))


def sign(method, path, query, headers, body_sha, secret=SECRET, region="us-east-1", akid=AKID):
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime(s3sigv4.AMZ_DATE)
    headers = headers + [("x-amz-date", amz_date), ("x-amz-content-sha256", body_sha)]
    signed = sorted({k.lower() for k, _ in headers})
    creq = s3sigv4.canonical_request(method, path, query, headers, signed, body_sha)
    sig = s3sigv4.signature(secret, amz_date, region, "s3", creq)
    return headers + [("Authorization", auth(";".join(signed), sig, f"{amz_date[:8]}/{region}/s3/aws4_request", akid))]


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_any(self):
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            body = b""
            while True:
                n = int(self.rfile.readline().strip(), 16)
                if n == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(n)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append((self.command, self.path, list(self.headers.items()), body))
        answer = b"<ok>" + hashlib.sha256(body).hexdigest().encode() + b"</ok>"
        self.send_response(200)
        self.send_header("ETag", '"abc"')
        if self.path.endswith("chunked-reply"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (answer[:5], answer[5:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    do_GET = do_PUT = do_POST = do_DELETE = do_any


class Proxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        cls.up.seen = []
        threading.Thread(target=cls.up.serve_forever, daemon=True).start()
        cls.ready = os.path.join(cls.tmp.name, "ready")
        cls.log = os.path.join(cls.tmp.name, "log")
        cls.jsonl = os.path.join(cls.tmp.name, "jsonl")
        cls.faults = os.path.join(cls.tmp.name, "faults")
        cls.proc = subprocess.Popen([sys.executable, s3sigv4.__file__, "--upstream", f"127.0.0.1:{cls.up.server_address[1]}",
                                     "--key", f"{AKID}:{SECRET}", "--key", "OTHER:othersecret", "--region", "us-east-1",
                                     "--ready-file", cls.ready, "--log", cls.log, "--jsonl", cls.jsonl,
                                     "--faults", cls.faults], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(cls.ready):
            if time.monotonic() > deadline or cls.proc.poll() is not None:
                raise RuntimeError("s3sigv4.py did not become ready")
            time.sleep(0.05)
        with open(cls.ready, encoding="utf-8") as f:
            cls.port = int(f.read())

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.up.shutdown()
        cls.up.server_close()
        cls.tmp.cleanup()

    def send(self, method, path, body=b"", chunked=False, host=None, extra=(), timeout=30, **kw):
        raw_path, _, query = path.partition("?")
        host = host or f"bkt.s3.localhost:{self.port}"
        headers = sign(method, raw_path, query, [("Host", host)] + list(extra), kw.pop("declared", hashlib.sha256(body).hexdigest()), **kw)
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        # closed also when it times out, as a client that gives up does
        try:
            c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                c.putheader(k, v)
            if chunked:
                c.putheader("Transfer-Encoding", "chunked")
            elif body or method in ("PUT", "POST"):
                c.putheader("Content-Length", str(len(body)))
            c.endheaders()
            if chunked:
                for i in range(0, len(body), 1000):
                    piece = body[i:i + 1000]
                    c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                c.send(b"0\r\n\r\n")
            elif body:
                c.send(body)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        return r.status, data, headers

    def test_forwards_unchanged_and_streams_back(self):
        body = os.urandom(3 << 20)
        n = len(self.up.seen)
        status, data, sent = self.send("PUT", "/k%24ey/a%20b?partNumber=1&uploadId=x%2By", body)
        self.assertEqual(status, 200)
        self.assertEqual(data, b"<ok>" + hashlib.sha256(body).hexdigest().encode() + b"</ok>")
        method, path, headers, got = self.up.seen[n]
        self.assertEqual((method, path, got), ("PUT", "/k%24ey/a%20b?partNumber=1&uploadId=x%2By", body))
        for k, v in sent:
            self.assertIn((k, v), headers)
        self.assertIn(("Host", f"bkt.s3.localhost:{self.port}"), headers)

    def test_chunked_request_and_reply(self):
        body = os.urandom(5555)
        n = len(self.up.seen)
        status, data, _ = self.send("PUT", "/obj/chunked-reply", body, chunked=True)
        self.assertEqual(status, 200)
        self.assertEqual(data, b"<ok>" + hashlib.sha256(body).hexdigest().encode() + b"</ok>")
        self.assertEqual(self.up.seen[n][3], body)

    def test_unsigned_payload_and_second_key(self):
        status, _, _ = self.send("PUT", "/obj/u", b"data", declared="UNSIGNED-PAYLOAD", akid="OTHER", secret="othersecret")
        self.assertEqual(status, 200)

    def refusal(self, want_status, want_code, *args, **kw):
        n = len(self.up.seen)
        status, data, _ = self.send(*args, **kw)
        self.assertEqual(status, want_status, data)
        self.assertIn(f"<Code>{want_code}</Code>".encode(), data)
        self.assertEqual(len(self.up.seen), n, "a refused request reached the server")

    def test_refusals(self):
        self.refusal(403, "SignatureDoesNotMatch", "PUT", "/obj/w", b"x", secret="wrong")
        self.refusal(403, "InvalidAccessKeyId", "GET", "/obj/w", akid="NOPE")
        self.refusal(400, "AuthorizationHeaderMalformed", "GET", "/?list-type=2&prefix=a", region="eu-west-1")
        self.refusal(400, "XAmzContentSHA256Mismatch", "PUT", "/obj/w", b"body", declared=hashlib.sha256(b"other").hexdigest())
        self.refusal(400, "XAmzContentSHA256Mismatch", "PUT", "/obj/w", b"body", chunked=True, declared=s3sigv4.EMPTY_SHA256)
        with open(self.log, encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertIn("PUT /obj/w - 403 SignatureDoesNotMatch", lines)
        self.assertIn("GET / list-type=2&prefix=a 400 AuthorizationHeaderMalformed", lines)

    def test_delete_objects_wants_content_md5(self):
        body = b"<Delete><Object><Key>a</Key></Object></Delete>"
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        self.refusal(400, "InvalidRequest", "POST", "/?delete=", body)
        self.refusal(400, "BadDigest", "POST", "/?delete=", body, extra=[("Content-MD5", base64.b64encode(b"x" * 16).decode())])
        status, _, _ = self.send("POST", "/?delete=", body, extra=[("Content-MD5", md5)])
        self.assertEqual(status, 200)

    def test_request_log_as_json_lines(self):
        self.send("PUT", "/obj/logged", b"x", extra=[("x-amz-security-token", "TOKENVALUE")])
        last = self.last_json("/obj/logged")
        self.assertEqual((last["method"], last["verdict"]), ("PUT", "ok 200"))
        self.assertIn("x-amz-security-token", last["signed"])
        self.assertEqual(last["headers"]["x-amz-security-token"], ["(secret)"])
        self.assertLessEqual(last["start"], last["end"])

    def last_json(self, path, verdict_prefix=""):
        """The newest JSON line logged for path whose verdict starts so, waited for (the proxy logs after answering)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with open(self.jsonl, encoding="utf-8") as f:
                docs = [d for d in map(json.loads, f) if d["path"] == path and d["verdict"].startswith(verdict_prefix)]
            if docs:
                return docs[-1]
            time.sleep(0.05)
        self.fail(f"no log line for {path} with a verdict starting '{verdict_prefix}'")

    def set_faults(self, rules):
        with open(self.faults + ".tmp", "w", encoding="utf-8") as f:
            json.dump(rules, f)
        os.replace(self.faults + ".tmp", self.faults)

    def test_fault_error_counts(self):
        self.addCleanup(self.set_faults, [])
        self.set_faults([{"action": "error", "method": "PUT", "path": "^/f/", "skip": 1, "times": 2}])
        n = len(self.up.seen)
        got = [self.send("PUT", "/f/a", b"x")[:2] for _ in range(4)]
        self.assertEqual([g[0] for g in got], [200, 503, 503, 200])
        self.assertIn(b"<Code>SlowDown</Code>", got[1][1])
        self.assertIn(b"<Message>Please reduce your request rate.</Message>", got[1][1])
        self.assertEqual(len(self.up.seen), n + 2, "a faulted request reached the server")
        self.assertEqual(self.send("GET", "/f/a")[0], 200, "the rule took another method")
        # each: counted per request, so every part's first try fails
        self.set_faults([{"action": "error", "each": True, "times": 1, "status": 500, "code": "InternalError", "message": "x"}])
        self.assertEqual([self.send("PUT", p)[0] for p in ("/f/1", "/f/2", "/f/1", "/f/2")], [500, 500, 200, 200])
        self.assertEqual(self.last_json("/f/2", "fault")["verdict"], "fault 500 InternalError")

    def test_fault_reset(self):
        self.addCleanup(self.set_faults, [])
        self.set_faults([{"action": "reset", "times": 1}])
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected)):
            self.send("PUT", "/r/a", b"data")
        self.assertEqual(self.send("PUT", "/r/a", b"data")[0], 200)

    def test_fault_hold(self):
        self.addCleanup(self.set_faults, [])
        self.set_faults([{"action": "hold", "seconds": 0.5, "times": 1}])
        t0 = time.monotonic()
        self.assertEqual(self.send("PUT", "/h/a", b"x")[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        # a client that gives up first: the request is dropped, never passed on
        self.set_faults([{"action": "hold", "times": 1}])
        n = len(self.up.seen)
        with self.assertRaises(TimeoutError):
            self.send("PUT", "/h/b", b"x", timeout=0.5)
        self.assertRegex(self.last_json("/h/b", "fault")["verdict"], r"^fault hold: client gone after 0\.[4-9]s$|^fault hold: client gone after [1-9]")
        self.assertEqual(len(self.up.seen), n, "a held request was passed on after its client left")

    def test_fault_trickle(self):
        self.addCleanup(self.set_faults, [])
        self.set_faults([{"action": "trickle", "seconds": 0.002, "times": 1}])
        body = b"trickled"
        t0 = time.monotonic()
        status, data, _ = self.send("PUT", "/t/a", body)
        self.assertEqual((status, data), (200, b"<ok>" + hashlib.sha256(body).hexdigest().encode() + b"</ok>"))
        self.assertRegex(self.last_json("/t/a", "ok")["verdict"], r"^ok 200 trickled all \d+ bytes$")
        # a byte every 10 s: the client's timeout ends it, and the proxy sees it go
        self.set_faults([{"action": "trickle", "seconds": 10, "times": 1}])
        with self.assertRaises(TimeoutError):
            self.send("PUT", "/t/b", body, timeout=0.5)
        self.assertRegex(self.last_json("/t/b", "ok")["verdict"], r"^ok 200 trickled 1 of \d+ bytes: client gone")
        self.assertLess(time.monotonic() - t0, 10)


if __name__ == "__main__":
    unittest.main()
