#!/bin/bash
# Write the stable entry points build/bin/qemu-{patched,stock-7.2,stock-10.0.2}:
# each runs one QEMU with its own data and module directories.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$BUILD/bin"
write() { # name command...
  local f=$BUILD/bin/$1; shift
  printf '#!/bin/sh\n%s\n' "$*" > "$f.tmp"
  chmod +x "$f.tmp" && mv "$f.tmp" "$f"
}

# Patched: run from the build tree, which finds firmware under
# qemu-bundle/<firmwarepath> (see scripts/build-qemu.sh).
write qemu-patched "exec $BUILD/qemu-build/qemu-system-x86_64 \"\$@\""
for peer in 7.2 10.0.2; do
  root=$BUILD/peers/stock-$peer
  [ -x "$root/usr/bin/qemu-system-x86_64" ] || die "peer stock-$peer missing under $root: run 'make peers'"
  write "qemu-stock-$peer" "QEMU_MODULE_DIR=$root/usr/lib/x86_64-linux-gnu/qemu exec $root/usr/bin/qemu-system-x86_64 -L $root/usr/share/qemu \"\$@\""
done

# For qtests only: libqtest of 10.0 passes "-audio none", which QEMU 7.2
# rejects ("Parameter 'model' is missing"); drop it, nothing else changes.
cat > "$BUILD/bin/qemu-stock-7.2-qtest.tmp" <<SHIM
#!/bin/bash
args=()
while [ \$# -gt 0 ]; do
  if [ "\$1" = -audio ] && [ "\${2:-}" = none ]; then shift 2; continue; fi
  args+=("\$1"); shift
done
exec $BUILD/bin/qemu-stock-7.2 "\${args[@]}"
SHIM
chmod +x "$BUILD/bin/qemu-stock-7.2-qtest.tmp"
mv "$BUILD/bin/qemu-stock-7.2-qtest.tmp" "$BUILD/bin/qemu-stock-7.2-qtest"
