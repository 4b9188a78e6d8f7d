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

# d1 is compatible; d2 is the incident: the old host's QEMU without
# discard and write-zeroes (here by a qemu:override in its XML), whose
# legacy I/O BAR0 is 64 bytes, not 128.  The XML for the new host
# (virsh migrate --xml, abiguard preflight --xml) is the domain as the new
# host's defaults would start it: without the override.
for args in "abg-d1" "abg-d2 discard write-zeroes"; do
  set -- $args
  truncate -s 16M "$tmp/$1.raw"
  echo "abiguard $1" | dd of="$tmp/$1.raw" conv=notrunc status=none
  guest_domain "$1" pc-i440fx-7.2 /usr/bin/qemu-system-x86_64 "$tmp/$1.console" "${@:2}" > "$tmp/$1.xml"
  guest_domain "$1" pc-i440fx-7.2 /usr/bin/qemu-system-x86_64 "$tmp/$1.console" > "$tmp/$1-dst.xml"
  virsh -q -c "$(uri old)" create "$tmp/$1.xml" > "$tmp/$1.create" 2>&1
  tap_ok $? "$1 starts on the old host" || sed 's/^/# /' "$tmp/$1.create"
done
for g in abg-d1 abg-d2; do
  for _ in $(seq 600); do grep -q "GUEST READY" "$tmp/$g.console" 2>/dev/null && break; sleep 0.1; done
  grep -q "GUEST READY" "$tmp/$g.console" 2>/dev/null && ! grep -q "GUEST: insmod" "$tmp/$g.console"
  tap_ok $? "$g: the guest says it is ready" || sed 's/^/#   console: /' "$tmp/$g.console" 2>/dev/null
done

