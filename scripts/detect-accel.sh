#!/bin/bash
# Print the accelerator the test guests should use: "kvm" if a guest kernel
# gets going under KVM here, else "tcg".  /dev/kvm can exist and still run
# nothing (nested virtualization without the CPU features a guest needs),
# so this boots the guest kernel under KVM for a few seconds and looks for
# its first console line.
# Usage: detect-accel.sh QEMU GUEST_DIR
set -euo pipefail
qemu=$1 guest=$2
probe_seconds=8

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
  echo "accelerator: tcg (no usable /dev/kvm)" >&2
  echo tcg
  exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout "$probe_seconds" "$qemu" -accel kvm -cpu host -m 256 -nodefaults \
  -display none -kernel "$guest/vmlinuz" -initrd "$guest/initrd.gz" \
  -append console=ttyS0 -serial "file:$out" >/dev/null 2>&1 || true
if grep -q "Linux version" "$out"; then
  echo "accelerator: kvm" >&2
  echo kvm
else
  echo "accelerator: tcg (/dev/kvm is there, but a guest kernel printed" \
       "nothing under KVM in ${probe_seconds} s)" >&2
  echo tcg
fi
