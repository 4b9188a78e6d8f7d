#!/bin/bash
# Add bookworm-backports, derived from the Debian mirror this machine
# already uses, then refresh the package lists.  (The orig tarballs come
# from the mirror's pool: scripts/fetch-source.sh.)
# No registry host is written here: we copy it from the existing config.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
out=/etc/apt/sources.list.d/abiguard.sources

mirror=$(debian_mirror)
[ -n "$mirror" ] || die "no apt source for Debian bookworm found in /etc/apt; add one, then rerun"

key=/usr/share/keyrings/debian-archive-keyring.gpg
want="Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: $key"

if [ ! -f "$out" ] || [ "$(cat "$out")" != "$want" ] || [ ! -f "$STAMPS/apt-updated" ]; then
  printf '%s\n' "$want" > "$out.tmp" && mv "$out.tmp" "$out"
  log "apt: bookworm-backports from $mirror"
  apt-get update -qq || die "apt-get update failed: is the Debian registry reachable? check 'apt-get update' output"
  mkdir -p "$STAMPS" && touch "$STAMPS/apt-updated"
fi
