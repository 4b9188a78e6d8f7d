#!/bin/bash
# Write the stable entry points build/bin/qemu-{patched,stock-7.2,stock-10.0.2}
# (qemu-patched-10.0 too) and, once built or made, qemu-{patched,unpatched}-10.2 and
# qemu-debian13-{10.0.13,11.1.3}: each runs one QEMU with its own data and
# module directories.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$BUILD/bin"
write() { # name command...
  local f=$BUILD/bin/$1; shift
  printf '#!/bin/sh\n%s\n' "$*" > "$f.tmp"
  chmod +x "$f.tmp" && mv "$f.tmp" "$f"
}

# Patched: run from the build tree, which finds firmware under
# qemu-bundle/<firmwarepath> (see link_firmware in scripts/lib.sh).
write qemu-patched "exec $BUILD/qemu-build/qemu-system-x86_64 \"\$@\""
# The same, named by its release where the other base is the one under test.
write qemu-patched-10.0 "exec $BUILD/qemu-build/qemu-system-x86_64 \"\$@\""
# The second base, once built (make build BASE=10.2, make unpatched BASE=10.2).
for build in patched:qemu-build unpatched:unpatched/qemu-build; do
  bin=$BUILD/10.2/${build#*:}/qemu-system-x86_64
  if [ -x "$bin" ]; then write "qemu-${build%%:*}-10.2" "exec $bin \"\$@\""; fi
done
for peer in 7.2 10.0.2; do
  root=$BUILD/peers/stock-$peer
  [ -x "$root/usr/bin/qemu-system-x86_64" ] || die "peer stock-$peer missing under $root: run 'make peers'"
  write "qemu-stock-$peer" "QEMU_MODULE_DIR=$root/usr/lib/x86_64-linux-gnu/qemu exec $root/usr/bin/qemu-system-x86_64 -L $root/usr/share/qemu \"\$@\""
done

# Debian 13's QEMUs run in their Debian 13 root, in a mount namespace of
# their own where /tmp (qtest sockets, images), /dev, /proc and the guest's
# kernel and initramfs ($BUILD/guest, same path) are the host's.
for peer in 10.0.13:$PEER_DEBIAN13_VERSION 11.1.3:$PEER_DEBIAN13_BACKPORTS_VERSION; do
  root=$BUILD/debian13-${peer#*:}
  root=${root//:/_}
  [ -x "$root/usr/bin/qemu-system-x86_64" ] || continue  # make debian13-hosts
  write "qemu-debian13-${peer%%:*}" "exec unshare --mount --propagation private sh -c 'mount --bind /tmp \"\$0/tmp\" && mount --rbind /dev \"\$0/dev\" && mount -t proc proc \"\$0/proc\" && mkdir -p \"\$0$BUILD/guest\" && mount --bind $BUILD/guest \"\$0$BUILD/guest\" && exec chroot \"\$0\" /usr/bin/qemu-system-x86_64 \"\$@\"' $root \"\$@\""
done

# For qtests only: a newer libqtest passes options an older peer rejects,
# "-audio none" (10.0's; QEMU 7.2 says "Parameter 'model' is missing") and
# "-run-with exit-with-parent=on" (10.2's; 10.0 says "Invalid parameter").
# qemu-PEER-qtest drops what PEER rejects, and nothing else.  Debian builds
# no qtest accelerator, so for Debian's QEMUs (ACCEL tcg) the shim also
# gives TCG where libqtest asks for "-accel qtest"; upstream's
# migration-test needs that in its cross-version mode.
qtest_shim() { # peer accel "option value"...
  local peer=$1 accel=$2 f=$BUILD/bin/qemu-$1-qtest drop=''
  shift 2
  [ $# = 0 ] || drop="$(printf '"%s"|' "$@")"
  drop=${drop%|}
  cat > "$f.tmp" <<SHIM
#!/bin/bash
args=()
while [ \$# -gt 0 ]; do
  case "\$1 \${2:-}" in
    ${drop:+$drop) shift 2; continue ;;}
    "-accel qtest") args+=(-accel $accel); shift 2; continue ;;
  esac
  args+=("\$1"); shift
done
exec $BUILD/bin/qemu-$peer "\${args[@]}"
SHIM
  chmod +x "$f.tmp" && mv "$f.tmp" "$f"
}
qtest_shim stock-7.2 tcg "-audio none" "-run-with exit-with-parent=on"
qtest_shim stock-10.0.2 tcg "-run-with exit-with-parent=on"
qtest_shim patched-10.0 qtest "-run-with exit-with-parent=on"
# optional peers: only once make debian13-hosts has made their roots
if [ -x "$BUILD/bin/qemu-debian13-10.0.13" ]; then
  qtest_shim debian13-10.0.13 tcg "-run-with exit-with-parent=on"
fi
if [ -x "$BUILD/bin/qemu-debian13-11.1.3" ]; then
  qtest_shim debian13-11.1.3 tcg
fi
