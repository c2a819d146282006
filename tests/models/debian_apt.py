#!/usr/bin/env python3
"""The Debian side of debian_wheels.py: `apt-get download` the scientific stack's .debs into a
cache, unpack them with `dpkg-deb -x`, and find/install the native libraries they link to.

Standard library only; nothing here installs a Python package. The cache (default
$GSK_DEBIAN_WHEELS_CACHE or ~/.cache/giskard-supervisor/debian-wheels) holds debs/*.deb and
unpacked/<deb name>/; once filled, nothing needs the network. An flock on CACHE/lock keeps two
processes from downloading or unpacking into it at the same time.
"""

import email.parser
import fcntl
import functools
import glob
import os
import re
import shutil
import subprocess
import time

ROOT_PACKAGES = ("python3-numpy", "python3-scipy", "python3-sklearn", "python3-sklearn-lib",
                 "python3-joblib", "python3-threadpoolctl", "python3-pandas", "python3-pandas-lib")
# python3-* Depends that are not followed: nothing imports them at run time.
SKIPPED_DEPENDS = {
    "python3-pythran": "scipy's build-time transpiler (pulls libboost-dev); output compiled in",
    "python3-decorator": "not imported by scipy 1.10",
    "python3-pkg-resources": "only an optional fallback in pytz; numpy/pandas/joblib never use it",
}
DATA_PACKAGES = ("tzdata",)  # Debian's pytz and dateutil read /usr/share/zoneinfo
APT_TIMEOUT = 900  # seconds for one apt-get run
DPKG_TIMEOUT = 300
LOCK_TIMEOUT = 1800  # waiting for another process that builds into the same cache
_apt_updated = []  # apt-get update runs at most once per process


def log(message):
    print(message, flush=True)


def default_cache():
    """$GSK_DEBIAN_WHEELS_CACHE, else ~/.cache/giskard-supervisor/debian-wheels."""
    return os.environ.get("GSK_DEBIAN_WHEELS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "giskard-supervisor", "debian-wheels")


def run(cmd, timeout, cwd=None):
    """Runs cmd (bounded); returns its stdout; raises RuntimeError with the output on failure."""
    env = dict(os.environ, LC_ALL="C.UTF-8", DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout}")
    return proc.stdout


def apt_get(args, cwd=None):
    """apt-get ARGS; on failure runs `apt-get update` once (lists may be empty) and retries."""
    cmd = ["apt-get", "-q", "-o", "APT::Sandbox::User=root"] + list(args)
    try:
        return run(cmd, APT_TIMEOUT, cwd)
    except RuntimeError:
        if _apt_updated:
            raise
        _apt_updated.append(True)
        log("apt-get failed; running apt-get update once and retrying")
        run(["apt-get", "-q", "update"], APT_TIMEOUT)
        return run(cmd, APT_TIMEOUT, cwd)


class CacheLock:
    """An exclusive flock on CACHE/lock, waited for at most LOCK_TIMEOUT seconds."""

    def __init__(self, cache):
        os.makedirs(cache, exist_ok=True)
        self.path = os.path.join(cache, "lock")

    def __enter__(self):
        self.file = open(self.path, "w")
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.path} stayed locked for {LOCK_TIMEOUT} s")
                time.sleep(0.5)

    def __exit__(self, *exc):
        self.file.close()  # releases the lock


def cached_deb(debs_dir, package):
    """The newest cached .deb of package, or None."""
    paths = glob.glob(os.path.join(debs_dir, glob.escape(package) + "_*.deb"))
    return max(paths, key=os.path.getmtime) if paths else None


@functools.lru_cache(maxsize=None)
def deb_fields(deb):
    """{field: value} of a .deb's control file (Package, Version, Depends, Provides)."""
    text = run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends", "Provides"],
               DPKG_TIMEOUT)
    return dict(email.parser.Parser().parsestr(text).items())


def parse_depends(text):
    """'a (>= 1), b | c' -> [[('a', '>=', '1')], [('b', None, None), ('c', None, None)]]."""
    groups = []
    for group in filter(None, (g.strip() for g in (text or "").split(","))):
        alts = []
        for alt in group.split("|"):
            m = re.match(r"\s*([^\s(]+)\s*(?:\(\s*([<>=]+)\s*([^)\s]+)\s*\))?", alt)
            alts.append((m.group(1).split(":")[0], m.group(2), m.group(3)))
        groups.append(alts)
    return groups


def download_all(cache):
    """Downloads ROOT_PACKAGES and the python3-* packages they need; returns {package: .deb}."""
    debs_dir = os.path.join(cache, "debs")
    os.makedirs(debs_dir, exist_ok=True)
    wanted, debs, provided = set(ROOT_PACKAGES), {}, {}
    while wanted - set(debs):
        missing = sorted(p for p in wanted - set(debs) if not cached_deb(debs_dir, p))
        if missing:
            log("apt-get download " + " ".join(missing))
            apt_get(["download"] + missing, cwd=debs_dir)
        for package in sorted(wanted - set(debs)):
            debs[package] = cached_deb(debs_dir, package)
            fields = deb_fields(debs[package])
            for virtual in parse_depends(fields.get("Provides")):
                provided[virtual[0][0]] = package
            for group in parse_depends(fields.get("Depends")):
                name = group[0][0]
                if name.startswith("python3-") and name not in SKIPPED_DEPENDS:
                    wanted.add(name)
        wanted = {provided.get(p, p) for p in wanted}
    return debs


def unpack(deb, cache):
    """dpkg-deb -x into CACHE/unpacked/<deb name> (once); returns that directory."""
    target = os.path.join(cache, "unpacked", os.path.basename(deb)[:-len(".deb")])
    if not os.path.isdir(target):
        tmp = f"{target}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        run(["dpkg-deb", "-x", deb, tmp], DPKG_TIMEOUT)
        os.replace(tmp, target)
    return target


def native_lib_packages(cache=None):
    """Sorted lib* apt packages (not python3-*, not libboost*) the downloaded .debs depend on."""
    cache = cache or default_cache()
    with CacheLock(cache):
        debs = download_all(cache)
    libs = set()
    for deb in debs.values():
        for group in parse_depends(deb_fields(deb).get("Depends")):
            name = group[0][0]  # the first alternative: libblas3 | libblas.so.3 -> libblas3
            if name.startswith("lib") and not name.startswith("libboost") and ".so" not in name:
                libs.add(name)
    return sorted(libs)


def is_installed(package):
    """True when dpkg has package installed."""
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc.returncode == 0 and proc.stdout.strip().endswith(" installed")


def install_native_libs(cache=None):
    """apt-get installs the missing native libs (and tzdata); returns what it installed."""
    missing = [p for p in native_lib_packages(cache) + list(DATA_PACKAGES)
               if not is_installed(p)]
    if not missing:
        log("native libraries: all present")
        return []
    if os.geteuid() != 0:
        raise PermissionError("apt-get install needs root; missing: " + " ".join(missing))
    plan = apt_get(["install", "-s", "--no-install-recommends"] + missing)
    bad = re.findall(r"^(?:Inst|Remv) (libboost\S*|python3-\S+)", plan, re.M)
    if bad:
        raise RuntimeError(f"installing {missing} would touch {sorted(set(bad))}: refused")
    log("apt-get install " + " ".join(missing))
    apt_get(["install", "-y", "--no-install-recommends"] + missing)
    return missing
