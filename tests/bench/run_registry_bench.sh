#!/bin/sh
# Kernel registry benchmark: starts giskard-supervisor on temporary state directories and prints
# start-up time, REST throughput/latency (against a stdlib http.server peer) and memory.
#
#   tests/bench/run_registry_bench.sh [BUILD_DIR] [registry_bench.py options...]
#
# BUILD_DIR defaults to build/ci (an optimized build: cmake --preset ci && cmake --build
# --preset ci --target giskard-supervisor kernel_registry_bench). Options: --kernels N,
# --seconds S (time limit of each run), --no-pin (do not pin server and client with taskset).
# Takes about a minute; every run is bounded by a request count and a time limit.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build/ci}
[ $# -gt 0 ] && shift

binary=$build/supervisor/giskard-supervisor
bench=$build/tests/bench/kernel_registry_bench
for f in "$binary" "$bench"; do
  if [ ! -x "$f" ]; then
    echo "missing $f; build it first:" >&2
    echo "  cmake --build $build --target giskard-supervisor kernel_registry_bench" >&2
    exit 2
  fi
done

build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if grep -q '^GSK_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  build_type="$build_type, ASan+UBSan"
fi
case "$build_type" in
  Release*|RelWithDebInfo*) ;;
  *) echo "note: $build is a '${build_type:-unknown}' build; numbers from an optimized build" \
          "(preset ci) are the ones to quote" >&2 ;;
esac

exec /usr/bin/python3 -B "$here/registry_bench.py" --binary "$binary" --bench "$bench" \
  --build-type "$build_type" "$@"
