#!/bin/bash
# make check-pins: every pin of ./versions against what the registry serves
# today.  Lists each pin the registry no longer serves, with the substitute
# the rule in ./versions takes; exits non-zero only when a pin has none
# (the harness would then stop on it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

gone=0 broken=0 total=0
report() { # SUITE PACKAGE PINNED SUBSTITUTE
  total=$((total + 1))
  if [ "$3" = "$4" ]; then
    printf '%-11s %-19s %s %s\n' served "$1" "$2" "$3"
  elif [ -n "$4" ]; then
    gone=$((gone + 1))
    printf '%-11s %-19s %s %s -> substitute %s\n' "NOT SERVED" "$1" "$2" "$3" "$4"
  else
    gone=$((gone + 1)) broken=$((broken + 1))
    printf '%-11s %-19s %s %s -> no substitute: update ./versions\n' "NOT SERVED" "$1" "$2" "$3"
  fi
}
check() { # SUITE PACKAGE VERSION
  report "$1" "$2" "$3" "$(served_versions "$1" "$2" | substitute "$3")"
}

check "$PEER_7_2_SUITE" qemu-system-x86 "$PEER_7_2_ARCH_VERSION"
check "$PEER_7_2_SUITE" qemu-system-common "$PEER_7_2_ARCH_VERSION"
check "$PEER_7_2_SUITE" qemu-system-data "$PEER_7_2_DATA_VERSION"
check "$PEER_10_0_2_SUITE" qemu-system-x86 "$PEER_10_0_2_ARCH_VERSION"
check "$PEER_10_0_2_SUITE" qemu-system-common "$PEER_10_0_2_ARCH_VERSION"
check "$PEER_10_0_2_SUITE" qemu-system-data "$PEER_10_0_2_DATA_VERSION"
check "$PEER_DEBIAN13_SUITE" qemu-system-x86 "$PEER_DEBIAN13_VERSION"
check "$PEER_DEBIAN13_BACKPORTS_SUITE" qemu-system-x86 "$PEER_DEBIAN13_BACKPORTS_VERSION"
# a kernel's substitute may be another package (another ABI)
check_kernel() {
  local suite=$1 pinned_abi=$2 version=$3 abi='' kernel=''
  read -r abi kernel < <(guest_kernel "$@") || true
  if [ -n "$abi" ] && [ "$abi" != "$pinned_abi" ]; then kernel="linux-image-$abi $kernel"; fi
  report "$suite" "linux-image-$pinned_abi" "$version" "$kernel"
}
check_kernel "$GUEST_KERNEL_SUITE" "$GUEST_KERNEL_ABI" "$GUEST_KERNEL_VERSION"
check_kernel "$OFFLOADS_GUEST_KERNEL_SUITE" "$OFFLOADS_GUEST_KERNEL_ABI" "$OFFLOADS_GUEST_KERNEL_VERSION"
check "$GUEST_SUITE" busybox-static "$GUEST_BUSYBOX_VERSION"
check "$GUEST_SUITE" util-linux "$GUEST_UTIL_LINUX_VERSION"
check "$GUEST_SUITE" libblkid1 "$GUEST_UTIL_LINUX_VERSION"
check "$GUEST_SUITE" libc6 "$GUEST_LIBC_VERSION"
check "$OLD_HOST_LIBVIRT_SUITE" libvirt-daemon "$OLD_HOST_LIBVIRT_VERSION"
check "$NEW_HOST_LIBVIRT_SUITE" libvirt-daemon "$NEW_HOST_LIBVIRT_VERSION"
check "$DEB_SUITE" libvirt-daemon-system "$DEB_HOST_LIBVIRT_VERSION"
check "$FIRMWARE_SUITE" seabios "$SEABIOS_VERSION"
check "$FIRMWARE_SUITE" ipxe-qemu "$IPXE_QEMU_VERSION"

# The source tarballs have no substitute: another tarball is another base,
# or another packaging of it.
mirror=$(debian_mirror)
for tarball in "$QEMU_ORIG_TARBALL" "$QEMU_10_2_ORIG_TARBALL" "$QEMU_10_2_DEBIAN_TARBALL"; do
  url=$mirror/pool/main/${QEMU_SRC_PKG:0:1}/$QEMU_SRC_PKG/$tarball
  got=
  python3 -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=30)' "$url" \
    2>/dev/null && got=$tarball
  report pool source "$tarball" "$got"
done

echo "$total pins: $((total - gone)) served, $gone no longer served ($broken without a substitute)"
[ "$broken" = 0 ]
