#!/bin/bash
# The packages on pristine hosts (make check-deb): a Debian 13 host with the
# patched QEMU and libvirt installed by apt, the old Debian 12 host of the
# incident (QEMU 7.2, libvirt 9.0), and an admin machine with only the
# abiguard package, no checkout and no build (tests/libvirt-hosts.sh runs
# each host's libvirtd in its root).  Every domain names the same emulator,
# /usr/bin/qemu-system-x86_64: each host runs the QEMU it installed.
# TAP output.
# Usage: tests/deb-host-test.sh OLD_ROOT NEW_ROOT ADMIN_ROOT GUEST_DIR VERSION
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
old_root=$(realpath "$1") new_root=$(realpath "$2") admin_root=$(realpath "$3")
guest=$(realpath "$4") version=$5
tmp=$(mktemp -d /tmp/abiguard-deb-XXXXXX)
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/libvirt-hosts.sh"
trap hosts_down EXIT

# The installed QEMU, as the new host has it.
out=$(chroot "$new_root" qemu-system-x86_64 --version | head -n 1)
[ "$out" = "QEMU emulator version 10.2.2 (Debian $version)" ]
tap_ok $? "the new host's qemu-system-x86_64 --version names $version (got: $out)"
chroot "$new_root" qemu-system-x86_64 -machine help > "$tmp/machines"
for m in pc-i440fx-10.2-abiguard1 pc-q35-10.2-abiguard1 pc-i440fx-10.0-abiguard1 pc-q35-10.0-abiguard1; do
  grep -q "^$m " "$tmp/machines"
  tap_ok $? "-machine help lists $m"
done
grep -q "^pc  *Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-10.2-abiguard1)" "$tmp/machines"
tap_ok $? "the machine type 'pc' is pc-i440fx-10.2-abiguard1" || grep "^pc " "$tmp/machines" | sed 's/^/# /'

hosts_up "$old_root" "$new_root"
virsh -c "$(uri new)" capabilities > "$tmp/caps" 2>&1
grep -q "<emulator>/usr/bin/qemu-system-x86_64</emulator>" "$tmp/caps" &&
  grep -q ">pc-q35-10.2-abiguard1<" "$tmp/caps"
tap_ok $? "the new host's libvirt runs the installed QEMU: its capabilities list pc-q35-10.2-abiguard1"

