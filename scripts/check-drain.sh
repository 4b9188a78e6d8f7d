#!/bin/bash
# make check-drain: tests/drain-test.sh on a fleet of its own (make fleet),
# removed afterwards.  Ends with "N passed, M failed, K skipped"; exits
# non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

"$TOP/scripts/fleet-up.sh" > /dev/null || exit 1
log=$BUILD/check-drain.log
timeout 1200 "$TOP/tests/drain-test.sh" "$BUILD/fleet" > "$log" 2>&1
rc=$?
cat "$log"
read -r passed failed skipped xfailed < <(python3 "$TOP/tests/tap.py" count "$log" "$rc" | head -n 1)
# make fleet-down takes every daemon and QEMU of the fleet with it
"$TOP/scripts/fleet-down.sh"
sleep 1
left=$(pgrep -f -c "$BUILD/fleet/")
if [ "$left" = 0 ]; then
  echo "ok: make fleet-down left no process of the fleet"; passed=$((passed + 1))
else
  echo "not ok: make fleet-down left $left processes of the fleet"; failed=$((failed + 1))
  pgrep -a -f "$BUILD/fleet/" | cut -c1-160
fi
[ "$xfailed" = 0 ] || echo "($xfailed expected failures)"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
