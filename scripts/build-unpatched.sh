#!/bin/bash
# Build the base's unpatched tree (scripts/make-unpatched-tree.sh) with
# build-qemu.sh's arguments; without any, just qemu-system-x86_64.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$TOP/scripts/make-unpatched-tree.sh"
[ $# -gt 0 ] || set -- --only qemu-system-x86_64
QEMU_SRC=$BASE_BUILD/unpatched/qemu QEMU_OUT=$BASE_BUILD/unpatched/qemu-build \
  exec "$TOP/scripts/build-qemu.sh" "$@"
