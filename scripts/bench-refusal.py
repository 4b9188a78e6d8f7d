#!/usr/bin/env python3
"""make bench (part): how long until an incompatible migration is refused,
against the guest's RAM size, and what the early check costs when the
migration is compatible.

Usage: scripts/bench-refusal.py [rounds]     (BUILD names the build dir)

The VM: pc-i440fx-7.2 with a transitional virtio-blk-pci whose BAR0 sits
at 0xffc0 as a Linux guest puts it, RAM filled with a non-zero byte, over
loopback TCP at a limited bandwidth, with the return path on so that the
source hears about a failed load.  The destination offers discard and
write-zeroes, the source does not: the incident.

- stock 10.0.2 -> stock 10.0.2 refuses when device state loads, after RAM;
- patched -> patched with -global migration.send-guest-abi=on refuses in
  the setup phase, before RAM.

Writes docs/bench-refusal.csv and docs/bench-refusal.svg, prints the
medians and ratios.
"""
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestabi  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("BUILD", os.path.join(TOP, "build")), "bin")
MACHINE = "pc-i440fx-7.2"
SIZES_MIB = [512, 2048]
BANDWIDTH = 256 << 20           # bytes per second
CHECK = ["-global", "migration.send-guest-abi=on"]
BUILDS = {
    "stock 10.0.2": ("qemu-stock-10.0.2", []),
    "patched with the check": ("qemu-patched", CHECK),
}
# for the cost of the check: the same binary without it, too
SUCCESS_BUILDS = dict(BUILDS, **{"patched without": ("qemu-patched", [])})
DISK_SLOT = 0xb


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm(qemu, ram_mib, props, extra, incoming=False):
    args = ["-machine", MACHINE, "-m", str(ram_mib), "-nodefaults",
            "-drive", "if=none,id=d1,driver=null-co,size=1M",
            "-device", "virtio-blk-pci,id=disk1,drive=d1,addr=0x%x%s"
            % (DISK_SLOT, props)] + extra
    if incoming:
        args += ["-incoming", "defer"]
    return guestabi.Vm(os.path.join(BIN, qemu), args)


def fill(src, ram_mib):
    """Non-zero RAM, so that every page is really sent."""
    chunk = 256 << 20
    for addr in range(1 << 20, (ram_mib << 20) - chunk + 1, chunk):
        src.qt.cmd("memset 0x%x 0x%x 0x5a" % (addr, chunk))


def migrate(qemu, extra, ram_mib, src_props, bandwidth):
    """Seconds from 'migrate' until the source's migration ends, its status,
    and the source's query-migrate."""
    port = free_port()
    caps = [{"capability": "return-path", "state": True}]
    with vm(qemu, ram_mib, src_props, extra) as src, \
            vm(qemu, ram_mib, "", extra, incoming=True) as dst:
        fill(src, ram_mib)
        src.qt.writel(0, DISK_SLOT << 3, 0x10, 0xffc1)  # BAR0, like Linux
        for side in (src, dst):
            side.qmp.cmd("migrate-set-capabilities", capabilities=caps)
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": bandwidth})
        dst.qmp.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        t0 = time.monotonic()
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        info = src.qmp.wait_migration(600)
        return time.monotonic() - t0, info


def section_bytes():
    """Size of the early section in a saved stream, and the device count."""
    args = ["-machine", MACHINE, "-m", "128", "-nodefaults"] + CHECK
    path = "/tmp/abiguard-bench-section.%d" % os.getpid()
    with guestabi.Vm(os.path.join(BIN, "qemu-patched"),
                     guestabi.device_set_args(MACHINE, False, args)[0]) as v:
        devices = len(v.qmp.cmd("x-query-guest-abi"))
        v.qmp.cmd("migrate", uri="exec:cat > " + path)
        v.qmp.wait_migration(600)
    with open(path, "rb") as f:
        stream = f.read()
    os.unlink(path)
    start = stream.index(b"\x0dpci-guest-abi") - 5
    footer = b"\x7e" + stream[start + 1:start + 5]
    end = stream.index(footer, start) + len(footer)
    return end - start, devices


