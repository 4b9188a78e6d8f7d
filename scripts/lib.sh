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
  --python=/usr/bin/python3 "--firmwarepath=$QEMU_FIRMWAREPATH")

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
# The regression tests of the series' fixes, which it adds to
# upstream's migration-test: streams a test changes, loaded into a
# destination without a guest (a few seconds in all).
FIX_MIGRATION_TESTS="/x86_64/migration/stream /x86_64/migration/pcihp"
UPSTREAM_MIGRATION_TESTS="/x86_64/migration/analyze-script $FIX_MIGRATION_TESTS"

# link_firmware BUILD_DIR: a build-tree QEMU looks for firmware under
# qemu-bundle/<firmwarepath>.  The repacked tarball has no ROMs, so use
# what Debian ships for 10.0.2 (qemu-system-data of the stock 10.0.2 peer:
# kvmvapic.bin, linuxboot_dma.bin, ... and links to seabios and
# ipxe-qemu), so that the patched and stock builds of either base load
# identical ROMs.
link_firmware() {
  local data=$BUILD/peers/stock-10.0.2/usr/share/qemu
  [ -d "$data" ] || die "$data missing: run 'make peers'"
  mkdir -p "$1/qemu-bundle/usr/share" "$1/qemu-bundle/usr/lib/ipxe"
  ln -sfn "$data" "$1/qemu-bundle/usr/share/qemu"
  ln -sfn /usr/share/seabios "$1/qemu-bundle/usr/share/seabios"
  ln -sfn /usr/lib/ipxe/qemu "$1/qemu-bundle/usr/lib/ipxe/qemu"
}

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

# deb_build_root SRC PROFILES LOG: the tarball of a clean DEB_SUITE build
# root (mmdebstrap's buildd variant, with ccache) that holds the build
# dependencies of the source tree SRC, as apt-get build-dep takes them from
# SRC/debian/control with the build profiles PROFILES (comma-separated, or
# empty); cached by both.  mmdebstrap's output goes to LOG.
deb_build_root() {
  local src=$1 profiles=$2 log=$3 key tarball mirror
  key=$( { echo "$profiles"; cat "$src/debian/control"; } | sha256sum | cut -c1-16)
  tarball=$CACHE/deb-build-root-$DEB_SUITE-$key.tar
  if [ ! -f "$tarball" ]; then
    mirror=$(root_mirror) || exit 1
    log "making a $DEB_SUITE build root with the build dependencies of $(basename "$src")"
    mmdebstrap --quiet --variant=buildd --format=tar --include=ccache \
      --customize-hook='mkdir "$1"/tmp/src' \
      --customize-hook="copy-in $src/debian /tmp/src" \
      --customize-hook="chroot \"\$1\" apt-get -y ${profiles:+-P $profiles} build-dep /tmp/src" \
      --customize-hook='rm -rf "$1"/tmp/src' \
      "$DEB_SUITE" "$tarball.tmp" - <<<"deb $mirror $DEB_SUITE main" > "$log" 2>&1 ||
      { rm -f "$tarball.tmp"; die "mmdebstrap failed; see $log"; }
    mv "$tarball.tmp" "$tarball"
  fi
  echo "$tarball"
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

# fetch_pool FILE SHA256: a file of Debian's QEMU source package, from the
# pool of this machine's Debian mirror into $CACHE, verified.
fetch_pool() {
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

# Pins that survive the archive.  A suite that moves (backports, security
# updates, point releases) stops serving a pinned binary; the rule in
# ./versions then picks its substitute, and the harness says so.
#
# served_versions SUITE PACKAGE: the versions of PACKAGE that SUITE serves,
# one a line.  bookworm suites are read from this machine's apt sources
# (make setup adds bookworm-backports); other suites from an apt state of
# their own under $CACHE/apt/SUITE, made from the same mirror.
served_versions() {
  local suite=$1 pkg=$2
  case $suite in
    bookworm*) apt-cache madison "$pkg" ;;
    *) suite_apt_cache "$suite" madison "$pkg" ;;
  esac | awk -F'|' -v suite="$suite" '$3 ~ (" " suite "/") { gsub(/ /, "", $2); print $2 }'
}
# suite_apt_cache SUITE ARGS...: apt-cache over SUITE alone, its lists
# refreshed when older than a day.
suite_apt_cache() {
  local suite=$1 dir=$CACHE/apt/$1 mirror
  shift
  local opts=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
              -o "Dir::State::status=$dir/status" -o Debug::NoLocking=1)
  if [ -z "$(find "$dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || die "no apt source for Debian bookworm found in /etc/apt"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" && touch "$dir/status"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
      > "$dir/sources.list"
    apt-get "${opts[@]}" update -qq >/dev/null 2>&1 ||
      die "apt-get update of $suite failed: is the Debian registry reachable?"
  fi
  apt-cache "${opts[@]}" "$@"
}
# substitute VERSION: reads the served versions on stdin and prints the
# rule's pick: VERSION itself if served, else the newest Debian revision of
# the same upstream version (epoch and upstream part), else nothing.
substitute() {
  local want=$1 served v
  served=$(cat)
  if grep -qxF -- "$want" <<<"$served"; then echo "$want"; return 0; fi
  while read -r v; do
    if [ -n "$v" ] && [ "${v%-*}" = "${want%-*}" ]; then echo "$v"; fi
  done <<<"$served" | newest
}
# newest: the newest of the Debian versions on stdin, or nothing.
newest() {
  local best='' v
  while read -r v; do
    if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
  done
  [ -z "$best" ] || echo "$best"
}
# pin SUITE PACKAGE VERSION: the version of PACKAGE to fetch, by the rule
# above; a substitute is logged and listed in $BUILD/pins-substituted,
# which make check prints.  Fails, naming the pin, when there is none.
pin() {
  local suite=$1 pkg=$2 want=$3 got
  got=$(served_versions "$suite" "$pkg" | substitute "$want")
  [ -n "$got" ] || die "$suite serves no $pkg $want, nor another Debian revision of ${want%-*}: update ./versions"
  [ "$got" = "$want" ] || substituted "$suite" "$pkg $want" "$pkg $got"
  echo "$got"
}
# substituted SUITE PINNED TAKEN: log a substitute and list it for make check.
substituted() {
  log "$1 no longer serves $2: using $3 (the rule in ./versions)"
  mkdir -p "$BUILD"
  grep -qxF "$2 -> $3 ($1)" "$BUILD/pins-substituted" 2>/dev/null ||
    echo "$2 -> $3 ($1)" >> "$BUILD/pins-substituted"
}
# guest_kernel SUITE ABI VERSION: "ABI VERSION" of a guest kernel by the
# rule in ./versions: the pinned package's own revisions while SUITE serves
# it; else the ABI of SUITE's newest linux-image-amd64 of the same series.
guest_kernel() {
  local suite=$1 abi=$2 version=$3 series=${3%.*} meta got
  got=$(served_versions "$suite" "linux-image-$abi" | substitute "$version")
  if [ -n "$got" ]; then echo "$abi $got"; return 0; fi
  meta=$(served_versions "$suite" linux-image-amd64 | grep -F "$series." | newest)
  [ -n "$meta" ] || return 1
  apt-cache show "linux-image-amd64=$meta" |
    sed -n 's/^Depends: linux-image-\([^ ]*\) (= \([^)]*\)).*/\1 \2/p' | head -n 1 | grep .
}
