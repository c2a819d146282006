#!/usr/bin/env bash
# Static checks of the Debian packaging (CTest: packaging_check).
#
#   check_packaging.sh [PACKAGING_DIR]
#
# - config.toml is valid TOML as shipped, and still valid with every commented-out
#   "# key = value" line uncommented (the defaults it documents are well-formed);
# - the maintainer scripts parse as POSIX sh (and pass shellcheck when it is installed).
# Building the .deb itself needs the built binary: `cpack -G DEB` in a release build directory.
set -euo pipefail

dir=${1:-$(cd "$(dirname "$0")" && pwd)}
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - "$dir/config.toml" <<'PY' || fail "config.toml"
import re, sys, tomllib
text = open(sys.argv[1], encoding="utf-8").read()
shipped = tomllib.loads(text)
full = tomllib.loads(re.sub(r"(?m)^# ([a-z_]+ = )", r"\1", text))
# That every key is one the daemon knows is checked by config_test (ShippedConfigLoads), which
# feeds the uncommented file to the real parser.
keys = sum(len(t) for t in full.values())
print(f"ok: config.toml parses as shipped and with its {keys} documented keys uncommented")
PY

for script in postinst prerm postrm; do
  [[ -x $dir/$script ]] || fail "$script is not executable"
  sh -n "$dir/$script" || fail "$script: sh syntax error"
done
if command -v shellcheck >/dev/null; then
  shellcheck -s sh "$dir/postinst" "$dir/prerm" "$dir/postrm" || fail "shellcheck"
fi
echo "ok: maintainer scripts"
