#!/bin/bash
# Download Debian's QEMU binary packages for the peers (stock 7.2 and stock
# 10.0.2), extract them side by side under build/peers/<name>, and install
# their runtime libraries. The packages cannot be co-installed; extracting
# them with dpkg-deb keeps each version self-contained.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fetch_peer() { # name suite arch-version data-version
  local name=$1 suite=$2 av=$3 dv=$4 dir=$BUILD/peers/$1
  local stamp
  stamp=$STAMPS/peer-$name-$(printf '%s %s' "$av" "$dv" | sha256sum | cut -c1-12)
  [ -f "$stamp" ] && [ -x "$dir/usr/bin/qemu-system-x86_64" ] && [ -L "$dir/usr/share/seabios" ] && return 0
  need_root
  av=$(pin "$suite" qemu-system-x86 "$av") && dv=$(pin "$suite" qemu-system-data "$dv") || exit 1
  log "fetching peer $name (qemu-system-x86 $av)"
  local debs
  debs=$CACHE/debs/$name-$(printf '%s %s' "$av" "$dv" | sha256sum | cut -c1-12)
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" "$debs"
  # apt-get download writes each .deb under its final name only when complete.
  (cd "$debs" &&
   apt-get download -qq "qemu-system-x86=$av" "qemu-system-common=$av" "qemu-system-data=$dv" 2>"$dir.tmp/err") ||
    die "apt-get download of QEMU $av failed ($(tail -n 1 "$dir.tmp/err")): run 'make setup' and check the registry is reachable"
  local deb deps=()
  for deb in "$debs"/*.deb; do
    dpkg-deb -x "$deb" "$dir.tmp"
    # Runtime dependencies, minus the QEMU packages we extract ourselves.
    deps+=("$(dpkg-deb -f "$deb" Depends)")
  done
  local want
  want=$(printf '%s, ' "${deps[@]}" | tr ',' '\n' | sed 's/^ *//; s/ *$//' |
         grep -v '^$' | grep -Ev '^(qemu-|ipxe-qemu|seabios)' | sort -u | paste -sd, -)
  DEBIAN_FRONTEND=noninteractive apt-get satisfy -y -qq --no-install-recommends "$want" >/dev/null 2>"$dir.tmp/err" ||
    die "installing runtime libraries of QEMU $av failed: $(tail -n 1 "$dir.tmp/err")"
  # QEMU relocates its configured firmware path (/usr/share/seabios,
  # /usr/lib/ipxe/qemu) next to the binary: point it at Debian's firmware.
  mkdir -p "$dir.tmp/usr/share" "$dir.tmp/usr/lib/ipxe"
  ln -sfn /usr/share/seabios "$dir.tmp/usr/share/seabios"
  ln -sfn /usr/lib/ipxe/qemu "$dir.tmp/usr/lib/ipxe/qemu"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  mkdir -p "$STAMPS" && touch "$stamp"
}

fetch_peer stock-7.2 "$PEER_7_2_SUITE" "$PEER_7_2_ARCH_VERSION" "$PEER_7_2_DATA_VERSION"
fetch_peer stock-10.0.2 "$PEER_10_0_2_SUITE" "$PEER_10_0_2_ARCH_VERSION" "$PEER_10_0_2_DATA_VERSION"
