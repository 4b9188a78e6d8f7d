#!/bin/bash
# make check, or a part of it: the in-tree qtests against the patched
# build, the guest ABI and stream of stock machine types against stock
# 10.0.2, real guests, libvirt hosts, and the cross-version migration
# matrix against Debian's real QEMU binaries; the second base, QEMU
# 10.2.2 with its series, against the first and Debian's QEMUs; and
# upstream's own migration-test between each base and Debian's QEMUs.
# Usage: check.sh [PART...]   parts: $ALL_PARTS below, all by default;
# make check-PART runs one.
# Ends with "N passed, M failed, K skipped"; exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

ALL_PARTS="qtest golden stream slirp offered libvirt guest offloads matrix base102 crossversion"
# Too long for make check's budget: make check-releases and
# check-crossversion-all.
LONG_PARTS="releases crossversion-all"
parts=${*:-$ALL_PARTS}
for part in $parts; do
  case " $ALL_PARTS $LONG_PARTS " in *" $part "*) ;; *) die "no part '$part' of make check; the parts: $ALL_PARTS $LONG_PARTS" ;; esac
done

bin=$BUILD/bin
qtests=$BUILD/qemu-build/tests/qtest
logs=$BUILD/check-logs
rm -rf "$logs" && mkdir -p "$logs"
passed=0 failed=0 skipped=0 xfailed=0
failures=() xfails=()

# run_tap LABEL LOG COMMAND... : run a TAP test in the build directory
# RUN_IN (default the 10.0 base's), count its results.
run_tap() {
  local label=$1 log=$2; shift 2
  (cd "${RUN_IN:-$BUILD/qemu-build}" && timeout 900 "$@") > "$log" 2>&1
  count_tap "$label" "$log" $?
}

# count_tap LABEL LOG RC: count the results of a TAP test that wrote LOG and
# exited with RC, as tests/tap.py reads them.
count_tap() {
  local label=$1 log=$2 rc=$3 p f k x kind name
  {
    read -r p f k x
    while read -r kind name; do
      case $kind in
        fail) failures+=("$label: $name (see $log)") ;;
        xfail) xfails+=("$label: $name") ;;
      esac
    done
  } < <(python3 "$TOP/tests/tap.py" count "$log" "$rc")
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k)) xfailed=$((xfailed + x))
  printf '%-48s %4d passed, %d failed, %d skipped, %d expected failures\n' "$label" "$p" "$f" "$k" "$x"
}

# Tests that mostly wait (for TCG guests, for libvirt) run in the
# background, beside the next parts, which leave the second core idle; one
# at a time.  background COUNT COMMAND...: run COMMAND so; the function
# COUNT counts its results once it has ended (collect).
bg_pid='' bg_count=''
background() {
  collect
  "${@:2}" &
  bg_pid=$! bg_count=$1
}
collect() {
  [ -n "$bg_pid" ] || return 0
  wait "$bg_pid"
  "$bg_count"
  bg_pid=
}