def svg(results, path):
    """Bars: seconds to refusal per RAM size, one colour per build."""
    colours = ["#c0392b", "#2e86c1"]
    top = max(t for r in results.values() for t in r.values())
    w, h, left, base = 560, 300, 60, 250
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (w, h),
           '<text x="%d" y="20">Time from migrate to refusal (s), '
           'by guest RAM</text>' % left,
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
           % (left, base, w - 20, base)]
    for i, size in enumerate(SIZES_MIB):
        x0 = left + 20 + i * 240
        out.append('<text x="%d" y="%d">%d MiB</text>' % (x0 + 50, base + 18,
                                                          size))
        for j, (build, colour) in enumerate(zip(BUILDS, colours)):
            t = results[build][size]
            bh = max(1, int(200 * t / top))
            x = x0 + j * 80
            out.append('<rect x="%d" y="%d" width="60" height="%d" fill="%s"/>'
                       % (x, base - bh, bh, colour))
            out.append('<text x="%d" y="%d">%.2f</text>' % (x + 10,
                                                            base - bh - 4, t))
    for j, (build, colour) in enumerate(zip(BUILDS, colours)):
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                   '<text x="%d" y="%d">%s</text>'
                   % (left + j * 220, h - 20, colour, left + 16 + j * 220,
                      h - 10, build))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rows, results = [], {b: {} for b in BUILDS}
    print("time to refusal, %d MiB/s, %d rounds" % (BANDWIDTH >> 20, rounds))
    for size in SIZES_MIB:
        times = {b: [] for b in BUILDS}
        for r in range(rounds):
            for build, (qemu, extra) in BUILDS.items():  # alternating
                secs, info = migrate(qemu, extra, size,
                                     ",discard=off,write-zeroes=off",
                                     BANDWIDTH)
                if info["status"] != "failed":
                    raise RuntimeError("%s, %d MiB: not refused: %s"
                                       % (build, size, info["status"]))
                times[build].append(secs)
                rows.append("refusal,%s,%d,%d,%.3f" % (build, size, r,
                                                        secs))
        for build in BUILDS:
            results[build][size] = statistics.median(times[build])
        print("  %5d MiB: stock %.2f s, patched %.3f s, ratio %.0f" % (
            size, results["stock 10.0.2"][size],
            results["patched with the check"][size],
            results["stock 10.0.2"][size] /
            results["patched with the check"][size]))

    # The cost when nothing differs: same VM on both sides, full speed.
    # Total time only: the VM is paused, so downtime means nothing here
    # (bench-migration.py measures it with a running guest).
    size = SIZES_MIB[-1]
    total = {b: [] for b in SUCCESS_BUILDS}
    for r in range(rounds):
        for build, (qemu, extra) in SUCCESS_BUILDS.items():
            secs, info = migrate(qemu, extra, size, "", 8 << 30)
            assert info["status"] == "completed", info
            total[build].append(info["total-time"])
            rows.append("success,%s,%d,%d,%.3f" % (build, size, r,
                                                    info["total-time"] / 1000))
    nbytes, devices = section_bytes()
    print("compatible, %d MiB, full speed (medians):" % size)
    with_check = statistics.median(total["patched with the check"])
    for build in SUCCESS_BUILDS:
        print("  %-24s total %5.0f ms (with the check / this: %.2f)"
              % (build, statistics.median(total[build]),
                 with_check / statistics.median(total[build])))
    print("section: %d bytes for %d PCI devices, %.0f bytes per device"
          % (nbytes, devices, nbytes / devices))
    rows.append("section bytes for %d devices,patched,,,%d" % (devices,
                                                                nbytes))
    with open(os.path.join(TOP, "docs", "bench-refusal.csv"), "w") as f:
        f.write("kind,build,ram_mib,round,value\n")
        f.write("\n".join(rows) + "\n")
    svg(results, os.path.join(TOP, "docs", "bench-refusal.svg"))


if __name__ == "__main__":
    main()
