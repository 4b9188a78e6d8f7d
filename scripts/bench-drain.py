#!/usr/bin/python3
"""make bench-drain: abiguard drain against virsh migrate by hand, and the
plan alone at fleet scale, on a fleet of its own (scripts/fleet-up.sh).

1. Eight idle domains on the old host (Debian 12, QEMU 7.2), four of them
   started by the incident's QEMU (no discard, no write-zeroes), so that
   they move only adapted.  Moved three ways, each from a fresh start:
   - by hand, as today: virsh migrate --live of each domain, one by one,
     to the patched 10.0.2 host, with the destination XML that carries
     the remedy already written (the time to write it is not counted);
   - abiguard drain --parallel 1, and --parallel 2, to the 10.0.2 and
     10.2.2 hosts.
2. The plan alone: 100 idle domains of four device configurations on the
   old host, abiguard drain --dry-run against both destinations.

Writes docs/bench-drain.csv and docs/bench-drain.svg and prints the table
for docs/bench-drain.md.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import libvirt

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))
FLEET = os.path.join(BUILD, "fleet")
sys.path.insert(0, os.path.join(TOP, "tools"))
from abiguard import preflight  # noqa: E402

NODISCARD = ("-global virtio-blk-pci.discard=off "
             "-global virtio-blk-pci.write-zeroes=off")
SHAPES = [
    "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
    "<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>",
    "<interface type='user'><model type='virtio'/><rom enabled='no'/>"
    "</interface>",
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend>"
    "</rng><memballoon model='virtio'/>",
    "<controller type='virtio-serial'/>",
]


def drain(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(TOP, "tools"))
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/python3", "-m", "abiguard", "drain",
                        "--json", "--unsafe"] + list(args),
                       stdout=subprocess.PIPE, text=True, env=env)
    return time.monotonic() - t0, p.returncode, json.loads(p.stdout)


def flavours():
    for host, extra in (("old", NODISCARD), ("v10.0", ""), ("v10.2", "")):
        path = os.path.join(FLEET, host, "bin", "qemu-nodiscard")
        with open(path, "w") as f:
            f.write('#!/bin/sh\nexec %s/bin/qemu-system-x86_64 %s "$@"\n'
                    % (FLEET, extra))
        os.chmod(path, 0o755)


def define(conn, work, name, emulator, devices, memory=128):
    """A persistent domain, started: idle firmware, no boot device."""
    disk = os.path.join(work, name + ".raw")
    with open(disk, "w") as f:
        f.truncate(16 << 20)
    conn.defineXML(
        "<domain type='qemu'><name>%s</name>"
        "<memory unit='MiB'>%d</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>"
        "<devices><emulator>%s/bin/%s</emulator>%s</devices></domain>"
        % (name, memory, FLEET, emulator, devices.format(disk=disk))).create()


def clear(uris):
    for uri in uris.values():
        conn = libvirt.open(uri)
        for dom in conn.listAllDomains():
            if dom.isActive():
                dom.destroy()
            dom.undefine()


def settle(seconds=60):
    """Let freshly started VMs finish their firmware: a fleet's VMs are
    not all booting at once."""
    time.sleep(seconds)


def eight(uris, work):
    """b00-b07: a disk each, a virtio NIC from b04 on; the odd ones on
    the incident's QEMU."""
    conn = libvirt.open(uris["old"])
    for i in range(8):
        define(conn, work, "b%02d" % i,
               "qemu-nodiscard" if i % 2 else "qemu-system-x86_64",
               SHAPES[0] + (SHAPES[1] if i >= 4 else ""))


def by_hand(uris, work):
    """virsh migrate, one by one, the remedy written into the XML."""
    conn = libvirt.open(uris["old"])
    dst = libvirt.open(uris["v10.0"])
    files = {}
    for dom in sorted(conn.listAllDomains(), key=lambda d: d.name()):
        res = preflight.check(dst, dom, None)
        path = os.path.join(work, dom.name() + "-dst.xml")
        with open(path, "w") as f:
            f.write(preflight.apply_remedy(
                preflight.migratable_xml(dom), res["changes"],
                dom.XMLDesc(0)))
        files[dom.name()] = path
    t0 = time.monotonic()
    failed = 0
    for name, path in sorted(files.items()):
        p = subprocess.run(["virsh", "-q", "-c", uris["old"], "migrate",
                            "--live", "--unsafe", "--persistent",
                            "--undefinesource", "--xml", path, name,
                            uris["v10.0"]], stdout=subprocess.DEVNULL)
        failed += p.returncode != 0
    return time.monotonic() - t0, failed