# The environment meson gives upstream's qtests (tests/qtest/meson.build).
export QTEST_QEMU_BINARY=./qemu-system-x86_64 QTEST_QEMU_IMG=./qemu-img
export QTEST_QEMU_STORAGE_DAEMON_BINARY=./storage-daemon/qemu-storage-daemon
export PYTHON=$BUILD/qemu-build/pyvenv/bin/python3
# qtest: the series' qtests, qos-test, and upstream's qtests that migrate,
# plug PCI devices or use QMP the series extends.
part_qtest() {
  echo "== in-tree qtests, patched build"
  run_qos_test "$BUILD/qemu-build" "qos-test" "$logs/qos-test"
  for t in $(series_qtests); do
    run_tap "$t" "$logs/$t.log" "$qtests/$t" --tap -k
  done
  # Upstream's, as meson runs them (tests/qtest/meson.build), with /dev/kvm
  # hidden: guests make no progress under KVM here, and these tests pick
  # KVM whenever they can.  migration-test runs the subset in
  # UPSTREAM_MIGRATION_TESTS; make check-upstream runs all of it.
  background count_upstream_10_0 run_upstream_10_0
}
# run_qos_test BUILD_DIR LABEL LOG: upstream's qos-test.  A first run that
# failed only in a case that races under load (tests/tap.py, KNOWN_RACES)
# gets one more run, and is listed with the expected failures; any other
# failure counts.
run_qos_test() {
  local build=$1 label=$2 log=$3 rc cases
  (cd "$build" && timeout 900 "$build/tests/qtest/qos-test" --tap -k) \
    > "$log.first.log" 2>&1
  rc=$?
  if [ $rc != 0 ] && cases=$(python3 "$TOP/tests/tap.py" known-race "$log.first.log"); then
    xfails+=("$label: the first run failed in $cases, which races under load; run again (log: $log.first.log)")
    xfailed=$((xfailed + 1))
    RUN_IN=$build run_tap "$label, second run" "$log.log" \
      "$build/tests/qtest/qos-test" --tap -k
  else
    count_tap "$label" "$log.first.log" $rc
  fi
}
# The 10.0 base's qtest part runs qos-test itself; the 10.2 base's runs it
# with the others, once.
upstream_tests=$(for t in $UPSTREAM_QTESTS_IN_CHECK; do [ $t = qos-test ] || echo $t; done)
run_upstream_10_0() { run_upstream_qtests "$BUILD/qemu-build" 10.0 $upstream_tests; }
count_upstream_10_0() { count_upstream_qtests 10.0 $upstream_tests; }
run_upstream_10_2() { run_upstream_qtests "$BUILD/10.2/qemu-build" 10.2 $UPSTREAM_QTESTS_IN_CHECK; }
count_upstream_10_2() { count_upstream_qtests 10.2 $UPSTREAM_QTESTS_IN_CHECK; }
# run_upstream_qtests BUILD_DIR BASE TEST...; count_upstream_qtests BASE TEST...
run_upstream_qtests() {
  local build=$1 base=$2 t args
  shift 2
  for t in "$@"; do
    args=()
    if [ $t = migration-test ]; then
      for p in $UPSTREAM_MIGRATION_TESTS; do args+=(-p "$p"); done
    fi
    (cd "$build" && timeout 900 "$TOP/scripts/without-kvm.sh" \
       "$build/tests/qtest/$t" --tap -k "${args[@]}") > "$logs/upstream-$base-$t.log" 2>&1
    echo $? > "$logs/upstream-$base-$t.rc"
  done
}
count_upstream_qtests() {
  local base=$1 t
  shift
  echo "== upstream qtests that migrate, plug PCI devices or use QMP the series extends ($base base)"
  for t in "$@"; do
    count_tap "$base upstream: $t" "$logs/upstream-$base-$t.log" "$(cat "$logs/upstream-$base-$t.rc")"
  done
}

# golden: I1, the guest ABI of every machine type against the goldens.
part_golden() {
  echo "== guest ABI against the goldens (I1: stock machine types untouched)"
  local golden=$TOP/tests/golden neg=$logs/golden-negative
  run_tap "golden: stock 10.0.2 machine types" "$logs/golden-stock.log" \
    "$TOP/tests/guest-abi-golden.py" check "$bin/qemu-patched" "$golden/stock-10.0.2"
  run_tap "golden: abiguard machine types" "$logs/golden-abiguard.log" \
    "$TOP/tests/guest-abi-golden.py" check "$bin/qemu-patched" "$golden/abiguard"
  # Negative control: a default changed by hand must make the test fail.
  mkdir -p "$neg" && cp "$golden/stock-10.0.2/pc-i440fx-7.2.txt" "$neg/"
  if ! "$TOP/tests/guest-abi-golden.py" check "$bin/qemu-patched" "$neg" \
         -- -global virtio-blk-device.discard=off > "$neg.log" 2>&1 &&
     grep -q "pc-i440fx-7.2 cold 00:10.0 (blk): features only in golden: BLK_F_DISCARD" "$neg.log"; then
    printf '%-48s %4d passed, %d failed, 0 skipped, 0 expected failures\n' "golden: negative control (discard=off)" 1 0
    passed=$((passed + 1))
  else
    printf '%-48s %4d passed, %d failed, 0 skipped, 0 expected failures\n' "golden: negative control (discard=off)" 0 1
    failures+=("golden negative control: a changed default went unnoticed (see $neg.log)")
    failed=$((failed + 1))
  fi
}

# stream: I1, the migration stream of stock machine types.
part_stream() {
  echo "== migration stream against stock 10.0.2 (I1: stock machine types untouched)"
  run_tap "stream: stock machine types" "$logs/stream.log" \
    "$TOP/tests/migration-stream-compare.py" "$bin/qemu-stock-10.0.2" "$bin/qemu-patched"
}

