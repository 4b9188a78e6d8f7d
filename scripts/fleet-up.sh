#!/bin/bash
# make fleet: three libvirt hosts of three generations on this machine, each
# in a network namespace of its own on one bridge, as a fleet to upgrade:
#   old   - Debian 12: QEMU 7.2, libvirt 9.0 (build/old-host)     10.231.3.1
#   v10.0 - the patched QEMU 10.0.2 (make build), this machine's
#           libvirt 11.3                                          10.231.3.2
#   v10.2 - Debian 13 with the packages of make deb installed by apt
#           (QEMU 10.2.2+abiguard1), libvirt 11.3 (build/deb-host) 10.231.3.3
# Each host runs its own QEMU as $FLEET/bin/qemu-system-x86_64, so one
# domain XML runs on any of them.  Prints each host's URI, and writes them
# to $FLEET/uris ("NAME URI" lines).  make fleet-down removes it all.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLEET=$BUILD/fleet
[ ! -e "$FLEET/uris" ] || die "a fleet runs already ($FLEET/uris): make fleet-down first"
need_root
tmp=$FLEET guest=$BUILD/guest
. "$TOP/tests/libvirt-hosts.sh"
mkdir -p "$FLEET"
bridge=abg-fleet
ip netns add $bridge
ip -n $bridge link add br0 type bridge && ip -n $bridge link set br0 up
i=0
for h in old v10.0 v10.2; do
  i=$((i + 1))
  ns=abg-fleet-$h
  ip netns add "$ns"
  ip link add "abgf$i" netns "$ns" type veth peer name "abgf$i-br" netns $bridge
  ip -n $bridge link set "abgf$i-br" master br0 up
  ip -n "$ns" addr add "10.231.3.$i/24" dev "abgf$i"
  ip -n "$ns" link set "abgf$i" up && ip -n "$ns" link set lo up
  mkdir -p "$FLEET/$h/bin"
done
emulator() { # host qemu
  printf '#!/bin/sh\nexec %s "$@"\n' "$2" > "$FLEET/$1/bin/qemu-system-x86_64"
  chmod +x "$FLEET/$1/bin/qemu-system-x86_64"
}
emulator old /usr/bin/qemu-system-x86_64
emulator v10.0 "$BUILD/bin/qemu-patched"
emulator v10.2 /usr/bin/qemu-system-x86_64
getent passwd libvirt-qemu >/dev/null ||
  adduser --system --group --no-create-home libvirt-qemu >/dev/null 2>&1
MIGRATION_HOST=10.231.3.1 start_daemon old abg-fleet-old \
  6f0c2a4e-0a0b-4c1d-9e2f-0000000000f1 "$BUILD/old-host" > /dev/null
MIGRATION_HOST=10.231.3.2 start_daemon v10.0 abg-fleet-v10.0 \
  6f0c2a4e-0a0b-4c1d-9e2f-0000000000f2 > /dev/null
MIGRATION_HOST=10.231.3.3 start_daemon v10.2 abg-fleet-v10.2 \
  6f0c2a4e-0a0b-4c1d-9e2f-0000000000f3 "$BUILD/deb-host" > /dev/null
for h in old v10.0 v10.2; do
  echo "$h $(uri "$h")"
done > "$FLEET/uris.tmp"
mv "$FLEET/uris.tmp" "$FLEET/uris"
pkg() { chroot "$1" dpkg-query -W -f '${Version}' "$2"; }
declare -A qemu=(
  [old]="QEMU $(pkg "$BUILD/old-host" qemu-system-x86) (Debian 12)"
  [v10.0]="$("$BUILD/bin/qemu-patched" --version | head -n 1) (make build)"
  [v10.2]="QEMU $(pkg "$BUILD/deb-host" qemu-system-x86) (make deb, installed by apt)"
)
while read -r h u; do
  printf '%-6s %s\n       %s, libvirt %s\n' "$h" "$u" "${qemu[$h]}" \
    "$(virsh -c "$u" version --daemon | sed -n 's/.*daemon: //p')"
done < "$FLEET/uris"
echo "each host's QEMU, as a domain's <emulator>: $FLEET/bin/qemu-system-x86_64"
