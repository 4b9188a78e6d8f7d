#!/bin/bash
# Compare the guest ABI of two QEMU binaries on every pc-i440fx-*/pc-q35-*
# machine type both know, with the golden device set, cold and hot-plugged.
# Usage: scripts/guest-abi-compare.sh QEMU_A QEMU_B   (prints a TAP report)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# = 2 ] || die "usage: $0 QEMU_A QEMU_B"
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
list() { "$1" -machine help | awk '/^pc-(i440fx|q35)-/ {print $1}' | sort; }
shared=$(comm -12 <(list "$1") <(list "$2"))
"$TOP/tests/guest-abi-golden.py" generate "$1" "$tmp" $shared > /dev/null
"$TOP/tests/guest-abi-golden.py" check "$2" "$tmp"
