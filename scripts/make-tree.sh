#!/bin/bash
# Create the base's tree (build/qemu for BASE=10.0, build/10.2/qemu for
# BASE=10.2): a git tree of Debian's orig tarball (one base commit, tagged
# abiguard-base) with patches/BASE/ applied as commits.  An existing tree is
# reused when it already carries exactly patches/BASE/; a tree with other
# commits is never overwritten (export your work first).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tree=$BASE_BUILD/qemu
tarball=$CACHE/$BASE_TARBALL
[ -f "$tarball" ] || die "$tarball missing: run 'make fetch'"

series_ids() { git patch-id --stable | cut -d' ' -f1 | sort; }
patch_files() { find "$PATCHES" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort; }

if [ -d "$tree/.git" ]; then
  have=$(git -C "$tree" format-patch --stdout abiguard-base..HEAD | series_ids)
  want=$(patch_files | xargs -r cat | series_ids)
  [ "$have" = "$want" ] && exit 0
  if [ "${FORCE:-0}" != 1 ]; then
    die "$tree holds commits that differ from patches/$BASE/: run 'make export' to keep them, or 'make tree FORCE=1' to reset the tree to patches/$BASE/"
  fi
  log "resetting $tree to patches/$BASE/"
  git -C "$tree" am --abort >/dev/null 2>&1 || true
  git -C "$tree" reset -q --hard abiguard-base
  git -C "$tree" clean -qfdx
else
  log "unpacking $BASE_TARBALL into $tree"
  rm -rf "$tree.tmp"
  mkdir -p "$tree.tmp"
  tar -C "$tree.tmp" --strip-components=1 -xf "$tarball"
  (
    cd "$tree.tmp"
    export GIT_AUTHOR_NAME=abiguard GIT_AUTHOR_EMAIL=abiguard@localhost
    export GIT_COMMITTER_NAME=abiguard GIT_COMMITTER_EMAIL=abiguard@localhost
    export GIT_AUTHOR_DATE='2025-01-01T00:00:00Z' GIT_COMMITTER_DATE='2025-01-01T00:00:00Z'
    git init -q -b master
    git add -A -f
    git commit -q -m "QEMU $BASE_VERSION (Debian orig tarball $BASE_TARBALL)"
    git tag abiguard-base
    # commits made in the tree carry the series' identity, as its patches do
    git config user.name "Abiguard Developers"
    git config user.email dev@abiguard.invalid
  )
  mkdir -p "$(dirname "$tree")" && mv "$tree.tmp" "$tree"
fi

files=$(patch_files)
[ -n "$files" ] || exit 0
# Committer identity/date fixed so that commit ids are reproducible.
if ! GIT_COMMITTER_NAME=abiguard GIT_COMMITTER_EMAIL=abiguard@localhost \
     GIT_COMMITTER_DATE='2025-01-01T00:00:00Z' \
     git -C "$tree" am -q --keep-cr $files >"$BUILD/am.err" 2>&1; then
  bad=$(sed -n 's/^Patch failed at \(.*\)$/\1/p' "$BUILD/am.err" | head -n 1)
  git -C "$tree" am --abort >/dev/null 2>&1 || true
  git -C "$tree" reset -q --hard abiguard-base
  die "patch ${bad:-?} does not apply to QEMU $BASE_VERSION (details in $BUILD/am.err): rebase it onto abiguard-base, then 'make export'"
fi
