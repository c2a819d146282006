#!/usr/bin/env bash
# Installs the Debian 12 packages giskard-supervisor needs to build, test and run, if missing.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git clang
  libboost1.81-dev libsqlitecpp-dev libsqlite3-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libcli11-dev libtomlplusplus-dev libsystemd-dev libssl-dev
  libgtest-dev libgmock-dev
  python3 python3-venv python3-pip-whl python3-setuptools-whl sqlite3 curl systemd procps openssl
  # tests/e2e/test_unmanaged.py: a WebSocket client this project did not write.
  python3-websockets
  # Run time of tests/models (Debian's numpy/scipy/scikit-learn/pandas repacked as wheels, see
  # tests/models/README.md): the native libraries their compiled modules link to, and tzdata
  # (pytz, dateutil). Never python3-sklearn/python3-scipy/python3-pandas: python3-scipy pulls
  # libboost-dev (1.74) through python3-pythran, which conflicts with libboost1.81-dev.
  liblbfgsb0 libblas3 liblapack3 libgfortran5 libgomp1 libstdc++6 libgcc-s1 tzdata
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
