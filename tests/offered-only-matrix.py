#!/usr/bin/env python3
"""I6, measured: differences in the features a device offers that its guest
did not negotiate do not refuse a migration that stock QEMU performs.

Usage: offered-only-matrix.py QEMU_STOCK_10_0_2 QEMU_PATCHED

For each difference (a property set on the source only, or a backend that
offers less), migrates a paused VM, whose guest negotiated nothing:
- stock 10.0.2 -> stock 10.0.2 and stock 10.0.2 -> patched on pc-i440fx-7.2,
- patched -> patched on pc-i440fx-7.2 and on both abiguard machine types,
  where the early guest-ABI check runs.
The patched destination must accept exactly when stock does, and where the
early check ran and the migration completed, list the difference as
compatible.  Prints TAP, and the
table as comments (docs/offered-only-matrix.md).
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "scripts"))
import guestabi  # noqa: E402
from tap import Tap  # noqa: E402

STOCK_MACHINE = "pc-i440fx-7.2"
ABIGUARD = ["pc-i440fx-10.0-abiguard1", "pc-q35-10.0-abiguard1"]
BLK = "-drive if=none,id=d1,driver=null-co,size=1M " \
      "-device virtio-blk-pci,id=disk1,drive=d1,addr=0x3"
NET = "-netdev user,id=nd0 -device virtio-net-pci,id=net1,netdev=nd0,addr=0x3"
TAP = "-netdev tap,id=nd0,script=no,downscript=no " \
      "-device virtio-net-pci,id=net1,netdev=nd0,addr=0x3"
BALLOON = "-device virtio-balloon-pci,id=balloon1,addr=0x3"
SERIAL = "-device virtio-serial-pci,id=serial1,addr=0x3"
NO_CTRL_VQ = ",ctrl_vq=off,ctrl_rx=off,ctrl_vlan=off,ctrl_rx_extra=off," \
    "ctrl_mac_addr=off,guest_announce=off,ctrl_guest_offloads=off"

# What the patched destination says when a source's tap meets user networking
REFUSAL = "here netdev 'nd0' (user) has no vnet_hdr"

FEATURES = ["virtio host features"]
QUEUES = ["virtio queues"]

# name, source's devices, destination's devices, what stock 10.0.2 ->
# stock 10.0.2 does: the reference every patched run must match, itself
# asserted (stock fails the tap row on load: user networking has no
# vnet_hdr for the offloads the tap offered), and the differences an
# abiguard destination lists as accepted when it completes.  The queue
# rows: queues that a feature (free page reporting) or a property
# (max_ports, which decides VIRTIO_CONSOLE_F_MULTIPORT) adds, which the
# guest never set up.
DIFFERENCES = [
    ("virtio-blk event_idx=off", BLK + ",event_idx=off", BLK, "completed",
     FEATURES),
    ("virtio-blk indirect_desc=off", BLK + ",indirect_desc=off", BLK,
     "completed", FEATURES),
    ("virtio-blk notify_on_empty=off", BLK + ",notify_on_empty=off", BLK,
     "completed", FEATURES),
    ("virtio-blk discard=off", BLK + ",discard=off", BLK, "completed",
     FEATURES),
    ("virtio-net mrg_rxbuf=off", NET + ",mrg_rxbuf=off", NET, "completed",
     FEATURES),
    ("virtio-net ctrl_vlan=off", NET + ",ctrl_vlan=off", NET, "completed",
     FEATURES),
    ("virtio-net ctrl_rx=off", NET + ",ctrl_rx=off", NET, "completed",
     FEATURES),
    ("virtio-net ctrl_vq=off, and what needs it", NET + NO_CTRL_VQ, NET,
     "completed", FEATURES),
    ("virtio-net on a tap, then on user networking", TAP, NET, "failed",
     FEATURES),
    ("virtio-balloon deflate-on-oom=on", BALLOON + ",deflate-on-oom=on",
     BALLOON, "completed", FEATURES),
    ("virtio-balloon free-page-reporting=on",
     BALLOON + ",free-page-reporting=on", BALLOON, "completed",
     FEATURES + QUEUES),
    ("virtio-balloon free-page-reporting=on, here only", BALLOON,
     BALLOON + ",free-page-reporting=on", "completed", FEATURES + QUEUES),
    ("virtio-serial max_ports=1", SERIAL + ",max_ports=1", SERIAL,
     "completed", FEATURES + QUEUES),
    ("virtio-serial max_ports=1, here only", SERIAL, SERIAL + ",max_ports=1",
     "completed", FEATURES + QUEUES),
]


def migrate(src_qemu, dst_qemu, machine, src_devs, dst_devs, workdir,
            patched_dst):
    """Status of the migration, the fields of the differences a patched
    destination's early check accepted (x-query-guest-abi-check), and
    its error."""
    common = ["-machine", machine, "-m", "64", "-nodefaults"]
    uri = "unix:%s/mig.sock" % workdir
    with guestabi.Vm(src_qemu, common + src_devs.split(), qtest=False) as src, \
            guestabi.Vm(dst_qemu, common + dst_devs.split() +
                        ["-incoming", "defer"], qtest=False) as dst:
        dst.qmp.cmd("migrate-incoming", uri=uri, **{"exit-on-error": False})
        src.qmp.cmd("migrate", uri=uri)
        info = dst.qmp.wait_migration(20)
        accepted = []
        if patched_dst:
            check = dst.qmp.cmd("x-query-guest-abi-check")
            accepted = [d["field"] for dev in check["compatible"]
                        for d in dev["differences"]]
        return info["status"], accepted, info.get("error-desc", "")


def main(stock, patched):
    tap = Tap()
    rows = []
    with tempfile.TemporaryDirectory(prefix="abiguard-offered-") as workdir:
        for name, src_devs, dst_devs, stock_does, fields in DIFFERENCES:
            runs = [("stock -> stock", stock, stock, STOCK_MACHINE),
                    ("stock -> patched", stock, patched, STOCK_MACHINE),
                    ("patched -> patched", patched, patched, STOCK_MACHINE)]
            runs += [("patched -> patched", patched, patched, m)
                     for m in ABIGUARD]
            reference = None
            cells = []
            for pair, src, dst, machine in runs:
                status, accepted, desc = migrate(src, dst, machine,
                                                   src_devs, dst_devs, workdir,
                                                   dst == patched)
                if reference is None:
                    reference = status
                    cells.append(status)
                    tap.result(status == stock_does,
                               "%s: %s on %s: %s, expected %s"
                               % (name, pair, machine, status, stock_does))
                    continue
                ok = status == reference
                said = ""
                if "abiguard" in machine and status == "completed":
                    ok = ok and accepted == fields
                    said = " (listed in x-query-guest-abi-check)"
                if status == "failed":
                    # the patched destination says why, naming the backend
                    ok = ok and REFUSAL in desc
                    said = " (%s)" % REFUSAL
                tap.result(ok, "%s: %s on %s: %s, stock %s%s"
                           % (name, pair, machine, status, reference, said))
                cells.append(status + ("+noted" if status == "completed"
                                       and said else "+named" if said else ""))
            rows.append((name, cells))
    print("# | difference (source only) | stock -> stock, 7.2 | "
          "stock -> patched, 7.2 | patched -> patched, 7.2 | "
          "patched, i440fx abiguard1 | patched, q35 abiguard1 |")
    print("# | --- | --- | --- | --- | --- | --- |")
    for name, cells in rows:
        print("# | %s | %s |" % (name, " | ".join(cells)))
    return tap.done()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
