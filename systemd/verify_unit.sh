#!/usr/bin/env bash
# Checks the systemd files of giskard-supervisor (CTest: systemd_unit_verify).
#
#   verify_unit.sh BINARY [SRC_DIR]
#
# BINARY is the built giskard-supervisor (systemd-analyze verify insists that ExecStart= names an
# existing executable, and /usr/bin/giskard-supervisor is not installed on a build machine).
# SRC_DIR holds the unit, sysusers and tmpfiles files (default: this script's directory).
#
# 1. `systemd-analyze verify` on a copy of the unit whose ExecStart= points at BINARY. It fails on
#    any diagnostic about our unit file; diagnostics about other units of the host are ignored.
# 2. `systemd-analyze security --offline=true`: prints the exposure table and score (not judged).
# 3. As root: systemd-sysusers and systemd-tmpfiles --create into a scratch root, failing on any
#    diagnostic (this also checks that the tmpfiles lines resolve the user sysusers creates).
set -euo pipefail

UNIT=giskard-supervisor.service
binary=${1:-}
src=${2:-$(cd "$(dirname "$0")" && pwd)}

fail() { echo "FAIL: $*" >&2; exit 1; }

[[ -n $binary ]] || fail "usage: $0 BINARY [SRC_DIR]"
[[ -x $binary ]] || fail "$binary is missing or not executable: build the giskard-supervisor" \
  "target first (cmake --build BUILD_DIR --target giskard-supervisor)"
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (apt-get install systemd)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The unit under test, with only the program path of ExecStart= replaced.
grep -q '^ExecStart=/usr/bin/giskard-supervisor serve ' "$src/$UNIT" ||
  fail "$UNIT: ExecStart= does not run /usr/bin/giskard-supervisor serve"
sed "s|^ExecStart=/usr/bin/giskard-supervisor |ExecStart=$binary |" "$src/$UNIT" >"$work/$UNIT"

echo "== systemd-analyze verify $UNIT"
# verify exits 0 on unknown keys and unparsable values (it only logs them), so its output is
# what decides. It also loads the units ours depends on (network.target, multi-user.target...)
# and may report problems with the host's own units: only lines naming our unit count. The
# User=/Group= account need not exist on the machine running the test: systemd 252 does not
# check it, and lines about a missing user or group are ignored in case a later version does.
# --man=no: no Documentation= to check; --generators=no: the host's generators are irrelevant.
set +e
out=$(cd "$work" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no --generators=no \
  --recursive-errors=no "./$UNIT" 2>&1)
rc=$?
set -e
[[ -z $out ]] || printf '%s\n' "$out"
ours=$(grep -F "$UNIT" <<<"$out" |
  grep -viE '(user|group) .*(not found|does not exist|unknown)|no such (user|group)' || true)
[[ -z $ours ]] || fail "systemd-analyze verify reported problems with $UNIT (above)"
# A non-zero exit with no line about our unit comes from the host's units: report, don't fail.
((rc == 0)) || echo "note: systemd-analyze verify exited $rc for reasons unrelated to $UNIT"
echo "ok: no diagnostics for $UNIT"

echo "== systemd-analyze security --offline=true $UNIT"
(cd "$work" && SYSTEMD_COLORS=0 systemd-analyze security --offline=true --no-pager "./$UNIT") ||
  fail "systemd-analyze security did not run"

if ((EUID == 0)); then
  echo "== systemd-sysusers and systemd-tmpfiles --create (scratch root)"
  root="$work/root"
  mkdir -p "$root/etc"
  check_quiet() {  # runs "$@"; fails on a non-zero exit or on any warning it prints
    local log
    log=$("$@" 2>&1) || { printf '%s\n' "$log"; fail "$1 failed"; }
    [[ -z $log ]] || printf '%s\n' "$log"
    if grep -qiE 'ignoring|failed|invalid|unknown|bad ' <<<"$log"; then
      fail "$1 reported problems (above)"
    fi
  }
  check_quiet systemd-sysusers --root="$root" "$src/giskard-supervisor.sysusers"
  grep -q '^giskard-supervisor:x:[0-9]*:[0-9]*:[^:]*:/var/lib/giskard-supervisor:' \
    "$root/etc/passwd" || fail "sysusers did not create the user with its home"
  check_quiet systemd-tmpfiles --root="$root" --create "$src/giskard-supervisor.tmpfiles"
  uid=$(stat -c %u "$root/var/lib/giskard-supervisor/tmp")
  mode=$(stat -c %a "$root/var/lib/giskard-supervisor/tmp")
  [[ $uid != 0 && $mode == 750 ]] || fail "tmpfiles made tmp/ with uid $uid mode $mode"
  echo "ok: sysusers and tmpfiles"
else
  echo "skip: sysusers/tmpfiles checks need root (they chown into a scratch root)"
fi
