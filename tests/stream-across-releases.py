#!/usr/bin/env python3
"""The series' 10.0 machine types across releases: on QEMU 10.2.2 with
the series, pc-i440fx-10.0-abiguard1 and pc-q35-10.0-abiguard1 write the
stream they write on QEMU 10.0.2 with it.

Usage: stream-across-releases.py QEMU_10_0 QEMU_10_2

Both save the same paused VM (the goldens' device set).  The streams must
carry the same sections, each described field for field alike in the
vmdesc, and every field the same value, as upstream's
analyze-migration.py reads them (migration-stream-compare.py's fields(),
with its clock fields).  Three differences are allowed: 10.2 sends
"apic" first and, on q35, the ICH9 LPC's GCS register (chip_config byte
0x3410) has NO_REBOOT (0x20) set on 10.0 and clear on 10.2, both
upstream's own, which the stock pc-*-10.0 types, run as the control,
show too; and the series' vmdesc names the fingerprint's first virtio
feature word host_features[0] on 10.2, host_features on 10.0 (the same
8 bytes on the wire; 10.2 has a second word).  Prints TAP.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "scripts"))
from tap import Tap  # noqa: E402
from importlib import import_module  # noqa: E402

stream = import_module("migration-stream-compare")

MACHINES = ["pc-i440fx-10.0-abiguard1", "pc-q35-10.0-abiguard1",
            "pc-i440fx-10.0", "pc-q35-10.0"]
# upstream moved it to the front between 10.0 and 10.2
MOVED = "apic"
# upstream's value changes between 10.0 and 10.2: (section, field)
UPSTREAM_VALUES = {("0000:00:1f.0/ICH9LPC", "chip_config/[%d]" % 0x3410)}
# 10.2's name of the fingerprint's first virtio feature word, and 10.0's
FIRST_WORD = ("host_features[0]", "host_features")


def sections(data):
    """Section name and instance in stream order, and each description."""
    desc = json.loads(json.dumps(stream.vmdesc(data)).replace(
        '"%s"' % FIRST_WORD[0], '"%s"' % FIRST_WORD[1]))
    order = [(d["name"], d["instance_id"]) for d in desc["devices"]]
    return order, {(d["name"], d["instance_id"]): d for d in desc["devices"]}


def compare(old, new):
    """None if @new carries what @old does, or what differs."""
    order_old, desc_old = sections(old)
    order_new, desc_new = sections(new)
    if sorted(order_old) != sorted(order_new):
        return "sections %s only in 10.0, %s only in 10.2" % (
            sorted(set(order_old) - set(order_new)),
            sorted(set(order_new) - set(order_old)))
    differ = [k for k in order_old if desc_old[k] != desc_new[k]]
    if differ:
        return "described differently: %s" % differ
    if ([k for k in order_old if k[0] != MOVED] !=
            [k for k in order_new if k[0] != MOVED]):
        return "sections in another order"
    values_old, values_new = values(old), values(new)
    differ = ["%s.%s: %s on 10.0, %s on 10.2" % (k[0], k[2], values_old.get(k, "-"),
                                                 values_new.get(k, "-"))
              for k in sorted(set(values_old) | set(values_new))
              if (k[0], k[2]) not in UPSTREAM_VALUES and
              not stream.same(k, values_old.get(k), values_new.get(k))]
    if differ:
        return "%d fields differ: %s" % (len(differ), "; ".join(differ[:3]))
    return None


def values(data):
    """Every field's value, 10.2's name of the first feature word as 10.0's."""
    return {k[:2] + (k[2].replace(*FIRST_WORD),): v
            for k, v in stream.fields(data)[1].items()}


def main():
    qemu_10_0, qemu_10_2 = sys.argv[1:3]
    tap = Tap(len(MACHINES) + 1)
    for machine in MACHINES:
        old = stream.save(qemu_10_0, machine)
        diff = compare(old, stream.save(qemu_10_2, machine))
        tap.result(diff is None, "%s: 10.2 stream = 10.0 stream, %d "
                   "sections%s" % (machine, len(sections(old)[0]),
                                   "" if diff is None else " (%s)" % diff))
    # control: without the early section, the same machine type differs
    machine = MACHINES[1]
    diff = compare(stream.save(qemu_10_0, machine),
                   stream.save(qemu_10_2, machine,
                               ["-global", "migration.send-guest-abi=off"]))
    tap.result(diff is not None and "pci-guest-abi" in diff,
               "%s: control with send-guest-abi=off on 10.2 is told apart "
               "(%s)" % (machine, diff))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
