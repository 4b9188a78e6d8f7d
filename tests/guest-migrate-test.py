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
      refuses before RAM (the destination began to load no section but
      the guest-ABI one); the source goes on.

With QEMU_OTHER, (c), (e), (f) and (g) migrate from it instead: the
series on another QEMU release, on the same machine type.

Usage: tests/guest-migrate-test.py QEMU_OLD QEMU_NEW GUEST_DIR [QEMU_OTHER]
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "scripts"))
from guesthosts import (BLOCK, Run, TwoHosts,  # noqa: E402
                        progress, read_block)
from tap import Tap  # noqa: E402

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
        status = run.old.qmp.wait_migration()["status"]
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
        status = run.old.qmp.wait_migration()["status"]
        if status != "failed":
            failures.append("migration %s on the source, expected failed"
                            % status)
        total = check_refused(run, [
            "virtio-blk-pci 'disk1' at 0000:00:0b.0: legacy I/O BAR0 is "
            "64 bytes on the source but 128 bytes here: device config is "
            "36 bytes on the source, 57 here (offered here, not by the "
            "source: VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES); "
            "start this device with discard=off,write-zeroes=off"], failures)
        return failures[:5], ("the guest put BAR0 at %s; refused; the source "
                              "went on to %d blocks" % (bar, total))
    finally:
        run.close()


def scenario_c(hosts, wd, qemu_src, qemu_new):
    machine = "pc-i440fx-10.0-abiguard1"
    run = Run(hosts, wd, qemu_src, machine,
              "virtio-blk-pci,id=disk1,drive=d1,addr=0xb")
    try:
        failures = []
        fill(run.old, 1024, 256)
        kept = snapshot(run.disk, 1024, 256)
        discard(run.old, 1024, 64, secure=True)
        run.start_writer()
        run.start_new(qemu_new)
        run.migrate()
        status = run.old.qmp.wait_migration()["status"]
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


def migrate_refused_early(run, failures):
    """Migrate; the early check must refuse before any RAM: the only
    section the destination began to load is the guest-ABI one (its
    qemu_loadvm_state_section_startfull trace).  Returns the seconds the
    refusal took, which are printed, not asserted."""
    t0 = time.monotonic()
    run.migrate()
    status = run.old.qmp.wait_migration()["status"]
    secs = time.monotonic() - t0
    if status != "failed":
        failures.append("migration %s on the source, expected failed"
                        % status)
    run.new.proc.wait(timeout=30)
    with open(run.new.log.name) as f:
        loaded = re.findall(r"qemu_loadvm_state_section_startfull\S* "
                            r"\d+\(([^)]*)\)", f.read())
    if loaded != ["pci-guest-abi"]:
        failures.append("the destination began to load %r, expected only "
                        "['pci-guest-abi'], before RAM" % loaded)
    return secs


def scenario_e(hosts, wd, qemu_src, qemu_new):
    """Both hosts patched, on the abiguard machine type: the early check
    refuses before any RAM is copied, with every difference at once."""
    run = Run(hosts, wd, qemu_src, "pc-i440fx-10.0-abiguard1",
              "virtio-blk-pci,id=disk1,drive=d1,addr=0xb,discard=off,"
              "write-zeroes=off,secure-erase=off", hotplug=True)
    try:
        failures = []
        run.start_writer()
        run.start_new(qemu_new, "virtio-blk-pci,id=disk1,drive=d1,addr=0xb")
        secs = migrate_refused_early(run, failures)
        dev = "\n  virtio-blk-pci 'disk1' at 0000:00:0b.0: "
        header = ("Guest ABI check: 3 differences between the source's PCI "
                  "devices and this destination's, the first: virtio-blk-pci "
                  "'disk1' at 0000:00:0b.0: BAR0: source I/O, 64 bytes; here "
                  "I/O, 128 bytes; cause: offered here, not by the source: "
                  "VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES, "
                  "VIRTIO_BLK_F_SECURE_ERASE; remedy: start this device with "
                  "discard=off,write-zeroes=off,secure-erase=off")
        # the destination sent its reason back over the return path
        src_desc = run.old.qmp.cmd("query-migrate").get("error-desc", "")
        if not (src_desc.startswith("the destination refused the migration: ")
                and header in src_desc):
            failures.append("the source's error-desc is %r" % src_desc[:300])
        total = check_refused(run, [
            header,
            dev + "BAR0: source I/O, 64 bytes; here I/O, 128 bytes",
            dev + "virtio config length: source 36 bytes, here 72 bytes",
            dev + "remedy: start this device with discard=off,"
            "write-zeroes=off,secure-erase=off"], failures)
        return failures[:5], ("refused %.3f s after migrate, before RAM; the "
                              "source went on to %d blocks" % (secs, total))
    finally:
        run.close()


