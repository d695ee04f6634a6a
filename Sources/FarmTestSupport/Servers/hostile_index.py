#!/usr/bin/env python3
"""Hostile HTTP servers for the untrusted-index tests (loopback only).

Usage: hostile_index.py MODE PORT_FILE EVENTS_FILE [OTHER_ORIGIN]

Every request is appended to EVENTS_FILE as "METHOD PATH AUTH" (AUTH is "auth" when the request
carried an Authorization header, else "-"). Modes:
  trickle   every GET answers 200 with a Content-Length of 1 MB and then sends one byte a second,
            for ever (a listing that never completes); POSTs answer 500.
  echo      an upload index and GitHub API that quote the credential they received back in their
            error bodies, in every form a careless server would: raw, JSON-escaped, the header
            itself, base64, the first 12 characters, placed so that a cut at 300 characters falls inside it.
            GET of a listing answers 404 (nothing listed); POST answers 400 (upload) and every
            /repos/ call answers 401 (GitHub).
  elsewhere an upload index whose listing redirects to OTHER_ORIGIN (another port or scheme), and a
            GitHub API whose releases name an upload_url on OTHER_ORIGIN: credentials must never
            go there.
  slowread  an upload index that lists nothing (404) and reads an upload's body at 16 KiB/s, never
            answering before it has all of it.
  sink      records requests and answers 404 (the OTHER_ORIGIN of "elsewhere").
"""
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE, PORT_FILE, EVENTS_FILE = sys.argv[1], sys.argv[2], sys.argv[3]
OTHER = sys.argv[4] if len(sys.argv) > 4 else ""
LOCK = threading.Lock()


def credential(headers):
    """The secret the client sent: the password of Basic, the token of Bearer."""
    auth = headers.get("Authorization", "")
    if auth.startswith("Basic "):
        user_pass = base64.b64decode(auth[6:]).decode(errors="replace")
        return auth, user_pass.partition(":")[2]
    if auth.startswith("Bearer ") or auth.startswith("token "):
        return auth, auth.split(" ", 1)[1]
    return auth, ""


def echoes(auth, secret):
    b64 = base64.b64encode(secret.encode()).decode()
    return (f"{'x' * 250} rejected {secret} | header {auth} | json {json.dumps(secret)} | "
            f"base64 {b64} | starts {secret[:12]}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, method):
        with LOCK, open(EVENTS_FILE, "a") as f:
            f.write(f"{method} {self.path} {'auth' if self.headers.get('Authorization') else '-'}\n")

    def drain(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                break
            n -= len(chunk)

    def answer(self, status, body, content_type="text/plain", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self, method):
        self.record(method)
        if method == "POST" and MODE == "slowread":
            n = int(self.headers.get("Content-Length", "0") or 0)
            try:
                while n > 0:
                    chunk = self.rfile.read(min(n, 4096))
                    if not chunk:
                        return
                    n -= len(chunk)
                    time.sleep(0.25)
            except OSError:
                return
            return self.answer(500, "slow")
        if MODE == "slowread":
            return self.answer(404, "not found")
        if method == "POST":
            self.drain()
        if MODE == "trickle":
            if method != "GET":
                return self.answer(500, "no")
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"<")
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                return
        if MODE == "echo":
            auth, secret = credential(self.headers)
            if self.path.startswith("/repos/") or self.path.startswith("/uploads/"):
                return self.answer(401, json.dumps({"message": echoes(auth, secret)}), "application/json")
            if method == "GET":
                return self.answer(404, "not found")
            return self.answer(400, echoes(auth, secret))
        if MODE == "elsewhere":
            if self.path.startswith("/simple/"):
                return self.answer(302, "", headers=[("Location", OTHER + self.path)])
            if self.path.startswith("/repos/") and "/releases/tags/" in self.path:
                port = self.server.server_address[1]
                doc = {"id": 7, "tag_name": self.path.rsplit("/", 1)[1], "draft": True, "name": "x",
                       "html_url": f"http://127.0.0.1:{port}/r",
                       "upload_url": OTHER + "/uploads/repos/o/r/releases/7/assets{?name,label}"}
                return self.answer(200, json.dumps(doc), "application/json")
            if self.path.startswith("/repos/") and "/releases/7/assets" in self.path:
                return self.answer(200, "[]", "application/json")
            if self.path.startswith("/repos/"):
                return self.answer(404, json.dumps({"message": "Not Found"}), "application/json")
            return self.answer(404, "not found")
        return self.answer(404, "not found")

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(PORT_FILE, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