# slirp: a stream's slirp section goes to libslirp as it is; the
# allocation the fuzzer found there, against the system's libslirp.
part_slirp() {
  echo "== libslirp's state load (docs/libslirp-report.md)"
  run_tap "libslirp: a socket buffer length from the stream" "$logs/libslirp.log" \
    "$TOP/tests/libslirp-state-load-test.sh" "$BUILD/repro"
}

# offered: I6, differences only in what a device offers.
part_offered() {
  echo "== offered-only features: accepted exactly when stock accepts (I6)"
  run_tap "offered-only matrix" "$logs/offered-only.log" \
    "$TOP/tests/offered-only-matrix.py" "$bin/qemu-stock-10.0.2" "$bin/qemu-patched"
}

# libvirt: preflight and virsh migrate between libvirt hosts; they mostly
# wait for libvirt and its idle guests.
part_libvirt() {
  background count_libvirt run_libvirt
}
run_libvirt() {
  timeout 300 "$TOP/tests/preflight-test.sh" "$BUILD/old-host" "$bin/qemu-patched" \
    > "$logs/preflight.log" 2>&1
  echo $? > "$logs/preflight.rc"
  timeout 300 "$TOP/tests/preflight-offloads-test.sh" "$BUILD/old-host" "$bin/qemu-patched" \
    "$bin/qemu-stock-10.0.2" "$BUILD/guest-offloads" > "$logs/preflight-offloads.log" 2>&1
  echo $? > "$logs/preflight-offloads.rc"
  timeout 900 "$TOP/tests/libvirt-migrate-test.sh" "$BUILD/old-host" "$bin/qemu-patched" \
    "$BUILD/guest" > "$logs/libvirt.log" 2>&1
  echo $? > "$logs/libvirt.rc"
}
count_libvirt() {
  echo "== virsh migrate: old host (Debian 12: QEMU 7.2, libvirt 9.0), new hosts (patched, libvirt 11.3)"
  count_tap "preflight: 10 domains, the drain's plan, then virsh migrate" "$logs/preflight.log" "$(cat "$logs/preflight.rc")"
  count_tap "preflight and drain: guests with USO" "$logs/preflight-offloads.log" "$(cat "$logs/preflight-offloads.rc")"
  count_tap "libvirt" "$logs/libvirt.log" "$(cat "$logs/libvirt.rc")"
}

# guest_accel QEMU: the accelerator the real guest runs under, for QEMU.
guest_accel() {
  GUEST_ACCEL=$("$TOP/scripts/detect-accel.sh" "$1" "$BUILD/guest")
  export GUEST_ACCEL
}

# guest: a real Linux guest under I/O.
# Its patched-to-patched cases come from the 10.2 base: a rollback.
part_guest() {
  echo "== a real Linux guest under I/O, old host (stock 7.2) -> new host; patched 10.2 -> new host"
  guest_accel "$bin/qemu-patched"
  run_tap "guest migration" "$logs/guest.log" \
    "$TOP/tests/guest-migrate-test.py" "$bin/qemu-stock-7.2" "$bin/qemu-patched" "$BUILD/guest" \
    "$bin/qemu-patched-10.2"
}

# offloads: the second incident (virtio-net USO) with real guests, Debian's
# 6.1 and 6.12 kernels, on taps: stock and patched 10.0, patched 10.2.
part_offloads() {
  echo "== the offloads incident: virtio-net USO with real guests on taps"
  guest_accel "$bin/qemu-patched"
  run_tap "offloads 10.0" "$logs/offloads-10.0.log" \
    "$TOP/tests/offloads-test.py" "$BUILD/guest" "$BUILD/guest-offloads" \
    "$bin/qemu-patched:pc-i440fx-10.0-abiguard1" "$bin/qemu-stock-10.0.2:pc-i440fx-10.0"
  run_tap "offloads 10.2" "$logs/offloads-10.2.log" \
    "$TOP/tests/offloads-test.py" "$BUILD/guest" "$BUILD/guest-offloads" \
    "$bin/qemu-patched-10.2:pc-i440fx-10.2-abiguard1"
}