# The preflight from the admin machine: the installed command, no checkout;
# and the same from the checkout.  PREFLIGHT-ARGS: --all (each domain's
# XML travels with it: the incident's override too, so it migrates), and
# the incident with the new host's XML (--xml), as virsh migrate below.
verdicts() { # JSON file: "domain verdict report" lines
  /usr/bin/python3 -c 'import json, sys
for r in json.load(open(sys.argv[1])): print(r["domain"], r["verdict"], r.get("check", {}).get("report", "").replace("\n", " | "))' "$1"
}
mkdir -p "$admin_root$tmp"
admin() { # name preflight-args...
  local name=$1
  shift
  unshare -m sh -c "mount --make-rprivate / && mount --bind $tmp $admin_root$tmp &&
    chroot $admin_root sh -c 'cd / && abiguard preflight --from \"$(uri old)\" --to \"$(uri new)\" --json $*'" \
    > "$tmp/admin-$name.json" 2> "$tmp/admin-$name.err"
  echo $? > "$tmp/admin-$name.rc"
  verdicts "$tmp/admin-$name.json" > "$tmp/admin-$name.verdicts" 2>&1
  PYTHONPATH="$top/tools" /usr/bin/python3 -m abiguard preflight --from "$(uri old)" --to "$(uri new)" \
    --json "$@" > "$tmp/checkout-$name.json" 2> "$tmp/checkout-$name.err"
  verdicts "$tmp/checkout-$name.json" > "$tmp/checkout-$name.verdicts" 2>&1
}
admin all --all
[ "$(cat "$tmp/admin-all.rc")" = 0 ] && [ "$(cut -d' ' -f1,2 "$tmp/admin-all.verdicts")" = "abg-d1 migrates
abg-d2 migrates" ]
tap_ok $? "admin machine: abiguard preflight --all: abg-d1 and abg-d2 migrate as they are (exit status $(cat "$tmp/admin-all.rc"))" ||
  sed 's/^/# /' "$tmp/admin-all.verdicts" "$tmp/admin-all.err"
admin incident --xml "$tmp/abg-d2-dst.xml" abg-d2
[ "$(cat "$tmp/admin-incident.rc")" = 1 ] && [ "$(cut -d' ' -f1,2 "$tmp/admin-incident.verdicts")" = "abg-d2 refused" ] &&
  grep -q "BAR0: source I/O, 64 bytes; here I/O, 128 bytes" "$tmp/admin-incident.verdicts"
tap_ok $? "admin machine: abiguard preflight --xml NEW-HOST-XML abg-d2: refused, BAR0 64 bytes on the source and 128 here (exit status $(cat "$tmp/admin-incident.rc"))" ||
  sed 's/^/# /' "$tmp/admin-incident.verdicts" "$tmp/admin-incident.err"
[ ! -e "$admin_root/usr/bin/qemu-system-x86_64" ] && [ ! -e "$admin_root$top" ] &&
  [ "$(chroot "$admin_root" sh -c 'command -v abiguard')" = /usr/bin/abiguard ]
tap_ok $? "admin machine: /usr/bin/abiguard from its package, no QEMU and no checkout there"
for run in all incident; do
  diff "$tmp/admin-$run.verdicts" "$tmp/checkout-$run.verdicts" > "$tmp/$run.diff"
  tap_ok $? "preflight ($run): the checkout gives the admin machine's verdicts and reports" ||
    sed 's/^/# /' "$tmp/$run.diff" "$tmp/checkout-$run.err"
done

migrate() { # name [virsh migrate options]
  local name=$1
  shift
  virsh -q -c "$(uri old)" migrate --live --unsafe "$@" "$name" "$(uri new)" \
    --migrateuri tcp:10.231.1.2
}
seen() { # host name: what the guest sees of its disk: driver status and negotiated features
  virsh -q -c "$(uri "$1")" qemu-monitor-command "$2" \
    '{"execute": "x-query-virtio-status", "arguments": {"path": "/machine/peripheral/ua-disk1/virtio-backend"}}' |
    PYTHONPATH="$top/tools" /usr/bin/python3 -c 'import json, sys
from abiguard.abi import feature_mask
s = json.load(sys.stdin)["return"]
print("status", ",".join(sorted(x.split(":")[0] for x in s["status"]["statuses"])),
      "guest-features %#x" % feature_mask(s["guest-features"]))'
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
  migrate abg-d2 --p2p --xml "$tmp/abg-d2-dst.xml" > "$tmp/d2.out" 2>&1
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
seen old abg-d2 > "$tmp/d2.before"
/usr/bin/python3 - "$tmp/admin-incident.json" "$tmp/abg-d2-dst.xml" > "$tmp/abg-d2-fixed.xml" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))[0]
xml = open(sys.argv[2]).read()
print(xml.replace("</domain>", r["remedy"]["override"] + "\n</domain>"))
PY
migrate abg-d2 --p2p --xml "$tmp/abg-d2-fixed.xml" > "$tmp/d2-fixed.out" 2>&1
tap_ok $? "incident with the preflight's remedy: virsh migrate --xml completes" || sed 's/^/# /' "$tmp/d2-fixed.out"
running new abg-d2 && seen new abg-d2 > "$tmp/d2.after" &&
  diff "$tmp/d2.before" "$tmp/d2.after" > /dev/null &&
  grep -q '^status VIRTIO_CONFIG_S_ACKNOWLEDGE,VIRTIO_CONFIG_S_DRIVER,VIRTIO_CONFIG_S_DRIVER_OK,VIRTIO_CONFIG_S_FEATURES_OK guest-features 0x' "$tmp/d2.after"
tap_ok $? "incident with the remedy: on the new host the guest's disk is as it enumerated it: $(cat "$tmp/d2.after")" ||
  sed 's/^/# /' "$tmp/d2.before" "$tmp/d2.after"

# A compatible domain migrates as it is, as the preflight said.
seen old abg-d1 > "$tmp/d1.before"
migrate abg-d1 --p2p > "$tmp/d1.out" 2>&1
tap_ok $? "compatible domain, old -> new: virsh migrate completes" || sed 's/^/# /' "$tmp/d1.out"
running new abg-d1 && seen new abg-d1 | diff - "$tmp/d1.before" > /dev/null
tap_ok $? "compatible domain: runs on the new host, the guest's disk as it enumerated it" ||
  { sed 's/^/# before: /' "$tmp/d1.before"; seen new abg-d1 | sed 's/^/# after: /'; }
tap_done
