#!/usr/bin/python3
"""make bench (part): secure erase against write zeroes, issued from inside
the Linux test guest on the patched build's abiguard machine type.

util-linux's blkdiscard in the guest issues BLKSECDISCARD (-s, virtio-blk
SECURE_ERASE) and BLKZEROOUT (-z, WRITE_ZEROES without unmap) over the same
range, alternately, each REPEAT times per round; the guest times the loop
from /proc/uptime.  Writes docs/bench-erase-in-guest.csv, prints medians
and the ratio.

Usage: BUILD=build scripts/bench-erase-in-guest.py [rounds]
"""
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guesthosts as gh  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ["BUILD"]

RANGE_MIB = 64
REPEAT = 100
OPS = {"secure erase (blkdiscard -s)": "-s",
       "write zeroes (blkdiscard -z)": "-z"}


def timed(console, flag):
    """Seconds the guest takes for REPEAT requests over RANGE_MIB."""
    m = console.run(
        "s=$(cut -d' ' -f1 /proc/uptime); i=0; while [ $i -lt %d ]; do "
        "/opt/util-linux/blkdiscard -f %s -l %dM /dev/vda || break; "
        "i=$((i + 1)); done; e=$(cut -d' ' -f1 /proc/uptime); "
        "echo TIMED $i $s $e" % (REPEAT, flag, RANGE_MIB),
        r"TIMED (\d+) ([\d.]+) ([\d.]+)\r?\n", 300)
    if int(m.group(1)) != REPEAT:
        raise RuntimeError("blkdiscard %s failed in the guest" % flag)
    return float(m.group(3)) - float(m.group(2))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    os.environ["GUEST_DIR"] = os.path.join(BUILD, "guest")
    rows = []
    with gh.TwoHosts() as hosts, \
            tempfile.TemporaryDirectory(prefix="abiguard-bench-") as wd:
        run = gh.Run(hosts, wd, os.path.join(BUILD, "bin", "qemu-patched"),
                     "pc-i440fx-10.0-abiguard1",
                     "virtio-blk-pci,id=disk1,drive=d1,addr=0xb",
                     disk_size=2 * RANGE_MIB << 20)
        try:
            for r in range(rounds):
                for name, flag in OPS.items():
                    secs = timed(run.old.console, flag)
                    mib_s = REPEAT * RANGE_MIB / secs if secs else 0
                    rows.append((name, r, secs, mib_s))
                    print("%-30s round %d: %.2f s, %.0f MiB/s"
                          % (name, r, secs, mib_s), flush=True)
        finally:
            run.close()
    with open(os.path.join(TOP, "docs", "bench-erase-in-guest.csv"), "w") as f:
        f.write("operation,round,seconds,mib_per_s\n")
        for row in rows:
            f.write("%s,%d,%.2f,%.0f\n" % row)
    med = {name: statistics.median(s for n, _, s, _ in rows if n == name)
           for name in OPS}
    for name in OPS:
        print("%-30s median %.2f s for %d x %d MiB" % (name, med[name],
                                                      REPEAT, RANGE_MIB))
    se, wz = med.values()
    print("throughput ratio secure erase / write zeroes: %.2f" % (wz / se))


if __name__ == "__main__":
    main()
