#!/bin/bash
# The system's libslirp against a migration stream's slirp state that
# claims a 3.4 GiB socket buffer (tests/repro/libslirp-state-load.c, the
# reproducer docs/libslirp-report.md hands to libslirp's maintainers).
# QEMU passes the stream's slirp section to slirp_state_load() as it is,
# and cannot bound what it does not parse; until libslirp refuses the
# length, the test is a named expected failure.  TAP output.
# Usage: tests/libslirp-state-load-test.sh OUTDIR
set -uo pipefail
. "$(dirname "$0")/tap.sh"
out=$1
mkdir -p "$out"
version=$(pkg-config --modversion slirp 2>/dev/null)
# shellcheck disable=SC2046  # pkg-config's flags are separate words
cc -Wall -Werror -o "$out/libslirp-state-load" "$(dirname "$0")/repro/libslirp-state-load.c" \
  $(pkg-config --cflags --libs slirp glib-2.0) > "$out/libslirp-state-load.build" 2>&1
tap_ok $? "the reproducer builds against the system's libslirp (${version:-none})" ||
  sed 's/^/# /' "$out/libslirp-state-load.build"
timeout 60 "$out/libslirp-state-load" > "$out/libslirp-state-load.log" 2>&1
rc=$?
sed 's/^/# /' "$out/libslirp-state-load.log"
if [ $rc = 0 ] && grep -q "slirp_state_load() returned -" "$out/libslirp-state-load.log"; then
  tap_ok 0 "libslirp refuses a socket buffer length from the state"
elif grep -q "failed to allocate 3688618971 bytes" "$out/libslirp-state-load.log"; then
  tap_todo "libslirp refuses a socket buffer length from the state" \
    "libslirp $version allocates the 3688618971 bytes the state asks for (reported with this reproducer: docs/libslirp-report.md)"
else
  tap_ok 1 "libslirp refuses a socket buffer length from the state (exit status $rc, and neither a refusal nor the known allocation)"
fi
tap_done
