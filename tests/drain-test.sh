#!/bin/bash
# abiguard drain on the fleet of make fleet (scripts/fleet-up.sh): twelve
# running domains leave the old host (Debian 12: QEMU 7.2, libvirt 9.0)
# for the patched 10.0.2 and 10.2.2 hosts, then the 10.0.2 host is
# drained to the 10.2.2 host, first interrupted, then to the end.  Each
# domain's emulator is $FLEET/bin/qemu-FLAVOUR, a different QEMU setup per
# host where a flavour says so (as hosts whose QEMU builds differ).  For
# each domain: where it ended, running on exactly one host, and that the
# fingerprint check ran; for the two real guests, that their writes went
# on throughout and their disks hold what they wrote.  TAP output.
# Usage: tests/drain-test.sh FLEET_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
FLEET=$(realpath "$1")
guest=$(realpath "$top/build/guest")
. "$(dirname "$0")/tap.sh"
declare -A uri
while read -r h u; do uri[$h]=$u; done < "$FLEET/uris"
work=$FLEET/drain-test
rm -rf "$work" && mkdir -p "$work"
drain() { PYTHONPATH="$top/tools" /usr/bin/python3 -m abiguard drain --unsafe "$@"; }

# flavour -> per host (old, v10.0, v10.2): the -global options it adds
flavour() { # name old-options v10.0-options v10.2-options
  local name=$1 i=0
  shift
  for h in old v10.0 v10.2; do
    i=$((i + 1))
    printf '#!/bin/sh\nexec %s/bin/qemu-system-x86_64 %s "$@"\n' "$FLEET" "${!i}" \
      > "$FLEET/$h/bin/qemu-$name"
    chmod +x "$FLEET/$h/bin/qemu-$name"
  done
}
flavour plain "" "" ""
# the incident's QEMU without discard and write-zeroes
flavour nodiscard "-global virtio-blk-pci.discard=off -global virtio-blk-pci.write-zeroes=off" "" ""
flavour noeventidx "-global virtio-blk-device.event_idx=off" "" ""
flavour reporting "-global virtio-balloon-device.free-page-reporting=on" "" ""
flavour rng-novectors "-global virtio-rng-pci.vectors=0" "" ""
# a 10.0.2 host whose QEMU does not offer EVENT_IDX, which the guest uses
flavour v100-noeventidx "" "-global virtio-blk-device.event_idx=off" ""

disk() { # domain target
  truncate -s 16M "$work/$1-$2.raw"
  echo "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$work/$1-$2.raw'/><target dev='$2' bus='virtio'/></disk>"
}
# name machine flavour guest(yes|no) devices...: a persistent domain on
# the old host, started; a guest domain boots the test guest writing its
# disk (abiguard.io), its console appended to $work/NAME.console
domain() {
  local name=$1 machine=$2 flavour=$3 boot=$4 os
  shift 4
  os="<type arch='x86_64' machine='$machine'>hvm</type>"
  [ "$boot" = yes ] && os="$os<kernel>$guest/vmlinuz</kernel><initrd>$guest/initrd.gz</initrd><cmdline>console=ttyS0 quiet abiguard.io</cmdline>"
  cat > "$work/$name.xml" <<XML
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>$os</os>
  <features><acpi/></features>
  <devices>
    <emulator>$FLEET/bin/qemu-$flavour</emulator>
    $*
    <serial type='file'><source path='$work/$name.console' append='on'/></serial>
    $(case "$*" in *memballoon*) ;; *) echo "<memballoon model='none'/>" ;; esac)
  </devices>
