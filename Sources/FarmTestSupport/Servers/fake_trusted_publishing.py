#!/usr/bin/env python3
"""A local fake of PyPI's Trusted Publishing endpoints and of GitHub Actions' OIDC token
service, written to their documented behaviour (docs.pypi.org "Trusted publishers", Warehouse's
warehouse/oidc/views.py; GitHub's "Configuring OpenID Connect" docs). Neither service can be
reached from tests. It is a fake: tokens are HS256 JWTs signed with a key of its own, not
GitHub's RS256 keys, and minted "pypi-" tokens are random strings, not macaroons.

Usage: FAKE_ACTIONS_REQUEST_TOKEN=T fake_trusted_publishing.py PORT_FILE CONFIG_JSON STORE_DIR [CERT KEY]

CONFIG_JSON: {"repository": "OWNER/REPO", "workflow": "release.yml", "audience": "pypi",
              "publishers": [{"repository": "OWNER/REPO", "workflow": "release.yml", "projects": ["a", "b"]}]}

GitHub Actions side:
- GET /actions/token?api-version=2.0&audience=AUD with "Authorization: bearer T" -> 200
  {"count": 1, "value": JWT}; the JWT's claims: iss https://token.actions.githubusercontent.com,
  aud AUD, repository, repository_owner, workflow_ref, job_workflow_ref, ref, sha, jti, iat, nbf,
  exp (5 minutes). A wrong or missing bearer token -> 401.

Index side:
- GET  /_/oidc/audience   -> {"audience": AUD}
- POST /_/oidc/mint-token {"token": JWT} -> 200 {"success": true, "token": "pypi-…", "expires": T}
  or 422 {"message": "Token request failed", "errors": [{"code": C, "description": D}]} with C one of
  invalid-payload, invalid-token ("malformed or invalid token": bad signature, audience, issuer,
  expired, or a JWT used before), invalid-publisher ("valid token, but no corresponding publisher
  (...)"). A minted token lasts 15 minutes and is scoped to the publisher's projects.
- POST /legacy/  the upload API (multipart, Basic __token__:TOKEN): 403 for an unknown or expired
  token, 403 "Invalid API Token: project-scoped token is not valid for project: 'NAME'" outside
  its scope, 400 "File already exists …" for a filename already stored, else 200.
- GET  /simple/NAME/      PEP 503 page with #sha256= links; GET /files/NAME/FILE the file.
- GET  /_state            (test only) minted tokens' scopes, uploads and OIDC requests.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT_FILE, CONFIG_FILE, STORE = sys.argv[1], sys.argv[2], sys.argv[3]
TLS = sys.argv[4:6] if len(sys.argv) >= 6 else None
REQUEST_TOKEN = os.environ["FAKE_ACTIONS_REQUEST_TOKEN"]
CONFIG = json.load(open(CONFIG_FILE))
AUDIENCE = CONFIG.get("audience", "pypi")
KEY = secrets.token_bytes(32)
LOCK = threading.Lock()
STATE = {"minted": [], "uploads": [], "oidc_requests": 0, "mint_requests": 0}
USED_JTI = set()
TOKENS = {}  # minted token -> (projects, expires)
ISSUER = "https://token.actions.githubusercontent.com"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def make_jwt(audience):
    now = int(time.time())
    repo = CONFIG["repository"]
    workflow = CONFIG.get("workflow", "release.yml")
    claims = {
        "iss": ISSUER, "aud": audience, "sub": f"repo:{repo}:ref:refs/heads/main",
        "repository": repo, "repository_owner": repo.split("/")[0],
        "workflow_ref": f"{repo}/.github/workflows/{workflow}@refs/heads/main",
        "job_workflow_ref": f"{repo}/.github/workflows/{workflow}@refs/heads/main",
        "ref": "refs/heads/main", "sha": "0" * 40, "jti": secrets.token_hex(16),
        "iat": now, "nbf": now, "exp": now + 300,
    }
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def verify_jwt(token):
    try:
        head, body, sig = token.split(".")
        expected = b64(hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(sig, expected):
            return None
        claims = json.loads(unb64(body))
    except Exception:
        return None
    now = int(time.time())
    if claims.get("iss") != ISSUER or claims.get("aud") != AUDIENCE or claims.get("exp", 0) < now:
        return None
    with LOCK:
        if claims["jti"] in USED_JTI:
            return None
        USED_JTI.add(claims["jti"])
    return claims


def find_publisher(claims):
    # Warehouse keeps one publisher per (repository, workflow): registering it for several
    # projects links that one publisher to each, and its tokens cover them all.
    projects = []
    for p in CONFIG.get("publishers", []):
        workflow_ref = f"{p['repository']}/.github/workflows/{p['workflow']}@"
        if claims["repository"] == p["repository"] and claims["workflow_ref"].startswith(workflow_ref):
            projects += [name for name in p["projects"] if name not in projects]
    return {"projects": projects} if projects else None


def parse_multipart(body, content_type):
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        return {}, None
    boundary = b"--" + m.group(1).encode()
    fields, upload = {}, None
    for part in body.split(boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        data = data[:-2] if data.endswith(b"\r\n") else data
        disposition = re.search(rb'name="([^"]*)"(?:; filename="([^"]*)")?', head)
        if not disposition:
            continue
        name = disposition.group(1).decode()
        if disposition.group(2) is not None:
            upload = (disposition.group(2).decode(), data)
        else:
            fields.setdefault(name, data.decode())
    return fields, upload


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/actions/token":
            self.body()
            auth = self.headers.get("Authorization", "")
            audience = parse_qs(url.query).get("audience", [None])[0]
            if auth.lower() != f"bearer {REQUEST_TOKEN}".lower() or not audience:
                return self.reply(401, {"message": "Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable" if not audience else "Bad credentials"})
            with LOCK:
                STATE["oidc_requests"] += 1
            return self.reply(200, {"count": 1, "value": make_jwt(audience)})
        if url.path == "/_/oidc/audience":
            return self.reply(200, {"audience": AUDIENCE})
        if url.path == "/_state":
            with LOCK:
                return self.reply(200, STATE)
        m = re.fullmatch(r"/simple/([^/]+)/", url.path)
        if m:
            project = normalise(m.group(1))
            folder = os.path.join(STORE, project)
            if not os.path.isdir(folder):
                return self.reply(404, "Not Found", "text/plain")
            links = []
            for name in sorted(os.listdir(folder)):
                digest = hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
                links.append(f'<a href="/files/{project}/{name}#sha256={digest}">{name}</a><br/>')
            html = "<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>"
            return self.reply(200, html, "text/html")
        m = re.fullmatch(r"/files/([^/]+)/([^/]+)", url.path)
        if m and os.path.isfile(os.path.join(STORE, m.group(1), m.group(2))):
            return self.reply(200, open(os.path.join(STORE, m.group(1), m.group(2)), "rb").read(), "application/octet-stream")
        return self.reply(404, "Not Found", "text/plain")

    def do_POST(self):
        url = urlparse(self.path)
        body = self.body()
        if url.path == "/_/oidc/mint-token":
            with LOCK:
                STATE["mint_requests"] += 1

            def invalid(code, description):
                return self.reply(422, {"message": "Token request failed", "errors": [{"code": code, "description": description}]})
            try:
                payload = json.loads(body)
                token = payload["token"]
                assert isinstance(token, str)
            except Exception:
                return invalid("invalid-payload", "1 validation error for TokenPayload\ntoken\n  Field required")
            claims = verify_jwt(token)
            if not claims:
                return invalid("invalid-token", "malformed or invalid token")
            publisher = find_publisher(claims)
            if not publisher:
                return invalid("invalid-publisher", "valid token, but no corresponding publisher (Publisher with matching claims was not found)")
            minted = "pypi-" + secrets.token_urlsafe(48)
            expires = int(time.time()) + 900
            with LOCK:
                TOKENS[minted] = ([normalise(p) for p in publisher["projects"]], expires)
                STATE["minted"].append({"projects": publisher["projects"], "repository": claims["repository"]})
            return self.reply(200, {"success": True, "token": minted, "expires": expires})
        if url.path in ("/legacy/", "/legacy"):
            auth = self.headers.get("Authorization", "")
            token = None
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                token = password if user == "__token__" else None
            with LOCK:
                scope = TOKENS.get(token)
            if not scope or scope[1] < time.time():
                return self.reply(403, "Invalid or non-existent authentication information. See https://pypi.org/help/#invalid-auth for more information.", "text/plain")
            fields, upload = parse_multipart(body, self.headers.get("Content-Type", ""))
            project = normalise(fields.get("name", ""))
            if project not in scope[0]:
                return self.reply(403, f"Invalid API Token: project-scoped token is not valid for project: '{project}'", "text/plain")
            if not upload:
                return self.reply(400, "Upload payload does not have a file.", "text/plain")
            filename, data = upload
            folder = os.path.join(STORE, project)
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, filename)
            if os.path.exists(path):
                digest = hashlib.blake2b(open(path, "rb").read(), digest_size=32).hexdigest()
                return self.reply(400, f"File already exists ('{filename}', with blake2_256 hash '{digest}'). See https://pypi.org/help/#file-name-reuse for more information.", "text/plain")
            with open(path, "wb") as f:
                f.write(data)
            with LOCK:
                STATE["uploads"].append({"project": project, "filename": filename, "sha256": hashlib.sha256(data).hexdigest()})
            return self.reply(200, "OK", "text/plain")
        return self.reply(404, "Not Found", "text/plain")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if TLS:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS[0], TLS[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(PORT_FILE + ".tmp", "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(PORT_FILE + ".tmp", PORT_FILE)
    server.serve_forever()


if __name__ == "__main__":
    main()
