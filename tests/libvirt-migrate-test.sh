#!/bin/bash
# virsh migrate --live between libvirt daemons, one network namespace per
# host (tests/libvirt-hosts.sh), as an operator drains hosts.  A compatible
# domain migrates old -> new.  Two refusals are each attempted ATTEMPTS
# times with --p2p and without: the incident (old -> new, refused on load)
# and a mismatch on the series' machine type (new2 -> new, refused by the
# early check).  Each attempt counts whether virsh printed the refusal's
# first line; the domain must keep running on the source with its disk
# unchanged.  TAP output.
# Usage: tests/libvirt-migrate-test.sh OLD_HOST_ROOT QEMU_NEW GUEST_DIR
set -uo pipefail
old_root=$(realpath "$1") new_qemu=$(realpath "$2") guest=$(realpath "$3")
attempts=${ATTEMPTS:-10}
tmp=$(mktemp -d /tmp/abiguard-libvirt-XXXXXX)
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/libvirt-hosts.sh"
trap hosts_down EXIT
hosts_up "$old_root"

start_domain() { # name host machine emulator [property=false...]
  truncate -s 16M "$tmp/$1.raw"
  echo "abiguard $1" | dd of="$tmp/$1.raw" conv=notrunc status=none
  guest_domain "$1" "$3" "$4" "$tmp/$1-src.console" "${@:5}" > "$tmp/$1-src.xml"
  guest_domain "$1" "$3" "$new_qemu" "$tmp/$1-dst.console" > "$tmp/$1-dst.xml"
  virsh -q -c "$(uri "$2")" create "$tmp/$1-src.xml" > "$tmp/$1-create.out" 2>&1
  tap_ok $? "$1 starts on the $2 host ($3)" || sed 's/^/# /' "$tmp/$1-create.out"
}

migrate() { # name from [virsh migrate options]
  local name=$1 from=$2
  shift 2
  virsh -q -c "$(uri "$from")" migrate --live --unsafe "$@" "$name" "$(uri new)" \
    --xml "$tmp/$name-dst.xml" --migrateuri tcp:10.231.1.2
}

# g1 is compatible; g2 is the incident: stock QEMU 7.2 without
# discard/write-zeroes -> patched, refused on load by the legacy BAR0 size
# check; g3 is on the series' machine type on both hosts, refused by the
# early check.
start_domain abg-g1 old pc-i440fx-7.2 /usr/bin/qemu-system-x86_64
start_domain abg-g2 old pc-i440fx-7.2 /usr/bin/qemu-system-x86_64 discard write-zeroes
start_domain abg-g3 new2 pc-i440fx-10.0-abiguard1 "$new_qemu" discard write-zeroes secure-erase
# each guest has booted and bound its virtio drivers when it says so
for g in abg-g1 abg-g2 abg-g3; do
  for _ in $(seq 600); do grep -q "GUEST READY" "$tmp/$g-src.console" 2>/dev/null && break; sleep 0.1; done
  grep -q "GUEST READY" "$tmp/$g-src.console" 2>/dev/null && ! grep -q "GUEST: insmod" "$tmp/$g-src.console"
  tap_ok $? "$g: the guest says it is ready" || sed 's/^/#   console: /' "$tmp/$g-src.console" 2>/dev/null
done

migrate abg-g1 old --p2p > "$tmp/abg-g1.out" 2>&1
tap_ok $? "compatible domain, old -> new: virsh migrate --live succeeds"
sed 's/^/# /' "$tmp/abg-g1.out"
virsh -q -c "$(uri new)" domstate abg-g1 2>&1 | grep -qx running
tap_ok $? "compatible domain: running on the new host"
virsh -q -c "$(uri new)" destroy abg-g1 > /dev/null 2>&1   # TCG time for the rest

# ATTEMPTS refused migrations with --p2p, then as many without.  Writes,
# per mode: how many failed, showed FIRST to the virsh user, and left the
# domain running on the source with its disk unchanged; the seconds they
# took; what virsh printed the first time and each time FIRST was missing,
# and how many of those were libvirt 9.0's races (RACES below): the source
# printed its own error, either resuming the guest before the destination
# had reported, or ending the job on its QEMU's failure before the
# destination's libvirt had the reason (seen once in 10, in CI, with --p2p).
RACES=("unable to execute QEMU command 'cont': Migration is not finalized yet"
       "error: operation failed: job 'migration out' unexpectedly failed")
