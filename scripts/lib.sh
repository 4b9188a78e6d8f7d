# Shared helpers for the harness scripts. Sourced, not run.
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$TOP/versions"
BUILD=${BUILD:-$TOP/build}
# Downloads and ccache outlive a clean clone, so that CI reuses them.
CACHE=${ABIGUARD_CACHE:-/var/cache/abiguard}
STAMPS=$BUILD/stamps

log() { printf '[abiguard] %s\n' "$*" >&2; }
die() { printf 'abiguard: error: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (it installs Debian packages); rerun with sudo"; }

# The base a command works on, BASE=10.0 (QEMU 10.0.2, the default) or
# BASE=10.2 (QEMU 10.2.2): its orig tarball, its series in patches/BASE/,
# and its tree and builds, under build/ for 10.0 and build/10.2/ for 10.2,
# laid out alike.
BASE=${BASE:-10.0}
case $BASE in
  10.0) BASE_VERSION=10.0.2 BASE_TARBALL=$QEMU_ORIG_TARBALL BASE_SHA256=$QEMU_ORIG_SHA256
        BASE_BUILD=$BUILD ;;
  10.2) BASE_VERSION=10.2.2 BASE_TARBALL=$QEMU_10_2_ORIG_TARBALL BASE_SHA256=$QEMU_10_2_ORIG_SHA256
        BASE_BUILD=$BUILD/10.2 ;;
  *) die "BASE=$BASE: the bases are 10.0 and 10.2" ;;
esac
PATCHES=$TOP/patches/$BASE

# ccache, with paths made relative so that a clone elsewhere (CI) and the
# bisect build (same layout under build/bisect) hit the same cache.
export PATH=/usr/lib/ccache:$PATH CCACHE_DIR=$CACHE/ccache
export CCACHE_BASEDIR=$BUILD CCACHE_NOHASHDIR=1

# How the patched QEMU is configured (scripts/build-qemu.sh, bisect-check.sh).
# Firmware is Debian's: see the qemu-bundle links in scripts/build-qemu.sh.
QEMU_FIRMWAREPATH=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
QEMU_CONFIGURE_FLAGS=(--target-list=x86_64-softmmu --enable-kvm --enable-tcg
  --enable-slirp --enable-fdt=system --disable-install-blobs --disable-docs
  --python=/usr/bin/python3 --firmwarepath=$QEMU_FIRMWAREPATH)

# The qtests the series adds, in the tree TREE (default the base's) as
# checked out: make check, check-sanitizers and the builds run these.
series_qtests() {
  git -C "${1:-$BASE_BUILD/qemu}" diff --name-only --diff-filter=A abiguard-base HEAD -- \
    'tests/qtest/*-test.c' | sed 's#^tests/qtest/##; s#\.c$##'
}

# Upstream's qtests that make check runs on the patched build: those that
# migrate, plug PCI devices or answer QMP the series extends.  The whole
# suite runs in make check-upstream (docs/upstream-qtests.md).
UPSTREAM_QTESTS_IN_CHECK="qos-test virtio-net-failover migration-test
  qmp-cmd-test device-introspect-test test-hmp device-plug-test
  drive_del-test hd-geo-test ivshmem-test virtio-balloon-test i440fx-test
  q35-test"
# The part of migration-test's quick set that fits make check's time: each
# migrating case boots a guest under TCG for about 35 s.  analyze-script
# (1 s) reads a stream of the abiguard q35, early section included, with
# upstream's scripts/analyze-migration.py.  Migrations with the early check
# on are covered by guest-abi-test (every transport, postcopy, multifd) and
# the real guests of tests/guest-migrate-test.py; make check-upstream runs
# the whole quick set.
UPSTREAM_MIGRATION_TESTS="/x86_64/migration/analyze-script"

# Debian roots (the old host, Debian 13's QEMUs), made with mmdebstrap and
# cached as tarballs.  root_mirror: the mirror to make one from, or exit.
root_mirror() {
  local mirror
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || die "no apt source for Debian bookworm found in /etc/apt"
  command -v mmdebstrap >/dev/null || die "mmdebstrap missing: run 'make setup'"
  mkdir -p "$CACHE"
  echo "$mirror"
}
# unpack_root ROOT TARBALL: ROOT afresh from TARBALL.
unpack_root() {
  rm -rf "$1" && mkdir -p "$1"
  tar -C "$1" -xf "$2" || die "cannot unpack $2"
}

# The first URI of this machine's apt configuration that serves the plain
# "bookworm" suite: apt sources are derived from it, never written here.
debian_mirror() {
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
      /^URIs:/ { uri=$2 } /^Suites:/ { for (i=2;i<=NF;i++) if ($i=="bookworm") print uri }
      /^$/ { uri="" }'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1=="deb" && $0 ~ / bookworm / { for (i=2;i<=NF;i++) if ($i ~ /:\/\//) { print $i; break } }'
  } 2>/dev/null | head -n 1 || true
}
