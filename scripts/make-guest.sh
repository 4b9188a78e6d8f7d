#!/bin/bash
# Build a test guest from Debian packages only: a Debian kernel and an
# initramfs with busybox-static, util-linux's blkdiscard, the virtio block
# and network drivers, tests/guest/init and the traffic generator
# tests/guest/abiguard-net.c.
#   make-guest.sh           Debian 12's 6.1 kernel: build/guest/
#   make-guest.sh offloads  the 6.12 kernel of bookworm-backports, whose
#                           virtio-net negotiates USO: build/guest-offloads/
# Output: {vmlinuz,initrd.gz} in that directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

case ${1:-} in
  '') out=$BUILD/guest
      pinned=("$GUEST_KERNEL_SUITE" "$GUEST_KERNEL_ABI" "$GUEST_KERNEL_VERSION") ;;
  offloads) out=$BUILD/guest-offloads
      pinned=("$OFFLOADS_GUEST_KERNEL_SUITE" "$OFFLOADS_GUEST_KERNEL_ABI" "$OFFLOADS_GUEST_KERNEL_VERSION") ;;
  *) die "usage: make-guest.sh [offloads]" ;;
esac
stamp=$out/stamp-$(cat "$0" "$TOP/tests/guest/init" "$TOP/tests/guest/abiguard-net.c" "$TOP/versions" |
                   sha256sum | cut -c1-12)
[ -f "$stamp" ] && exit 0
need_root

# The kernel, by the rule in ./versions (guest_kernel in lib.sh).
read -r abi kernel < <(guest_kernel "${pinned[@]}") ||
  die "${pinned[0]} serves no linux-image-${pinned[1]} nor another ${pinned[2]%.*} kernel: update ./versions"
[ "$abi $kernel" = "${pinned[1]} ${pinned[2]}" ] ||
  substituted "${pinned[0]}" "linux-image-${pinned[1]} ${pinned[2]}" "linux-image-$abi $kernel"
pkgs=("linux-image-$abi=$kernel")
for p in "busybox-static=$GUEST_BUSYBOX_VERSION" "util-linux=$GUEST_UTIL_LINUX_VERSION" \
         "libblkid1=$GUEST_UTIL_LINUX_VERSION" "libc6=$GUEST_LIBC_VERSION"; do
  pkgs+=("${p%%=*}=$(pin "$GUEST_SUITE" "${p%%=*}" "${p#*=}")") || exit 1
done
debs=$CACHE/debs/guest-$(printf '%s\n' "${pkgs[@]}" | sha256sum | cut -c1-12)
mkdir -p "$debs"
(cd "$debs" && apt-get download -qq "${pkgs[@]}" 2>/dev/null) ||
  die "apt-get download of the guest packages (${pkgs[*]}) failed: run 'make setup' and check the registry is reachable"
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
cp "$tmp/x/bin/busybox" "$root/bin/busybox"
# util-linux's blkdiscard, out of busybox's way, and what it links with
mkdir -p "$root/opt/util-linux" "$root/lib/x86_64-linux-gnu" "$root/lib64"
cp "$tmp/x/sbin/blkdiscard" "$root/opt/util-linux/"
cp "$tmp/x/usr/lib/x86_64-linux-gnu/libblkid.so.1.1.0" "$root/lib/x86_64-linux-gnu/libblkid.so.1"
cp "$tmp/x/lib/x86_64-linux-gnu/libc.so.6" "$tmp/x/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
  "$root/lib/x86_64-linux-gnu/"
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
# The drivers, in load order, those the kernel did not build in; 6.12's
# are xz-compressed, which busybox's insmod does not read.
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/block/virtio_blk \
         net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
  ko=$tmp/x/lib/modules/$abi/kernel/$m.ko
  if [ -f "$ko" ]; then cp "$ko" "$root/lib/modules/"
  elif [ -f "$ko.xz" ]; then xz -dc "$ko.xz" > "$root/lib/modules/${m##*/}.ko"
  else continue
  fi
  echo "${m##*/}" >> "$root/lib/modules/order"
done
install -m 755 "$TOP/tests/guest/init" "$root/init"
gcc -static -O2 -Wall -Werror -o "$root/bin/abiguard-net" "$TOP/tests/guest/abiguard-net.c"
mkdir -p "$out.tmp"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp/initrd.gz"
cp "$tmp/x/boot/vmlinuz-$abi" "$out.tmp/vmlinuz"
rm -rf "$out" && mv "$out.tmp" "$out" && touch "$stamp"
log "guest: $out/vmlinuz, $out/initrd.gz"
