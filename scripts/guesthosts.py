"""The test guest's hosts: two network namespaces, a QEMU in each running
the guest (scripts/make-guest.sh) with a console and QMP, and a Run that
puts a disk and a block-writing workload on the old host and migrates it.
Used by tests/guest-migrate-test.py and the in-guest benchmarks.

The guest is found in $GUEST_DIR; $GUEST_ACCEL names the accelerator.
"""
import os
import re
import socket
import subprocess
import time

import guestabi

# scripts/detect-accel.sh: KVM where it runs a guest, TCG otherwise
ACCEL = os.environ.get("GUEST_ACCEL", "tcg")
BLOCK = 4096
RING = 256                  # the writer cycles over blocks 0..RING-1
DISK = 16 << 20

# Writes "BLOCK%08d" into block n % RING, for n = 0, 1, ... until /stop;
# /progress is replaced whole, so that a reader never sees it empty.
WRITER = ("(n=0; while [ ! -e /stop ]; do printf 'BLOCK%08d\\n' $n | "
          "dd of=/dev/vda bs=4096 seek=$((n % 256)) conv=sync,notrunc "
          "2>/dev/null; n=$((n + 1)); echo $n > /progress.new; "
          "mv /progress.new /progress; done; "
          "sync; echo STOPPED $n) &")


