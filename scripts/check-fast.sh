#!/bin/bash
# make check-fast: the harness's unit tests (tests/unit), pyflakes over its
# Python and shellcheck over its shell, as three results.  Needs no root,
# no build and no QEMU.  Ends with "N passed, M failed, K skipped".
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$TOP" || exit 1

passed=0 failed=0
result() { # STATUS LABEL LOG
  if [ "$1" = 0 ]; then
    passed=$((passed + 1)); echo "ok: $2"
  else
    failed=$((failed + 1)); echo "FAILED: $2"; sed 's/^/  /' "$3"
  fi
}
log=$(mktemp) && trap 'rm -f "$log"' EXIT
/usr/bin/python3 -m unittest discover -s tests/unit > "$log" 2>&1
result $? "unit tests: $(grep -E '^Ran [0-9]+ tests' "$log")" "$log"
pyflakes3 scripts/*.py tests/*.py tests/unit/*.py tools/abiguard/*.py > "$log" 2>&1
result $? "pyflakes" "$log"
shellcheck -S warning scripts/*.sh tests/*.sh > "$log" 2>&1
result $? "shellcheck -S warning" "$log"
echo "$passed passed, $failed failed, 0 skipped"
[ "$failed" = 0 ]
