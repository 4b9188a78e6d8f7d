#!/bin/bash
# The old host as a Debian 12 root: Debian's QEMU 7.2 and libvirt 9.0
# installed as packages, as on a host not yet upgraded (with the user
# libvirt's QEMU driver wants; libvirt-daemon-system, which adds it, would
# bring systemd units a root without init does not need).  Made once with
# mmdebstrap from this machine's Debian mirror, cached as a tarball in
# $CACHE, and unpacked to $BUILD/old-host.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

root=$BUILD/old-host
qemu=$PEER_7_2_ARCH_VERSION libvirt=$OLD_HOST_LIBVIRT_VERSION
# tarball_for QEMU LIBVIRT: the cached root of those versions
tarball_for() { local t=$CACHE/debian12-qemu-$1-libvirt-$2.tar; echo "${t//:/_}"; }
stamp=$STAMPS/old-host-$(basename "$(tarball_for "$qemu" "$libvirt")")
[ -f "$stamp" ] && exit 0
need_root

tarball=$(tarball_for "$qemu" "$libvirt")
if [ ! -f "$tarball" ]; then
  qemu=$(pin "$PEER_7_2_SUITE" qemu-system-x86 "$qemu") &&
    libvirt=$(pin "$OLD_HOST_LIBVIRT_SUITE" libvirt-daemon "$libvirt") || exit 1
  tarball=$(tarball_for "$qemu" "$libvirt")
fi
if [ ! -f "$tarball" ]; then
  mirror=$(root_mirror) || exit 1
  log "making the old host's Debian 12 root (QEMU $qemu, libvirt $libvirt)"
  mmdebstrap --quiet --variant=apt --format=tar \
    --include="qemu-system-x86=$qemu,libvirt-daemon=$libvirt,libvirt-daemon-driver-qemu=$libvirt,libvirt-clients=$libvirt,seabios,ipxe-qemu" \
    --customize-hook='chroot "$1" useradd --system --user-group --no-create-home libvirt-qemu' \
    bookworm "$tarball.tmp" "deb $mirror bookworm main" > "$BUILD/old-host.log" 2>&1 ||
    { rm -f "$tarball.tmp"; die "mmdebstrap failed; see $BUILD/old-host.log"; }
  mv "$tarball.tmp" "$tarball"
fi
unpack_root "$root" "$tarball"
mkdir -p "$STAMPS" && rm -f "$STAMPS"/old-host-* && touch "$stamp"
log "old host root: $root"
