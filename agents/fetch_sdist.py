"""Downloads a project's sdist of one version from a package index and checks its SHA-256.

Usage: fetch_sdist.py --index URL --project NAME --version V --dest DIR

Reads the index's simple API (PEP 691 JSON when offered, else PEP 503 HTML whose links carry
`#sha256=`), picks `<name>-<version>.tar.gz` (name normalised as the sdist spec says), downloads
it into DIR (kept: a second build of the version downloads nothing) and refuses a file whose
digest differs from the index's, or an index that lists no digest. Writes the file name to
DIR/.last. Standard library only: it runs on any build host's Python. Exit 1 on any failure.
"""
import argparse, hashlib, html.parser, json, os, re, sys, urllib.parse, urllib.request


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def listing(index, project):
    url = index.rstrip("/") + "/" + normalise(project) + "/"
    req = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
        ctype = r.headers.get("Content-Type", "")
        final = r.geturl()
    files = []
    if "json" in ctype:
        for f in json.loads(body)["files"]:
            files.append((f["filename"], urllib.parse.urljoin(final, f["url"]), f.get("hashes", {}).get("sha256")))
    else:
        p = Links()
        p.feed(body.decode("utf-8", "replace"))
        for href in p.links:
            full = urllib.parse.urljoin(final, href)
            base, _, frag = full.partition("#")
            digest = frag[len("sha256="):] if frag.startswith("sha256=") else None
            files.append((urllib.parse.unquote(base.rsplit("/", 1)[-1]), base, digest))
    return url, files


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--index", required=True)
    a.add_argument("--project", required=True)
    a.add_argument("--version", required=True)
    a.add_argument("--dest", required=True)
    args = a.parse_args()
    try:
        url, files = listing(args.index, args.project)
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        sys.exit(f"fetch_sdist: cannot read the index page for '{args.project}' at {args.index}: {e}")
    stem = re.sub(r"[-_.]+", "_", args.project).lower()
    wanted = {f"{stem}-{args.version}.tar.gz", f"{args.project}-{args.version}.tar.gz"}
    match = [f for f in files if f[0].lower() in {w.lower() for w in wanted}]
    if not match:
        sys.exit(f"fetch_sdist: {url} lists no sdist of {args.project} {args.version} (looked for {' or '.join(sorted(wanted))})")
    name, link, digest = match[0]
    if not digest:
        sys.exit(f"fetch_sdist: {url} gives no SHA-256 for {name}: refusing an unverifiable download")
    path = os.path.join(args.dest, name)
    if os.path.exists(path):
        h = hashlib.sha256(open(path, "rb").read()).hexdigest()
        if h == digest:
            print(f"fetch_sdist: {name} already downloaded, SHA-256 {digest} as the index says", file=sys.stderr)
            open(os.path.join(args.dest, ".last"), "w").write(name)
            return
        os.unlink(path)
    h = hashlib.sha256()
    tmp = path + ".part"
    try:
        with urllib.request.urlopen(link, timeout=300) as r, open(tmp, "wb") as out:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                out.write(chunk)
    except Exception as e:  # noqa: BLE001
        sys.exit(f"fetch_sdist: cannot download {link}: {e}")
    if h.hexdigest() != digest:
        os.unlink(tmp)
        sys.exit(f"fetch_sdist: {name} has SHA-256 {h.hexdigest()} but the index says {digest}: refused")
    os.rename(tmp, path)
    open(os.path.join(args.dest, ".last"), "w").write(name)
    print(f"fetch_sdist: {name} downloaded from {link}, SHA-256 {digest} as the index says", file=sys.stderr)


main()