def scenario_f(hosts, wd, qemu_src, qemu_new):
    """The guest negotiated discard; the destination does not offer it: the
    early check refuses before RAM, naming the feature and its property."""
    run = Run(hosts, wd, qemu_src, "pc-i440fx-10.0-abiguard1",
              "virtio-blk-pci,id=disk1,drive=d1,addr=0xb")
    try:
        failures = []
        run.start_writer()
        run.start_new(qemu_new, "virtio-blk-pci,id=disk1,drive=d1,addr=0xb,"
                      "discard=off")
        secs = migrate_refused_early(run, failures)
        dev = "\n  virtio-blk-pci 'disk1' at 0000:00:0b.0: "
        total = check_refused(run, [
            dev + "cause: the guest on the source negotiated "
            "VIRTIO_BLK_F_DISCARD, which this side does not offer",
            dev + "remedy: start this device with discard=on"], failures)
        return failures[:5], ("refused %.3f s after migrate, before RAM; the "
                              "source went on to %d blocks" % (secs, total))
    finally:
        run.close()


def scenario_g(hosts, wd, qemu_src, qemu_new):
    """The destination offers discard, which the source did not, so the
    guest could not negotiate it: compatible, it migrates, and is said."""
    run = Run(hosts, wd, qemu_src, "pc-i440fx-10.0-abiguard1",
              "virtio-blk-pci,id=disk1,drive=d1,addr=0xb,discard=off")
    try:
        failures = []
        run.start_writer()
        run.start_new(qemu_new, "virtio-blk-pci,id=disk1,drive=d1,addr=0xb")
        run.migrate()
        status = run.old.qmp.wait_migration()["status"]
        if status != "completed":
            return ["migration %s" % status], ""
        check_running(run.new, failures)
        check = run.new.qmp.cmd("x-query-guest-abi-check")
        noted = [d["field"] for dev in check["compatible"]
                 for d in dev["differences"]]
        if check["differences"] or noted != ["virtio host features"]:
            failures.append("the check found %r" % check)
        total = run.stop_and_check(run.new, failures)
        return failures[:5], ("migrated, the difference listed as "
                              "compatible; %d blocks written" % total)
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
        # halfway: under way, with 2 MiB of RAM sent
        deadline = time.monotonic() + 60
        while True:
            info = run.old.qmp.cmd("query-migrate")
            sent = info.get("ram", {}).get("transferred", 0)
            if info.get("status") == "active" and sent >= 2 << 20:
                break
            if (info.get("status") not in ("setup", "active")
                    or time.monotonic() > deadline):
                return ["migration is %s with %d bytes of RAM sent, expected "
                        "active with 2 MiB" % (info.get("status"), sent)], ""
            time.sleep(0.1)
        if how == "cut":
            run.new.proc.kill()
            want = "failed"
        else:
            run.old.qmp.cmd("migrate_cancel")
            want = "cancelled"
        status = run.old.qmp.wait_migration()["status"]
        if status != want:
            failures.append("migration %s, expected %s" % (status, want))
        check_running(run.old, failures)
        total = run.stop_and_check(run.old, failures)
        return failures[:5], ("migration %s halfway; the source went on to %d "
                              "blocks" % (want, total))
    finally:
        run.close()


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__.strip())
    old, new, os.environ["GUEST_DIR"] = argv[:3]
    src = argv[3] if len(argv) == 4 else new
    pair = "new -> new" if src == new else "other release -> new"
    cases = [
        ("(a) old host -> new host, pc-i440fx-7.2, cold-plugged disk",
         lambda h, wd: scenario_a(h, wd, old, new, "pc-i440fx-7.2", False)),
        ("(a) old host -> new host, pc-i440fx-7.2, hot-plugged disk",
         lambda h, wd: scenario_a(h, wd, old, new, "pc-i440fx-7.2", True)),
        ("(a) old host -> new host, pc-q35-7.2, cold-plugged disk",
         lambda h, wd: scenario_a(h, wd, old, new, "pc-q35-7.2", False)),
        ("(b) the incident, BAR0 chosen by the guest: refused, source intact",
         lambda h, wd: scenario_b(h, wd, old, new)),
        ("(c) %s, pc-i440fx-10.0-abiguard1, secure erase in the guest"
         % pair,
         lambda h, wd: scenario_c(h, wd, src, new)),
        ("(d) destination killed halfway: source intact",
         lambda h, wd: scenario_d(h, wd, old, new, "cut")),
        ("(d) migration cancelled halfway: source intact",
         lambda h, wd: scenario_d(h, wd, old, new, "cancel")),
        ("(e) %s, abiguard machine type: the early check refuses before "
         "RAM" % pair,
         lambda h, wd: scenario_e(h, wd, src, new)),
        ("(f) %s, a feature the guest negotiated is not offered: refused "
         "before RAM" % pair,
         lambda h, wd: scenario_f(h, wd, src, new)),
        ("(g) %s, a feature offered here only: compatible, it migrates"
         % pair,
         lambda h, wd: scenario_g(h, wd, src, new)),
    ]
    tap = Tap(len(cases))
    with TwoHosts() as hosts:
        for name, fn in cases:
            with tempfile.TemporaryDirectory(prefix="abiguard-guest-") as wd:
                try:
                    failures, summary = fn(hosts, wd)
                except (RuntimeError, OSError, AssertionError,
                        subprocess.TimeoutExpired) as e:
                    failures, summary = [str(e)], ""
            tap.result(not failures, name, failures or [summary])
    return tap.done()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
