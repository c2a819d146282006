#!/usr/bin/env bash
# Sets everything up on Debian 12 and runs `giskard-supervisor serve` in the foreground with its
# embedded defaults: state in ./state (or $GSK_STATE_DIR), REST on 127.0.0.1:40051, the admin
# socket at <state>/admin.sock. Extra arguments go to `serve`. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release -DGSK_BUILD_TESTS=OFF >/dev/null
cmake --build --preset release --target giskard-supervisor
STATE_DIR="${GSK_STATE_DIR:-$PWD/state}"
echo "run: state in $STATE_DIR; token in $STATE_DIR/api-token;" \
     "try: build/release/supervisor/giskard-supervisor --state-dir $STATE_DIR kernels list"
exec build/release/supervisor/giskard-supervisor serve --state-dir "$STATE_DIR" "$@"
