#!/bin/bash
# The operator's tools (tools/: the abiguard Python package) as a Debian
# package, built by dpkg-buildpackage with dh-python in a clean Debian 13
# root.  Cached in $CACHE/debs-abiguard-tools/HASH, HASH naming tools/;
# the directory is printed on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

hash=$(cd "$TOP" && find tools -type f ! -path '*/__pycache__/*' | sort |
       xargs sha256sum | sha256sum | cut -c1-16)
out=$CACHE/debs-abiguard-tools/$hash
if [ -f "$out/done" ]; then echo "$out"; exit 0; fi
need_root
work=$BUILD/tools-deb
rm -rf "$work" && mkdir -p "$work"
tarball=$(deb_build_root "$TOP/tools" "" "$work/root.log") || exit 1
root=$work/root
unpack_root "$root" "$tarball"
version=$(sed -n '1s/^abiguard (\([^)]*\)).*/\1/p' "$TOP/tools/debian/changelog")
mkdir -p "$root/build"
cp -r "$TOP/tools" "$root/build/abiguard-$version"
find "$root/build" -name __pycache__ -prune -exec rm -rf {} +
chroot "$root" env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  sh -c "cd /build/abiguard-$version && dpkg-buildpackage -b -uc -us" \
  > "$work/build.log" 2>&1 || die "dpkg-buildpackage of the tools failed; see $work/build.log"
rm -rf "$out" && mkdir -p "$out"
cp "$root"/build/*.deb "$out/"
touch "$out/done"
rm -rf "$root"
log "tools package: $(ls "$out"/*.deb)"
echo "$out"
