#!/bin/bash
# virsh migrate --live between libvirt daemons, one network namespace per
# host, as an operator drains hosts:
#   old  - a Debian 12 root (QEMU 7.2, libvirt 9.0 from Debian packages)
#   new  - this machine's libvirt (11.3, bookworm-backports), patched QEMU
#   new2 - a second new host
# A compatible domain migrates old -> new.  Two refusals are each attempted
# ATTEMPTS times with --p2p and without: the incident (old -> new, refused
# on load) and a mismatch on the series' machine type (new2 -> new, refused
# by the early check).  Each attempt counts whether virsh printed the
# refusal's first line; the domain must keep running on the source with
# its disk unchanged.  TAP output.
# Usage: tests/libvirt-migrate-test.sh OLD_HOST_ROOT QEMU_NEW GUEST_DIR
set -uo pipefail
old_root=$(realpath "$1") new_qemu=$(realpath "$2") guest=$(realpath "$3")
attempts=${ATTEMPTS:-10}
tmp=$(mktemp -d /tmp/abiguard-libvirt-XXXXXX)
tag=$$
ns_old=abg-lv-old-$tag ns_new=abg-lv-new-$tag
n=0 fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; fail=1; fi; return "$1"; }
cleanup() {
  for h in old new new2; do
    [ -f "$tmp/$h/pid" ] && kill "$(cat "$tmp/$h/pid")" 2>/dev/null
  done
  pkill -f "guest=abg-g" 2>/dev/null
  sleep 0.5
  ip netns del "$ns_old" 2>/dev/null; ip netns del "$ns_new" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$ns_old" && ip netns add "$ns_new" &&
ip link add abgl-old netns "$ns_old" type veth peer name abgl-new netns "$ns_new" &&
ip -n "$ns_old" addr add 10.231.1.1/30 dev abgl-old && ip -n "$ns_old" link set abgl-old up &&
ip -n "$ns_new" addr add 10.231.1.2/30 dev abgl-new && ip -n "$ns_new" link set abgl-new up &&
ip -n "$ns_old" link set lo up && ip -n "$ns_new" link set lo up || { echo "Bail out! cannot create network namespaces"; exit 1; }

# A libvirtd of its own per host: its own config, state and sockets
# (bind-mounted over the system paths in a private mount namespace),
# its own host UUID, no security driver, cgroups or virtlogd.  The old
# host's runs chrooted in its Debian 12 root, which sees $tmp and the
# guest at the same paths.
start_daemon() { # name netns uuid [root]
  local d=$tmp/$1 root=${4:-}
  mkdir -p "$d"/{etc,run,lib,log,cache}
  cat > "$d/etc/libvirtd.conf" <<CONF
host_uuid = "$3"
CONF
  cat > "$d/etc/qemu.conf" <<CONF
security_driver = "none"
cgroup_controllers = [ ]
user = "root"
group = "root"
stdio_handler = "file"
namespaces = [ ]
CONF
  ip netns exec "$2" unshare -m sh -c "
    set -e
    mount --make-rprivate /
    if [ -n '$root' ]; then
      mount -t proc proc $root/proc
      mount --rbind /sys $root/sys && mount --rbind /dev $root/dev
      mount -t tmpfs tmpfs $root/run && mount -t tmpfs tmpfs $root/tmp
      for p in $tmp $guest; do mkdir -p $root\$p && mount --bind \$p $root\$p; done
    fi
    for p in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
      mkdir -p $root\${p#*:} && mount --bind $d/\${p%%:*} $root\${p#*:}
    done
    if [ -n '$root' ]; then exec chroot $root libvirtd -p /run/libvirt/libvirtd.pid; fi
    exec libvirtd -p /run/libvirt/libvirtd.pid" > "$d/libvirtd.log" 2>&1 &
  echo $! > "$d/pid"
  for _ in $(seq 100); do [ -S "$d/run/libvirt-sock" ] && return 0; sleep 0.1; done
  echo "Bail out! libvirtd for the $1 host did not start: $(tail -n 3 "$d/libvirtd.log")"; exit 1
}
getent passwd libvirt-qemu >/dev/null ||
  adduser --system --group --no-create-home libvirt-qemu >/dev/null 2>&1
start_daemon old "$ns_old" 6f0c2a4e-0a0b-4c1d-9e2f-000000000001 "$old_root"
start_daemon new "$ns_new" 6f0c2a4e-0a0b-4c1d-9e2f-000000000002
start_daemon new2 "$ns_old" 6f0c2a4e-0a0b-4c1d-9e2f-000000000003
uri() { echo "qemu+unix:///system?socket=$tmp/$1/run/libvirt-sock"; }
for h in old new; do
  echo "# $h host: $(virsh -c "$(uri $h)" version --daemon 2>/dev/null | grep -E 'daemon|hypervisor' | tr -s ' \n' ' ')"
done

domain() { # name machine emulator [property=false...]
  cat <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$1</name>
  <uuid>$(printf '6f0c2a4e-0000-4000-8000-%012d' "${1#abg-g}")</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='$2'>hvm</type>
    <kernel>$guest/vmlinuz</kernel>
    <initrd>$guest/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>$3</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$tmp/$1.raw'/>
      <target dev='vda' bus='virtio'/>
      <alias name='ua-disk1'/>
    </disk>
    <serial type='pty'/>   <!-- the guest's shell waits there, idle -->
    <memballoon model='none'/>
  </devices>
XML
  if [ $# -gt 3 ]; then
    echo "  <qemu:override><qemu:device alias='ua-disk1'><qemu:frontend>"
    for p in "${@:4}"; do
      echo "    <qemu:property name='$p' type='bool' value='false'/>"
    done
    echo "  </qemu:frontend></qemu:device></qemu:override>"
  fi
  echo "</domain>"
}

start_domain() { # name host machine emulator [property=false...]
  truncate -s 16M "$tmp/$1.raw"
  echo "abiguard $1" | dd of="$tmp/$1.raw" conv=notrunc status=none
  domain "$1" "$3" "$4" "${@:5}" > "$tmp/$1-src.xml"
  domain "$1" "$3" "$new_qemu" > "$tmp/$1-dst.xml"
  virsh -q -c "$(uri "$2")" create "$tmp/$1-src.xml" > "$tmp/$1-create.out" 2>&1
  ok $? "$1 starts on the $2 host ($3)" || sed 's/^/# /' "$tmp/$1-create.out"
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
sleep 8   # let the guests boot and bind their virtio drivers

migrate abg-g1 old --p2p > "$tmp/abg-g1.out" 2>&1
ok $? "compatible domain, old -> new: virsh migrate --live succeeds"
sed 's/^/# /' "$tmp/abg-g1.out"
virsh -q -c "$(uri new)" domstate abg-g1 2>&1 | grep -qx running
ok $? "compatible domain: running on the new host"
virsh -q -c "$(uri new)" destroy abg-g1 > /dev/null 2>&1   # TCG time for the rest

# ATTEMPTS refused migrations with --p2p, then as many without.  Writes,
# per mode: how many failed, showed FIRST to the virsh user, and left the
# domain running on the source with its disk unchanged; the seconds they
# took; what virsh printed the first time and when FIRST was missing.
refusals() { # name from first
  local name=$1 from=$2 first=$3 mode sum refused seen kept out t0
  sum=$(sha256sum < "$tmp/$name.raw")
  for mode in p2p direct; do
    refused=0 seen=0 kept=0 t0=$(date +%s%N)
    for try in $(seq "$attempts"); do
      out=$tmp/$name-$mode-$try.out
      if [ $mode = p2p ]; then migrate "$name" "$from" --p2p; else migrate "$name" "$from"; fi > "$out" 2>&1 ||
        refused=$((refused + 1))
      if grep -qF "$first" "$out"; then seen=$((seen + 1)); else cp "$out" "$tmp/$name-$mode.missed"; fi
      virsh -q -c "$(uri "$from")" domstate "$name" 2>&1 | grep -qx running &&
        [ "$(sha256sum < "$tmp/$name.raw")" = "$sum" ] && kept=$((kept + 1))
    done
    echo "$refused $seen $kept $((($(date +%s%N) - t0) / 1000000000))" > "$tmp/$name-$mode.counts"
    cp "$tmp/$name-$mode-1.out" "$tmp/$name-$mode.first"
  done
}

report() { # name label source-libvirt
  local name=$1 label=$2 mode refused seen kept secs
  for mode in p2p direct; do
    read -r refused seen kept secs < "$tmp/$name-$mode.counts"
    echo "# $label, $mode: $attempts attempts in $secs s; virsh printed the first time:"
    sed 's/^/#   /' "$tmp/$name-$mode.first"
    [ "$refused" = "$attempts" ]; ok $? "$label, $mode: virsh migrate fails ($refused of $attempts)"
    if [ "$seen" = "$attempts" ]; then
      ok 0 "$label, $mode: virsh prints the refusal ($seen of $attempts)"
    elif [ "$3" = 9.0 ] && ! grep -q "load of migration failed" "$tmp/$name-$mode.missed"; then
      # libvirt 9.0 on the source composed the message without the
      # destination's part; the series cannot reach a stock source.
      n=$((n + 1))
      echo "not ok $n $label, $mode: virsh prints the refusal ($seen of $attempts) # TODO libvirt 9.0 on the source reported an error of its own, not the destination's reason, in $((attempts - seen)) of $attempts attempts; virsh printed: $(tr '\n' ' ' < "$tmp/$name-$mode.missed")"
    else
      ok 1 "$label, $mode: virsh prints the refusal ($seen of $attempts)"
      sed 's/^/#   missed: /' "$tmp/$name-$mode.missed"
    fi
    [ "$kept" = "$attempts" ]; ok $? "$label, $mode: the domain runs on the source, its disk unchanged ($kept of $attempts)"
  done
}

# The two sources refuse in parallel: they only share the destination host.
refusals abg-g2 old "virtio-blk-pci 'ua-disk1' at 0000:00:02.0: legacy I/O BAR0 is 64 bytes on the source but 128 bytes here" &
incident=$!
# the early check's report names the first difference on its first line
refusals abg-g3 new2 "Guest ABI check: 3 differences between the source's PCI devices and this destination's, the first: virtio-blk-pci 'ua-disk1' at 0000:00:02.0: BAR0: source I/O, 64 bytes; here I/O, 128 bytes" &
wait $incident $!   # not the daemons
report abg-g2 "incident, old -> new" 9.0
report abg-g3 "early check, new2 -> new" 11.3
echo "1..$n"
exit $fail
