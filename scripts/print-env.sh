#!/bin/bash
# Print the harness's stable entry points as shell variables:
#   eval "$(make -s env)"
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cat <<ENV
QEMU_PATCHED=$BUILD/bin/qemu-patched
QEMU_STOCK_7_2=$BUILD/bin/qemu-stock-7.2
QEMU_STOCK_10_0_2=$BUILD/bin/qemu-stock-10.0.2
QEMU_PATCHED_10_2=$BUILD/bin/qemu-patched-10.2
QEMU_UNPATCHED_10_2=$BUILD/bin/qemu-unpatched-10.2
QEMU_DEBIAN13_10_0_13=$BUILD/bin/qemu-debian13-10.0.13
QEMU_DEBIAN13_11_1_3=$BUILD/bin/qemu-debian13-11.1.3
QEMU_TREE=$BUILD/qemu
QEMU_BUILD=$BUILD/qemu-build
QTEST_DIR=$BUILD/qemu-build/tests/qtest
QTEST_QOS=$BUILD/qemu-build/tests/qtest/qos-test
QTEST_LAYOUT_MIGRATION=$BUILD/qemu-build/tests/qtest/virtio-layout-migration-test
ENV
