#!/bin/bash
# Download Debian's QEMU orig tarballs, the 10.0.2 base through apt's own
# URIs and the 10.2.2 base from the pool of the same mirror, and verify each
# against the SHA256 pinned in ./versions.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# fetch TARBALL SHA256 URI-COMMAND...: URI-COMMAND prints the URI
fetch() {
  local name=$1 sha=$2 dest=$CACHE/$1 uri
  shift 2
  [ -f "$dest" ] && return 0   # only ever renamed into place after verification
  need_root
  uri=$("$@")
  [ -n "$uri" ] || die "no URI for $name: run 'make setup' (deb-src for bookworm-backports) and check the registry is reachable"
  log "fetching $name"
  mkdir -p "$CACHE"
  rm -f "$dest".part*
  if ! /usr/lib/apt/apt-helper download-file "$uri" "$dest.part" "SHA256:$sha" >/dev/null 2>"$CACHE/fetch.err"; then
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

apt_source_uri() {
  apt-get source --print-uris "$QEMU_SRC_PKG=$QEMU_SRC_VERSION" 2>/dev/null |
    awk -v f="$QEMU_ORIG_TARBALL" '$2 == f { gsub("\x27", "", $1); print $1 }'
}
pool_uri() {
  local mirror
  mirror=$(debian_mirror)
  [ -z "$mirror" ] || echo "$mirror/pool/main/q/qemu/$QEMU_10_2_ORIG_TARBALL"
}

fetch "$QEMU_ORIG_TARBALL" "$QEMU_ORIG_SHA256" apt_source_uri
fetch "$QEMU_10_2_ORIG_TARBALL" "$QEMU_10_2_ORIG_SHA256" pool_uri
