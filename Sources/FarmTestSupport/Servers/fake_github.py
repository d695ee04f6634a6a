#!/usr/bin/env python3
"""A local fake of the GitHub REST API's release endpoints, written to the documented behaviour.

Usage: FAKE_GITHUB_TOKEN=TOKEN fake_github.py PORT_FILE EVENTS_FILE [UPLOAD_PLAN]

- Requests need "Authorization: Bearer TOKEN" (or "token TOKEN"); otherwise 401 "Bad credentials".
- GET    /repos/O/R/releases/tags/TAG   published releases only (drafts answer 404)
- GET    /repos/O/R/releases            all releases, drafts included, newest first; per_page/page
- POST   /repos/O/R/releases            201; 422 already_exists when a release has that tag_name
- GET    /repos/O/R/releases/ID         one release
- PATCH  /repos/O/R/releases/ID         update (draft, name, body)
- GET    /repos/O/R/releases/ID/assets  the assets; per_page/page
- POST   /uploads/repos/O/R/releases/ID/assets?name=N   201; 422 already_exists for a taken name
- DELETE /repos/O/R/releases/assets/ID  204
- GET    /_state                        (test only, no auth) releases and assets with sha256

UPLOAD_PLAN is a comma list consumed one step per asset upload: "pass", "drop-partial" (read half
the body, keep an asset in state "starter" as GitHub does after a failed upload, drop the
connection), "502" (read the body, store nothing, answer 502), "forget" (read the body, answer
201 with the asset as if stored, store nothing: an upload that does not stick) or "corrupt" (store
the asset with the right size but other bytes: its digest differs). Assets carry
"digest": "sha256:HEX" of the bytes stored, as GitHub's API states it. Each request is appended to
EVENTS_FILE as "METHOD PATH".
"""
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

TOKEN = os.environ["FAKE_GITHUB_TOKEN"]
PORT_FILE, EVENTS_FILE = sys.argv[1], sys.argv[2]
PLAN = [s for s in (sys.argv[3] if len(sys.argv) > 3 else "").split(",") if s]
LOCK = threading.Lock()
STATE = {"releases": [], "next_id": 1}


