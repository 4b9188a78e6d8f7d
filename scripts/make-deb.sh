#!/bin/bash
# Debian packages of the patched QEMU (10.2 base), built the Debian way:
# Debian's own source package (orig tarball + debian/), the packaging's
# changes of packaging/qemu-10.2/*.diff, the series as quilt patches in
# debian/patches/abiguard/ after Debian's, a changelog entry and a version
# with ABIGUARD_DEB_SUFFIX; built by dpkg-buildpackage in a clean Debian 13
# root with the build dependencies from the archive.
# The packages are cached in $CACHE/debs-abiguard/HASH, HASH naming the
# series, the packaging's changes and Debian's packaging; the directory is
# printed on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PATCHES=$TOP/patches/10.2
PACKAGING=$TOP/packaging/qemu-10.2
# the profiles and options of an x86 host's build: no linux-user, no Xen,
# upstream's vdso (they are for linux-user only), no test suite
PROFILES=nocheck,pkg.qemu.omit-user,pkg.qemu.omit-system-xen,pkg.qemu.use-upstream-vdso
upstream=${QEMU_10_2_SRC_VERSION#*:} upstream=${upstream%-*}
version=$QEMU_10_2_SRC_VERSION$ABIGUARD_DEB_SUFFIX
series=$(printf "%s\n" "$PATCHES"/[0-9]*.patch | grep -v /0000-)
hash=$( { echo "$version $PROFILES $QEMU_10_2_DEBIAN_SHA256 $QEMU_10_2_ORIG_SHA256"
          cat $series "$PACKAGING"/*.diff; } | sha256sum | cut -c1-16)
out=$CACHE/debs-abiguard/$hash
if [ -f "$out/done" ]; then echo "$out"; exit 0; fi
need_root
fetch_pool "$QEMU_10_2_ORIG_TARBALL" "$QEMU_10_2_ORIG_SHA256"
fetch_pool "$QEMU_10_2_DEBIAN_TARBALL" "$QEMU_10_2_DEBIAN_SHA256"

# The source: Debian's, with the packaging's changes, the series and the
# changelog entry.
work=$BUILD/deb
rm -rf "$work" && mkdir -p "$work/src"
src=$work/src/qemu-$upstream
mkdir "$src"
tar -C "$src" --strip-components=1 -xf "$CACHE/$QEMU_10_2_ORIG_TARBALL"
tar -C "$src" -xf "$CACHE/$QEMU_10_2_DEBIAN_TARBALL"
for d in "$PACKAGING"/*.diff; do
  patch -d "$src" -p1 -s --no-backup-if-mismatch < "$d" || die "$(basename "$d") does not apply to Debian's packaging"
done
mkdir "$src/debian/patches/abiguard"
for p in $series; do
  cp "$p" "$src/debian/patches/abiguard/"
  echo "abiguard/$(basename "$p")" >> "$src/debian/patches/series"
done
{ echo "qemu ($version) $DEB_SUITE; urgency=medium"
  echo
  echo "  * abiguard: the guest-ABI migration series, $(wc -l <<<"$series") patches in"
  echo "    debian/patches/abiguard/, applied after Debian's patches."
  echo "  * d/patches/microvm-default-machine-type.patch: drop the pc-i440fx"
  echo "    hunk: the microvm binary builds no pc machine type, and the series"
  echo "    defines pc's default machine type itself."
  echo "  * Build the x86 system emulator only, for x86 hosts: d/control-in"
  echo "    drops the other targets' packages and their firmware's cross compilers,"
  echo "    d/control.mk and d/rules build i386 and x86_64 alone and put only"
  echo "    x86 firmware in qemu-system-data.  Built with the profiles"
  echo "    $PROFILES."
  echo
  echo " -- abiguard <dev@abiguard.invalid>  $(date -R -d @"$(git -C "$TOP" log -1 --format=%ct -- patches/10.2 packaging)")"
  echo
  cat "$src/debian/changelog"
} > "$work/changelog" && mv "$work/changelog" "$src/debian/changelog"

# The build root: Debian 13 with the build dependencies.
tarball=$(deb_build_root "$src" "$PROFILES" "$work/root.log") || exit 1
root=$work/root
unpack_root "$root" "$tarball"
mv "$work/src" "$root/build"

log "building QEMU $version packages (log: $work/build.log)"
mkdir -p "$root/ccache"
unshare -m sh -c "
  set -e
  mount --make-rprivate /
  mount -t proc proc $root/proc
  mount --rbind /dev $root/dev
  mount --bind $CACHE/ccache $root/ccache
  chroot $root env -i HOME=/root LANG=C.UTF-8 \
    PATH=/usr/lib/ccache:/usr/sbin:/usr/bin:/sbin:/bin \
    CCACHE_DIR=/ccache CCACHE_BASEDIR=/build CCACHE_NOHASHDIR=1 \
    DEB_BUILD_OPTIONS='nocheck parallel=$(nproc)' DEB_BUILD_PROFILES='${PROFILES//,/ }' \
    sh -c 'cd /build/qemu-$upstream && dpkg-buildpackage -b -uc -us'
" > "$work/build.log" 2>&1 || die "dpkg-buildpackage failed; see $work/build.log"
rm -rf "$out" && mkdir -p "$out"
cp "$root"/build/*.deb "$root"/build/*.buildinfo "$root"/build/*.changes "$out/"
touch "$out/done"
rm -rf "$root"
log "packages: $out"
echo "$out"
