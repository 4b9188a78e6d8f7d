#!/bin/bash
# Run QEMU's own scripts/checkpatch.pl over every patch of the series, on
# both bases, each with its base's checkpatch (build/qemu, build/10.2/qemu).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bad=0
for p in "$TOP"/patches/*/[0-9][0-9][0-9][0-9]-*.patch; do
  case $p in */0000-*) continue ;; */10.2/*) tree=$BUILD/10.2/qemu ;; *) tree=$BUILD/qemu ;; esac
  # Clean means no error and no warning, not merely exit status 0.
  if out=$(cd "$tree" && ./scripts/checkpatch.pl "$p" 2>&1) && ! grep -qE '^(ERROR|WARNING)' <<<"$out"; then
    echo "clean: ${p#"$TOP"/patches/}"
  else
    echo "NOT CLEAN: ${p#"$TOP"/patches/}"; echo "$out" | sed 's/^/    /'
    bad=1
  fi
done
[ $bad = 0 ] || die "checkpatch found problems (above); fix them in 'make tree', then 'make export'"
