#!/usr/bin/python3
"""A real Linux guest (Debian's kernel, busybox initramfs: make-guest.sh)
writes a checksummed pattern to its virtio disk while it is live-migrated
between two hosts, network namespaces that the test creates and removes,
over TCP. Afterwards every block is checked. TAP output.

  (a) old host (Debian's QEMU 7.2) -> new host (patched), cold- and
      hot-plugged disks, with discards;
  (b) the incident, the guest choosing BAR0: refused, the source goes on;
  (c) patched -> patched on the abiguard machine type with a secure erase
      issued in the guest (blkdiscard -s) before and after migrating;
  (d) a migration whose destination dies halfway, and one cancelled: the
      source goes on, its data intact;
  (e) patched -> patched on the abiguard machine type with a disk the
      destination would present differently: the early guest-ABI check
      refuses within a second, before RAM; the source goes on.

Usage: tests/guest-migrate-test.py QEMU_OLD QEMU_NEW GUEST_DIR
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "scripts"))
import guestabi  # noqa: E402

# scripts/detect-accel.sh: KVM where it runs a guest, TCG otherwise
ACCEL = os.environ.get("GUEST_ACCEL", "tcg")
BLOCK = 4096
RING = 256                  # the writer cycles over blocks 0..RING-1
DISK = 16 << 20

# Writes "BLOCK%08d" into block n % RING, for n = 0, 1, ... until /stop.
WRITER = ("(n=0; while [ ! -e /stop ]; do printf 'BLOCK%08d\\n' $n | "
          "dd of=/dev/vda bs=4096 seek=$((n % 256)) conv=sync,notrunc "
          "2>/dev/null; n=$((n + 1)); echo $n > /progress; done; "
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

    def __init__(self, name, qemu, machine, workdir, disk, extra, netns):
        self.name = name
        self.qmp_path = os.path.join(workdir, name + ".qmp")
        ser = os.path.join(workdir, name + ".ser")
        self.log = open(os.path.join(workdir, name + ".log"), "w")
        guest = os.environ["GUEST_DIR"]
        self.proc = subprocess.Popen([
            "ip", "netns", "exec", netns,
            qemu, "-machine", machine, "-accel", ACCEL, "-m", "256",
            "-nodefaults", "-display", "none",
            "-kernel", os.path.join(guest, "vmlinuz"),
            "-initrd", os.path.join(guest, "initrd.gz"),
            "-append", "console=ttyS0 quiet",
            "-serial", "unix:%s,server=on,wait=off" % ser,
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
            "-drive", "if=none,id=d1,format=raw,discard=unmap,file=" + disk]
            + extra,
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        self.qmp = guestabi.Qmp(self.qmp_path)
        self.console = Console(ser)

    def wait_migration(self, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.qmp.cmd("query-migrate").get("status")
            if st in ("completed", "failed", "cancelled"):
                return st
            time.sleep(0.1)
        return "timeout"

    def close(self):
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


def fill(host, first, count):
    """Random data into blocks first.., synced to the disk."""
    host.console.run("dd if=/dev/urandom of=/dev/vda bs=4096 seek=%d count=%d "
                     "2>/dev/null; sync; echo FILLED-$((1 + 1))"
                     % (first, count), "FILLED-2")


def discard(host, first, count, secure=False):
    host.console.run("blkdiscard %s-o %d -l %d /dev/vda; sync; "
                     "echo DISCARDED-$((1 + 1))"
                     % ("-s " if secure else "", first * BLOCK, count * BLOCK),
                     "DISCARDED-2")


def snapshot(disk, first, count):
    with open(disk, "rb") as f:
        return [read_block(f, n) for n in range(first, first + count)]


class Run:
    """One scenario: a disk, an old host running the guest with its disk
    and the writer going, and maybe a new host."""

    def __init__(self, hosts, workdir, qemu, machine, dev, hotplug=False):
        self.hosts, self.workdir, self.machine, self.dev = (hosts, workdir,
                                                            machine, dev)
        self.disk = os.path.join(workdir, "disk.raw")
        with open(self.disk, "wb") as f:
            f.truncate(DISK)
        self.new = None
        self.old = Host("old", qemu, machine, workdir, self.disk,
                        [] if hotplug else ["-device", dev], hosts.old)
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
        self.new = Host("new", qemu, self.machine, self.workdir, self.disk,
                        ["-device", dev or self.dev, "-incoming", "defer"],
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
        after = int(host.console.run("sleep 2; echo P=$(cat /progress)",
                                     r"P=(\d+)\r?\n").group(1))
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


def check_running(host, failures):
    st = host.qmp.cmd("query-status")["status"]
    if st != "running":
        failures.append("the %s host is %s, not running" % (host.name, st))


def check_region(disk, first, want, failures, what):
    for i, (got, exp) in enumerate(zip(snapshot(disk, first, len(want)),
                                       want)):
        if got != exp:
            failures.append("block %d %s" % (first + i, what))
            return


def scenario_a(hosts, wd, qemu_old, qemu_new, machine, hotplug):
    run = Run(hosts, wd, qemu_old, machine,
              "virtio-blk-pci,id=disk1,drive=d1,addr=0xb", hotplug)
    try:
        failures = []
        fill(run.old, 512, 256)
        discard(run.old, 512, 128)
        kept = snapshot(run.disk, 640, 128)
        run.start_writer()
        run.start_new(qemu_new)
        before = progress(run.old)
        t0 = time.monotonic()
        run.migrate()
        status = run.old.wait_migration()
        if status != "completed":
            return ["migration %s" % status], ""
        secs = time.monotonic() - t0
        check_running(run.new, failures)
        if failures:
            return failures, ""
        discard(run.new, 640, 16)
        total = run.stop_and_check(run.new, failures)
        check_region(run.disk, 512, [bytes(BLOCK)] * 128, failures,
                     "not discarded before migrating")
        check_region(run.disk, 640, [bytes(BLOCK)] * 16 + kept[16:], failures,
                     "wrong after the discard on the new host")
        return failures[:5], ("%d blocks written, %d of them on the new host; "
                              "migration %.1f s" % (total, total - before,
                                                    secs))
    finally:
        run.close()


def check_refused(run, wants, failures):
    """The new host refused and exited saying each of @wants; the old host
    goes on with its data intact.  Returns the blocks written."""
    run.new.proc.wait(timeout=30)
    with open(run.new.log.name) as f:
        log = f.read()
    for want in wants:
        if want not in log:
            failures.append("the new host did not say: %r; it said: %s"
                            % (want, log[-600:]))
    check_running(run.old, failures)
    return run.stop_and_check(run.old, failures)


def scenario_b(hosts, wd, qemu_old, qemu_new):
    run = Run(hosts, wd, qemu_old, "pc-i440fx-7.2",
              "virtio-blk-pci,id=disk1,drive=d1,addr=0xb,"
              "discard=off,write-zeroes=off", hotplug=True)
    try:
        failures = []
        bar = run.old.console.run(
            "echo BAR=$(head -n 1 /sys/bus/pci/devices/0000:00:0b.0/resource"
            " | cut -d' ' -f1)", r"BAR=(0x[0-9a-f]+)\r?\n").group(1)
        run.start_writer()
        run.start_new(qemu_new, "virtio-blk-pci,id=disk1,drive=d1,addr=0xb")
        run.migrate()
        status = run.old.wait_migration()
        if status != "failed":
            failures.append("migration %s on the source, expected failed"
                            % status)
        total = check_refused(run, [
            "virtio-blk-pci 'disk1' at 0000:00:0b.0: legacy I/O BAR0 is "
            "64 bytes on the source but 128 bytes here: device config is "
            "36 bytes on the source, 57 here (offered here, not by the "
            "source: VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES). "
            "Start this device with discard=off,write-zeroes=off to match "
            "the source."], failures)
        return failures[:5], ("the guest put BAR0 at %s; refused; the source "
                              "went on to %d blocks" % (bar, total))
    finally:
        run.close()


def scenario_c(hosts, wd, qemu_new):
    machine = "pc-i440fx-10.0-abiguard1"
    run = Run(hosts, wd, qemu_new, machine,
              "virtio-blk-pci,id=disk1,drive=d1,addr=0xb")
    try:
        failures = []
        fill(run.old, 1024, 256)
        kept = snapshot(run.disk, 1024, 256)
        discard(run.old, 1024, 64, secure=True)
        run.start_writer()
        run.start_new(qemu_new)
        run.migrate()
        status = run.old.wait_migration()
        if status != "completed":
            return ["migration %s" % status], ""
        discard(run.new, 1152, 64, secure=True)
        total = run.stop_and_check(run.new, failures)
        zero = [bytes(BLOCK)] * 64
        check_region(run.disk, 1024, zero + kept[64:128] + zero + kept[192:],
                     failures, "wrong after the secure erases")
        return failures[:5], ("2 secure erases of 256 KiB, before and after "
                              "migrating; %d blocks written" % total)
    finally:
        run.close()


def scenario_e(hosts, wd, qemu_new):
    """Both hosts patched, on the abiguard machine type: the early check
    refuses before any RAM is copied, with every difference at once."""
    run = Run(hosts, wd, qemu_new, "pc-i440fx-10.0-abiguard1",
              "virtio-blk-pci,id=disk1,drive=d1,addr=0xb,discard=off,"
              "write-zeroes=off,secure-erase=off", hotplug=True)
    try:
        failures = []
        run.start_writer()
        run.start_new(qemu_new, "virtio-blk-pci,id=disk1,drive=d1,addr=0xb")
        # copying the guest's 256 MiB would take 8 s at this speed
        run.old.qmp.cmd("migrate-set-parameters",
                        **{"max-bandwidth": 32 << 20})
        t0 = time.monotonic()
        run.migrate()
        status = run.old.wait_migration()
        secs = time.monotonic() - t0
        if status != "failed" or secs > 1:
            failures.append("migration %s after %.2f s on the source, "
                            "expected failed within 1 s" % (status, secs))
        dev = "\n  virtio-blk-pci 'disk1' at 0000:00:0b.0: "
        total = check_refused(run, [
            "Guest ABI check: 3 differences between the source's PCI "
            "devices and this destination's:",
            dev + "BAR0: source I/O, 64 bytes; here I/O, 128 bytes",
            dev + "virtio config length: source 36 bytes, here 72",
            dev + "remedy: start this device with discard=off,"
            "write-zeroes=off,secure-erase=off"], failures)
        return failures[:5], ("refused %.3f s after migrate, before RAM; the "
                              "source went on to %d blocks" % (secs, total))
    finally:
        run.close()


def scenario_d(hosts, wd, qemu_old, qemu_new, how):
    run = Run(hosts, wd, qemu_old, "pc-i440fx-7.2",
              "virtio-blk-pci,id=disk1,drive=d1,addr=0xb")
    try:
        failures = []
        run.start_writer()
        run.start_new(qemu_new)
        # slow enough to interrupt halfway
        run.old.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 20})
        run.migrate()
        time.sleep(2)
        st = run.old.qmp.cmd("query-migrate").get("status")
        if st != "active":
            return ["migration is %s after 2 s, expected active" % st], ""
        if how == "cut":
            run.new.proc.kill()
            want = "failed"
        else:
            run.old.qmp.cmd("migrate_cancel")
            want = "cancelled"
        status = run.old.wait_migration()
        if status != want:
            failures.append("migration %s, expected %s" % (status, want))
        check_running(run.old, failures)
        total = run.stop_and_check(run.old, failures)
        return failures[:5], ("migration %s halfway; the source went on to %d "
                              "blocks" % (want, total))
    finally:
        run.close()


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__.strip())
    old, new, os.environ["GUEST_DIR"] = argv
    cases = [
        ("(a) old host -> new host, pc-i440fx-7.2, cold-plugged disk",
         lambda h, wd: scenario_a(h, wd, old, new, "pc-i440fx-7.2", False)),
        ("(a) old host -> new host, pc-i440fx-7.2, hot-plugged disk",
         lambda h, wd: scenario_a(h, wd, old, new, "pc-i440fx-7.2", True)),
        ("(a) old host -> new host, pc-q35-7.2, cold-plugged disk",
         lambda h, wd: scenario_a(h, wd, old, new, "pc-q35-7.2", False)),
        ("(b) the incident, BAR0 chosen by the guest: refused, source intact",
         lambda h, wd: scenario_b(h, wd, old, new)),
        ("(c) new -> new, pc-i440fx-10.0-abiguard1, secure erase in the guest",
         lambda h, wd: scenario_c(h, wd, new)),
        ("(d) destination killed halfway: source intact",
         lambda h, wd: scenario_d(h, wd, old, new, "cut")),
        ("(d) migration cancelled halfway: source intact",
         lambda h, wd: scenario_d(h, wd, old, new, "cancel")),
        ("(e) new -> new, abiguard machine type: the early check refuses "
         "before RAM",
         lambda h, wd: scenario_e(h, wd, new)),
    ]
    print("1..%d" % len(cases))
    failed = 0
    with TwoHosts() as hosts:
        for n, (name, fn) in enumerate(cases, 1):
            with tempfile.TemporaryDirectory(prefix="abiguard-guest-") as wd:
                try:
                    failures, summary = fn(hosts, wd)
                except (RuntimeError, OSError, AssertionError,
                        subprocess.TimeoutExpired) as e:
                    failures, summary = [str(e)], ""
            if failures:
                failed += 1
                print("not ok %d %s" % (n, name))
                for f in failures:
                    print("# " + f)
            else:
                print("ok %d %s" % (n, name))
                print("# " + summary)
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
