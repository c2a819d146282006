#!/bin/sh
# Model call benchmark: POST /api/v1/kernels/{name}/predict of giskard-supervisor against the
# shim-protocol floor (a client talking to a worker directly) and against FastAPI/uvicorn,
# Flask/gunicorn and a stdlib HTTP server serving the same scikit-learn model, and the same calls
# through an unmanaged worker (`giskard worker start`, WebSocket on loopback; see model_bench.py).
# Prints Markdown tables with the README's goals next to the numbers.
#
#   tests/bench/run_model_bench.sh [BUILD_DIR] [model_bench.py options...]
#
# BUILD_DIR defaults to build/ci (an optimized build: cmake --preset ci && cmake --build
# --preset ci --target giskard-supervisor worker_shim_wheel model_call_bench). model_call_bench
# is the C++ client (without it a Python client is used, which adds tens of µs to every call).
# Options: --quick (a smoke test, about a minute), --calls N, --iris-calls N, --seconds S,
# --rows-calls N, --burst N, --no-pin, --keep, --binary PATH (another daemon binary, e.g. a
# snapshot that finds its shim wheel itself), --client PATH (another model_call_bench). Needs Debian's peers: apt-get install python3-fastapi python3-uvicorn python3-flask
# gunicorn (never python3-sklearn/scipy/numpy: they conflict with the project's Boost; the
# benchmark builds its own wheels of them with tests/models/debian_wheels.py, cached).
# Takes about three minutes; every wait is bounded.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build/ci
case "${1:-}" in
  ""|-*) ;;
  *) build=$1; shift ;;
esac

binary=$build/supervisor/giskard-supervisor
client=$build/tests/bench/model_call_bench
prev=""
for arg in "$@"; do
  [ "$prev" = "--binary" ] && binary=$arg
  [ "$prev" = "--client" ] && client=$arg
  prev=$arg
done
if [ ! -x "$binary" ]; then
  echo "missing $binary; build it first:" >&2
  echo "  cmake --build $build --target giskard-supervisor worker_shim_wheel" >&2
  exit 2
fi
if [ ! -x "$client" ]; then
  echo "note: no $client (cmake --build $build --target model_call_bench): the Python" \
       "client will be used" >&2
fi
missing=""
for m in fastapi uvicorn flask gunicorn; do
  /usr/bin/python3 -c "import $m" 2>/dev/null || missing="$missing $m"
done
if [ -n "$missing" ]; then
  echo "missing the peers' frameworks:$missing; install them with:" >&2
  echo "  apt-get install -y python3-fastapi python3-uvicorn python3-flask gunicorn" >&2
  exit 2
fi

build_type=""
if [ "$binary" = "$build/supervisor/giskard-supervisor" ]; then
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
  if grep -q '^GSK_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    build_type="$build_type, ASan+UBSan"
  fi
  case "$build_type" in
    Release*|RelWithDebInfo*) ;;
    *) echo "note: $build is a '${build_type:-unknown}' build; numbers from an optimized build" \
            "(preset ci) are the ones to quote" >&2 ;;
  esac
fi

# 1,000 connections at once in the burst: the client needs descriptors for them.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 8192 ]; then
  ulimit -n 8192 2>/dev/null || true
fi

exec /usr/bin/python3 -B "$here/model_bench.py" --binary "$binary" --client "$client" \
  --build-type "$build_type" "$@"
