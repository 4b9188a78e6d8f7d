#!/bin/bash
# Download Debian's QEMU 10.0.2 orig tarball through apt's own URIs and
# verify it against the SHA256 pinned in ./versions.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dest=$CACHE/$QEMU_ORIG_TARBALL
mkdir -p "$CACHE"
if [ -f "$dest" ]; then
  exit 0    # only ever renamed into place after verification
fi
need_root
uri=$(apt-get source --print-uris "$QEMU_SRC_PKG=$QEMU_SRC_VERSION" 2>/dev/null |
      awk -v f="$QEMU_ORIG_TARBALL" '$2 == f { gsub("\x27", "", $1); print $1 }')
[ -n "$uri" ] || die "apt knows no source $QEMU_SRC_PKG=$QEMU_SRC_VERSION: run 'make setup' (deb-src for bookworm-backports) and check the registry is reachable"
log "fetching $QEMU_ORIG_TARBALL"
rm -f "$dest".part*
if ! /usr/lib/apt/apt-helper download-file "$uri" "$dest.part" "SHA256:$QEMU_ORIG_SHA256" >/dev/null 2>"$CACHE/fetch.err"; then
  # apt-helper keeps a file that arrived with the wrong hash as *.FAILED
  if [ -f "$dest.part.FAILED" ]; then
    got=$(sha256sum "$dest.part.FAILED" | cut -d' ' -f1)
    rm -f "$dest".part*
    die "checksum mismatch for $QEMU_ORIG_TARBALL: got $got, expected $QEMU_ORIG_SHA256 (./versions)"
  fi
  rm -f "$dest".part*
  die "download of $QEMU_ORIG_TARBALL failed ($(tail -n 1 "$CACHE/fetch.err")): is the Debian registry reachable?"
fi
echo "$QEMU_ORIG_SHA256  $dest.part" | sha256sum -c --quiet - ||
  die "checksum mismatch for $QEMU_ORIG_TARBALL: expected $QEMU_ORIG_SHA256 (./versions)"
mv "$dest.part" "$dest"
