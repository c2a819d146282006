#!/usr/bin/env python3
"""Turns Debian 12's own builds of the scientific Python stack into pip-installable wheels.

PyPI is not reachable here and `apt-get install python3-sklearn` is impossible (python3-scipy
pulls libboost-dev 1.74 through python3-pythran, which conflicts with the project's
libboost1.81-dev). So: `apt-get download` the .debs (installs nothing), unpack them with
`dpkg-deb -x`, and repack every Python distribution found under usr/lib/python3*/dist-packages
as a PEP 427 wheel with its real upstream name and version (numpy 1.24.2, scipy 1.10.1,
scikit-learn 1.2.1, pandas 1.5.3, ...). Parts Debian splits (python3-sklearn + -lib,
python3-pandas + -lib) are merged into one wheel. Standard library only. Usage:

    python3 debian_wheels.py --out DIR            # build every wheel (kept when still valid)
    python3 debian_wheels.py --list-native-libs   # apt packages the compiled modules link to
    python3 debian_wheels.py --install-native-libs

Downloads and unpacked trees are cached in $GSK_DEBIAN_WHEELS_CACHE (default
~/.cache/giskard-supervisor/debian-wheels): a second run needs no network. The apt side
(download, unpack, native libraries) is debian_apt.py; build_all(out_dir), native_lib_packages()
and install_native_libs() are importable from here. Requires-Dist comes from the Debian metadata
(.egg-info/requires.txt or .dist-info/METADATA, extras dropped) plus the packages' Depends on the
other distributions built (Debian strips install_requires from most egg-infos).
"""

import argparse
import base64
import concurrent.futures
import email.parser
import filecmp
import glob
import hashlib
import os
import re
import sys
import sysconfig
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from debian_apt import (CacheLock, deb_fields, default_cache, download_all,  # noqa: E402
                        install_native_libs, is_installed, log, native_lib_packages,
                        parse_depends, unpack)

GENERATOR = "giskard-debian-wheels 1"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class Dist:
    """One Python distribution, assembled from one or more unpacked Debian packages."""

    def __init__(self, meta, requires, entry_points):
        self.meta = meta  # email.message.Message of PKG-INFO or METADATA
        self.name = meta["Name"]
        self.version = pep440(meta["Version"])
        self.requires = requires  # from the metadata, extras dropped
        self.entry_points = entry_points
        self.packages = []  # Debian package names
        self.debs = []  # .deb file names (recorded in DEBIAN_SOURCES)
        self.top_level = set()
        self.files = {}  # path in the wheel -> file on disk


