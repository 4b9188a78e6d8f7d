#!/usr/bin/python3
"""make bench: virtio-blk secure erase against write zeroes (no unmap).

Side by side in one run, on a raw file and on qcow2: a 1 GiB secure erase
and a 1 GiB write zeroes without the unmap flag, each issued by a minimal
legacy virtio driver that this script plays through QEMU's qtest socket,
on the patched QEMU with the default machine type (pc, which offers secure
erase). Before each request the image is refilled with data, so that both
requests work on the same allocated, non-zero range. Prints the timings,
the ratio per format, and writes them to docs/bench-secure-erase.csv.

Usage: BUILD=build scripts/bench-secure-erase.py [rounds]
"""

import os
import struct
import subprocess
import sys
import tempfile
import time

import guestabi

BUILD = os.environ["BUILD"]
QEMU = os.path.join(BUILD, "qemu-build", "qemu-system-x86_64")
QEMU_IMG = os.path.join(BUILD, "qemu-build", "qemu-img")
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 1 << 30
SLOT = 0xB
BAR0 = 0xC000
VRING = 0x100000            # guest-physical addresses used by the driver
REQ = 0x200000
T_WRITE_ZEROES, T_SECURE_ERASE = 13, 14
F_WRITE_ZEROES, F_SECURE_ERASE = 1 << 14, 1 << 16


def start_driver(q):
    """Legacy virtio-pci: BAR0, features, one queue, DRIVER_OK."""
    q.writel(0, SLOT << 3, 0x10, BAR0)
    q.writel(0, SLOT << 3, 0x04, 0x5)               # I/O + bus master
    q.cmd("outb 0x%x 0" % (BAR0 + 18))              # reset
    q.cmd("outb 0x%x 3" % (BAR0 + 18))              # ACK | DRIVER
    host = q.cmd("inl 0x%x" % BAR0)
    assert host & F_SECURE_ERASE, "secure erase not offered"
    q.cmd("outl 0x%x 0x%x" % (BAR0 + 4, host & (F_WRITE_ZEROES | F_SECURE_ERASE)))
    q.cmd("outw 0x%x 0" % (BAR0 + 14))              # queue 0
    qsz = q.cmd("inw 0x%x" % (BAR0 + 12))
    q.write(VRING, bytes(0x4000))
    q.cmd("outl 0x%x 0x%x" % (BAR0 + 8, VRING >> 12))
    q.cmd("outb 0x%x 7" % (BAR0 + 18))              # | DRIVER_OK
    avail = VRING + 16 * qsz
    used = (avail + 6 + 2 * qsz + 4095) & ~4095
    return qsz, avail, used


def request(q, ring, n, rtype, sectors):
    """Submit request number n (0-based); return (status, seconds)."""
    qsz, avail, used = ring
    hdr = struct.pack("<IIQ", rtype, 0, 0)
    seg = struct.pack("<QII", 0, sectors, 0)
    q.write(REQ, hdr + seg + b"\xff")
    desc = struct.pack("<QIHH", REQ, 16, 1, 1) + \
        struct.pack("<QIHH", REQ + 16, 16, 1, 2) + \
        struct.pack("<QIHH", REQ + 32, 1, 2, 0)
    q.write(VRING, desc)
    q.cmd("writew 0x%x 0" % (avail + 4 + 2 * (n % qsz)))
    q.cmd("writew 0x%x 0x%x" % (avail + 2, n + 1))
    start = time.monotonic()
    q.cmd("outw 0x%x 0" % (BAR0 + 16))              # kick queue 0
    while q.cmd("readw 0x%x" % (used + 2)) != n + 1:
        time.sleep(0.001)
    elapsed = time.monotonic() - start
    return q.cmd("readb 0x%x" % (REQ + 32)), elapsed


def refill(fmt, pattern, img):
    if fmt == "raw":
        subprocess.run(["cp", "--sparse=never", pattern, img], check=True)
    else:
        subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", "qcow2",
                        pattern, img], check=True)


def measure(fmt, rtype, pattern, workdir):
    img = os.path.join(workdir, "disk." + fmt)
    refill(fmt, pattern, img)
    subprocess.run(["sync"], check=True)
    qpath = os.path.join(workdir, "qtest.sock")
    log = open(os.path.join(workdir, "qemu.log"), "w")
    proc = guestabi.launch([
        QEMU, "-machine", "pc", "-accel", "qtest", "-nodefaults",
        "-display", "none", "-qtest-log", "/dev/null",
        "-qtest", "unix:%s,server=on,wait=on" % qpath,
        "-drive", "if=none,id=d0,format=%s,file=%s"
        % (fmt, img),
        "-device", "virtio-blk-pci,drive=d0,addr=0x%x" % SLOT], log)
    try:
        q = guestabi.Qtest(qpath)
        ring = start_driver(q)
        status, secs = request(q, ring, 0, rtype, SIZE // 512)
        assert status == 0, "request failed with status %d" % status
        return secs
    finally:
        proc.kill()
        proc.wait()
        log.close()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rows = []
    with tempfile.TemporaryDirectory(prefix="abiguard-bench-",
                                     dir="/var/tmp") as workdir:
        pattern = os.path.join(workdir, "pattern.raw")
        with open(pattern, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(SIZE >> 20):
                f.write(block)
        for fmt in ("raw", "qcow2"):
            for r in range(rounds):
                # interleaved, so that both see the same machine state
                for name, rtype in (("secure-erase", T_SECURE_ERASE),
                                    ("write-zeroes", T_WRITE_ZEROES)):
                    secs = measure(fmt, rtype, pattern, workdir)
                    rows.append((fmt, name, r, secs))
                    print("%-5s %-12s round %d: %.3f s" % (fmt, name, r, secs),
                          flush=True)
    out = os.path.join(TOP, "docs", "bench-secure-erase.csv")
    with open(out, "w") as f:
        f.write("format,request,round,seconds\n")
        for row in rows:
            f.write("%s,%s,%d,%.4f\n" % row)
    worst = 0
    for fmt in ("raw", "qcow2"):
        med = {}
        for name in ("secure-erase", "write-zeroes"):
            t = sorted(s for f_, n, _, s in rows if f_ == fmt and n == name)
            med[name] = t[len(t) // 2]
        ratio = med["secure-erase"] / med["write-zeroes"]
        worst = max(worst, ratio)
        print("%-5s 1 GiB: secure erase %.3f s, write zeroes %.3f s (medians "
              "of %d): ratio %.2f" % (fmt, med["secure-erase"],
                                      med["write-zeroes"], rounds, ratio))
    print("wrote", out)
    return 0 if worst <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
