#!/bin/bash
# Configure (once) and build the patched QEMU out of tree with ccache:
# qemu-system-x86_64 with TCG and KVM, qos-test and the series' qtests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$BUILD/qemu
out=$BUILD/qemu-build

[ -d "$src/.git" ] || die "$src missing: run 'make tree'"
if [ ! -f "$out/build.ninja" ]; then
  log "configuring QEMU in $out"
  rm -rf "$out" && mkdir -p "$out"
  (cd "$out" && "$src/configure" "${QEMU_CONFIGURE_FLAGS[@]}") > "$BUILD/configure.log" 2>&1 ||
    { rm -f "$out/build.ninja"; die "configure failed; see $BUILD/configure.log"; }
fi

# A build-tree QEMU looks for firmware under qemu-bundle/<firmwarepath>.
# The repacked tarball has no ROMs, so use what Debian ships for the same
# version (qemu-system-data of the stock 10.0.2 peer: kvmvapic.bin,
# linuxboot_dma.bin, ... and links to seabios and ipxe-qemu), so that the
# patched and stock builds load identical ROMs.
data=$BUILD/peers/stock-10.0.2/usr/share/qemu
[ -d "$data" ] || die "$data missing: run 'make peers'"
mkdir -p "$out/qemu-bundle/usr/share" "$out/qemu-bundle/usr/lib/ipxe"
ln -sfn "$data" "$out/qemu-bundle/usr/share/qemu"
ln -sfn /usr/share/seabios "$out/qemu-bundle/usr/share/seabios"
ln -sfn /usr/lib/ipxe/qemu "$out/qemu-bundle/usr/lib/ipxe/qemu"

# The qtests the series adds, qos-test, and what the caller asks for.
targets="qemu-system-x86_64 qemu-img tests/qtest/qos-test $*"
for t in $(git -C "$src" diff --name-only --diff-filter=A abiguard-base HEAD -- 'tests/qtest/*-test.c'); do
  targets="$targets ${t%.c}"
done
log "building $targets"
ninja -C "$out" $targets > "$BUILD/ninja.log" 2>&1 ||
  die "build failed; see the end of $BUILD/ninja.log"
