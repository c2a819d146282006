#!/usr/bin/env python3
"""Builds the shim's wheel (PEP 427, py3-none-any) with the standard library only.

    python3 build_wheel.py --out DIR      # prints the wheel's path

Metadata comes from pyproject.toml ([project] and [project.scripts]); the files from
src/<package>/. The output is deterministic (fixed timestamps and order), so rebuilding the same
sources gives the same bytes and the same hash. Runs on Python 3.8+: on 3.11+ it reads
pyproject.toml with tomllib, before that with a small parser for the subset this file uses.
"""

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import zipfile
from typing import Any, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
SUPPORTED_PROJECT_KEYS = {"name", "version", "description", "readme", "requires-python",
                          "dependencies", "classifiers", "scripts"}


# pyproject.toml

_STRING = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''


def _strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a # inside a string is kept)."""
    i, quote = 0, None
    while i < len(line):
        ch = line[i]
        if quote == '"' and ch == "\\":
            i += 1  # skip the escaped character
        elif quote and ch == quote:
            quote = None
        elif not quote and ch in "\"'":
            quote = ch
        elif not quote and ch == "#":
            return line[:i]
        i += 1
    return line


def _scalar(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(_STRING, text):
        return json.loads(text) if text[0] == '"' else text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1]
        items = re.findall(_STRING, inner)
        if re.sub(_STRING, "", inner).replace(",", "").strip():
            raise ValueError("only arrays of strings are supported: %s" % text)
        return [_scalar(item) for item in items]
    raise ValueError("unsupported TOML value: %s" % text)


def _key_path(text: str) -> List[str]:
    return [part.strip().strip('"') for part in text.split(".")]


def parse_toml_subset(text: str) -> Dict[str, Any]:
    """Tables, dotted table names, and key = string | integer | boolean | [strings]. Anything
    else raises ValueError rather than being misread."""
    data = {}  # type: Dict[str, Any]
    table = data
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = _strip_comment(lines[i]).strip()
        i += 1
        if not line:
            continue
        if line.startswith("["):
            if line.startswith("[[") or not line.endswith("]"):
                raise ValueError("unsupported TOML table header: %s" % line)
            table = data
            for part in _key_path(line[1:-1]):
                table = table.setdefault(part, {})
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError("not a key = value line: %s" % line)
        value = value.strip()
        while value.startswith("[") and value.count("[") > value.count("]") and i < len(lines):
            value += " " + _strip_comment(lines[i]).strip()
            i += 1
        *parents, last = _key_path(key)
        target = table
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = _scalar(value)
    return data


def read_pyproject(path: str) -> Dict[str, Any]:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        import tomllib  # noqa: PLC0415 (Python 3.11+)
    except ImportError:
        return parse_toml_subset(raw.decode("utf-8"))
    return tomllib.loads(raw.decode("utf-8"))


# Wheel contents

def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def metadata(project: Dict[str, Any], root: str) -> bytes:
    unknown = set(project) - SUPPORTED_PROJECT_KEYS
    if unknown:
        raise SystemExit("build_wheel.py does not handle [project] keys: %s" % sorted(unknown))
    lines = ["Metadata-Version: 2.1", "Name: %s" % project["name"],
             "Version: %s" % project["version"]]
    if "description" in project:
        lines.append("Summary: %s" % project["description"])
    if "requires-python" in project:
        lines.append("Requires-Python: %s" % project["requires-python"])
    lines += ["Requires-Dist: %s" % d for d in project.get("dependencies", [])]
    lines += ["Classifier: %s" % c for c in project.get("classifiers", [])]
    body = ""
    if "readme" in project:
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(root, project["readme"]), encoding="utf-8") as f:
            body = f.read()
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def package_files(src: str) -> List[Tuple[str, str]]:
    """(archive path, file path) of every file of every package under src/, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        if "__init__.py" not in filenames and dirpath != src:
            dirnames[:] = []
            continue
        for name in filenames:
            if dirpath != src and not name.endswith((".pyc", ".pyo")):
                path = os.path.join(dirpath, name)
                found.append((os.path.relpath(path, src).replace(os.sep, "/"), path))
    if not found:
        raise SystemExit("no package found under %s" % src)
    return sorted(found)


def record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def wheel_entries(root: str) -> Tuple[str, List[Tuple[str, bytes]]]:
    """The wheel's file name and its (archive path, contents), RECORD last."""
    project = read_pyproject(os.path.join(root, "pyproject.toml"))["project"]
    dist = "%s-%s" % (normalize(project["name"]), project["version"])
    entries = []
    for arcname, path in package_files(os.path.join(root, "src")):
        with open(path, "rb") as f:
            entries.append((arcname, f.read()))
    info = dist + ".dist-info/"
    entries.append((info + "METADATA", metadata(project, root)))
    entries.append((info + "WHEEL", b"Wheel-Version: 1.0\nGenerator: giskard-worker-shim "
                    b"build_wheel.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    scripts = project.get("scripts", {})
    if scripts:
        text = "[console_scripts]\n" + "".join("%s = %s\n" % kv for kv in sorted(scripts.items()))
        entries.append((info + "entry_points.txt", text.encode("utf-8")))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arcname, data in entries:
        writer.writerow([arcname, record_hash(data), len(data)])
    writer.writerow([info + "RECORD", "", ""])
    entries.append((info + "RECORD", record.getvalue().encode("utf-8")))
    return dist + "-py3-none-any.whl", entries


def build(root: str, out_dir: str) -> str:
    name, entries = wheel_entries(root)
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(os.path.abspath(out_dir), name)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % name, dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as wheel:
            for arcname, data in entries:
                info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
                info.external_attr = 0o100644 << 16
                info.create_system = 3  # Unix, so that the permission bits above are honored
                info.compress_type = zipfile.ZIP_DEFLATED
                wheel.writestr(info, data, compresslevel=9)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return target


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory to write the wheel into")
    args = parser.parse_args(argv)
    print(build(HERE, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
