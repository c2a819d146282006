#!/usr/bin/env python3
"""Writes small, valid PEP 427 wheels (py3-none-any) for the pip/venv integration tests.

Standard library only; the bytes are deterministic (fixed zip timestamps and member order), so
two runs give identical files. Usage:

    python3 make_wheels.py --out DIR [--extra N]

prints a JSON summary {"out": DIR, "wheels": [{"name", "version", "path", "sha256",
"requires", "console_scripts", "broken"}...]} on stdout.

The set:
  gsk-alpha 1.0.0, 2.0.0 (2.0.0 requires gsk-beta>=1.1)
  gsk-beta 1.0.0, 1.1.0, 1.2.0 (1.2.0 requires gsk-gamma<2)
  gsk-gamma 1.0.0, 2.0.0
  gsk-delta 0.1.0 (requires gsk-alpha==1.0.0, so gsk-delta + gsk-alpha==2.0.0 is unsatisfiable)
  gsk-tool 1.0.0 (console script gsk-tool = gsk_tool:main, prints "gsk-tool 1.0.0")
  gsk-broken 1.0.0 (pip finds and resolves it, then refuses to install it: see BROKEN_NOTE)
  gsk-badwheel 1.0.0 (Wheel-Version 9.0: pip finds it and rejects it before installing anything)
  gsk-pkg-000 .. gsk-pkg-(N-1) 1.0.0 with --extra N (independent, no dependencies)
"""

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import zipfile

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
TAG = "py3-none-any"

# gsk-broken carries, as its first member, a file whose path climbs out of site-packages ("../").
# pip resolves the wheel normally (its METADATA is fine), prints "Installing collected packages:
# gsk-broken", then refuses it before writing any file, exit status 1 (pip 23.0.1, 23.2.1, 24.2):
#   ERROR: For req: gsk-broken. The wheel '<path>.whl' has a file '<site-packages>/../
#   gsk_broken_escape.py' trying to install outside the target directory '<site-packages>'
# (A RECORD hash mismatch is NOT rejected by pip 23/24: it installs such a wheel silently.)
BROKEN_NOTE = "member '../gsk_broken_escape.py' escapes the install directory"

# gsk-badwheel declares "Wheel-Version: 9.0": pip rejects it while preparing it (before
# "Installing collected packages"), with
#   ERROR: gsk-badwheel has an invalid wheel, gsk-badwheel's Wheel-Version (9.0) is not
#   compatible with this version of pip        (pip 24 drops the "has an invalid wheel, " part)

# (name, version, requires, console_scripts)
GRAPH = [
    ("gsk-alpha", "1.0.0", [], {}),
    ("gsk-alpha", "2.0.0", ["gsk-beta>=1.1"], {}),
    ("gsk-beta", "1.0.0", [], {}),
    ("gsk-beta", "1.1.0", [], {}),
    ("gsk-beta", "1.2.0", ["gsk-gamma<2"], {}),
    ("gsk-gamma", "1.0.0", [], {}),
    ("gsk-gamma", "2.0.0", [], {}),
    ("gsk-delta", "0.1.0", ["gsk-alpha==1.0.0"], {}),
    ("gsk-tool", "1.0.0", [], {"gsk-tool": "gsk_tool:main"}),
]


def normalize(name):
    """PEP 503 normalized project name (gsk_Alpha.x -> gsk-alpha-x)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_name(name):
    """The distribution part of a wheel file name (PEP 427 escaping)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def module_source(name, version, console_scripts):
    lines = [
        f'"""{name} {version}: a tiny test package for giskard-supervisor."""',
        "",
        f'__version__ = "{version}"',
        "",
        "",
        "def describe():",
        f'    return "{name} " + __version__',
        "",
        "",
        "def add(a, b):",
        "    return a + b",
        "",
    ]
    if console_scripts:
        lines += [
            "",
            "def main():",
            "    print(describe())",
            "    return 0",
            "",
        ]
    return "\n".join(lines)


def metadata_text(name, version, requires):
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: Test package {name} {version} for giskard-supervisor",
        "License: MIT",
        "Requires-Python: >=3.6",
    ]
    lines += [f"Requires-Dist: {req}" for req in requires]
    return "\n".join(lines) + "\n\n"


def wheel_text(wheel_version="1.0"):
    return (f"Wheel-Version: {wheel_version}\nGenerator: giskard-make-wheels 1.0\n"
            "Root-Is-Purelib: true\nTag: " + TAG + "\n")


def entry_points_text(console_scripts):
    lines = ["[console_scripts]"]
    lines += [f"{script} = {target}" for script, target in sorted(console_scripts.items())]
    return "\n".join(lines) + "\n"


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def build_members(name, version, requires, console_scripts, broken, wheel_version):
    """Returns [(archive path, bytes)] in archive order, RECORD last."""
    mod = dist_name(name)
    info = f"{mod}-{version}.dist-info"
    members = []
    if broken:  # first, so that pip stops before it writes any file of the wheel
        members.append(("../gsk_broken_escape.py", b"raise SystemExit('must not be installed')\n"))
    members.append((f"{mod}/__init__.py",
                    module_source(name, version, console_scripts).encode("utf-8")))
    members.append((f"{info}/METADATA", metadata_text(name, version, requires).encode("utf-8")))
    members.append((f"{info}/WHEEL", wheel_text(wheel_version).encode("utf-8")))
    if console_scripts:
        members.append((f"{info}/entry_points.txt",
                        entry_points_text(console_scripts).encode("utf-8")))
    members.append((f"{info}/top_level.txt", (mod + "\n").encode("utf-8")))
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in members)
    record += f"{info}/RECORD,,\n"
    members.append((f"{info}/RECORD", record.encode("utf-8")))
    return members


def write_wheel(out_dir, name, version, requires=(), console_scripts=None, broken=False,
                wheel_version="1.0"):
    console_scripts = console_scripts or {}
    filename = f"{dist_name(name)}-{version}-{TAG}.whl"
    path = os.path.join(out_dir, filename)
    members = build_members(name, version, list(requires), console_scripts, broken, wheel_version)
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w") as zf:
        for arcname, data in members:
            info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 << 16)
            info.create_system = 3  # Unix, so the mode bits above are honoured
            zf.writestr(info, data)
    os.replace(tmp, path)
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    return {
        "name": name,
        "version": version,
        "filename": filename,
        "path": os.path.abspath(path),
        "sha256": sha,
        "requires": list(requires),
        "console_scripts": dict(console_scripts),
        "broken": broken or wheel_version != "1.0",
    }


def build_all(out_dir, extra=0):
    """Writes the whole set into out_dir (created if needed); returns the summary dict."""
    os.makedirs(out_dir, exist_ok=True)
    wheels = [write_wheel(out_dir, n, v, r, cs) for n, v, r, cs in GRAPH]
    wheels.append(write_wheel(out_dir, "gsk-broken", "1.0.0", broken=True))
    wheels.append(write_wheel(out_dir, "gsk-badwheel", "1.0.0", wheel_version="9.0"))
    width = max(3, len(str(max(extra - 1, 0))))
    for i in range(extra):
        wheels.append(write_wheel(out_dir, f"gsk-pkg-{i:0{width}d}", "1.0.0"))
    return {"out": os.path.abspath(out_dir), "broken_note": BROKEN_NOTE, "wheels": wheels}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write the wheels into")
    parser.add_argument("--extra", type=int, default=0,
                        help="also write N independent wheels gsk-pkg-000..")
    args = parser.parse_args(argv)
    if args.extra < 0:
        parser.error("--extra must be >= 0")
    summary = build_all(args.out, args.extra)
    json.dump(summary, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
