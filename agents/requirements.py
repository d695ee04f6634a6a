"""Prints the build requirements of a source, one per line, for a build venv.

Usage: requirements.py FILE            a requirements file (its -r includes inlined, comments dropped)
       requirements.py --pyproject F   [build-system] requires of a pyproject.toml
Standard library only (tomllib from Python 3.11; a small reader of the requires list before).
"""
import os, re, sys


def flatten(path, seen):
    path = os.path.abspath(path)
    if path in seen:
        return
    seen.add(path)
    for raw in open(path, encoding="utf-8"):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(-r|--requirement)\s*(\S+)$", line)
        if m:
            yield from flatten(os.path.join(os.path.dirname(path), m.group(2)), seen)
            continue
        yield line


def pyproject(path):
    text = open(path, encoding="utf-8").read()
    try:
        import tomllib
        return tomllib.loads(text).get("build-system", {}).get("requires", ["setuptools>=40.8.0"])
    except ImportError:
        m = re.search(r"\[build-system\][^\[]*?requires\s*=\s*\[(.*?)\]", text, re.S)
        return re.findall(r"[\"']([^\"']+)[\"']", m.group(1)) if m else ["setuptools>=40.8.0"]


if sys.argv[1] == "--pyproject":
    for r in pyproject(sys.argv[2]):
        print(r)
else:
    for r in flatten(sys.argv[1], set()):
        print(r)
