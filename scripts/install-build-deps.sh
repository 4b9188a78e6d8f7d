#!/bin/bash
# Install, from Debian bookworm (and bookworm-backports for meson >= 1.5,
# python3-pycotap and the new host's libvirt), what one group needs:
#   fast   make check-fast: the harness's unit tests, pyflakes, shellcheck;
#   demo   building the patched QEMU 10.0.2 and running make demo;
#   check  the rest of make check and the long targets.
# Usage: install-build-deps.sh fast|demo|check
set -euo pipefail
. "$(dirname "$0")/lib.sh"

case ${1:-} in
fast)
  pkgs=(pyflakes3 shellcheck python3-venv  # python3-venv: the tools package in a venv
        python3-libvirt)  # the preflight talks to libvirt with its bindings
  bpo=() ;;
demo)
  pkgs=(build-essential ccache git ninja-build pkg-config flex bison python3-venv
        libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev libslirp-dev
        libaio-dev libzstd-dev xz-utils
        device-tree-compiler  # QEMU 10.2's tarball ships no .dtb files: make build BASE=10.2
        "seabios=$SEABIOS_VERSION" "ipxe-qemu=$IPXE_QEMU_VERSION")  # pinned below
  bpo=(meson python3-pycotap) ;;
check)
  pkgs=(cpio iproute2 mmdebstrap
        clang libclang-rt-14-dev  # make fuzz: libFuzzer, ASan, UBSan
        swtpm)  # for upstream's tpm-*-swtpm-test
  bpo=("libvirt-daemon=$NEW_HOST_LIBVIRT_VERSION"
       "libvirt-daemon-driver-qemu=$NEW_HOST_LIBVIRT_VERSION"
       "libvirt-daemon-driver-storage=$NEW_HOST_LIBVIRT_VERSION"  # preflight scratch disks
       "libvirt-clients=$NEW_HOST_LIBVIRT_VERSION") ;;
*) die "usage: $0 fast|demo|check" ;;
esac
stamp=$STAMPS/build-deps-$1-$(printf '%s\n' "${pkgs[@]}" "${bpo[@]}" | sha256sum | cut -c1-12)
[ -f "$stamp" ] && exit 0
need_root
# pin_each SUITE ARRAY: each PACKAGE=VERSION of ARRAY as the rule in
# ./versions takes it
pin_each() {
  local suite=$1 i p v
  local -n list=$2
  for i in "${!list[@]}"; do
    p=${list[$i]}
    case $p in *=*) v=$(pin "$suite" "${p%%=*}" "${p#*=}") || exit 1; list[$i]=${p%%=*}=$v ;; esac
  done
}
case $1 in
  demo) pin_each "$FIRMWARE_SUITE" pkgs ;;
  check) pin_each "$NEW_HOST_LIBVIRT_SUITE" bpo ;;
esac
log "installing what $1 needs"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --allow-downgrades "${pkgs[@]}" >/dev/null ||
  die "apt-get install of build dependencies failed: is the Debian registry reachable? rerun 'make setup'"
[ ${#bpo[@]} = 0 ] ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports "${bpo[@]}" >/dev/null ||
  die "apt-get install of ${bpo[*]} from bookworm-backports failed: rerun 'make setup'"
mkdir -p "$STAMPS" && touch "$stamp"
