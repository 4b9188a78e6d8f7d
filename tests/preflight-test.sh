#!/bin/bash
# abiguard preflight (tools/) between libvirt hosts (tests/libvirt-hosts.sh): for
# ten running domains, its verdict must be what 'virsh migrate' then does,
# and it must leave both hosts as they were.  Each domain names an
# emulator in $tmp/bin, which runs a different QEMU on each host, as hosts
# whose QEMU builds differ: on the old host some add a -global (the
# incident's QEMU without discard/write-zeroes, virtio-rng without MSI-X,
# ...), on the new hosts all run the patched QEMU.  TAP output.
# Usage: tests/preflight-test.sh OLD_HOST_ROOT QEMU_NEW
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
old_root=$(realpath "$1") new_qemu=$(realpath "$2") guest=
tmp=$(mktemp -d /tmp/abiguard-preflight-XXXXXX)
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/libvirt-hosts.sh"
trap hosts_down EXIT
preflight() { PYTHONPATH="$top/tools" /usr/bin/python3 -m abiguard preflight "$@"; }

# flavour -> the -global options the old host's QEMU of that name adds
declare -A old_globals=(
  [qemu]=""
  [qemu-nodiscard]="-global virtio-blk-pci.discard=off -global virtio-blk-pci.write-zeroes=off"
  [qemu-rng-novectors]="-global virtio-rng-pci.vectors=0"
  [qemu-balloon-nopoison]="-global virtio-balloon-device.page-poison=off"
  [qemu-serial-noemerg]="-global virtio-serial-device.emergency-write=off"
  [qemu-noeventidx]="-global virtio-blk-device.event_idx=off"
)
emulator() { # host flavour binary [options]
  mkdir -p "$tmp/$1/bin"
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$3" "${4:-}" > "$tmp/$1/bin/$2"
  chmod +x "$tmp/$1/bin/$2"
}
for f in "${!old_globals[@]}"; do
  emulator old "$f" /usr/bin/qemu-system-x86_64 "${old_globals[$f]}"
  emulator new "$f" "$new_qemu"
  emulator new2 "$f" "$new_qemu"
done
emulator new2 qemu-nodiscard "$new_qemu" \
  "-global virtio-blk-pci.discard=off -global virtio-blk-pci.write-zeroes=off -global virtio-blk-pci.secure-erase=off"
hosts_up "$old_root"

disk() { # domain target
  truncate -s 16M "$tmp/$1-$2.raw"
  echo "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$tmp/$1-$2.raw'/><target dev='$2' bus='virtio'/></disk>"
}
domain() { # name machine flavour devices...
  local name=$1 machine=$2 flavour=$3
  shift 3
  cat > "$tmp/$name.xml" <<XML
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='$machine'>hvm</type></os>
  <devices>
    <emulator>$tmp/bin/$flavour</emulator>
    $*
    $(case "$*" in *memballoon*) ;; *) echo "<memballoon model='none'/>" ;; esac)
  </devices>
</domain>
XML
}
rng="<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
net="<interface type='user'><model type='virtio'/></interface>"
serial="<controller type='virtio-serial'/>"
balloon="<memballoon model='virtio'/>"
# name source machine flavour expected devices
domains=(
  "abg-p01 old pc-i440fx-7.2 qemu migrates $(disk abg-p01 vda)"
  "abg-p02 old pc-q35-7.2 qemu migrates $(disk abg-p02 vda) $net $rng $serial $balloon"
  "abg-p03 old pc-i440fx-7.2 qemu-nodiscard refused $(disk abg-p03 vda) $(disk abg-p03 vdb)"
  "abg-p04 old pc-i440fx-7.2 qemu-rng-novectors refused $rng"
  "abg-p05 old pc-i440fx-7.2 qemu-balloon-nopoison refused $balloon"
  "abg-p06 old pc-i440fx-7.2 qemu-serial-noemerg refused $serial"
  "abg-p07 old pc-i440fx-7.2 qemu-noeventidx with-notes $(disk abg-p07 vda)"
  "abg-p08 old pc-q35-7.2 qemu migrates $serial $balloon $net"
  "abg-p09 new2 pc-q35-10.0-abiguard1 qemu migrates $(disk abg-p09 vda) $net"
  "abg-p10 new2 pc-i440fx-10.0-abiguard1 qemu-nodiscard refused $(disk abg-p10 vda)"
)
declare -A from expected
for d in "${domains[@]}"; do
  read -r name host machine flavour want devices <<< "$d"
  from[$name]=$host expected[$name]=$want
  domain "$name" "$machine" "$flavour" "$devices"
  virsh -q -c "$(uri "$host")" create "$tmp/$name.xml" > "$tmp/$name.create" 2>&1 ||
    { tap_ok 1 "$name starts on the $host host"; sed 's/^/# /' "$tmp/$name.create"; }
done
names=$(printf '%s\n' "${!from[@]}" | sort)