def svg(rows, path):
    """Horizontal bars: seconds per way of moving the eight domains, the
    planning part in a darker shade."""
    w, left, bar = 640, 210, 26
    top = max(r["seconds"] for r in rows)
    h = 60 + len(rows) * (bar + 14) + 30
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (w, h),
           '<text x="10" y="20">Emptying the old host of 8 domains: wall '
           'time (s); dark: the plan</text>']
    for i, r in enumerate(rows):
        y = 40 + i * (bar + 14)
        width = int((w - left - 80) * r["seconds"] / top)
        plan = int((w - left - 80) * r["plan"] / top)
        out.append('<text x="10" y="%d">%s</text>' % (y + 17, r["way"]))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" '
                   'fill="#2e86c1"/>' % (left, y, width, bar))
        if plan:
            out.append('<rect x="%d" y="%d" width="%d" height="%d" '
                       'fill="#1b4f72"/>' % (left, y, plan, bar))
        out.append('<text x="%d" y="%d">%.1f</text>'
                   % (left + width + 6, y + 17, r["seconds"]))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    subprocess.run([os.path.join(TOP, "scripts", "fleet-up.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        uris = dict(line.split() for line in open(os.path.join(FLEET,
                                                               "uris")))
        flavours()
        work = tempfile.mkdtemp(dir=FLEET, prefix="bench-")
        rows = []
        eight(uris, work)
        settle(10)
        seconds, failed = by_hand(uris, work)
        rows.append({"way": "virsh migrate by hand", "seconds": seconds,
                     "plan": 0, "failed": failed, "changed": "-"})
        for parallel in (1, 2):
            clear(uris)
            eight(uris, work)
            settle(10)
            seconds, rc, out = drain("--from", uris["old"], "--to",
                                     uris["v10.0"], "--to", uris["v10.2"],
                                     "--all", "--parallel", str(parallel))
            doms = out["domains"]
            rows.append({"way": "abiguard drain --parallel %d" % parallel,
                         "seconds": seconds, "plan": out["plan_seconds"],
                         "failed": sum(d["result"] != "moved" for d in doms),
                         "changed": sum(d.get("fingerprint") != "same"
                                        for d in doms)})
        clear(uris)
        old = libvirt.open(uris["old"])
        for i in range(100):
            define(old, work, "s%03d" % i, "qemu-system-x86_64",
                   SHAPES[i % 4], memory=32)
        settle()
        seconds, rc, out = drain("--from", uris["old"], "--to", uris["v10.0"],
                                 "--to", uris["v10.2"], "--all", "--dry-run")
        planned = sum(p["action"] == "move" for p in out["plan"])
        clear(uris)
    finally:
        subprocess.run([os.path.join(TOP, "scripts", "fleet-down.sh")])
    with open(os.path.join(TOP, "docs", "bench-drain.csv"), "w") as f:
        f.write("way,seconds,plan_seconds,failed,changed\n")
        for r in rows:
            f.write("%s,%.2f,%.2f,%s,%s\n" % (r["way"], r["seconds"],
                                              r["plan"], r["failed"],
                                              r["changed"]))
        f.write("plan of 100 domains (4 configurations) against 2 "
                "destinations,%.2f,%.2f,-,-\n" % (seconds,
                                                 out["plan_seconds"]))
    svg(rows, os.path.join(TOP, "docs", "bench-drain.svg"))
    print("| way | wall time | plan | plan share | per domain and "
          "destination | failed | fingerprint changed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        share = "%.0f%%" % (100 * r["plan"] / r["seconds"]) if r["plan"] \
            else "-"
        per = "%.2f s" % (r["plan"] / 16) if r["plan"] else "-"
        print("| %s | %.1f s | %s | %s | %s | %s | %s |" % (
            r["way"], r["seconds"], "%.1f s" % r["plan"] if r["plan"] else "-",
            share, per, r["failed"], r["changed"]))
    t = out["plan_timing"]
    print("\nThe plan of 100 domains: fingerprints read in %.1f s, verdicts "
          "asked in %.1f s of %d throwaway copies, remedies checked in %.1f s"
          % (t["read_seconds"], t["ask_seconds"], t["copies"],
             t["remedy_seconds"]))
    print("| plan alone: 100 domains, 2 destinations | %.1f s "
          "| %.1f s | - | %.3f s | %d of 100 planned to move | - |"
          % (seconds, out["plan_seconds"], out["plan_seconds"] / 200,
             planned))
    return 0


if __name__ == "__main__":
    sys.exit(main())
