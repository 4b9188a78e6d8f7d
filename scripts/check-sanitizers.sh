#!/bin/bash
# make check-sanitizers: the series' qtests on an ASan + UBSan build of the
# patched QEMU of the base (build/qemu-asan, or build/10.2/qemu-asan with
# BASE=10.2; the ccache shared): guest-abi-test,
# virtio-layout-migration-test and qos-test's virtio-blk cases.  A failed
# test or any sanitizer report, from the test or from a QEMU it started,
# fails.  Ends with "N passed, M failed, K skipped" like make check.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

out=$BASE_BUILD/qemu-asan
tests="$(series_qtests) qos-test"
QEMU_OUT=$out EXTRA_CONFIGURE_FLAGS="--enable-asan --enable-ubsan" \
  "$TOP/scripts/build-qemu.sh" --only qemu-system-x86_64 qemu-img \
  $(printf 'tests/qtest/%s ' $tests) || exit 1

logs=$BASE_BUILD/check-sanitizers
mkdir -p "$logs"
export QTEST_QEMU_BINARY=$out/qemu-system-x86_64 QTEST_QEMU_IMG=$out/qemu-img
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
passed=0 failed=0 skipped=0
for t in $tests; do
  args=(--tap -k)
  [ "$t" = qos-test ] && args+=(-r /x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/virtio-blk-pci)
  start=$(date +%s)
  "$out/tests/qtest/$t" "${args[@]}" > "$logs/$t.log" 2>&1
  rc=$?
  # the cases as tests/tap.py reads them (an expected failure counts as
  # failed here: none of these tests has one), and the sanitizers' reports
  read -r ok bad skip xfail < <(python3 "$TOP/tests/tap.py" count "$logs/$t.log" "$rc")
  reports=$(grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$logs/$t.log")
  passed=$((passed + ok)) failed=$((failed + bad + xfail + reports)) skipped=$((skipped + skip))
  if [ "$bad" != 0 ] || [ "$xfail" != 0 ] || [ "$reports" != 0 ] || [ "$ok" = 0 ]; then
    [ "$ok" = 0 ] && failed=$((failed + 1))
    echo "not ok $t: $ok passed, $bad failed, $skip skipped, $reports sanitizer reports, exit $rc (see $logs/$t.log)"
  else
    echo "ok $t: $ok passed, $skip skipped under ASan and UBSan in $(($(date +%s) - start)) s"
  fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