state() { # host: its domains, pools, preflight leftovers and processes
  virsh -q -c "$(uri "$1")" list --all --name | sort
  virsh -q -c "$(uri "$1")" pool-list --all --name | sort
  find "$tmp/$1/lib" -maxdepth 1 -name '*abiguard-preflight*' -printf '%f\n' | sort
  pgrep -f "guest=abiguard-preflight" | sed 's/^/process /'
}
for h in old new new2; do state $h > "$tmp/$h.before"; done

# --all from each source host, as JSON, timed: the first run from the old
# host is the new host's first look at its emulators (libvirt probes each
# once), the second is warm.
for run in old-cold old new2; do
  h=${run%-cold}
  t0=$(date +%s%N)
  preflight --from "$(uri $h)" --to "$(uri new)" --all --json > "$tmp/$run.json" 2> "$tmp/$run.err"
  rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
  count=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/$run.json" 2>/dev/null)
  echo "| preflight --all, $run | $count | $ms ms |" >> "$tmp/timings"
  [ "$rc" = 1 ]; tap_ok $? "preflight --all from the $h host ($run): $count domains in $ms ms, exit status 1, a domain is refused (got $rc)" ||
    sed 's/^/# /' "$tmp/$run.err"
done
result() { # domain field
  /usr/bin/python3 -c '
import json, sys
for r in json.load(open(sys.argv[1])):
    if r["domain"] == sys.argv[2]:
        print(str(r[sys.argv[3]]).replace("migrates with notes", "with-notes"))' \
    "$tmp/${from[$1]}.json" "$1" "$2"
}

for h in old new new2; do
  state $h > "$tmp/$h.after"
  diff "$tmp/$h.before" "$tmp/$h.after" > "$tmp/$h.diff"
  tap_ok $? "after the preflight the $h host is as before: domains, pools, files, processes" ||
    sed 's/^/# /' "$tmp/$h.diff"
done

# One domain, as a person reads it: the report and the remedy as XML.
preflight --from "$(uri old)" --to "$(uri new)" abg-p03 > "$tmp/p03.out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/p03.out"
[ $rc = 1 ] && grep -qx "abg-p03: refused" "$tmp/p03.out" &&
  grep -q "virtio-blk-pci 'virtio-disk0' at 0000:00:0[0-9a-f].0: BAR0: source I/O, 64 bytes; here I/O, 128 bytes" "$tmp/p03.out"
