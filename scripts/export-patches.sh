#!/bin/bash
# Write the commits of the base's tree (abiguard-base..HEAD) back to
# patches/BASE/, one file per commit, without dates, hashes or numbering
# that would churn.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tree=$BASE_BUILD/qemu
[ -d "$tree/.git" ] || die "$tree missing: run 'make tree'"
[ -z "$(git -C "$tree" status --porcelain --untracked-files=no)" ] ||
  die "$tree has uncommitted changes: commit them there first"
mkdir -p "$PATCHES"
find "$PATCHES" -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' -delete
git -C "$tree" format-patch -q --zero-commit --no-signature --no-numbered \
  --full-index -o "$PATCHES" abiguard-base..HEAD
log "exported $(git -C "$tree" rev-list --count abiguard-base..HEAD) patches to patches/$BASE/"