</domain>
XML
  virsh -q -c "${uri[old]}" define "$work/$name.xml" > /dev/null &&
    virsh -q -c "${uri[old]}" start "$name" > /dev/null
}
rng="<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
net="<interface type='user'><model type='virtio'/></interface>"
serial="<controller type='virtio-serial'/>"
balloon="<memballoon model='virtio'/>"
# name machine flavour guest devices | where it must end | how
cases=(
  "d01 pc-i440fx-7.2 plain no $(disk d01 vda)|v10.0 v10.2|as it is"
  "d02 pc-q35-7.2 plain no $(disk d02 vda) $net $rng $serial $balloon|v10.0 v10.2|as it is"
  "d03 pc-i440fx-7.2 nodiscard yes $(disk d03 vda)|v10.0 v10.2|adapted"
  "d04 pc-i440fx-7.2 noeventidx no $(disk d04 vda)|v10.0 v10.2|as it is, noted"
  "d05 pc-i440fx-7.2 reporting no $balloon|v10.0 v10.2|as it is, noted"
  "d06 pc-i440fx-7.2 v100-noeventidx yes $(disk d06 vda)|v10.2|as it is"
  "d07 pc-i440fx-7.2 plain no $(disk d07 vda)|old|stays"
  "d08 pc-i440fx-7.2 rng-novectors no $rng|v10.0 v10.2|adapted"
  "d09 pc-q35-7.2 plain no $(disk d09 vda) <controller type='scsi' model='virtio-scsi'/>|v10.0 v10.2|as it is"
  "d10 pc-i440fx-7.2 plain no <interface type='user'><model type='e1000'/></interface>|v10.0 v10.2|as it is"
  "d11 pc-q35-7.2 plain no $(disk d11 vda) $(disk d11 vdb)|v10.0 v10.2|as it is"
  "d12 pc-i440fx-7.2 plain no $balloon $serial|v10.0 v10.2|as it is"
)
declare -A where how
names=
for c in "${cases[@]}"; do
  IFS='|' read -r spec w h <<< "$c"
  set -- $spec
  name=$1
  shift
  domain "$name" "$@"
  tap_ok $? "$name defined and started on the old host" || exit 1
  where[$name]=$w how[$name]=$h names="$names $name"
done
# d07: a device added through the monitor, which libvirt does not know of:
# no destination built from its XML can take it
virsh -q -c "${uri[old]}" qemu-monitor-command d07 \
  '{"execute":"device_add","arguments":{"driver":"virtio-rng-pci","id":"hot1"}}' > /dev/null
tap_ok $? "d07: a virtio-rng-pci hot-plugged through the monitor"

io() { # domain: blocks the guest has written, as its console last said
  grep -o 'GUEST IO [0-9]*' "$work/$1.console" 2>/dev/null | tail -n 1 | cut -d' ' -f3
}
for g in d03 d06; do
  for _ in $(seq 600); do [ "$(io $g)" ] && break; sleep 0.2; done
  [ "$(io $g)" ]; tap_ok $? "$g: the guest writes its disk (block $(io $g))" ||
    sed 's/^/#   console: /' "$work/$g.console"
done

# on which hosts a domain runs
running_on() {
  for h in old v10.0 v10.2; do
    [ "$(virsh -q -c "${uri[$h]}" domstate "$1" 2>/dev/null)" = running ] && printf '%s ' "$h"
  done
}
field() { # json domain field
  /usr/bin/python3 -c '
import json, sys
for d in json.load(open(sys.argv[1]))["domains"]:
    if d["domain"] == sys.argv[2]:
        print(d.get(sys.argv[3]))' "$@"
}

# The plan alone
drain --from "${uri[old]}" --to "${uri[v10.0]}" --to "${uri[v10.2]}" --all --dry-run \
  > "$work/plan.out" 2> "$work/plan.err"
rc=$?
sed 's/^/# /' "$work/plan.out"
[ $rc = 1 ] && grep -qx "d07: stays" "$work/plan.out" && grep -qx "d03: to dst[12], adapted" "$work/plan.out" &&
  grep -qx "d06: to dst2, as it is" "$work/plan.out" && [ "$(grep -c ': to dst' "$work/plan.out")" = 11 ]
