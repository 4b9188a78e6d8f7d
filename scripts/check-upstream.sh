#!/bin/bash
# make check-upstream: upstream's whole x86_64 qtest suite against the
# patched build and against an unpatched build of the same source, with
# /dev/kvm hidden; writes build/upstream/{unpatched,patched}/results.json
# (build/10.2/upstream/ with BASE=10.2) and the table of
# docs/upstream-qtests.md.  Fails if a test fails on the
# patched build (a test that failed only in a known race gets one more run), or if any test's
# outcome differs between the builds (a "differs" mark of the table).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$BASE_BUILD/upstream
mkdir -p "$out"
"$TOP/scripts/build-qemu.sh" --all
"$TOP/scripts/build-unpatched.sh" --all

rc=0
for build in unpatched patched; do
  dir=$BASE_BUILD/qemu-build
  [ $build = unpatched ] && dir=$BASE_BUILD/unpatched/qemu-build
  echo "== upstream x86_64 qtests, $build build of $BASE_VERSION"
  mkdir -p "$out/$build"
  "$TOP/scripts/without-kvm.sh" "$TOP/scripts/upstream-qtests.py" \
    "$dir" "$out/$build/results.json" "$@" || { [ $build = unpatched ] || rc=1; }
done
"$TOP/scripts/upstream-qtests-table.py" "$out/unpatched/results.json" \
  "$out/patched/results.json" > "$out/table.md" || rc=1
echo "table: $out/table.md (docs/upstream-qtests.md holds the measured one)"
exit $rc
