#!/usr/bin/env python3
"""I1 for the migration stream: on stock machine types, the patched build
writes the stream Debian's unpatched 10.0.2 writes.

Usage: migration-stream-compare.py QEMU_STOCK QEMU_PATCHED

Both QEMUs save the same paused VM (the goldens' device set) with
"migrate exec:cat > FILE".  The streams must have the same vmdesc (the
JSON at the end that names every section and every field with its size),
the same sections in the same order, and every field the same value, as
upstream's scripts/analyze-migration.py reads them, except the fields of
MAY_DIFFER, each with its reason.  Two things are not compared: section
ids (the patched build registers the guest-ABI section also where it does
not send it, so later sections' ids are one higher; a destination finds a
section by name and instance, never by id), and where the RAM pages fall
in the stream (the source's iterations end on a clock, so a save may split
them in two one time and not the next).  A control run turns the early
guest-ABI section on by -global and must be told apart.  Prints TAP.
"""
import json
import os
import re
import subprocess
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


# (section, field) -> why its value may differ between two saves, and
# which of its bytes may (None: all of it)
CLOCK = "the RTC's wall-clock time at the save"
MAY_DIFFER = {
    ("mc146818rtc", "base_rtc"): (CLOCK, None),
    ("mc146818rtc", "last_update"): (CLOCK, None),
    ("mc146818rtc", "update_timer"): (CLOCK, None),
    ("mc146818rtc", "next_alarm_time"): (CLOCK, None),
    # seconds, minutes, hours, weekday, day, month, year, century, and
    # register C, whose update-ended flag the RTC sets once a second: a
    # save a second or more after the start has it, an earlier one not
    ("mc146818rtc", "cmos_data"): (CLOCK, {0, 2, 4, 6, 7, 8, 9, 0x0c, 0x32}),
}
ANALYZE = os.path.join(os.environ.get("BUILD", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")),
    "qemu", "scripts", "analyze-migration.py")


def vmdesc(stream):
    """The JSON description at the end of a stream."""
    return json.loads(stream[guestabi.vmdesc_offset(stream) + 5:])


def fields(stream):
    """The sections in stream order, as (name, n) for the n-th of that
    name, and every field's value: {(name, n, path): value}, as upstream's
    analyze-migration.py reads the stream."""
    with tempfile.NamedTemporaryFile(prefix="abiguard-stream-") as f:
        f.write(stream)
        f.flush()
        dump = json.loads(subprocess.run(
            ["/usr/bin/python3", ANALYZE, "-f", f.name], check=True,
            capture_output=True, text=True).stdout)
    order, values, seen = [], {}, {}

    def flatten(section, path, value):
        if isinstance(value, dict):
            for k, v in value.items():
                flatten(section, path + (k,), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                flatten(section, path + ("[%d]" % i,), v)
        else:
            values[section + ("/".join(path),)] = value
    for key, state in dump.items():
        name = re.sub(r" \(\d+\)$", "", key)      # the section id
        seen[name] = seen.get(name, -1) + 1
        order.append((name, seen[name]))
        flatten((name, seen[name]), (), state)
    return order, values


def same(key, a, b):
    """Whether field @key (section, n, path) has the same value in both
    streams, but for what MAY_DIFFER lets differ."""
    if a == b:
        return True
    allowed = MAY_DIFFER.get((key[0], key[2].split("/")[0]))
    if allowed is None or a is None or b is None:
        return False
    if allowed[1] is None:
        return True
    a, b = a.split(), b.split()
    return len(a) == len(b) and all(
        x == y for i, (x, y) in enumerate(zip(a, b)) if i not in allowed[1])


def compare(a, b):
    """None if the streams match, or what differs."""
    if vmdesc(a) != vmdesc(b):
        return "vmdesc differs"
    order_a, values_a = fields(a)
    order_b, values_b = fields(b)
    if order_a != order_b:
        return "sections %s, then %s" % (
            [s[0] for s in order_a if s not in order_b] or "in another order",
            [s[0] for s in order_b if s not in order_a])
    differ = ["%s.%s: %s, then %s" % (k[0], k[2], values_a.get(k, "-"),
                                      values_b.get(k, "-"))
              for k in sorted(set(values_a) | set(values_b))
              if not same(k, values_a.get(k), values_b.get(k))]
    if differ:
        return "%d fields differ: %s" % (len(differ), "; ".join(differ[:3]))
    return None


def main():
    stock, patched = sys.argv[1:3]
    tap = Tap(len(MACHINES) + 2)
    for machine in MACHINES:
        a = save(stock, machine)
        diff = compare(a, save(patched, machine))
        tap.result(diff is None, "%s: patched stream = stock 10.0.2 stream, "
                   "%d fields%s" % (machine, len(fields(a)[1]),
                                    "" if diff is None else " (%s)" % diff))
    # control: one device property changed by hand must show as a value
    machine = "pc-i440fx-7.2"
    diff = compare(save(stock, machine),
                   save(patched, machine, ["-global", "e1000.mac=52:54:00:12:34:99"]))
    tap.result(diff is not None and "e1000" in diff and "fields differ" in diff,
               "%s: control with another e1000 MAC is told apart by value (%s)"
               % (machine, diff))
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
