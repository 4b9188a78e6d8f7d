#!/bin/bash
# make check-deb: the packages of make deb on pristine Debian 13 roots.
# The new host gets the patched QEMU and the archive's libvirt with apt, the
# admin machine the abiguard package alone; tests/deb-host-test.sh then
# migrates to the new host from the old Debian 12 host, and runs the
# preflight from the admin machine.  Ends with "N passed, M failed, K
# skipped"; exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

"$TOP/scripts/make-deb-host.sh" || exit 1
tools=$("$TOP/scripts/make-tools-deb.sh") || exit 1
"$TOP/scripts/make-deb-root.sh" deb-admin "$tools" abiguard "" || exit 1

log=$BUILD/check-deb.log
timeout 900 "$TOP/tests/deb-host-test.sh" "$BUILD/old-host" "$BUILD/deb-host" \
  "$BUILD/deb-admin" "$BUILD/guest" "$QEMU_10_2_SRC_VERSION$ABIGUARD_DEB_SUFFIX" > "$log" 2>&1
rc=$?
cat "$log"
read -r passed failed skipped xfailed < <(python3 "$TOP/tests/tap.py" count "$log" "$rc" | head -n 1)
[ "$xfailed" = 0 ] || echo "($xfailed expected failures)"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