tap_ok $? "--dry-run: 11 to move (d03 adapted, d06 to the 10.2.2 host), d07 stays; exit status 1 (got $rc)" ||
  sed 's/^/#   /' "$work/plan.err"
grep -q "d07: stays" -A2 "$work/plan.out" && grep -A2 "^d07: stays" "$work/plan.out" | grep -q "only on the source"
tap_ok $? "--dry-run: d07's reason on each destination: the hot-plugged device is only on the source"
before=$(for n in $names; do echo "$n $(running_on "$n")"; done)
[ "$(echo "$before" | grep -c ' old $')" = 12 ]
tap_ok $? "--dry-run moved nothing: 12 domains on the old host"

# The drain
t0=$(date +%s%N)
drain --from "${uri[old]}" --to "${uri[v10.0]}" --to "${uri[v10.2]}" --all --parallel 2 --json \
  > "$work/drain.json" 2> "$work/drain.err"
rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
echo "# drain of the old host: $ms ms, exit status $rc"
sed 's/^/# progress: /' "$work/drain.err" | head -n 20
[ $rc = 1 ]; tap_ok $? "drain of the old host: exit status 1, one domain stays (got $rc)"
for n in $names; do
  on=$(running_on "$n")
  result=$(field "$work/drain.json" "$n" result)
  got_how=$(field "$work/drain.json" "$n" how)
  fp=$(field "$work/drain.json" "$n" fingerprint)
  ok=1
  [ "$(echo $on | wc -w)" = 1 ] && [[ " ${where[$n]} " == *" ${on% } "* ]] && ok=0
  case ${how[$n]} in
    stays) [ "$result" = stayed ] || ok=1 ;;
    "as it is, noted") [ "$result" = moved ] && [ "$got_how" = "as it is" ] && [ "$fp" = same ] &&
        [ "$(field "$work/drain.json" "$n" notes)" != "[]" ] || ok=1 ;;
    *) [ "$result" = moved ] && [ "$got_how" = "${how[$n]}" ] && [ "$fp" = same ] || ok=1 ;;
  esac
  tap_ok $ok "$n: ${how[$n]}, running on $on(expected ${where[$n]}), result $result, fingerprint checked: $fp" ||
    grep -A12 "\"domain\": \"$n\"" "$work/drain.json" | sed 's/^/#   /'
done
grep -q "free_page_reporting\|virtio queues" <(field "$work/drain.json" d05 notes)
tap_ok $? "d05: the note lists the balloon's queue for free page reporting as compatible"
dst=$(running_on d03)
virsh -q -c "${uri[${dst% }]}" dumpxml --inactive d03 > "$work/d03-defined.xml"
[ "$(grep -c "<qemu:property name='\(discard\|write-zeroes\)' type='bool' value='false'/>" "$work/d03-defined.xml")" = 2 ]
tap_ok $? "d03: the remedy (discard and write-zeroes off) is in its persistent definition on $dst"
! virsh -q -c "${uri[old]}" dominfo d03 > /dev/null 2>&1
tap_ok $? "d03: no longer defined on the old host"
/usr/bin/python3 -c '
import json, sys
moved = [d for d in json.load(open(sys.argv[1]))["domains"] if d["result"] == "moved"]
sys.exit(not (len(moved) == 11 and all(isinstance(d.get("downtime_ms"), int) and d["seconds"] > 0 for d in moved)))' "$work/drain.json"
tap_ok $? "the report gives each of the 11 moved domains its time and downtime"

# the next upgrade: the 10.0.2 host drained to the 10.2.2 host, first
# interrupted once the first migration runs, then to the end
PYTHONPATH="$top/tools" /usr/bin/python3 -m abiguard drain --unsafe \
  --from "${uri[v10.0]}" --to "${uri[v10.2]}" --all --json > "$work/int.json" 2> "$work/int.err" &