def new_id():
    STATE["next_id"] += 1
    return STATE["next_id"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def no_content(self):
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def release_doc(self, r):
        port = self.server.server_address[1]
        o, n = r["repo"]
        return {
            "id": r["id"], "tag_name": r["tag_name"], "name": r["name"], "draft": r["draft"],
            "prerelease": False, "body": r["body"],
            "html_url": f"http://127.0.0.1:{port}/{o}/{n}/releases/tag/{r['tag_name']}",
            "upload_url": f"http://127.0.0.1:{port}/uploads/repos/{o}/{n}/releases/{r['id']}/assets{{?name,label}}",
            "assets": [self.asset_doc(a) for a in r["assets"]],
        }

    def asset_doc(self, a):
        return {"id": a["id"], "name": a["name"], "size": a["size"], "state": a["state"],
                "content_type": "application/octet-stream",
                "digest": f"sha256:{a['sha256']}" if a["sha256"] else None,
                "browser_download_url": f"http://127.0.0.1:{self.server.server_address[1]}/download/{a['id']}"}

    def authorised(self):
        auth = self.headers.get("Authorization", "")
        if auth in (f"Bearer {TOKEN}", f"token {TOKEN}"):
            return True
        self.body()
        self.send_json(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        return False

    def page(self, items, query):
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        return items[(page - 1) * per_page: page * per_page]

    def find(self, rid):
        return next((r for r in STATE["releases"] if r["id"] == rid), None)

    def handle_any(self, method):
        url = urlparse(self.path)
        with open(EVENTS_FILE, "a") as f:
            f.write(f"{method} {self.path}\n")
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        if parts == ["_state"]:
            with LOCK:
                return self.send_json(200, [self.release_doc(r) | {"assets": [
                    self.asset_doc(a) | {"sha256": a["sha256"]} for a in r["assets"]]} for r in STATE["releases"]])
        if not self.authorised():
            return
        if parts[:1] == ["uploads"] and method == "POST":
            return self.upload(parts[1:], query)
        if len(parts) < 4 or parts[0] != "repos" or parts[3] != "releases":
            self.body()
            return self.send_json(404, {"message": "Not Found"})
        repo, rest = (parts[1], parts[2]), parts[4:]
        with LOCK:
            releases = [r for r in STATE["releases"] if r["repo"] == repo]
            if method == "GET" and rest[:1] == ["tags"] and len(rest) == 2:
                r = next((r for r in releases if r["tag_name"] == rest[1] and not r["draft"]), None)
                return self.send_json(200, self.release_doc(r)) if r else self.send_json(404, {"message": "Not Found"})
            if method == "GET" and rest == []:
                return self.send_json(200, [self.release_doc(r) for r in self.page(list(reversed(releases)), query)])
            if method == "POST" and rest == []:
                doc = json.loads(self.body() or b"{}")
                if any(r["tag_name"] == doc.get("tag_name") for r in releases):
                    return self.send_json(422, {"message": "Validation Failed", "errors": [
                        {"resource": "Release", "code": "already_exists", "field": "tag_name"}]})
                r = {"id": new_id(), "repo": repo, "tag_name": doc["tag_name"], "name": doc.get("name", doc["tag_name"]),
                     "draft": bool(doc.get("draft", False)), "body": doc.get("body", ""), "assets": []}
                STATE["releases"].append(r)
                return self.send_json(201, self.release_doc(r))
            if rest[:1] == ["assets"] and len(rest) == 2 and method == "DELETE":
                for r in releases:
                    for a in r["assets"]:
                        if a["id"] == int(rest[1]):
                            r["assets"].remove(a)
                            return self.no_content()
                return self.send_json(404, {"message": "Not Found"})
            if len(rest) >= 1 and rest[0].isdigit():
                r = self.find(int(rest[0]))
                if r is None or r["repo"] != repo:
                    self.body()
                    return self.send_json(404, {"message": "Not Found"})
                if method == "GET" and len(rest) == 1:
                    return self.send_json(200, self.release_doc(r))
                if method == "PATCH" and len(rest) == 1:
                    doc = json.loads(self.body() or b"{}")
                    for key in ("draft", "name", "body"):
                        if key in doc:
                            r[key] = doc[key]
                    return self.send_json(200, self.release_doc(r))
                if method == "GET" and rest[1:] == ["assets"]:
                    return self.send_json(200, [self.asset_doc(a) for a in self.page(r["assets"], query)])
        self.body()
        self.send_json(404, {"message": "Not Found"})

    def upload(self, parts, query):
        # parts: repos O R releases ID assets
        length = int(self.headers.get("Content-Length", "0"))
        name = query.get("name", [""])[0]
        with LOCK:
            r = self.find(int(parts[4])) if len(parts) == 6 and parts[4].isdigit() else None
            step = PLAN.pop(0) if PLAN else "pass"
            taken = r is not None and any(a["name"] == name for a in r["assets"])
        if r is None:
            self.rfile.read(length)
            return self.send_json(404, {"message": "Not Found"})
        if taken:
            self.rfile.read(length)
            return self.send_json(422, {"message": "Validation Failed", "errors": [
                {"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}]})
        if step == "drop-partial":
            self.rfile.read(length // 2)
            with LOCK:
                r["assets"].append({"id": new_id(), "name": name, "size": 0, "state": "starter", "sha256": ""})
            self.close_connection = True
            self.connection.shutdown(2)
            return
        digest, got = hashlib.sha256(), 0
        while got < length:
            chunk = self.rfile.read(min(1 << 20, length - got))
            if not chunk:
                return
            digest.update(chunk)
            got += len(chunk)
        if step == "502":
            return self.send_json(502, {"message": "Server Error"})
        if step == "forget":
            return self.send_json(201, self.asset_doc({"id": new_id(), "name": name, "size": got, "state": "uploaded",
                                                       "sha256": digest.hexdigest()}))
        if step == "corrupt":
            digest = hashlib.sha256(b"not the bytes that were sent")
        with LOCK:
            a = {"id": new_id(), "name": name, "size": got, "state": "uploaded", "sha256": digest.hexdigest()}
            r["assets"].append(a)
        self.send_json(201, self.asset_doc(a))

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
    with open(PORT_FILE, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
