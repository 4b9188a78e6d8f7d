#!/bin/bash
# Build the test guest from Debian packages only: the kernel of
# linux-image-$GUEST_KERNEL_ABI and an initramfs with busybox-static,
# util-linux's blkdiscard, the virtio drivers and tests/guest/init.
# Output: build/guest/{vmlinuz,initrd.gz}.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$BUILD/guest
stamp=$out/stamp-$(cat "$TOP/tests/guest/init" "$TOP/versions" | sha256sum | cut -c1-12)
[ -f "$stamp" ] && exit 0
need_root

# The kernel, by the rule in ./versions (guest_kernel in lib.sh).
read -r abi kernel < <(guest_kernel) || die "$GUEST_KERNEL_SUITE serves no linux-image-$GUEST_KERNEL_ABI nor another ${GUEST_KERNEL_VERSION%.*} kernel: update ./versions"
[ "$abi $kernel" = "$GUEST_KERNEL_ABI $GUEST_KERNEL_VERSION" ] ||
  substituted "$GUEST_KERNEL_SUITE" "linux-image-$GUEST_KERNEL_ABI $GUEST_KERNEL_VERSION" "linux-image-$abi $kernel"
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
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/block/virtio_blk; do
  cp "$tmp/x/lib/modules/$abi/kernel/$m.ko" "$root/lib/modules/"
done
install -m 755 "$TOP/tests/guest/init" "$root/init"
mkdir -p "$out.tmp"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp/initrd.gz"
cp "$tmp/x/boot/vmlinuz-$abi" "$out.tmp/vmlinuz"
rm -rf "$out" && mv "$out.tmp" "$out" && touch "$stamp"
log "guest: $out/vmlinuz, $out/initrd.gz"
