#!/usr/bin/env python3
"""Serves SSH from inside a network namespace to clients outside it, as inetd would.

Usage: netns_inetd.py ADDRESS PORT_FILE NAMESPACE SSHD_CONFIG

Listens on ADDRESS (a free port, written to PORT_FILE) in the namespace it was started in; for
each connection it starts `ip netns exec NAMESPACE /usr/sbin/sshd -i -f SSHD_CONFIG -e` with the
connection as stdin and stdout. The sshd process, and everything its sessions do (port
forwarding included), runs inside NAMESPACE: a bastion that can reach hosts nobody outside the
namespace can. Exits when its parent (the test process) goes away, killing the sshd it started.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

ADDRESS, PORT_FILE, NAMESPACE, CONFIG = sys.argv[1:5]
CHILDREN = []
LOCK = threading.Lock()


def reap_on_orphan(parent):
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            with LOCK:
                for child in CHILDREN:
                    try:
                        child.kill()
                    except OSError:
                        pass
            os._exit(0)


def main():
    threading.Thread(target=reap_on_orphan, args=(os.getppid(),), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((ADDRESS, 0))
    server.listen(16)
    with open(PORT_FILE + ".tmp", "w") as f:
        f.write(f"{server.getsockname()[1]}\n")
    os.rename(PORT_FILE + ".tmp", PORT_FILE)
    while True:
        conn, _ = server.accept()
        child = subprocess.Popen(["ip", "netns", "exec", NAMESPACE, "/usr/sbin/sshd", "-i", "-f", CONFIG, "-e"],
                                 stdin=conn.fileno(), stdout=conn.fileno(), stderr=sys.stderr)
        conn.close()
        with LOCK:
            CHILDREN.append(child)
            CHILDREN[:] = [c for c in CHILDREN if c.poll() is None]


if __name__ == "__main__":
    main()
