# Hosts with a libvirtd each, for the libvirt tests; sourced by them.
#   old  - a Debian 12 root (QEMU 7.2, libvirt 9.0 from Debian packages),
#          in network namespace $ns_old
#   new  - this machine's libvirt (11.3, bookworm-backports), in $ns_new;
#          or, given a second root, the libvirt and QEMU installed there
#   new2 - a second new host, in $ns_old
# The sourcing test sets tmp (a fresh directory) and guest (a directory the
# old host must see too), calls hosts_up, and hosts_down on exit.  A host
# whose directory has bin/ sees it at $tmp/bin: the same emulator path
# runs each host's own QEMU there.

tag=$$
ns_old=abg-lv-old-$tag ns_new=abg-lv-new-$tag

hosts_down() {
  # SIGKILL: unshare --fork ignores SIGTERM while it waits, and only its
  # death takes the host's PID namespace, libvirtd and QEMUs with it
  for h in old new new2; do
    [ -f "$tmp/$h/pid" ] && kill -KILL "$(cat "$tmp/$h/pid")" 2>/dev/null
  done
  sleep 0.5
  ip netns del "$ns_old" 2>/dev/null; ip netns del "$ns_new" 2>/dev/null
  rm -rf "$tmp"
}

uri() { echo "qemu+unix:///system?socket=$tmp/$1/run/libvirt-sock"; }

# A libvirtd of its own per host: its own config, state and sockets
# (bind-mounted over the system paths in a private mount namespace),
# its own host UUID, no security driver, cgroups or virtlogd.  Each host
# has its own PID namespace, whose init (sh) reaps what it runs at once,
# as systemd does on a real host; killing the host kills its QEMUs.  The old
# host's runs chrooted in its Debian 12 root, which sees $tmp and the
# guest at the same paths.  MIGRATION_HOST, if set, is the address the
# host gives sources to migrate to (libvirt's migration_host).
start_daemon() { # name netns uuid [root]
  local d=$tmp/$1 root=${4:-}
  mkdir -p "$d"/{etc,run,lib,log,cache} "$tmp/bin"
  cat > "$d/etc/libvirtd.conf" <<CONF
host_uuid = "$3"
CONF
  local mh=${MIGRATION_HOST:+"migration_host = \"$MIGRATION_HOST\""}
  cat > "$d/etc/qemu.conf" <<CONF
$mh
security_driver = "none"
cgroup_controllers = [ ]
user = "root"
group = "root"
stdio_handler = "file"
namespaces = [ ]
CONF
  ip netns exec "$2" unshare -m -p -f --kill-child sh -c "
    set -e
    mount --make-rprivate /
    mount -t proc proc /proc
    if [ -n '$root' ]; then
      mount -t proc proc $root/proc
      mount --rbind /sys $root/sys && mount --rbind /dev $root/dev
      mount -t tmpfs tmpfs $root/run && mount -t tmpfs tmpfs $root/tmp
      for p in $tmp $guest; do mkdir -p $root\$p && mount --bind \$p $root\$p; done
    fi
    if [ -d $d/bin ]; then mount --bind $d/bin $root$tmp/bin; fi
    for p in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
      mkdir -p $root\${p#*:} && mount --bind $d/\${p%%:*} $root\${p#*:}
    done
    if [ -n '$root' ]; then chroot $root libvirtd -p /run/libvirt/libvirtd.pid & else libvirtd -p /run/libvirt/libvirtd.pid & fi
    wait" > "$d/libvirtd.log" 2>&1 &
  echo $! > "$d/pid"
  disown "$!"     # killed by hosts_down: not a job for the shell to report
  for _ in $(seq 100); do [ -S "$d/run/libvirt-sock" ] && return 0; sleep 0.1; done
  echo "Bail out! libvirtd for the $1 host did not start: $(tail -n 3 "$d/libvirtd.log")"; exit 1
}

hosts_up() { # old-host-root [new-host-root]
  ip netns add "$ns_old" && ip netns add "$ns_new" &&
  ip link add abgl-old netns "$ns_old" type veth peer name abgl-new netns "$ns_new" &&
  ip -n "$ns_old" addr add 10.231.1.1/30 dev abgl-old && ip -n "$ns_old" link set abgl-old up &&
  ip -n "$ns_new" addr add 10.231.1.2/30 dev abgl-new && ip -n "$ns_new" link set abgl-new up &&
  ip -n "$ns_old" link set lo up && ip -n "$ns_new" link set lo up ||
    { echo "Bail out! cannot create network namespaces"; exit 1; }
  getent passwd libvirt-qemu >/dev/null ||
    adduser --system --group --no-create-home libvirt-qemu >/dev/null 2>&1
  # each host gives sources its own namespace's address to migrate to
  MIGRATION_HOST=10.231.1.1 start_daemon old "$ns_old" 6f0c2a4e-0a0b-4c1d-9e2f-000000000001 "$1"
  MIGRATION_HOST=10.231.1.2 start_daemon new "$ns_new" 6f0c2a4e-0a0b-4c1d-9e2f-000000000002 "${2:-}"
  MIGRATION_HOST=10.231.1.1 start_daemon new2 "$ns_old" 6f0c2a4e-0a0b-4c1d-9e2f-000000000003
  for h in old new; do
    echo "# $h host: $(virsh -c "$(uri $h)" version --daemon 2>/dev/null | grep -E 'daemon|hypervisor' | tr -s ' \n' ' ')"
  done
}

# guest_devices NAME MACHINE EMULATOR CONSOLE-FILE DEVICES: the XML of a
# domain running the test guest ($guest) with the XML DEVICES, up to its
# devices' end; its UUID from the digits of NAME.
guest_devices() {
  cat <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$1</name>
  <uuid>$(printf '6f0c2a4e-0000-4000-8000-%012d' "$((10#${1//[!0-9]/}))")</uuid>
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
    $5
    <serial type='file'><source path='$4'/></serial>  <!-- "GUEST READY", then an idle shell -->
    <memballoon model='none'/>
  </devices>
XML
}

# guest_domain NAME MACHINE EMULATOR CONSOLE-FILE [PROPERTY...]: such a
# domain with a virtio disk $tmp/NAME.raw (alias ua-disk1), each PROPERTY
# set false on it by a qemu:override.
guest_domain() {
  guest_devices "$1" "$2" "$3" "$4" "<disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$tmp/$1.raw'/>
      <target dev='vda' bus='virtio'/>
      <alias name='ua-disk1'/>
    </disk>"
  if [ $# -gt 4 ]; then
    echo "  <qemu:override><qemu:device alias='ua-disk1'><qemu:frontend>"
    for p in "${@:5}"; do
      echo "    <qemu:property name='$p' type='bool' value='false'/>"
    done
    echo "  </qemu:frontend></qemu:device></qemu:override>"
  fi
  echo "</domain>"
}
