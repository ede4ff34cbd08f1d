#!/usr/bin/env python3
"""Play the service manager's notification socket (sd_notify(3)) for
tests/package/install.sh: bind the AF_UNIX datagram socket SOCKET and append
each message received to LOG (one line per field, "--" after each message),
until SIGTERM or 120 s."""
import signal
import socket
import sys
import time

path, log = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(1.0)
end = time.monotonic() + 120
with open(log, "a", encoding="utf-8") as out:
    while time.monotonic() < end:
        try:
            msg = s.recv(4096)
        except socket.timeout:
            continue
        out.write(msg.decode("utf-8", "replace") + "\n--\n")
        out.flush()
