#!/usr/bin/env python3
"""An HTTP CONNECT proxy for tests (a kubeconfig's proxy-url): listens on 127.0.0.1 on a free
port, writes that port to READY_FILE once it accepts, appends each CONNECT target (host:port)
to LOG_FILE, one line each, and tunnels bytes both ways. Anything but CONNECT gets a 405.
Each NAME=ADDRESS in MAP makes a CONNECT to NAME go to ADDRESS: a name only the proxy
resolves, as behind a real one. Exits when the process PARENT_PID is gone (so a failed test
leaves nothing behind).

usage: connect_proxy.py READY_FILE LOG_FILE PARENT_PID [NAME=ADDRESS...]"""
import os
import socket
import sys
import threading
import time

ready, log, parent = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = dict(a.split("=", 1) for a in sys.argv[4:])
log_lock = threading.Lock()


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # the other direction may still carry the rest of a reply
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(conn):
    upstream = None
    try:
        conn.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                return
            head += data
            if len(head) > 65536:
                return
        head, rest = head.split(b"\r\n\r\n", 1)
        method, target = (head.split(b"\r\n", 1)[0].split(b" ") + [b"", b""])[:2]
        if method != b"CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        target = target.decode(errors="replace")
        with log_lock, open(log, "a") as out:
            out.write(target + "\n")
        host, _, port = target.rpartition(":")
        try:
            host = host.strip("[]")
            upstream = socket.create_connection((names.get(host, host), int(port)), timeout=10)
        except (OSError, ValueError):
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        conn.settimeout(None)
        upstream.settimeout(None)
        if rest:
            upstream.sendall(rest)
        t = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
        t.start()
        pump(conn, upstream)
        t.join()
    except OSError:
        pass
    finally:
        conn.close()
        if upstream:
            upstream.close()


def watch_parent():
    while True:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)
        time.sleep(0.5)


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
threading.Thread(target=watch_parent, daemon=True).start()
with open(ready + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
os.rename(ready + ".tmp", ready)  # the file appears only once the port accepts
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
