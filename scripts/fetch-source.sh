#!/bin/bash
# Download Debian's QEMU orig tarball of the base (BASE=10.0 or 10.2) from
# the pool of this machine's Debian mirror, and verify it against the
# SHA256 pinned in ./versions.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# fetch TARBALL SHA256: from the pool of this machine's Debian mirror
fetch() {
  local name=$1 sha=$2 dest=$CACHE/$1 mirror
  [ -f "$dest" ] && return 0   # only ever renamed into place after verification
  need_root
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || die "no apt source for Debian bookworm found in /etc/apt; add one, then rerun"
  log "fetching $name"
  mkdir -p "$CACHE"
  rm -f "$dest".part*
  if ! /usr/lib/apt/apt-helper download-file "$mirror/pool/main/${QEMU_SRC_PKG:0:1}/$QEMU_SRC_PKG/$name" \
         "$dest.part" "SHA256:$sha" >/dev/null 2>"$CACHE/fetch.err"; then
    # apt-helper keeps a file that arrived with the wrong hash as *.FAILED
    if [ -f "$dest.part.FAILED" ]; then
      got=$(sha256sum "$dest.part.FAILED" | cut -d' ' -f1)
      rm -f "$dest".part*
      die "checksum mismatch for $name: got $got, expected $sha (./versions)"
    fi
    rm -f "$dest".part*
    die "download of $name failed ($(tail -n 1 "$CACHE/fetch.err")): is the Debian registry reachable?"
  fi
  echo "$sha  $dest.part" | sha256sum -c --quiet - ||
    die "checksum mismatch for $name: expected $sha (./versions)"
  mv "$dest.part" "$dest"
}

fetch "$BASE_TARBALL" "$BASE_SHA256"
