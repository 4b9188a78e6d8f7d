#!/bin/bash
# The operator's tools and the offloads incident (tests/offloads-test.py):
# libvirt domains whose guest (Debian's 6.12 kernel) negotiated USO on a
# tap, on the new host (tests/libvirt-hosts.sh): abg-u01 on the patched
# QEMU's machine type, abg-u02 on Debian's stock 10.0.2.  new2's QEMU is the
# patched one without USO, as one whose machine type masks it.  The
# preflight refuses both, naming the features and the remedy; the drain
# moves both to new2 adapted (the remedy in their XML), where the guests
# keep USO.  TAP output.
# Usage: tests/preflight-offloads-test.sh OLD_HOST_ROOT QEMU_NEW QEMU_STOCK GUEST_6.12_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
old_root=$(realpath "$1") new_qemu=$(realpath "$2") stock_qemu=$(realpath "$3") guest=$(realpath "$4")
tmp=$(mktemp -d /tmp/abiguard-offloads-XXXXXX)
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/libvirt-hosts.sh"
trap hosts_down EXIT
abiguard() { PYTHONPATH="$top/tools" /usr/bin/python3 -m abiguard "$@"; }

uso_off="-global virtio-net-pci.host_uso=off -global virtio-net-pci.guest_uso4=off -global virtio-net-pci.guest_uso6=off"
emulator() { # host flavour binary [options]
  mkdir -p "$tmp/$1/bin"
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$3" "${4:-}" > "$tmp/$1/bin/$2"
  chmod +x "$tmp/$1/bin/$2"
}
emulator new qemu "$new_qemu"
emulator new qemu-stock "$stock_qemu"
for f in qemu qemu-stock; do emulator new2 $f "$new_qemu" "$uso_off"; done
hosts_up "$old_root"

domain() { # name machine flavour mac
  guest_devices "$1" "$2" "$tmp/bin/$3" "$tmp/$1.console" "<interface type='ethernet'>
      <mac address='$4'/>
      <model type='virtio'/>
      <alias name='ua-net0'/>
    </interface>"
  echo "</domain>"
}

domain abg-u01 pc-i440fx-10.0-abiguard1 qemu 52:54:00:12:34:01 > "$tmp/abg-u01.xml"
domain abg-u02 pc-i440fx-10.0 qemu-stock 52:54:00:12:34:02 > "$tmp/abg-u02.xml"
for d in abg-u01 abg-u02; do
  virsh -q -c "$(uri new)" create "$tmp/$d.xml" > "$tmp/create.out" 2>&1
  tap_ok $? "$d starts on the new host" || sed 's/^/# /' "$tmp/create.out"
done
for d in abg-u01 abg-u02; do
  # its drivers loaded, so virtio-net negotiated; slow beside make check's other guests
  for _ in $(seq 1800); do grep -q "GUEST READY" "$tmp/$d.console" 2>/dev/null && break; sleep 0.1; done
  grep -q "GUEST READY" "$tmp/$d.console" 2>/dev/null
  tap_ok $? "$d: the guest booted on the new host"
done

# uso_bits HOST DOMAIN: which of the USO bits (54-56) its guest negotiated
# there, from QEMU's x-query-virtio-status decoded by abiguard's own
# reading (abi.feature_mask: up to 10.0 QEMU names bit 55 USO4 too)
uso_bits() {
  virsh -c "$(uri "$1")" qemu-monitor-command "$2" \
    '{"execute": "x-query-virtio-status", "arguments": {"path": "/machine/peripheral/ua-net0/virtio-backend"}}' |
    PYTHONPATH="$top/tools" /usr/bin/python3 -c 'import json, sys
from abiguard import abi
mask = abi.feature_mask(json.load(sys.stdin)["return"]["guest-features"])
print(" ".join(str(b) for b in (54, 55, 56) if mask >> b & 1))'
}
for d in abg-u01 abg-u02; do
  got=$(uso_bits new $d)
  [ "$got" = "54 55 56" ]
  tap_ok $? "$d: the guest negotiated USO, bits 54 55 56 (got: $got)"
done

for d in abg-u01 abg-u02; do
  abiguard preflight --from "$(uri new)" --to "$(uri new2)" $d > "$tmp/$d.preflight" 2>&1
  rc=$?
  sed 's/^/# /' "$tmp/$d.preflight"
  [ $rc = 1 ] && grep -qx "$d: refused" "$tmp/$d.preflight" &&
    grep -q "the guest on the source negotiated VIRTIO_NET_F_GUEST_USO4, VIRTIO_NET_F_GUEST_USO6, VIRTIO_NET_F_HOST_USO" "$tmp/$d.preflight"
  tap_ok $? "$d: preflight to new2 refused, naming the USO features the guest negotiated (exit status $rc)"
  for p in guest_uso4 guest_uso6 host_uso; do
    grep -q "<qemu:property name='$p' type='bool' value='true'/>" "$tmp/$d.preflight" || echo "$p"
  done > "$tmp/missing"
  [ ! -s "$tmp/missing" ]
  tap_ok $? "$d: the remedy turns USO on, as qemu:override XML (missing: $(cat "$tmp/missing"))"
done

abiguard drain --json --from "$(uri new)" --to "$(uri new2)" --all > "$tmp/drain.json" 2> "$tmp/drain.err"
rc=$?
report=$(/usr/bin/python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["domains"]:
    print(r["domain"], r["result"], r.get("how", "-"))' "$tmp/drain.json" 2>&1)
echo "# drain: $(echo "$report" | paste -sd ";")"
[ $rc = 0 ] && [ "$(virsh -q -c "$(uri new2)" list --name | sort | xargs)" = "abg-u01 abg-u02" ] &&
  [ -z "$(virsh -q -c "$(uri new)" list --name)" ]
tap_ok $? "drain to new2: exit status $rc, both domains run on new2 and nowhere else" ||
  sed 's/^/# /' "$tmp/drain.err"
for d in abg-u01 abg-u02; do
  got=$(uso_bits new2 $d)
  [ "$got" = "54 55 56" ]
  tap_ok $? "$d: on new2 the guest still has USO (got: $got)"
done
tap_done
