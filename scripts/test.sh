#!/usr/bin/env bash
# Sets everything up on Debian 12 and runs the whole test suite twice: under ASan+UBSan, then in
# the CI build (both with warnings as errors): unit, integration and end-to-end tests. Tests
# labelled ci_only (a second run of a file in another mode) run in the CI pass only.
# GSK_SKIP_ASAN=1 skips the sanitizer pass. Ends with ctest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
JOBS="${GSK_JOBS:-$(nproc)}"
status=0
# ccache keeps its default cache (~/.cache/ccache), and paths inside the checkout are hashed as
# relative ones (and the build directory not at all), so that a fresh clone elsewhere on the same
# machine reuses what an earlier build compiled.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

run_preset() {
  local preset=$1
  shift
  echo "=== $preset: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$JOBS"
  echo "=== $preset: test"
  ctest --preset "$preset" -j "$JOBS" --timeout 600 "$@" || status=1
}

if [[ "${GSK_SKIP_ASAN:-0}" != 1 ]]; then
  run_preset asan -LE ci_only
fi
run_preset ci
exit $status
