#!/bin/bash
# Configure (once) and build a QEMU tree out of tree with ccache:
# qemu-system-x86_64 with TCG and KVM, qemu-img, qemu-storage-daemon,
# qos-test and the series' qtests, and the TARGETs given; with --all,
# everything (every qtest upstream has for x86_64).
# Usage: build-qemu.sh [--all | --only] [TARGET...]
# (--only: just the TARGETs)
# The tree is the base's (build/qemu, or build/10.2/qemu with BASE=10.2),
# patched, unless QEMU_SRC and QEMU_OUT say otherwise; keep QEMU_SRC's
# parent laid out like build/ for ccache.
# EXTRA_CONFIGURE_FLAGS adds to the configure flags (sanitizers, fuzzing).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=${QEMU_SRC:-$BASE_BUILD/qemu}
out=${QEMU_OUT:-$BASE_BUILD/qemu-build}
all=0 only=0
if [ "${1:-}" = --all ]; then all=1; shift; fi
if [ "${1:-}" = --only ]; then only=1; shift; fi

[ -e "$src/.git" ] || die "$src missing: run 'make tree'"
if [ ! -f "$out/build.ninja" ]; then
  log "configuring QEMU in $out"
  rm -rf "$out" && mkdir -p "$out"
  (cd "$out" && "$src/configure" "${QEMU_CONFIGURE_FLAGS[@]}" ${EXTRA_CONFIGURE_FLAGS:-}) > "$out.configure.log" 2>&1 ||
    { rm -f "$out/build.ninja"; die "configure failed; see $out.configure.log"; }
fi

link_firmware "$out"

ninja_log=$out/ninja.log
if [ $all = 1 ]; then
  log "building everything in $out"
  ninja -C "$out" > "$ninja_log" 2>&1 ||
    die "build failed; see the end of $ninja_log"
  exit 0
fi
# The qtests the series adds, the upstream qtests make check runs, and
# what the caller asks for.
if [ $only = 1 ]; then
  targets="$*"
else
  targets="qemu-system-x86_64 qemu-img storage-daemon/qemu-storage-daemon"
  targets="$targets $(printf 'tests/qtest/%s ' $UPSTREAM_QTESTS_IN_CHECK $(series_qtests "$src")) $*"
fi
log "building $targets"
ninja -C "$out" $targets > "$ninja_log" 2>&1 ||
  die "build failed; see the end of $ninja_log"