class Console:
    """The guest's serial console, a unix socket chardev."""

    def __init__(self, path):
        self.sock = guestabi.connect(path, 10)
        self.sock.settimeout(0.2)
        self.buf = ""

    def expect(self, pattern, timeout=60):
        """Wait for @pattern; end it with a newline when it captures a
        number, or a number cut between two reads matches short."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            try:
                data = self.sock.recv(4096)
                if not data:
                    break
                self.buf += data.decode(errors="replace")
            except socket.timeout:
                pass
        raise RuntimeError("guest did not print %r; last output: %r"
                           % (pattern, self.buf[-300:]))

    def run(self, cmd, pattern, timeout=60):
        """Send @cmd; wait for @pattern, which must not match its echo."""
        self.sock.sendall((cmd + "\n").encode())
        return self.expect(pattern, timeout)


class Host:
    """A QEMU running the guest, with QMP and a console socket."""

    def __init__(self, name, qemu, machine, workdir, disk, extra, netns,
                 guest=None, mem=256):
        """@disk (or None) is drive d1; @guest the guest's directory,
        $GUEST_DIR if None; @mem its RAM in MiB."""
        self.name = name
        self.qmp_path = os.path.join(workdir, name + ".qmp")
        ser = os.path.join(workdir, name + ".ser")
        self.log = open(os.path.join(workdir, name + ".log"), "w")
        guest = guest or os.environ["GUEST_DIR"]
        drive = ["-drive", "if=none,id=d1,format=raw,discard=unmap,file="
                 + disk] if disk else []
        self.proc = guestabi.launch([
            "ip", "netns", "exec", netns,
            qemu, "-machine", machine, "-accel", ACCEL, "-m", str(mem),
            "-nodefaults", "-display", "none",
            "-kernel", os.path.join(guest, "vmlinuz"),
            "-initrd", os.path.join(guest, "initrd.gz"),
            "-append", "console=ttyS0 quiet",
            "-serial", "unix:%s,server=on,wait=off" % ser,
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
            + drive + extra, self.log)
        try:
            self.qmp = guestabi.Qmp(self.qmp_path)
            self.console = Console(ser)
        except BaseException:
            self.close()
            raise

    def close(self):
        if getattr(self, "qmp", None):
            self.qmp.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


class TwoHosts:
    """Two network namespaces joined by a veth pair: the old host at
    OLD_ADDR, the new one at NEW_ADDR. Removed again on exit."""

    OLD_ADDR, NEW_ADDR = "10.231.0.1", "10.231.0.2"

    def __init__(self):
        tag = "%d" % os.getpid()
        self.old, self.new = "abg-old-" + tag, "abg-new-" + tag

    def __enter__(self):
        def ip(*args):
            subprocess.run(("ip",) + args, check=True)
        try:
            ip("netns", "add", self.old)
            ip("netns", "add", self.new)
            ip("link", "add", "abgv-old", "netns", self.old, "type", "veth",
               "peer", "name", "abgv-new", "netns", self.new)
            for ns, dev, addr in ((self.old, "abgv-old", self.OLD_ADDR),
                                  (self.new, "abgv-new", self.NEW_ADDR)):
                ip("-n", ns, "addr", "add", addr + "/30", "dev", dev)
                ip("-n", ns, "link", "set", dev, "up")
                ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for ns in (self.old, self.new):
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)


def read_block(f, n):
    f.seek(n * BLOCK)
    return f.read(BLOCK)


def expected(k, total):
    """What the writer left in ring block k after writing total blocks."""
    if total <= k:
        return bytes(BLOCK)
    n = k + RING * ((total - 1 - k) // RING)
    text = b"BLOCK%08d\n" % n
    return text + bytes(BLOCK - len(text))


def progress(host):
    return int(host.console.run("echo P=$(cat /progress)",
                                r"P=(\d+)\r?\n").group(1))


class Run:
    """One scenario: a disk, an old host running the guest with its disk
    and the writer going, and maybe a new host."""

    def __init__(self, hosts, workdir, qemu, machine, dev, hotplug=False,
                 disk_size=DISK):
        self.hosts, self.workdir, self.machine, self.dev = (hosts, workdir,
                                                            machine, dev)
        self.disk = os.path.join(workdir, "disk.raw")
        with open(self.disk, "wb") as f:
            f.truncate(disk_size)
        self.new = None
        self.old = Host("old", qemu, machine, workdir, self.disk,
                        [] if hotplug else ["-device", dev], hosts.old)
        try:
            self.boot(dev, hotplug)
        except BaseException:
            self.close()        # the scenario's try: has not begun
            raise

    def boot(self, dev, hotplug):
        self.old.console.expect("GUEST READY", 120)
        if hotplug:
            out = self.old.qmp.cmd("human-monitor-command",
                                   **{"command-line": "device_add " + dev})
            assert not out, out
            self.old.console.run("while [ ! -b /dev/vda ]; do sleep 0.2; "
                                 "done; echo HOTPLUGGED-$((1 + 1))",
                                 "HOTPLUGGED-2")

    def start_writer(self):
        self.old.console.run(WRITER + " sleep 1; echo P=$(cat /progress)",
                             r"P=(\d+)\r?\n")

    def start_new(self, qemu, dev=None, port=4444):
        self.uri = "tcp:%s:%d" % (self.hosts.NEW_ADDR, port)
        # the trace names each section the destination begins to load
        self.new = Host("new", qemu, self.machine, self.workdir, self.disk,
                        ["-device", dev or self.dev, "-incoming", "defer",
                         "-trace", "qemu_loadvm_state_section_startfull"],
                        self.hosts.new)
        for h in (self.old, self.new):
            # with a return path the source learns of a failed load
            h.qmp.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "return-path", "state": True}])
        self.new.qmp.cmd("migrate-incoming", uri=self.uri)

    def migrate(self):
        self.old.qmp.cmd("migrate", uri=self.uri)

    def stop_and_check(self, host, failures):
        """Stop the writer on @host, quit it, check the ring; returns the
        number of blocks written."""
        before = progress(host)
        deadline = time.monotonic() + 30
        after = progress(host)
        while after <= before and time.monotonic() < deadline:
            after = progress(host)
        if after <= before:
            failures.append("no I/O on the %s host (%d -> %d)"
                            % (host.name, before, after))
        total = int(host.console.run("touch /stop", r"STOPPED (\d+)\r?\n",
                                     60).group(1))
        host.qmp.cmd("quit")
        host.proc.wait()
        with open(self.disk, "rb") as f:
            for k in range(RING):
                if read_block(f, k) != expected(k, total):
                    failures.append("block %d: %r" % (k, read_block(f, k)[:16]))
        return total

    def close(self):
        self.old.close()
        if self.new:
            self.new.close()