# matrix: the layout qtest between Debian's QEMUs and the patched build.
part_matrix() {
  echo "== cross-version migration matrix (source -> destination)"
  layout_matrix "$BUILD/qemu-build" "layout-migration" \
    stock-7.2:patched stock-10.0.2:patched patched:stock-10.0.2 patched-10.2:patched
}
# layout_matrix BUILD_DIR LABEL SOURCE:DESTINATION...: the layout qtest of
# BUILD_DIR for each pair, "patched" being BUILD_DIR's QEMU and any other
# name a peer through its qtest shim (make-wrappers.sh).  The qtest takes
# any destination not named exactly as QTEST_QEMU_BINARY for an unpatched
# QEMU.
layout_matrix() {
  local build=$1 label=$2 pair src dst
  shift 2
  for pair in "$@"; do
    src=${pair%%:*} dst=${pair##*:}
    RUN_IN=$build QTEST_QEMU_BINARY_SRC=$(qemu_for "$src") QTEST_QEMU_BINARY_DST=$(qemu_for "$dst") \
      run_tap "$label $src -> $dst" "$logs/$label-$src-$dst.log" \
      "$build/tests/qtest/virtio-layout-migration-test" --tap -k
  done
}
qemu_for() {
  if [ "$1" = patched ]; then
    echo "$QTEST_QEMU_BINARY"
  elif [ -x "$bin/qemu-$1-qtest" ]; then
    echo "$bin/qemu-$1-qtest"
  else
    echo "$bin/qemu-$1"     # a newer QEMU takes all libqtest passes
  fi
}
# base102: QEMU 10.2.2 with patches/10.2/: upstream's qtests as part qtest
# runs them on 10.0, I1 against the goldens of its unpatched build, the
# abiguard types of 10.0 against their goldens and stream from the 10.0
# build, the series' qtests, the layout qtest's
# matrix against Debian's 7.2, 10.0.2, 10.0.13 and 11.1.3 (Debian 13) and
# the 10.0 base, and a real guest from Debian's 10.0.2 and the 10.0 base.
part_base102() {
  local build=$BUILD/10.2/qemu-build t
  echo "== second base: QEMU 10.2.2 with patches/10.2/ ($(find "$TOP/patches/10.2" -name '[0-9]*.patch' ! -name '0000-*' | wc -l) patches)"
  # beside the rest of this part, once the libvirt tests have ended
  background count_upstream_10_2 run_upstream_10_2
  RUN_IN=$build run_tap "10.2 golden: stock machine types" "$logs/golden-10.2.log" \
    "$TOP/tests/guest-abi-golden.py" check "$bin/qemu-patched-10.2" "$TOP/tests/golden/unpatched-10.2.2"
  # across releases: the 10.0 abiguard types as the 10.0 build has them
  RUN_IN=$build run_tap "10.2 golden: 10.0 abiguard types" "$logs/golden-10.2-abiguard-10.0.log" \
    "$TOP/tests/guest-abi-golden.py" check "$bin/qemu-patched-10.2" "$TOP/tests/golden/abiguard"
  RUN_IN=$build run_tap "10.2 golden: 10.2 abiguard types" "$logs/golden-10.2-abiguard.log" \
    "$TOP/tests/guest-abi-golden.py" check "$bin/qemu-patched-10.2" "$TOP/tests/golden/abiguard-10.2"
  run_tap "10.2 virtio feature table of abiguard" "$logs/virtio-feature-table.log" \
    "$TOP/scripts/virtio-feature-table.py" check "$BUILD/10.2/qemu"
  run_tap "10.2 stream: 10.0 types as on 10.0" "$logs/stream-across-releases.log" \
    "$TOP/tests/stream-across-releases.py" "$bin/qemu-patched" "$bin/qemu-patched-10.2"
  for t in $(series_qtests "$BUILD/10.2/qemu"); do
    RUN_IN=$build run_tap "10.2 $t" "$logs/base102-$t.log" "$build/tests/qtest/$t" --tap -k
  done
  layout_matrix "$build" "10.2-layout" stock-7.2:patched stock-10.0.2:patched \
    patched:stock-10.0.2 debian13-10.0.13:patched patched-10.0:patched \
    patched:debian13-11.1.3
  echo "== a real Linux guest, Debian's 10.0.2 -> patched 10.2; patched 10.0 -> patched 10.2"
  guest_accel "$bin/qemu-patched-10.2"
  run_tap "10.2 guest migration" "$logs/guest-10.2.log" \
    "$TOP/tests/guest-migrate-test.py" "$bin/qemu-stock-10.0.2" "$bin/qemu-patched-10.2" \
    "$BUILD/guest" "$bin/qemu-patched"
}

# crossversion: upstream's migration-test in its cross-version mode,
# between each base's patched build and the peers upstream's framework
# supports (tests/migration-test-across.py): in make check a precopy, a
# multifd and a postcopy case each way; make check-crossversion-all runs
# its whole quick set.  Each pair migrates on the newest stock q35 both
# QEMUs have, but patched 10.0 <-> 10.2 on the series' own (I8).  Debian's
# 7.2 is not among the peers: the framework supports the previous
# releases, and its quick set uses what 7.2 lacks, the file: protocol
# among them (docs/upstream-qtests.md).
MIGRATION_TEST_IN_CHECK="/x86_64/migration/precopy/tcp/plain
  /x86_64/migration/multifd/tcp/uri/plain/none /x86_64/migration/postcopy/plain"
part_crossversion() {
  echo "== upstream's migration-test across releases (source -> destination)"
  migration_across "$BUILD/qemu-build" 10.0 pc-q35-10.0 \
    stock-10.0.2:patched patched:stock-10.0.2 \
    debian13-10.0.13:patched patched:debian13-10.0.13
  migration_across "$BUILD/10.2/qemu-build" 10.2 pc-q35-10.0 \
    stock-10.0.2:patched patched:stock-10.0.2 \
    debian13-10.0.13:patched patched:debian13-10.0.13
  migration_across "$BUILD/10.2/qemu-build" 10.2 pc-q35-10.0-abiguard1 \
    patched-10.0:patched patched:patched-10.0
  migration_across "$BUILD/10.2/qemu-build" 10.2 pc-q35-10.2 \
    debian13-11.1.3:patched patched:debian13-11.1.3
}
part_crossversion-all() { MIGRATION_TEST_IN_CHECK='' part_crossversion; }
# migration_across BUILD_DIR BASE MACHINE SOURCE:DESTINATION...: one side
# BUILD_DIR's QEMU ("patched"), the other a peer through its qtest shim.
# Two pairs at a time: a case keeps about one core busy, and each run has
# its own sockets and directories.
migration_across() {
  local build=$1 base=$2 machine=$3 pair src dst peer side log running=()
  shift 3
  for pair in "$@"; do
    src=${pair%%:*} dst=${pair##*:}
    if [ "$src" = patched ]; then peer=$dst side=dst; else peer=$src side=src; fi
    log=$logs/migration-test-$base-$src-$dst.log
    if [ ${#running[@]} = 2 ]; then wait "${running[0]}"; running=("${running[@]:1}"); fi
    # shellcheck disable=SC2086  # the cases are words
    (cd "$build" && timeout 900 "$TOP/tests/migration-test-across.py" "$build" \
       "$(qemu_for "$peer")" "$side" "$machine" $MIGRATION_TEST_IN_CHECK \
       > "$log" 2>&1; echo $? > "$log.rc") &
    running+=($!)
  done
  wait "${running[@]}"
  for pair in "$@"; do
    src=${pair%%:*} dst=${pair##*:}
    log=$logs/migration-test-$base-$src-$dst.log
    count_tap "$base migration-test $src -> $dst ($machine)" "$log" "$(cat "$log.rc")"
  done
}

# releases: a real guest from the other old hosts to the 10.2 base: Debian
# 12's QEMU 7.2 and Debian 13's 10.0.13 (in its root); base102 runs it from
# Debian's 10.0.2.
part_releases() {
  local peer
  guest_accel "$bin/qemu-patched-10.2"
  for peer in stock-7.2 debian13-10.0.13; do
    echo "== a real Linux guest, $peer -> patched 10.2"
    run_tap "10.2 guest migration from $peer" "$logs/guest-10.2-$peer.log" \
      "$TOP/tests/guest-migrate-test.py" "$bin/qemu-$peer" "$bin/qemu-patched-10.2" "$BUILD/guest"
  done
}

# Each part's time in the foreground; a background job's runs on beside
# the parts after it, and the wait for it at the end is "collect".
for part in $parts; do
  t0=$SECONDS
  "part_$part"
  printf '%-48s %4d s\n' "($part: time)" $((SECONDS - t0))
done
t0=$SECONDS
collect
printf '%-48s %4d s\n' "(collect: time)" $((SECONDS - t0))

if [ ${#xfails[@]} -gt 0 ]; then
  echo "== expected failures (known limitations, with their reasons)"
  printf '  %s\n' "${xfails[@]}"
fi
if [ ${#failures[@]} -gt 0 ]; then
  echo "== FAILURES (logs in $logs)"
  printf '  %s\n' "${failures[@]}"
fi
if [ -s "$BUILD/pins-substituted" ]; then
  echo "== pins the registry no longer serves, and the substitutes taken (./versions says the rule)"
  sed 's/^/  /' "$BUILD/pins-substituted"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