def pep440(version):
    """Debian/upstream version -> plain PEP 440: '1:1.2.1+dfsg-1' -> '1.2.1', '2022.1~' ->
    '2022.1'."""
    version = version.split(":", 1)[-1]
    m = re.match(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", version)
    if not m:
        raise ValueError(f"no PEP 440 version in {version!r}")
    return m.group(0)


def python_roots(tree):
    """usr/lib/python3/dist-packages and usr/lib/python3.X/dist-packages inside tree."""
    return sorted(glob.glob(os.path.join(tree, "usr", "lib", "python3*", "dist-packages")))


def requires_from(info_dir):
    """Requirement strings of an .egg-info (requires.txt) or .dist-info (METADATA), no extras."""
    if info_dir.endswith(".dist-info"):
        with open(os.path.join(info_dir, "METADATA"), encoding="utf-8") as f:
            meta = email.parser.Parser().parse(f, headersonly=True)
        return [r for r in meta.get_all("Requires-Dist") or [] if "extra" not in r]
    reqs, marker = [], ""
    lines = (read_text(os.path.join(info_dir, "requires.txt")) or "").splitlines()
    for line in filter(None, (s.strip() for s in lines)):
        if line.startswith("["):
            extra, _, marker = line.strip("[]").partition(":")
            marker = None if extra else marker  # None: inside an extra, dropped
        elif marker is not None:
            reqs.append(f"{line}; {marker}" if marker else line)
    return reqs


def read_dist(info_dir):
    """A Dist from an .egg-info or .dist-info directory."""
    meta_file = "METADATA" if info_dir.endswith(".dist-info") else "PKG-INFO"
    with open(os.path.join(info_dir, meta_file), encoding="utf-8") as f:
        meta = email.parser.Parser().parse(f, headersonly=True)
    entry_points = read_text(os.path.join(info_dir, "entry_points.txt"))
    return Dist(meta, requires_from(info_dir), entry_points)


def read_text(path):
    """The file's text, or None when it does not exist."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()


def resolve_link(path, root):
    """Follows symlinks as if root were '/'; returns the real path inside root, or None when
    the link points outside root or to nothing."""
    for _ in range(40):
        if not os.path.islink(path):
            return path if os.path.exists(path) else None
        target = os.readlink(path)
        base = root if os.path.isabs(target) else os.path.dirname(path)
        path = os.path.normpath(os.path.join(base, target.lstrip("/")))
        if not path.startswith(root.rstrip("/") + "/"):
            return None
    return None


def add_tree(dist, path, arc, root):
    """Adds file or directory path as arc to dist.files, with symlinks resolved inside root."""
    real = resolve_link(path, root)
    if real is None:
        log(f"  dropped {arc}: symlink to {os.readlink(path)} outside the package")
    elif os.path.isdir(real):
        for entry in sorted(os.listdir(real)):
            if entry != "__pycache__" and not entry.endswith(".pyc"):
                add_tree(dist, os.path.join(real, entry), f"{arc}/{entry}", root)
    elif arc in dist.files and not filecmp.cmp(dist.files[arc], real, shallow=False):
        raise RuntimeError(f"{dist.name}: two different {arc}")
    else:
        dist.files[arc] = real


def top_name(entry):
    """'six.py' -> 'six'; 'foo.cpython-311-x86_64-linux-gnu.so' -> 'foo'; 'numpy' -> 'numpy'."""
    return entry.split(".")[0]


def collect(debs, cache):
    """Unpacks the .debs and groups their files into Dists; returns {name: Dist}."""
    parts = []  # (has metadata, package, deb, tree, root, [entries])
    dists, owner = {}, {}  # owner: top-level name -> Dist
    for package, deb in sorted(debs.items()):
        tree = unpack(deb, cache)
        for root in python_roots(tree):
            entries = sorted(os.listdir(root))
            infos = [e for e in entries if e.endswith((".egg-info", ".dist-info"))]
            for info in infos:
                dist = read_dist(os.path.join(root, info))
                dist = dists.setdefault(dist.name, dist)
                owner.update((top_name(e), dist) for e in entries if e not in infos)
            parts.append((bool(infos), package, deb, tree, root,
                          [e for e in entries if e not in infos]))
    for _, package, deb, tree, root, entries in sorted(parts, key=lambda p: not p[0]):
        for entry in entries:
            dist = owner.get(top_name(entry))
            if dist is None:
                raise RuntimeError(f"{package}: no distribution owns {entry}")
            if package not in dist.packages:
                dist.packages.append(package)
                dist.debs.append(os.path.basename(deb))
            dist.top_level.add(top_name(entry))
            add_tree(dist, os.path.join(root, entry), entry, tree)
    return dists


def depends_requires(dist, debs, dist_of):
    """Requirements from the Debian Depends of dist's packages, on the other dists built."""
    specs = {}
    for package in dist.packages:
        for group in parse_depends(deb_fields(debs[package]).get("Depends")):
            for name, op, version in group:
                other = dist_of.get(name)
                if other is None or other is dist:
                    continue
                spec = specs.setdefault(other.name, set())
                if op:
                    op = {"<<": "<", ">>": ">", "=": "=="}.get(op, op)
                    spec.add(op + pep440(version))
                break
    return specs


def requirements(dist, debs, dist_of):
    """Requires-Dist lines: the metadata's (no extras), plus Debian Depends it does not name."""
    reqs = list(dist.requires)
    named = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", r).group(0)).lower()
             for r in reqs}
    for name, spec in sorted(depends_requires(dist, debs, dist_of).items()):
        if re.sub(r"[-_.]+", "-", name).lower() not in named:
            reqs.append(name + merge_specs(spec))
    return reqs


def merge_specs(specs):
    """{'>=1.18.5', '>=1.22.0', '<2'} -> '<2,>=1.22.0': only the highest lower bound."""
    lower = [s for s in specs if s.startswith(">=")]
    keep = [s for s in specs if not s.startswith(">=")]
    if lower:
        keep.append(max(lower, key=lambda s: tuple(int(n) for n in re.findall(r"\d+", s))))
    return ",".join(sorted(keep))


# ---------------------------------------------------------------- wheels


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def wheel_tag(dist):
    """cp311-cp311-linux_x86_64 when dist has extension modules, else py3-none-any."""
    tags = {m.group(1) for f in dist.files if (m := re.search(r"\.cpython-(\d+)-.*\.so$", f))}
    if not tags and not any(f.endswith(".so") for f in dist.files):
        return "py3-none-any"
    if len(tags) != 1:
        raise RuntimeError(f"{dist.name}: extension modules for {sorted(tags) or 'no'} CPython")
    cp = "cp" + tags.pop()
    return f"{cp}-{cp}-{sysconfig.get_platform().replace('-', '_').replace('.', '_')}"


def metadata_text(dist, reqs):
    """METADATA 2.1: a few single-line fields of the Debian metadata plus Requires-Dist."""
    lines = ["Metadata-Version: 2.1", f"Name: {dist.name}", f"Version: {dist.version}"]
    for field in ("Summary", "Home-page", "Author", "Author-email", "License",
                  "Requires-Python", "Classifier", "Project-URL"):
        for value in dist.meta.get_all(field) or []:
            value = " ".join(str(value).split("\n")[0].split())
            if value and value != "UNKNOWN":
                lines.append(f"{field}: {value}")
    lines += [f"Requires-Dist: {r}" for r in reqs]
    return "\n".join(lines) + "\n\n"


