#!/bin/bash
# A pristine Debian root of DEB_SUITE with packages installed by apt, as a
# host gets them: the .deb files of DEBDIR named by PACKAGES (their
# dependencies from the archive) and the archive's packages of EXTRA, with
# DEB_SUITE-backports enabled as on hosts that take QEMU from it
# (PACKAGE/DEB_SUITE-backports in EXTRA takes one from there).
# Usage: make-deb-root.sh NAME DEBDIR "PACKAGES" "EXTRA"
# Made with mmdebstrap from this machine's Debian mirror, cached as a
# tarball in $CACHE named by what went in, unpacked to $BUILD/NAME.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 4 ] || die "usage: $0 NAME DEBDIR PACKAGES EXTRA"
name=$1 debdir=$2 packages=$3 extra=$4
debs=()
for p in $packages; do
  f=$(find "$debdir" -maxdepth 1 -name "${p}_*.deb" | head -n 1)
  [ -n "$f" ] || die "$debdir has no package $p"
  debs+=("$f")
done
key=$( { echo "$DEB_SUITE $extra"; sha256sum "${debs[@]}" | cut -d' ' -f1; } | sha256sum | cut -c1-16)
tarball=$CACHE/deb-root-$name-$key.tar
root=$BUILD/$name
stamp=$STAMPS/deb-root-$name-$key
[ -f "$stamp" ] && [ -d "$root" ] && exit 0
need_root
if [ ! -f "$tarball" ]; then
  mirror=$(root_mirror) || exit 1
  log "making a $DEB_SUITE root '$name': $packages from $debdir, $extra"
  mkdir -p "$BUILD"
  mmdebstrap --quiet --variant=apt --format=tar \
    --customize-hook='mkdir "$1"/tmp/debs' \
    --customize-hook="cp ${debs[*]} \"\$1\"/tmp/debs/" \
    --customize-hook="chroot \"\$1\" sh -c 'apt-get install -y --no-install-recommends /tmp/debs/*.deb $extra'" \
    --customize-hook='rm -rf "$1"/tmp/debs' \
    "$DEB_SUITE" "$tarball.tmp" - <<<"deb $mirror $DEB_SUITE main
deb $mirror $DEB_SUITE-backports main" > "$BUILD/$name.log" 2>&1 ||
    { rm -f "$tarball.tmp"; die "mmdebstrap failed; see $BUILD/$name.log"; }
  mv "$tarball.tmp" "$tarball"
fi
unpack_root "$root" "$tarball"
mkdir -p "$STAMPS" && rm -f "$STAMPS/deb-root-$name-"* && touch "$stamp"
log "$DEB_SUITE root '$name': $root"
