#!/bin/sh
# Worker supervision benchmark: giskard-supervisor with its fork server (the default) and with
# exec (`[workers] fork_server = false`), against supervisord 4.2.5 (Debian's package
# `supervisor`), in one run: start -> running (1, 50 and 200 workers), kill -9 -> replacement
# running, a REST request's p99 during the 200-worker start, stopping 200 workers, and the
# supervisor's RSS and CPU with 200 idle workers; then the fork server's goals with a verdict
# each (see worker_bench.py). Prints Markdown.
#
#   tests/bench/run_worker_bench.sh [BUILD_DIR] [worker_bench.py options...]
#
# BUILD_DIR defaults to build/ci (an optimized build: cmake --preset ci && cmake --build
# --preset ci --target giskard-supervisor worker_shim_wheel). Options: --runs N (default 5),
# --idle N (default 200), --window S (default 10), --wait-load L (first wait, at most
# --wait-load-seconds S (default 900), until the 1-minute load average is under L), --modes
# fork,exec (default both), --output FILE, --only supervisord (that part alone, no binary
# needed). supervisord is started by the benchmark with its own config in a temporary directory
# (never the system service). Takes a few minutes; every wait is bounded.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build/ci}
[ $# -gt 0 ] && shift

binary=$build/supervisor/giskard-supervisor
if [ ! -x "$binary" ]; then
  echo "missing $binary; build it first:" >&2
  echo "  cmake --build $build --target giskard-supervisor worker_shim_wheel" >&2
  exit 2
fi
if ! ls "$build"/worker-shim/dist/giskard_worker_shim-*.whl >/dev/null 2>&1; then
  echo "missing the worker-shim wheel in $build/worker-shim/dist; build it first:" >&2
  echo "  cmake --build $build --target worker_shim_wheel" >&2
  exit 2
fi
if ! command -v supervisord >/dev/null 2>&1; then
  echo "missing supervisord: apt-get install -y supervisor" >&2
  echo "  (then, where systemd runs: systemctl disable --now supervisor; the benchmark" >&2
  echo "  starts its own supervisord)" >&2
  exit 2
fi

build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if grep -q '^GSK_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  build_type="$build_type, ASan+UBSan"
fi
case "$build_type" in
  Release*|RelWithDebInfo*) ;;
  *) echo "note: $build is a '${build_type:-unknown}' build; numbers from an optimized build" \
          "(preset ci) are the ones to quote" >&2 ;;
esac

# 200 workers: each has a socket, a log file and pipes in the supervisor.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 8192 ]; then
  ulimit -n 8192 2>/dev/null || true
fi

exec /usr/bin/python3 -B "$here/worker_bench.py" --binary "$binary" \
  --supervisord "$(command -v supervisord)" --build-type "$build_type" "$@"
