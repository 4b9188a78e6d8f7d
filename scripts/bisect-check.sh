#!/bin/bash
# Build every commit of the series on its own, in a separate worktree and
# build directory, so that the series stays bisectable.  A commit that
# adds a case to upstream's migration-test (the fixes' regression tests)
# also runs those cases there: each fix's test passes at its own patch.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tree=$BASE_BUILD/qemu
# Same relative layout as the base's qemu and qemu-build, for ccache.
wt=$BASE_BUILD/bisect/qemu
out=$BASE_BUILD/bisect/qemu-build

git -C "$tree" worktree prune
[ -d "$wt" ] || git -C "$tree" worktree add -q --detach "$wt" abiguard-base
for c in $(git -C "$tree" rev-list --reverse abiguard-base..HEAD); do
  subject=$(git -C "$tree" log -1 --format=%s "$c")
  git -C "$wt" checkout -q --detach "$c"
  if [ ! -f "$out/build.ninja" ]; then
    mkdir -p "$out"
    (cd "$out" && "$wt/configure" "${QEMU_CONFIGURE_FLAGS[@]}") > "$BASE_BUILD/bisect-configure.log" 2>&1 ||
      die "configure failed at '$subject'; see $BASE_BUILD/bisect-configure.log"
  fi
  link_firmware "$out"
  targets="qemu-system-x86_64 $(printf 'tests/qtest/%s ' qos-test migration-test $(series_qtests "$wt"))"
  if ninja -C "$out" $targets > "$BASE_BUILD/bisect-ninja.log" 2>&1; then
    echo "builds: $subject"
  else
    die "'$subject' does not build on its own; see $BASE_BUILD/bisect-ninja.log"
  fi
  if git -C "$tree" diff --quiet "$c^" "$c" -- tests/qtest/migration/misc-tests.c; then
    continue
  fi
  args=()
  for p in $FIX_MIGRATION_TESTS; do args+=(-p "$p"); done
  if (cd "$out" && QTEST_QEMU_BINARY=./qemu-system-x86_64 timeout 300 \
        tests/qtest/migration-test --tap -k "${args[@]}") > "$BASE_BUILD/bisect-test.log" 2>&1; then
    echo "  passes its tests: $(grep -c '^ok ' "$BASE_BUILD/bisect-test.log") cases of migration-test"
  else
    die "'$subject' fails migration-test; see $BASE_BUILD/bisect-test.log"
  fi
done
echo "every patch of the series builds"
