#!/usr/bin/python3
"""make demo: the incident, told step by step in the terminal.

An old host (Debian's QEMU 7.2) runs a VM and a virtio disk is hot-plugged.
The VM live-migrates to a new host (the patched QEMU 10.0.2). Then the
mismatch case: the same disk, started on the old host without discard and
write-zeroes, meets a new host that offers them: first a new host running
Debian's unpatched QEMU 10.0.2 (what happens today), then the patched one,
whose query-migrate says why.  Last, the operator starts the new host with
the remedy the report names, and the same migration completes.

No guest OS is booted: like the in-tree qtest, the demo plays the guest
kernel through QEMU's qtest chardev (port I/O on 0xcf8/0xcfc), which Debian's
builds accept together with "-accel tcg -S".
"""

import os
import re
import sys
import tempfile
import time

import guestabi

BUILD = os.environ["BUILD"]
OLD = os.path.join(BUILD, "bin", "qemu-stock-7.2")
NEW = os.path.join(BUILD, "bin", "qemu-patched")
STOCK_NEW = os.path.join(BUILD, "bin", "qemu-stock-10.0.2")
MACHINE = "pc-i440fx-7.2"
SLOT = 0xB
DISK_SIZE = 1 << 20


def say(text=""):
    print(text, flush=True)


def step(text):
    say("\n\033[1m>> " + text + "\033[0m")


class Host(guestabi.Vm):
    """A paused QEMU (guestabi.Vm: QMP and qtest sockets) playing a host."""

    def __init__(self, binary, args):
        super().__init__(binary, ["-machine", MACHINE, "-nodefaults"] + args)

    def cmd(self, execute, **args):
        return self.qmp.cmd(execute, **args)

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def place_bar0(self, addr=None):
        """Size BAR0 and place it as Linux does for a hot-plugged device."""
        devfn = SLOT << 3
        self.qt.writel(0, devfn, 0x10, 0xFFFFFFFF)
        size = (~(self.qt.readl(0, devfn, 0x10) & ~3) + 1) & 0xFFFF
        addr = 0x10000 - size if addr is None else addr
        self.qt.writel(0, devfn, 0x10, addr)
        self.qt.writeb(0, devfn, 0x04,
                       self.qt.readb(0, devfn, 0x04) | 1)  # I/O decoding on
        return size, self.qt.readl(0, devfn, 0x10) & 0xFFFC

    def bar0(self):
        for dev in self.cmd("query-pci")[0]["devices"]:
            if dev["slot"] == SLOT:
                bar = dev["regions"][0]
                return bar["size"], bar["address"]


def migrate(old_props, new_props, bar0, workdir, new_binary=NEW):
    disk = os.path.join(workdir, "disk.raw")
    with open(disk, "wb") as f:
        f.write(b"\x5a" * DISK_SIZE)
    drive = ["-drive", "if=none,id=d1,format=raw,file=" + disk]
    sock = os.path.join(workdir, "migrate.sock")
    props = "id=disk1,drive=d1,addr=0x%x" % SLOT

    say("   old host: Debian QEMU 7.2, machine type %s" % MACHINE)
    old = Host(OLD, drive)
    new = None
    try:
        say("   device_add virtio-blk-pci,%s%s" % (props, old_props))
        out = old.hmp("device_add virtio-blk-pci,%s%s" % (props, old_props))
        assert out == "", out
        size, addr = old.place_bar0(bar0)
        say("   the guest kernel sizes BAR0 (%d bytes) and puts it at 0x%04x"
            % (size, addr))

        say("   new host: %s QEMU 10.0.2, started like libvirt does, "
            "with -device virtio-blk-pci,%s%s -incoming defer"
            % ("patched" if new_binary == NEW else "Debian's unpatched",
               props, new_props))
        new = Host(new_binary, drive + [
            "-device", "virtio-blk-pci," + props + new_props,
            "-incoming", "defer"])
        # Keep the new host alive on failure so that we can show its error.
        new.cmd("migrate-incoming", uri="unix:" + sock, **{"exit-on-error": False})
        say("   migrate ...")
        old.cmd("migrate", uri="unix:" + sock)
        old.qmp.wait_migration(20)
        status = new.qmp.wait_migration(20)["status"]
        return status, (size, addr), new
    finally:
        old.close()


