#!/usr/bin/python3
"""A real Linux guest (Debian's kernel, busybox initramfs: make-guest.sh)
writes a checksummed pattern to its virtio disk while it is live-migrated
from an old host (Debian's QEMU 7.2) to a new host (the patched build);
afterwards every block is checked. TAP output.

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

BLOCK = 4096
RING = 256                  # the writer cycles over blocks 0..RING-1
DISCARDED = (512, 640)      # blocks discarded by the guest before migrating
MARKED = (640, 768)         # blocks written once, must survive
DISK = 16 << 20

# Writes "BLOCK%08d" into block n % RING, for n = 0, 1, ... until /stop.
WRITER = ("(n=0; while [ ! -e /stop ]; do printf 'BLOCK%08d\\n' $n | "
          "dd of=/dev/vda bs=4096 seek=$((n % 256)) conv=sync,notrunc "
          "2>/dev/null; n=$((n + 1)); echo $n > /progress; done; "
          "sync; echo STOPPED $n) &")


class Console:
    """The guest's serial console, a unix socket chardev."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        for _ in range(200):
            try:
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.sock.settimeout(0.2)
        self.buf = ""

    def expect(self, pattern, timeout=60):
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

    def __init__(self, name, qemu, machine, workdir, disk, extra):
        self.qmp_path = os.path.join(workdir, name + ".qmp")
        ser = os.path.join(workdir, name + ".ser")
        self.log = open(os.path.join(workdir, name + ".log"), "w")
        guest = os.environ["GUEST_DIR"]
        self.proc = subprocess.Popen([
            qemu, "-machine", machine, "-accel", "tcg", "-m", "256",
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


def scenario(qemu_old, qemu_new, machine, hotplug, port, workdir):
    """Returns a list of failures (empty: pass) and a summary."""
    disk = os.path.join(workdir, "disk.raw")
    with open(disk, "wb") as f:
        f.truncate(DISK)
    dev = "virtio-blk-pci,id=disk1,drive=d1,addr=0xb"
    old = Host("old", qemu_old, machine, workdir, disk,
               [] if hotplug else ["-device", dev])
    new = None
    try:
        old.console.expect("GUEST READY", 120)
        if hotplug:
            out = old.qmp.cmd("human-monitor-command",
                              **{"command-line": "device_add " + dev})
            assert not out, out
            old.console.run("while [ ! -b /dev/vda ]; do sleep 0.2; done; "
                            "echo HOTPLUGGED-$((1 + 1))", "HOTPLUGGED-2")
        # blocks to discard and blocks that must survive, then the writer
        old.console.run(
            "dd if=/dev/urandom of=/dev/vda bs=4096 seek=%d count=%d "
            "2>/dev/null; blkdiscard -o %d -l %d /dev/vda; sync; "
            "echo PREP-$((1 + 1))"
            % (DISCARDED[0], MARKED[1] - DISCARDED[0], DISCARDED[0] * BLOCK,
               (DISCARDED[1] - DISCARDED[0]) * BLOCK), "PREP-2")
        old.console.run(WRITER + " sleep 2; echo P=$(cat /progress)",
                        r"P=(\d+)")
        with open(disk, "rb") as f:
            marked = [read_block(f, n) for n in range(*MARKED)]

        new = Host("new", qemu_new, machine, workdir, disk,
                   ["-device", dev, "-incoming", "tcp:127.0.0.1:%d" % port])
        before = int(old.console.run("echo P=$(cat /progress)",
                                     r"P=(\d+)").group(1))
        t0 = time.monotonic()
        old.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        status = old.wait_migration()
        if status != "completed":
            return ["migration %s: %s" % (status, new.log.name)], ""
        secs = time.monotonic() - t0
        st = new.qmp.cmd("query-status")["status"]
        if st != "running":
            return ["destination is %s, not running" % st], ""
        # the guest goes on writing on the new host, then stops and syncs
        after = int(new.console.run("sleep 2; echo P=$(cat /progress)",
                                    r"P=(\d+)", 60).group(1))
        total = int(new.console.run("touch /stop", r"STOPPED (\d+)",
                                    60).group(1))
        new.console.run("blkdiscard -o %d -l %d /dev/vda; sync; "
                        "echo POST-$((1 + 1))" % (MARKED[0] * BLOCK,
                                                  16 * BLOCK), "POST-2")
        new.qmp.cmd("quit")
        new.proc.wait()
        failures = []
        if after <= before:
            failures.append("no I/O on the new host (%d -> %d)"
                            % (before, after))
        with open(disk, "rb") as f:
            for k in range(RING):
                if read_block(f, k) != expected(k, total):
                    failures.append("block %d: %r" % (k, read_block(f, k)[:16]))
            for n in range(*DISCARDED):
                if read_block(f, n) != bytes(BLOCK):
                    failures.append("block %d not discarded" % n)
            for i, n in enumerate(range(*MARKED)):
                want = bytes(BLOCK) if i < 16 else marked[i]
                if read_block(f, n) != want:
                    failures.append("block %d changed: %r, expected %r"
                                    % (n, read_block(f, n)[:8], want[:8]))
        summary = ("%d blocks written, %d before migrating, %d on the new "
                   "host; migration %.1f s" % (total, before, total - before,
                                               secs))
        return failures[:5], summary
    finally:
        old.close()
        if new:
            new.close()


def incident(qemu_old, qemu_new, port, workdir):
    """The incident with the guest choosing BAR0: the new host refuses, the
    source goes on running, and its data is intact."""
    disk = os.path.join(workdir, "disk.raw")
    with open(disk, "wb") as f:
        f.truncate(DISK)
    dev = "virtio-blk-pci,id=disk1,drive=d1,addr=0xb"
    old = Host("old", qemu_old, "pc-i440fx-7.2", workdir, disk, [])
    new = None
    try:
        old.console.expect("GUEST READY", 120)
        out = old.qmp.cmd("human-monitor-command", **{
            "command-line": "device_add " + dev +
            ",discard=off,write-zeroes=off"})
        assert not out, out
        bar = old.console.run(
            "while [ ! -b /dev/vda ]; do sleep 0.2; done; "
            "echo BAR=$(head -n 1 /sys/bus/pci/devices/0000:00:0b.0/resource"
            " | cut -d' ' -f1)", r"BAR=(0x[0-9a-f]+)").group(1)
        old.console.run(WRITER + " sleep 1; echo P=$(cat /progress)",
                        r"P=(\d+)")
        new = Host("new", qemu_new, "pc-i440fx-7.2", workdir, disk,
                   ["-device", dev, "-incoming", "defer"])
        # with a return path the source learns of the refusal and resumes
        for h in (old, new):
            h.qmp.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "return-path", "state": True}])
        new.qmp.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        old.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        failures = []
        status = old.wait_migration()
        if status != "failed":
            failures.append("migration %s on the source, expected failed"
                            % status)
        new.proc.wait(timeout=30)
        new.log.flush()
        with open(new.log.name) as f:
            log = f.read()
        want = ("virtio-blk-pci 'disk1' at 0000:00:0b.0: legacy I/O BAR0 is "
                "64 bytes on the source but 128 bytes here: device config is "
                "36 bytes on the source, 57 here (offered here, not by the "
                "source: VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES). "
                "Start this device with discard=off,write-zeroes=off to match "
                "the source.")
        if want not in log:
            failures.append("new host did not say: %s; it said: %s"
                            % (want, log[-400:]))
        st = old.qmp.cmd("query-status")["status"]
        if st != "running":
            failures.append("source is %s after the refusal" % st)
        before = int(old.console.run("echo P=$(cat /progress)",
                                     r"P=(\d+)").group(1))
        after = int(old.console.run("sleep 2; echo P=$(cat /progress)",
                                    r"P=(\d+)").group(1))
        if after <= before:
            failures.append("source does no I/O after the refusal")
        total = int(old.console.run("touch /stop", r"STOPPED (\d+)",
                                    60).group(1))
        old.qmp.cmd("quit")
        old.proc.wait()
        with open(disk, "rb") as f:
            for k in range(RING):
                if read_block(f, k) != expected(k, total):
                    failures.append("block %d: %r" % (k, read_block(f, k)[:16]))
        return failures[:5], ("the guest put BAR0 at %s; refused; the source "
                              "went on to %d blocks" % (bar, total))
    finally:
        old.close()
        if new:
            new.close()


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__.strip())
    os.environ["GUEST_DIR"] = argv[2]
    cases = [("pc-i440fx-7.2", False), ("pc-i440fx-7.2", True),
             ("pc-q35-7.2", False)]
    print("1..%d" % (len(cases) + 1))
    failed = 0
    for n, case in enumerate(cases + [(None, None)], 1):
        machine, hotplug = case
        if machine is None:
            name = "the incident, BAR0 chosen by the guest: refused, source intact"
        else:
            name = "old host -> new host, %s, %s" % (
                machine, "hot-plugged disk" if hotplug else "cold-plugged disk")
        with tempfile.TemporaryDirectory(prefix="abiguard-guest-") as wd:
            try:
                if machine is None:
                    failures, summary = incident(argv[0], argv[1], 47000 + n,
                                                 wd)
                else:
                    failures, summary = scenario(argv[0], argv[1], machine,
                                                 hotplug, 47000 + n, wd)
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
