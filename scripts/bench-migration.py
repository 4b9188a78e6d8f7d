#!/usr/bin/python3
"""make bench (part): total migration time and downtime of the test guest
under its write workload, old host (Debian QEMU 7.2) -> new host (patched)
against stock 10.0.2 -> stock 10.0.2, side by side, alternating, in the
network namespaces of scripts/guesthosts.py. Writes
docs/bench-migration.csv and prints medians and ratios.

Usage: BUILD=build scripts/bench-migration.py [rounds]
"""
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guesthosts as gh  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ["BUILD"]

PAIRS = {
    "stock 7.2 -> patched": ("qemu-stock-7.2", "qemu-patched"),
    "stock 10.0.2 -> stock 10.0.2": ("qemu-stock-10.0.2", "qemu-stock-10.0.2"),
}


def one(hosts, src, dst):
    with tempfile.TemporaryDirectory(prefix="abiguard-bench-") as wd:
        run = gh.Run(hosts, wd, os.path.join(BUILD, "bin", src),
                     "pc-i440fx-7.2",
                     "virtio-blk-pci,id=disk1,drive=d1,addr=0xb")
        try:
            run.start_writer()
            run.start_new(os.path.join(BUILD, "bin", dst))
            run.migrate()
            status = run.old.qmp.wait_migration()["status"]
            assert status == "completed", status
            info = run.old.qmp.cmd("query-migrate")
            return info["total-time"], info["downtime"]
        finally:
            run.close()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    os.environ["GUEST_DIR"] = os.path.join(BUILD, "guest")
    rows = []
    with gh.TwoHosts() as hosts:
        for r in range(rounds):
            for name, (src, dst) in PAIRS.items():
                total, down = one(hosts, src, dst)
                rows.append((name, r, total, down))
                print("%-30s round %d: total %d ms, downtime %d ms"
                      % (name, r, total, down), flush=True)
    with open(os.path.join(TOP, "docs", "bench-migration.csv"), "w") as f:
        f.write("pair,round,total_ms,downtime_ms\n")
        for row in rows:
            f.write("%s,%d,%d,%d\n" % row)
    med = {}
    for name in PAIRS:
        med[name] = (statistics.median(t for n, _, t, _ in rows if n == name),
                     statistics.median(d for n, _, _, d in rows if n == name))
        print("%-30s median total %.0f ms, downtime %.0f ms"
              % (name, med[name][0], med[name][1]))
    a, b = med["stock 7.2 -> patched"], med["stock 10.0.2 -> stock 10.0.2"]
    print("ratio old->new / stock->stock: total %.2f, downtime %.2f"
          % (a[0] / b[0], a[1] / b[1]))


if __name__ == "__main__":
    main()
