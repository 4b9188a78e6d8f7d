#!/bin/bash
# make check: the in-tree qtests against the patched build, then the
# cross-version migration matrix against Debian's real QEMU binaries.
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bin=$BUILD/bin
qtests=$BUILD/qemu-build/tests/qtest
logs=$BUILD/check-logs
rm -rf "$logs" && mkdir -p "$logs"
passed=0 failed=0 xfailed=0
failures=() xfails=()

# run_tap LABEL LOG COMMAND... : run a glib TAP test, count its results.
run_tap() {
  local label=$1 log=$2; shift 2
  local rc p f x plan ran
  (cd "$BUILD/qemu-build" && timeout 900 "$@" --tap -k) > "$log" 2>&1
  rc=$?
  p=$(grep -c '^ok ' "$log")
  f=$(grep '^not ok ' "$log" | grep -vc '# TODO')
  x=$(grep '^not ok ' "$log" | grep -c '# TODO')
  plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  ran=$((p + f + x))
  while read -r line; do failures+=("$label: ${line#not ok }"); done < <(grep '^not ok ' "$log" | grep -v '# TODO')
  while read -r line; do xfails+=("$label: ${line#not ok }"); done < <(grep '^not ok ' "$log" | grep '# TODO')
  if [ "$ran" = 0 ] || [ "${plan:-$ran}" != "$ran" ] || { [ $rc != 0 ] && [ "$f" = 0 ]; }; then
    failures+=("$label: exited $rc after $ran of ${plan:-?} tests (see $log)")
    f=$((f + 1))
  fi
  passed=$((passed + p)) failed=$((failed + f)) xfailed=$((xfailed + x))
  printf '%-48s %4d passed, %d failed, %d expected failures\n' "$label" "$p" "$f" "$x"
}

export QTEST_QEMU_BINARY=./qemu-system-x86_64
echo "== in-tree qtests, patched build"
run_tap "qos-test" "$logs/qos-test.log" "$qtests/qos-test"
for t in $(git -C "$BUILD/qemu" diff --name-only --diff-filter=A abiguard-base HEAD -- 'tests/qtest/*-test.c'); do
  t=$(basename "${t%.c}")
  run_tap "$t" "$logs/$t.log" "$qtests/$t"
done

echo "== cross-version migration matrix (source -> destination)"
# The build under test is named exactly as QTEST_QEMU_BINARY: the qtest
# takes any other destination for an unpatched QEMU.
qemu_for() {
  case $1 in
    patched) echo "$QTEST_QEMU_BINARY" ;;
    stock-7.2) echo "$bin/qemu-stock-7.2-qtest" ;;  # see make-wrappers.sh
    *) echo "$bin/qemu-$1" ;;
  esac
}
for pair in stock-7.2:patched stock-10.0.2:patched patched:stock-10.0.2; do
  src=${pair%%:*} dst=${pair##*:}
  QTEST_QEMU_BINARY_SRC=$(qemu_for "$src") QTEST_QEMU_BINARY_DST=$(qemu_for "$dst") \
    run_tap "layout-migration $src -> $dst" "$logs/matrix-$src-$dst.log" \
    "$qtests/virtio-layout-migration-test"
done

if [ ${#xfails[@]} -gt 0 ]; then
  echo "== expected failures (known limitations, with their reasons)"
  printf '  %s\n' "${xfails[@]}"
fi
if [ ${#failures[@]} -gt 0 ]; then
  echo "== FAILURES (logs in $logs)"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
