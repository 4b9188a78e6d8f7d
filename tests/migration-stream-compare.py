#!/usr/bin/env python3
"""I1 for the migration stream: on stock machine types, the patched build
writes the stream Debian's unpatched 10.0.2 writes.

Usage: migration-stream-compare.py QEMU_STOCK QEMU_PATCHED

Both QEMUs save the same paused VM (the goldens' device set) with
"migrate exec:cat > FILE".  The streams must have the same length and the
same vmdesc: the JSON at the end that names every section and every field
with its size.  Bytes may differ only where time is stored (timers, RTC).
A control run turns the early guest-ABI section on by -global and must be
told apart.  Prints TAP.
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "scripts"))
import guestabi  # noqa: E402
from tap import Tap  # noqa: E402

MACHINES = ["pc-i440fx-3.1", "pc-i440fx-7.2", "pc-q35-7.2",
            "pc-i440fx-10.0", "pc-q35-10.0"]


def save(qemu, machine, extra=()):
    """The stream of the paused VM, as bytes."""
    args, _ = guestabi.device_set_args(machine, False, extra)
    with tempfile.NamedTemporaryFile(prefix="abiguard-stream-") as out, \
            guestabi.Vm(qemu, ["-m", "128"] + args, qtest=False) as vm:
        guestabi.migrate_to_file(vm, out.name)
        return open(out.name, "rb").read()


def vmdesc(stream):
    """The JSON description at the end of a stream."""
    return json.loads(stream[guestabi.vmdesc_offset(stream) + 5:])


def compare(a, b):
    """None if the streams match, or what differs."""
    if len(a) != len(b):
        return "length %d != %d" % (len(a), len(b))
    if vmdesc(a) != vmdesc(b):
        return "vmdesc differs"
    return None


def main():
    stock, patched = sys.argv[1:3]
    tap = Tap(len(MACHINES) + 1)
    for machine in MACHINES:
        diff = compare(save(stock, machine), save(patched, machine))
        tap.result(diff is None, "%s: patched stream = stock 10.0.2 stream%s"
                   % (machine, "" if diff is None else " (%s)" % diff))
    # control: the early section, forced on, must be noticed
    machine = "pc-q35-10.0"
    on = save(patched, machine, ["-global", "migration.send-guest-abi=on"])
    diff = compare(save(stock, machine), on)
    tap.result(diff is not None and b"pci-guest-abi" in on,
               "%s: control with send-guest-abi=on is told apart (%s)"
               % (machine, diff))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
