#!/usr/bin/env python3
"""Times venv creation + pip install of local wheels, two ways, for each interpreter:

  venv:        python -m venv V                 then  V/bin/pip install ...
  wheel:       python -m venv --without-pip V   then  V/bin/python PIP_WHL/pip install ...

  unpacked:    python -m venv --without-pip V   then  V/bin/python PIP_DIR/pip install ...
               (PIP_DIR = the pip wheel extracted once and byte-compiled with compileall)

all with --no-index --find-links DIR gsk-alpha==2.0.0 gsk-tool gsk-pkg-000 (5 distributions with
the dependencies), plus pip-outside with 20 independent wheels. Prints a Markdown table of medians.

    python3 bench_install.py [--runs 5] [--only debian,py313]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_wheels  # noqa: E402
import test_wheels  # noqa: E402  (interpreter discovery, pip environment)

TIMEOUT = 300
REQS = ["gsk-alpha==2.0.0", "gsk-tool", "gsk-pkg-000"]
PIP_FLAGS = ["install", "--no-input", "--disable-pip-version-check", "--no-cache-dir"]


def timed(cmd):
    start = time.monotonic()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True,
                   timeout=TIMEOUT, env=test_wheels.pip_env())
    return time.monotonic() - start


def unpack_pip(python, pip_whl, scratch):
    """Extracts the pip wheel once and byte-compiles it for python; returns the directory."""
    target = os.path.join(scratch, "pip-" + os.path.basename(os.path.dirname(
        os.path.dirname(python))) + "-" + os.path.basename(pip_whl)[:-4])
    if not os.path.isdir(target):
        with zipfile.ZipFile(pip_whl) as zf:
            zf.extractall(target)
        subprocess.run([python, "-m", "compileall", "-q", target], check=True, timeout=TIMEOUT,
                       stdout=subprocess.DEVNULL)
    return target


def one_run(python, pip_whl, wheels, reqs, method, scratch):
    venv = tempfile.mkdtemp(prefix="bench-venv-", dir=scratch)
    try:
        venv_cmd = [python, "-m", "venv", venv] if method == "venv" else \
            [python, "-m", "venv", "--without-pip", venv]
        t_venv = timed(venv_cmd)
        if method == "venv":
            pip = [os.path.join(venv, "bin", "pip")]
        elif method == "wheel":
            pip = [os.path.join(venv, "bin", "python"), os.path.join(pip_whl, "pip")]
        else:
            pip = [os.path.join(venv, "bin", "python"),
                   os.path.join(unpack_pip(python, pip_whl, scratch), "pip")]
        t_pip = timed(pip + PIP_FLAGS + ["--no-index", "--find-links", wheels] + reqs)
        return t_venv, t_pip
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def measure(python, pip_whl, wheels, reqs, method, runs, scratch):
    samples = [one_run(python, pip_whl, wheels, reqs, method, scratch) for _ in range(runs)]
    venv = statistics.median(s[0] for s in samples)
    pip = statistics.median(s[1] for s in samples)
    total = statistics.median(s[0] + s[1] for s in samples)
    return venv, pip, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated labels (debian,py38,...)")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    scratch = tempfile.mkdtemp(prefix="gsk-bench-")
    try:
        wheels = os.path.join(scratch, "wheels")
        make_wheels.build_all(wheels, extra=20)
        many = [f"gsk-pkg-{i:03d}" for i in range(20)]
        print(f"runs={args.runs}, load average at start {os.getloadavg()[0]:.2f}, "
              f"{os.cpu_count()} CPUs\n")
        print("| interpreter | pip | method | venv s | install s | total s |")
        print("|---|---|---|---|---|---|")
        for label, python, pip_whl in test_wheels.find_interpreters():
            if python is None or pip_whl is None or (only and label not in only):
                continue
            pip_name = os.path.basename(pip_whl).split("-py")[0]
            cases = [("A with-pip: venv + V/bin/pip, 3 reqs", REQS, "venv"),
                     ("B pip-outside: --without-pip + PIP_WHL/pip, 3 reqs", REQS, "wheel"),
                     ("C pip-outside: --without-pip + unpacked compiled pip, 3 reqs", REQS,
                      "unpacked"),
                     ("D as B, 20 wheels", many, "wheel"),
                     ("E as C, 20 wheels", many, "unpacked")]
            for name, reqs, method in cases:
                venv, pip, total = measure(python, pip_whl, wheels, reqs, method, args.runs,
                                           scratch)
                print(f"| {label} | {pip_name} | {name} | {venv:.2f} | {pip:.2f} | {total:.2f} |",
                      flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