refusals() { # name from first
  local name=$1 from=$2 first=$3 mode sum refused seen kept race out t0
  sum=$(sha256sum < "$tmp/$name.raw")
  for mode in p2p direct; do
    refused=0 seen=0 kept=0 race=0 t0=$(date +%s%N)
    : > "$tmp/$name-$mode.missed"
    for try in $(seq "$attempts"); do
      out=$tmp/$name-$mode-$try.out
      if [ $mode = p2p ]; then migrate "$name" "$from" --p2p; else migrate "$name" "$from"; fi > "$out" 2>&1 ||
        refused=$((refused + 1))
      if grep -qF "$first" "$out"; then
        seen=$((seen + 1))
      else
        cat "$out" >> "$tmp/$name-$mode.missed"
        if grep -qF -e "${RACES[0]}" -e "${RACES[1]}" "$out"; then race=$((race + 1)); fi
      fi
      virsh -q -c "$(uri "$from")" domstate "$name" 2>&1 | grep -qx running &&
        [ "$(sha256sum < "$tmp/$name.raw")" = "$sum" ] && kept=$((kept + 1))
    done
    echo "$refused $seen $kept $race $((($(date +%s%N) - t0) / 1000000000))" > "$tmp/$name-$mode.counts"
    cp "$tmp/$name-$mode-1.out" "$tmp/$name-$mode.first"
  done
}

report() { # name label source-libvirt
  local name=$1 label=$2 mode refused seen kept race secs
  for mode in p2p direct; do
    read -r refused seen kept race secs < "$tmp/$name-$mode.counts"
    echo "# $label, $mode: $attempts attempts in $secs s; virsh printed the first time:"
    sed 's/^/#   /' "$tmp/$name-$mode.first"
    [ "$refused" = "$attempts" ]; tap_ok $? "$label, $mode: virsh migrate fails ($refused of $attempts)"
    if [ "$seen" = "$attempts" ]; then
      tap_ok 0 "$label, $mode: virsh prints the refusal ($seen of $attempts)"
    elif [ "$3" = 9.0 ] && [ "$race" = $((attempts - seen)) ] && [ "$race" -le $((attempts * 3 / 10)) ]; then
      # libvirt 9.0 on the source prints its own error instead; the series
      # cannot reach a stock source.  The first race was measured in 7 of
      # 100 attempts: more than 3 of 10, or any other message, is a failure.
      tap_todo "$label, $mode: virsh prints the refusal ($seen of $attempts)" \
        "libvirt 9.0 on the source printed its own error, not the destination's reason, in $race of $attempts attempts: $(sort -u "$tmp/$name-$mode.missed" | tr '\n' ' ')"
    else
      tap_ok 1 "$label, $mode: virsh prints the refusal ($seen of $attempts)"
      sed 's/^/#   missed: /' "$tmp/$name-$mode.missed"
    fi
    [ "$kept" = "$attempts" ]; tap_ok $? "$label, $mode: the domain runs on the source, its disk unchanged ($kept of $attempts)"
  done
}

# The two sources refuse in parallel: they only share the destination host.
refusals abg-g2 old "virtio-blk-pci 'ua-disk1' at 0000:00:02.0: legacy I/O BAR0 is 64 bytes on the source but 128 bytes here" &
incident=$!
# the early check's error names the first difference, its cause and remedy
refusals abg-g3 new2 "Guest ABI check: 3 differences between the source's PCI devices and this destination's, the first: virtio-blk-pci 'ua-disk1' at 0000:00:02.0: BAR0: source I/O, 64 bytes; here I/O, 128 bytes; cause: offered here, not by the source: VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_F_SECURE_ERASE; remedy: start this device with discard=off,write-zeroes=off,secure-erase=off" &
wait $incident $!   # not the daemons
report abg-g2 "incident, old -> new" 9.0
report abg-g3 "early check, new2 -> new" 11.3
tap_done