def main():
    with tempfile.TemporaryDirectory(prefix="abiguard-demo-") as workdir:
        step("1. A VM on an old host gets a hot-plugged virtio disk, then moves "
             "to a new host")
        status, (size, addr), new = migrate("", "", None, workdir)
        try:
            nsize, naddr = new.bar0()
            say("   migration: %s" % status)
            say("   BAR0 on the new host: %d bytes at 0x%04x (the guest "
                "enumerated %d bytes at 0x%04x)" % (nsize, naddr, size, addr))
            # qemu-io prints to QEMU's stdout, which is the log
            new.hmp('qemu-io d1 "read -P 0x5a 0 %d"' % DISK_SIZE)
            time.sleep(0.2)
            out = [l for l in new.output().splitlines()
                   if l.startswith("read ") or "Pattern" in l]
            say("   disk contents on the new host, checked with qemu-io: %s"
                % (out[0] if out else "no answer"))
            ok = (status == "completed" and (nsize, naddr) == (size, addr)
                  and out and out[0].startswith("read %d/%d" % (DISK_SIZE, DISK_SIZE)))
        finally:
            new.close()
        say("   => %s: same device layout on both hosts, data intact."
            % ("fine" if ok else "UNEXPECTED"))

        fail = not ok
        remedy = None
        for n, (bar0, where) in enumerate([(0xFFC0, "0xffc0, as Linux puts a "
                                            "hot-plugged device"),
                                           (0xC080, "0xc080")]):
            step("%d. The incident, BAR0 at %s: the old host started the disk "
                 "with discard=off,write-zeroes=off; the new host offers both"
                 % (n + 2, where))
            say("   Each feature adds fields to the virtio-blk config: 36 -> 57 "
                "bytes,\n   so the legacy I/O BAR0 grows from 64 to 128 bytes "
                "(header + config, rounded up to a power of two).")
            for binary in (STOCK_NEW, NEW):
                status, (size, addr), new = migrate(
                    ",discard=off,write-zeroes=off", "", bar0, workdir, binary)
                try:
                    nsize, naddr = new.bar0() if status == "completed" else (0, 0)
                    said = new.output()
                    desc = new.cmd("query-migrate").get("error-desc", "")
                finally:
                    new.close()
                say("   migration: %s" % status)
                if status == "completed":
                    say("   => SILENTLY ACCEPTED: the guest enumerated %d bytes "
                        "at 0x%04x, the new host\n      now decodes %d bytes "
                        "there, overlapping whatever the guest put at 0x%04x."
                        % (size, addr, nsize, addr + size))
                else:
                    say("   => refused; query-migrate on the new host, "
                        "error-desc (what libvirt shows):")
                    say("     " + desc)
                    lines = [l.replace("qemu-system-x86_64: ", "")
                             for l in said.splitlines()
                             if "warning" not in l and not l.startswith("[I ")]
                    if lines:
                        say("     and on its stderr:")
                        for line in lines:
                            say("     " + line)
                    found = re.search(r"start this device with (\S+)$",
                                      desc)
                    if found:
                        remedy = found.group(1)
                # The patched host must refuse wherever the guest put BAR0.
                if binary == NEW and status != "failed":
                    fail = True
        step("4. The operator starts the new host with the remedy the report "
             "names: %s" % remedy)
        if not remedy:
            say("   => UNEXPECTED: the report named no remedy")
            return 1
        status, (size, addr), new = migrate(
            ",discard=off,write-zeroes=off", "," + remedy, 0xFFC0, workdir)
        try:
            nsize, naddr = new.bar0()
        finally:
            new.close()
        say("   migration: %s" % status)
        say("   BAR0 on the new host: %d bytes at 0x%04x (the guest enumerated "
            "%d bytes at 0x%04x)" % (nsize, naddr, size, addr))
        if status != "completed" or (nsize, naddr) != (size, addr):
            say("   => UNEXPECTED")
            fail = True
        else:
            say("   => migrated, with the device layout the guest knows.")
        say("\nWith abiguard the destination refuses the mismatch wherever the "
            "guest put BAR0,\nand says which device, which BAR, both sizes, the "
            "features and the properties\nthat match the source. Unpatched, it "
            "depends on the address: a byte dump, or nothing.")
        return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
