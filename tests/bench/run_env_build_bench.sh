#!/bin/sh
# Environment build benchmark: giskard-supervisor's cold and cached env builds against
# `python -m venv` + `pip install` (see env_build_bench.py). Prints a Markdown table.
#
#   tests/bench/run_env_build_bench.sh [BUILD_DIR] [env_build_bench.py options...]
#
# BUILD_DIR defaults to build/ci (an optimized build: cmake --preset ci && cmake --build
# --preset ci --target giskard-supervisor worker_shim_wheel). Options: --runs N (default 5),
# --cached N (default 50). Takes about two minutes; every step is bounded by a timeout.
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

build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if grep -q '^GSK_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  build_type="$build_type, ASan+UBSan"
fi
case "$build_type" in
  Release*|RelWithDebInfo*) ;;
  *) echo "note: $build is a '${build_type:-unknown}' build; numbers from an optimized build" \
          "(preset ci) are the ones to quote" >&2 ;;
esac

exec /usr/bin/python3 -B "$here/env_build_bench.py" --binary "$binary" \
  --build-type "$build_type" "$@"