def wheel_members(dist, reqs, tag):
    """[(path in the wheel, bytes or file on disk)]: the files, then the .dist-info files."""
    info = f"{escape(dist.name)}-{dist.version}.dist-info"
    texts = [("METADATA", metadata_text(dist, reqs)),
             ("WHEEL", f"Wheel-Version: 1.0\nGenerator: {GENERATOR}\n"
                       f"Root-Is-Purelib: {'true' if tag == 'py3-none-any' else 'false'}\n"
                       f"Tag: {tag}\n"),
             ("top_level.txt", "".join(f"{t}\n" for t in sorted(dist.top_level))),
             ("DEBIAN_SOURCES", "".join(f"{d}\n" for d in sorted(dist.debs)))]
    if dist.entry_points:
        texts.append(("entry_points.txt", dist.entry_points))
    return (sorted(dist.files.items())
            + [(f"{info}/{name}", text.encode("utf-8")) for name, text in texts])


def escape(name):
    """The distribution part of a wheel file name (PEP 427): scikit-learn -> scikit_learn."""
    return re.sub(r"[-_.]+", "_", name).lower()


def zip_info(arcname, mode=0o644):
    """A deflated member with a fixed timestamp (same bytes on every run) and Unix mode bits."""
    info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((mode & 0o777) | 0o100000) << 16
    info.create_system = 3  # Unix, so the mode bits above are honoured
    return info


def write_wheel(path, members):
    """Writes the wheel atomically, RECORD (sha256 + size of every member) last."""
    record = []
    info_dir = members[-1][0].split("/")[0]
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with zipfile.ZipFile(tmp, "w", compresslevel=6) as zf:
            for arcname, source in members:
                mode = 0o644
                if isinstance(source, str):
                    mode = os.stat(source).st_mode
                    with open(source, "rb") as f:
                        source = f.read()
                zf.writestr(zip_info(arcname, mode), source)
                record.append(f"{arcname},{record_hash(source)},{len(source)}\n")
            record.append(f"{info_dir}/RECORD,,\n")
            zf.writestr(zip_info(f"{info_dir}/RECORD"), "".join(record).encode("utf-8"))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def wheel_is_current(path, members):
    """True when path is a readable wheel with the same members in the same order, the same
    .dist-info files (so the same generator and source .debs) and payload files of the same
    sizes (cheap: the payload is not decompressed)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            info_dir = members[-1][0].split("/")[0]
            if names != [a for a, _ in members] + [f"{info_dir}/RECORD"]:
                return False
            return all(zf.read(a) == s if isinstance(s, bytes)
                       else zf.getinfo(a).file_size == os.path.getsize(s) for a, s in members)
    except (OSError, zipfile.BadZipFile, KeyError):
        return False


def build_one(dist, reqs, out_dir):
    """Builds (or keeps) dist's wheel in out_dir; returns (path, 'built' or 'kept', seconds)."""
    start = time.monotonic()
    tag = wheel_tag(dist)
    path = os.path.join(out_dir, f"{escape(dist.name)}-{dist.version}-{tag}.whl")
    members = wheel_members(dist, reqs, tag)
    if wheel_is_current(path, members):
        return path, "kept", time.monotonic() - start
    write_wheel(path, members)
    return path, "built", time.monotonic() - start


def build_all(out_dir, cache=None):
    """Builds every wheel into out_dir (created if needed); returns the wheel paths, sorted."""
    cache = cache or default_cache()
    os.makedirs(out_dir, exist_ok=True)
    with CacheLock(cache):
        debs = download_all(cache)
        dists = collect(debs, cache)
    dist_of = {p: d for d in dists.values() for p in d.packages}
    jobs = {d.name: requirements(d, debs, dist_of) for d in dists.values()}
    paths = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = [pool.submit(build_one, dists[n], reqs, out_dir) for n, reqs in jobs.items()]
        for future in concurrent.futures.as_completed(futures):
            path, what, seconds = future.result()
            size = os.path.getsize(path) / 1e6
            log(f"{what:5} {os.path.basename(path)}  {size:.1f} MB  {seconds:.1f} s")
            paths.append(path)
    return sorted(paths)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="directory to write the wheels into")
    parser.add_argument("--cache", default=default_cache(), help="download/unpack cache")
    parser.add_argument("--list-native-libs", action="store_true",
                        help="print the apt packages with native libraries the modules need")
    parser.add_argument("--install-native-libs", action="store_true",
                        help="apt-get install the missing ones (needs root)")
    args = parser.parse_args(argv)
    if not (args.out or args.list_native_libs or args.install_native_libs):
        parser.error("nothing to do: give --out DIR and/or --install-native-libs")
    if args.list_native_libs:
        for package in native_lib_packages(args.cache):
            log(f"{package}\t{'installed' if is_installed(package) else 'missing'}")
    if args.install_native_libs:
        install_native_libs(args.cache)
    if args.out:
        start = time.monotonic()
        paths = build_all(args.out, args.cache)
        log(f"{len(paths)} wheels in {os.path.abspath(args.out)} "
            f"({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
