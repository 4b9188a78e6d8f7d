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
tarball=$CACHE/debian12-qemu-$PEER_7_2_ARCH_VERSION-libvirt-$OLD_HOST_LIBVIRT_VERSION.tar
tarball=${tarball//:/_}
stamp=$STAMPS/old-host-$(basename "$tarball")
[ -f "$stamp" ] && exit 0
need_root

if [ ! -f "$tarball" ]; then
  mirror=$(root_mirror) || exit 1
  log "making the old host's Debian 12 root (QEMU $PEER_7_2_ARCH_VERSION, libvirt $OLD_HOST_LIBVIRT_VERSION)"
  mmdebstrap --quiet --variant=apt --format=tar \
    --include="qemu-system-x86=$PEER_7_2_ARCH_VERSION,libvirt-daemon=$OLD_HOST_LIBVIRT_VERSION,libvirt-daemon-driver-qemu=$OLD_HOST_LIBVIRT_VERSION,libvirt-clients=$OLD_HOST_LIBVIRT_VERSION,seabios,ipxe-qemu" \
    --customize-hook='chroot "$1" useradd --system --user-group --no-create-home libvirt-qemu' \
    bookworm "$tarball.tmp" "deb $mirror bookworm main" > "$BUILD/old-host.log" 2>&1 ||
    { rm -f "$tarball.tmp"; die "mmdebstrap failed; see $BUILD/old-host.log"; }
  mv "$tarball.tmp" "$tarball"
fi
unpack_root "$root" "$tarball"
mkdir -p "$STAMPS" && rm -f "$STAMPS"/old-host-* && touch "$stamp"
log "old host root: $root"