tap_ok $? "incident: refused, BAR0 64 bytes on the source and 128 here (exit status $rc)"
grep -c "<qemu:property name='discard' type='bool' value='false'/>" "$tmp/p03.out" | grep -qx 2
tap_ok $? "incident: the remedy sets discard=off on each of the two disks, as qemu:override XML"
# the remedy applied: the preflight then says it migrates, and it does
/usr/bin/python3 - "$tmp/p03.out" "$tmp/abg-p03.xml" > "$tmp/abg-p03-fixed.xml" <<'PY'
import re, sys
out, xml = open(sys.argv[1]).read(), open(sys.argv[2]).read()
snippets = re.findall(r"^    (<qemu:override>.*?</qemu:override>)$", out, re.S | re.M)
body = "".join(re.sub(r"\n    ", "\n", s) + "\n" for s in snippets)
xml = xml.replace("<domain type='qemu'>", "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
print(xml.replace("</domain>", body + "</domain>"))
PY
preflight --from "$(uri old)" --to "$(uri new)" --xml "$tmp/abg-p03-fixed.xml" abg-p03 > "$tmp/p03-fixed.out" 2>&1
rc=$?
[ $rc = 0 ] && grep -qx "abg-p03: migrates" "$tmp/p03-fixed.out"
tap_ok $? "incident: with the remedy in the XML, the preflight says it migrates (exit status $rc)" ||
  sed 's/^/# /' "$tmp/p03-fixed.out"

# Errors: one line, exit status 2, nothing left behind.
preflight --from "$(uri old)" --to "$(uri new)" abg-nosuch > "$tmp/nosuch.out" 2>&1
rc=$?
[ $rc = 2 ] && [ "$(wc -l < "$tmp/nosuch.out")" = 1 ] && grep -q "^abiguard preflight: .*abg-nosuch" "$tmp/nosuch.out"
tap_ok $? "no such domain: one line, exit status 2 (got $rc: $(cat "$tmp/nosuch.out"))"
preflight --from "$(uri old)" --to "$(uri old)" abg-p01 > "$tmp/stock.out" 2>&1
rc=$?
[ $rc = 2 ] && grep -qx "abg-p01: error: the destination's QEMU cannot compare guest ABIs (it lacks x-guest-abi-compare): it is not patched" "$tmp/stock.out"
tap_ok $? "a stock destination: said so, exit status 2 (got $rc: $(cat "$tmp/stock.out"))"
# SIGTERM while a check is under way: once the throwaway copy's QEMU runs
# on the new host, for one domain and for every domain of the old host.
for what in abg-p02 --all; do
  PYTHONPATH="$top/tools" /usr/bin/python3 -m abiguard preflight --from "$(uri old)" --to "$(uri new)" $what > "$tmp/term.out" 2>&1 &
  pf=$!
  during=1
  for _ in $(seq 600); do
    if pgrep -f "guest=abiguard-preflight-$pf-" > /dev/null; then during=0; break; fi
    kill -0 $pf 2>/dev/null || break
    sleep 0.02
  done
  kill -TERM $pf 2>/dev/null; wait $pf; rc=$?
  tap_ok $during "SIGTERM to preflight $what landed while its throwaway copy ran" ||
    sed 's/^/# /' "$tmp/term.out"
  checked=$(grep -c '^abg-p[0-9]*: ' "$tmp/term.out")
  [ $rc = 2 ] && [ "$checked" -le 1 ]
  tap_ok $? "preflight $what: stopped with exit status 2 after the check under way (got $rc, $checked verdicts)" ||
    sed 's/^/# /' "$tmp/term.out"
  state new > "$tmp/new.interrupted"
  diff -q "$tmp/new.before" "$tmp/new.interrupted" > /dev/null
  tap_ok $? "preflight $what interrupted during a check: the new host is as before" ||
    diff "$tmp/new.before" "$tmp/new.interrupted" | sed 's/^/# /'
done
state old > "$tmp/old.after-errors"
diff -q "$tmp/old.before" "$tmp/old.after-errors" > /dev/null
tap_ok $? "after the errors the old host is as before"

# The drain's plan for the old host, with two destinations: the same
# verdicts, a remedy where one is needed, the other destination where it
# takes a domain as it is (new2's QEMU lacks discard, as p03's source).
PYTHONPATH="$top/tools" /usr/bin/python3 -m abiguard drain --dry-run --json --parallel 2 \
  --from "$(uri old)" --to "$(uri new)" --to "$(uri new2)" --all > "$tmp/plan.json" 2> "$tmp/plan.err"
rc=$?
plan=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
names = {u: n for u, n in r["destinations"].items()}
print(" ".join("%s:%s:%s" % (p["domain"], p["action"], p.get("how", "-").replace(" ", "-"))
               for p in r["plan"]))' "$tmp/plan.json" 2>&1)
echo "# plan: $plan"
[ $rc = 0 ] && [ "$plan" = "abg-p01:move:as-it-is abg-p02:move:as-it-is abg-p03:move:as-it-is abg-p04:move:adapted abg-p05:move:adapted abg-p06:move:adapted abg-p07:move:as-it-is abg-p08:move:as-it-is" ] &&
  /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
p03 = [p for p in r["plan"] if p["domain"] == "abg-p03"][0]
sys.exit(r["destinations"][p03["to"]] != "dst2")' "$tmp/plan.json"
tap_ok $? "drain --dry-run of the old host to new and new2: p03 to new2 as it is, p04-p06 adapted, the rest as they are (exit status $rc)" ||
  sed 's/^/# /' "$tmp/plan.err"
state old > "$tmp/old.after-plan"
diff -q "$tmp/old.before" "$tmp/old.after-plan" > /dev/null
tap_ok $? "after the drain's plan the old host is as before"

# What virsh migrate then does, domain by domain.
agree=0
for name in $names; do
  said=$(result "$name" verdict)
  t0=$(date +%s%N)
  if virsh -q -c "$(uri "${from[$name]}")" migrate --live --unsafe "$name" "$(uri new)" \
       --migrateuri tcp:10.231.1.2 > "$tmp/$name.migrate" 2>&1; then
    did=migrates
  else
    did=refused
  fi
  echo "| $name from ${from[$name]}: preflight $said, virsh migrate $did | 1 | $(result "$name" seconds) s; virsh migrate $((($(date +%s%N) - t0) / 1000000)) ms |" >> "$tmp/timings"
  case $said in with-notes) said_kind=migrates ;; *) said_kind=$said ;; esac
  [ "$said_kind" = "$did" ] && [ "$said" = "${expected[$name]}" ]
  tap_ok $? "$name (from ${from[$name]}): preflight '$said', virsh migrate $did, expected ${expected[$name]}" &&
    agree=$((agree + 1))
  [ "$did" = refused ] && sed 's/^/#   virsh: /' "$tmp/$name.migrate" | head -n 2
  virsh -q -c "$(uri new)" destroy "$name" > /dev/null 2>&1
done
echo "# preflight: verdict = virsh migrate for $agree of $(echo "$names" | wc -l) domains"
sed 's/^/# /' "$tmp/timings"
[ -z "${PREFLIGHT_TIMINGS:-}" ] || cp "$tmp/timings" "$PREFLIGHT_TIMINGS"
tap_done