pid=$!
for _ in $(seq 300); do grep -q "migrating" "$work/int.err" && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
moved=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["domains"]
print(sum(d["result"] == "moved" for d in r), sum(d["result"] == "not started" for d in r))' "$work/int.json" 2>/dev/null)
[ $rc = 1 ] && [ "${moved%% *}" -ge 1 ] && [ "${moved##* }" -ge 1 ]
tap_ok $? "drain of the 10.0.2 host, SIGINT during the first migration: it ends, the rest not started (moved, not started: $moved; exit status $rc)" ||
  sed 's/^/#   /' "$work/int.err"
bad=
for n in $names; do
  [ "$(running_on "$n" | wc -w)" = 1 ] || bad="$bad $n"
done
[ -z "$bad" ]; tap_ok $? "after the interruption every domain runs on exactly one host${bad:+ (not:$bad)}"
drain --from "${uri[v10.0]}" --to "${uri[v10.2]}" --all --json > "$work/next.json" 2> "$work/next.err"
rc=$?
[ $rc = 0 ]; tap_ok $? "drain of the 10.0.2 host to the 10.2.2 host, to the end: exit status 0 (got $rc)" ||
  sed 's/^/#   /' "$work/next.err"
left=$(virsh -q -c "${uri[v10.0]}" list --name | grep -c .)
on102=0
for n in $names; do [ "$(running_on "$n")" = "v10.2 " ] && on102=$((on102 + 1)); done
[ "$left" = 0 ] && [ "$on102" = 11 ]
tap_ok $? "the 10.0.2 host is empty, 11 domains run on the 10.2.2 host (left $left, there $on102)"
/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["domains"] + json.load(open(sys.argv[2]))["domains"]
sys.exit(not all(d["fingerprint"] == "same" for d in r if d["result"] == "moved"))' "$work/int.json" "$work/next.json"
tap_ok $? "every migration of the next upgrade: the fingerprint check ran and found the same devices"

# a second SIGINT cancels the running migration: d06 (the guest writing
# its disk) back to the 10.0.2 host, slowed to 1 MiB/s
virsh -q -c "${uri[v10.2]}" migrate-setspeed d06 1
PYTHONPATH="$top/tools" /usr/bin/python3 -m abiguard drain --unsafe \
  --from "${uri[v10.2]}" --to "${uri[v10.0]}" d06 --json > "$work/cancel.json" 2> "$work/cancel.err" &
pid=$!
for _ in $(seq 300); do grep -q "d06: migrating" "$work/cancel.err" && break; sleep 0.1; done
kill -INT $pid; sleep 0.5; kill -INT $pid
wait $pid
rc=$?
[ $rc = 1 ] && [ "$(field "$work/cancel.json" d06 result)" = cancelled ] &&
  grep -q "cancelling the migration of d06" "$work/cancel.err" && [ "$(running_on d06)" = "v10.2 " ]
tap_ok $? "two SIGINTs during d06's migration: cancelled, said so, d06 runs on the 10.2.2 host only (exit status $rc)" ||
  sed 's/^/#   /' "$work/cancel.err"

# the real guests: their writes went on, their disks hold them
for g in d03 d06; do
  n0=$(io $g)
  sleep 3
  n1=$(io $g)
  /usr/bin/python3 - "$work/$g-vda.raw" "$n1" <<'PY'
import sys
data, n = open(sys.argv[1], "rb").read(), int(sys.argv[2])
bad = [i for i in range(n) if data[i * 512:(i + 1) * 512].rstrip(b" ")
       != b"abiguard block %d" % i]
sys.exit(len(bad) > 0)
PY
  ok=$?
  [ $ok = 0 ] && [ "$n1" -gt "$n0" ] && ! grep -q "GUEST IO ERROR" "$work/$g.console"
  tap_ok $? "$g: after two drains the guest still writes (block $n0, then $n1), no I/O error, and its disk holds blocks 0 to $n1 as written"
done
tap_done
