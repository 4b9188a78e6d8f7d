#!/bin/bash
# A Debian 13 root with one of Debian 13's QEMU packages installed, for the
# release-to-release matrix: its binaries need Debian 13's libraries.
# Usage: make-debian13-host.sh VERSION SUITE  (trixie or trixie-backports)
# Made once with mmdebstrap from this machine's Debian mirror, cached as a
# tarball in $CACHE, and unpacked to $BUILD/debian13-VERSION (VERSION as
# pinned, whichever revision the rule in ./versions took).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || die "usage: $0 VERSION SUITE"
version=$1 suite=$2
# tarball_for VERSION: the cached root of that version
tarball_for() { local t=$CACHE/debian13-qemu-$1.tar; echo "${t//:/_}"; }
root=$BUILD/debian13-${version//:/_}
stamp=$STAMPS/debian13-$(basename "$(tarball_for "$version")")
[ -f "$stamp" ] && exit 0
need_root

tarball=$(tarball_for "$version")
if [ ! -f "$tarball" ]; then
  version=$(pin "$suite" qemu-system-x86 "$version") || exit 1
  tarball=$(tarball_for "$version")
fi
if [ ! -f "$tarball" ]; then
  mirror=$(root_mirror) || exit 1
  log "making a Debian 13 root with QEMU $version from $suite"
  sources="deb $mirror trixie main"
  aptopt=()
  if [ "$suite" != trixie ]; then
    # the package's exact-version dependencies are in $suite only
    sources="$sources
deb $mirror $suite main"
    aptopt=(--aptopt="APT::Default-Release \"$suite\"")
  fi
  mmdebstrap --quiet --variant=apt --format=tar "${aptopt[@]}" \
    --include="qemu-system-x86=$version,seabios,ipxe-qemu" \
    trixie "$tarball.tmp" - <<<"$sources" > "$BUILD/debian13-$version.log" 2>&1 ||
    { rm -f "$tarball.tmp"; die "mmdebstrap failed; see $BUILD/debian13-$version.log"; }
  mv "$tarball.tmp" "$tarball"
fi
unpack_root "$root" "$tarball"
mkdir -p "$STAMPS" && touch "$stamp"
log "Debian 13 root: $root"
