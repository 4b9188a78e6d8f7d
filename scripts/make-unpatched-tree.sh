#!/bin/bash
# Create build/unpatched/qemu: a worktree of build/qemu at QEMU 10.0.2 with
# only the series' build fix (patch 0001, the edk2 blobs the repacked
# tarball lacks), the control for upstream's own qtests.  Laid out like
# build/qemu so that ccache hits for every file the series leaves alone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tree=$BUILD/qemu
wt=$BUILD/unpatched/qemu
fix=$(git -C "$tree" rev-list --reverse abiguard-base..HEAD | head -n 1)
[ -n "$fix" ] && git -C "$tree" log -1 --format=%s "$fix" | grep -q '^meson: ' ||
  die "the first commit of the series in $tree is not the meson build fix"

git -C "$tree" worktree prune
[ -d "$wt" ] || git -C "$tree" worktree add -q --detach "$wt" "$fix"
git -C "$wt" checkout -q --detach "$fix"
