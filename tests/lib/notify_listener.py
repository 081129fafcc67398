#!/usr/bin/env python3
"""Stands in for systemd's notify socket in tests: binds a unix datagram socket at
SOCKET_PATH and appends every message it receives to LOG_PATH, one line per assignment.
Exits when the process PARENT_PID is gone (so a failed test leaves nothing behind), or
after 600 s."""
import os
import socket
import sys
import time

path, log, parent = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path + ".tmp")
os.rename(path + ".tmp", path)  # the path appears only once it can receive
s.settimeout(0.5)
deadline = time.monotonic() + 600
with open(log, "a", buffering=1) as out:
    while time.monotonic() < deadline:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        for line in data.decode(errors="replace").splitlines():
            out.write(line + "\n")
try:
    os.unlink(path)
except FileNotFoundError:
    pass  # the test removed its directory first
