#!/bin/bash
# Create the base's unpatched tree (build/unpatched/qemu, build/10.2/...): a
# worktree of its tree with only the series' build fix (patch 0001, the
# edk2 blobs the repacked tarball lacks), the control for upstream's own
# qtests and the reference of I1.  Laid out like the base's tree so that
# ccache hits for every file the series leaves alone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tree=$BASE_BUILD/qemu
wt=$BASE_BUILD/unpatched/qemu
# sed reads the whole list: head could leave git writing to a closed pipe
fix=$(git -C "$tree" rev-list --reverse abiguard-base..HEAD | sed -n 1p)
[ -n "$fix" ] && [[ $(git -C "$tree" log -1 --format=%s "$fix") == "meson: "* ]] ||
  die "the first commit of the series in $tree is not the meson build fix"

git -C "$tree" worktree prune
[ -d "$wt" ] || git -C "$tree" worktree add -q --detach "$wt" "$fix"
git -C "$wt" checkout -q --detach "$fix"