domain() { # name [property=false...]: a guest on pc-i440fx-7.2, a virtio disk
  cat <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$1</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>$guest/vmlinuz</kernel>
    <initrd>$guest/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$tmp/$1.raw'/>
      <target dev='vda' bus='virtio'/>
      <alias name='ua-disk1'/>
    </disk>
    <serial type='file'><source path='$tmp/$1.console'/></serial>
    <memballoon model='none'/>
  </devices>
XML
  if [ $# -gt 1 ]; then
    echo "  <qemu:override><qemu:device alias='ua-disk1'><qemu:frontend>"
    for p in "${@:2}"; do
      echo "    <qemu:property name='$p' type='bool' value='false'/>"
    done
    echo "  </qemu:frontend></qemu:device></qemu:override>"
  fi
  echo "</domain>"
}
# g1 is compatible; g2 is the incident: the old host's QEMU without
# discard and write-zeroes, whose legacy I/O BAR0 is 64 bytes, not 128.
for args in "abg-d1" "abg-d2 discard write-zeroes"; do
  set -- $args
  truncate -s 16M "$tmp/$1.raw"
  echo "abiguard $1" | dd of="$tmp/$1.raw" conv=notrunc status=none
  domain "$@" > "$tmp/$1.xml"
  virsh -q -c "$(uri old)" create "$tmp/$1.xml" > "$tmp/$1.create" 2>&1
  tap_ok $? "$1 starts on the old host" || sed 's/^/# /' "$tmp/$1.create"
done
for g in abg-d1 abg-d2; do
  for _ in $(seq 600); do grep -q "GUEST READY" "$tmp/$g.console" 2>/dev/null && break; sleep 0.1; done
  grep -q "GUEST READY" "$tmp/$g.console" 2>/dev/null && ! grep -q "GUEST: insmod" "$tmp/$g.console"
  tap_ok $? "$g: the guest says it is ready" || sed 's/^/#   console: /' "$tmp/$g.console" 2>/dev/null
done

# The preflight from the admin machine: the installed command, no checkout.
verdicts() { # JSON file: "domain verdict" lines
  /usr/bin/python3 -c 'import json, sys
for r in json.load(open(sys.argv[1])): print(r["domain"], r["verdict"], r.get("check", {}).get("report", "").replace("\n", " | "))' "$1"
}
unshare -m sh -c "mount --make-rprivate / && mount --bind $tmp $admin_root$tmp &&
  chroot $admin_root sh -c 'cd / && abiguard --version && abiguard preflight --from \"$(uri old)\" --to \"$(uri new)\" --all --json'" \
  > "$tmp/admin.out" 2> "$tmp/admin.err"
rc=$?
head -n 1 "$tmp/admin.out" | sed 's/^/# admin machine: /'
sed 1d "$tmp/admin.out" > "$tmp/admin.json"
verdicts "$tmp/admin.json" > "$tmp/admin.verdicts" 2>&1
[ "$rc" = 1 ] && [ "$(cut -d' ' -f1,2 "$tmp/admin.verdicts")" = "abg-d1 migrates
abg-d2 refused" ]
tap_ok $? "admin machine: abiguard preflight --all says abg-d1 migrates, abg-d2 refused (exit status $rc)" ||
  sed 's/^/# /' "$tmp/admin.verdicts" "$tmp/admin.err"
[ ! -e "$admin_root/usr/bin/qemu-system-x86_64" ] && [ ! -e "$admin_root$top" ] &&
  [ "$(chroot "$admin_root" sh -c 'command -v abiguard')" = /usr/bin/abiguard ]
tap_ok $? "admin machine: /usr/bin/abiguard from its package, no QEMU and no checkout there"
PYTHONPATH="$top/tools" /usr/bin/python3 -m abiguard preflight --from "$(uri old)" --to "$(uri new)" \
  --all --json > "$tmp/checkout.json" 2> "$tmp/checkout.err"
verdicts "$tmp/checkout.json" > "$tmp/checkout.verdicts" 2>&1
diff "$tmp/admin.verdicts" "$tmp/checkout.verdicts" > "$tmp/verdicts.diff"
tap_ok $? "the checkout's preflight gives the admin machine's verdicts and reports" ||
  sed 's/^/# /' "$tmp/verdicts.diff" "$tmp/checkout.err"

migrate() { # name [virsh migrate options]
  local name=$1
  shift
  virsh -q -c "$(uri old)" migrate --live --unsafe "$@" "$name" "$(uri new)" \
    --migrateuri tcp:10.231.1.2
}
virtio_blk() { # host name: what the guest sees of its disk, from QEMU
  virsh -q -c "$(uri "$1")" qemu-monitor-command "$2" \
    '{"execute": "x-query-virtio-status", "arguments": {"path": "/machine/peripheral/ua-disk1/virtio-backend"}}' |
    /usr/bin/python3 -c 'import json, sys; s = json.load(sys.stdin)["return"]
print("status", s["status"], "guest-features", json.dumps(s["guest-features"], sort_keys=True),
      "host-features", json.dumps(s["host-features"], sort_keys=True))'
}
running() { virsh -q -c "$(uri "$1")" domstate "$2" 2>&1 | grep -qx running; }

# The incident: refused with the reason and the remedy, and the domain
# keeps running on the old host, its disk unchanged.
# libvirt 9.0 on the source may print its own error instead of the
# destination's (tests/libvirt-migrate-test.sh, RACE): then it is tried
# again, at most three times in all.
RACE="unable to execute QEMU command 'cont': Migration is not finalized yet"
sum=$(sha256sum < "$tmp/abg-d2.raw")
for try in 1 2 3; do
  migrate abg-d2 --p2p > "$tmp/d2.out" 2>&1
  rc=$?
  grep -qF "$RACE" "$tmp/d2.out" || break
  echo "# attempt $try: libvirt 9.0's race: $(cat "$tmp/d2.out")"
done
sed 's/^/# virsh: /' "$tmp/d2.out"
[ $rc != 0 ] && grep -q "virtio-blk-pci 'ua-disk1' at 0000:00:0[0-9a-f].0: legacy I/O BAR0 is 64 bytes on the source but 128 bytes here" "$tmp/d2.out" &&
  grep -qF "start this device with discard=off,write-zeroes=off" "$tmp/d2.out"
tap_ok $? "incident, old -> new: virsh migrate fails with the reason and the remedy (exit status $rc)"
running old abg-d2 && [ "$(sha256sum < "$tmp/abg-d2.raw")" = "$sum" ]
tap_ok $? "incident: abg-d2 runs on the old host, its disk unchanged"

# The remedy, as the preflight gave it, in the destination XML: the
# migration completes and the guest sees the disk it enumerated.
virtio_blk old abg-d2 > "$tmp/d2.before"
virsh -q -c "$(uri old)" dumpxml --migratable abg-d2 > "$tmp/abg-d2-dst.xml"
/usr/bin/python3 - "$tmp/admin.json" "$tmp/abg-d2-dst.xml" <<'PY'
import json, sys
r = [r for r in json.load(open(sys.argv[1])) if r["domain"] == "abg-d2"][0]
xml = open(sys.argv[2]).read()
if "xmlns:qemu=" not in xml:
    xml = xml.replace("<domain ", "<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0' ", 1)
xml = xml.replace("</domain>", r["remedy"]["override"] + "\n</domain>")
open(sys.argv[2], "w").write(xml)
PY
migrate abg-d2 --p2p --xml "$tmp/abg-d2-dst.xml" > "$tmp/d2-fixed.out" 2>&1
tap_ok $? "incident with the preflight's remedy: virsh migrate --xml completes" || sed 's/^/# /' "$tmp/d2-fixed.out"
running new abg-d2 && virtio_blk new abg-d2 > "$tmp/d2.after" &&
  diff "$tmp/d2.before" "$tmp/d2.after" > /dev/null && grep -q '^status 15 ' "$tmp/d2.after"
tap_ok $? "incident with the remedy: on the new host the guest's disk has the features it negotiated, driver ready" ||
  sed 's/^/# /' "$tmp/d2.before" "$tmp/d2.after"

# A compatible domain migrates as it is.
virtio_blk old abg-d1 > "$tmp/d1.before"
migrate abg-d1 --p2p > "$tmp/d1.out" 2>&1
tap_ok $? "compatible domain, old -> new: virsh migrate completes" || sed 's/^/# /' "$tmp/d1.out"
running new abg-d1 && virtio_blk new abg-d1 | diff - "$tmp/d1.before" > /dev/null
tap_ok $? "compatible domain: runs on the new host, the guest's disk as it was"
tap_done
