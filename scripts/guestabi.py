"""Guest-ABI fingerprints of PCI devices, from any QEMU >= 7.2.

The harness's shared module, imported by its Python scripts and tests.

A fingerprint is one line per PCI device: what a guest can see of it and
what a running guest cannot change (no BAR addresses, no negotiated
features):

  00:0b.0 disk1 1af4:1001 sub 1af4:0002 rev 00 class 010000 \
      bars 0:io:128,1:mem:4096,4:mem64pf:16384 caps MSI-X@98/2,vendor@84,... \
      virtio 2 transitional vqs 1 features F_FLUSH,BLK_F_DISCARD,...

Stock QEMU has no guest-ABI query, so the fingerprint comes from query-pci
(ids, BAR and ROM sizes), x-query-virtio-status (device id, host features,
queues) and, where a qtest chardev is available, the config space itself
(revision, capability list, MSI-X table size).  A running VM that only has
a QMP socket (preflight) gives the QMP part, marked "qmp-only".
"""

import ctypes
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

# the operator's package, tools/abiguard: its virtio feature table
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "tools"))
from abiguard import virtio_features  # noqa: E402

CAP_NAMES = {0x01: "PM", 0x05: "MSI", 0x09: "vendor", 0x10: "PCIe",
             0x11: "MSI-X", 0x12: "SATA", 0x13: "AF", 0x0D: "SSVID"}


def connect(path, timeout):
    """A unix socket connected to @path, retrying while QEMU starts."""
    sock = socket.socket(socket.AF_UNIX)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.connect(path)
            return sock
        except OSError:
            if time.monotonic() > deadline:
                sock.close()
                raise
            time.sleep(0.05)


def build_dir():
    return os.environ.get("BUILD") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")


class Qmp:
    """QMP through QEMU's own client, python/qemu/qmp of the base's tree
    (its synchronous legacy API): connected while QEMU starts; a failed
    command raises RuntimeError("COMMAND: reason")."""

    def __init__(self, path, timeout=10):
        tree = os.path.join(build_dir(), "qemu", "python")
        if tree not in sys.path:
            sys.path.insert(0, tree)
        from qemu.qmp import QMPError, legacy
        self.errors = (QMPError, OSError, EOFError)
        deadline = time.monotonic() + timeout
        while True:
            self.mon = legacy.QEMUMonitorProtocol(path)
            try:
                self.mon.connect()
                return
            except self.errors:
                self.mon.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def cmd(self, execute, **args):
        try:
            return self.mon.cmd(execute, **args)
        except self.errors as e:
            raise RuntimeError("%s: %s" % (execute, e)) from None

    def wait_migration(self, timeout=300):
        """query-migrate once the migration has ended (completed, failed or
        cancelled), or {"status": "timeout"} after @timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.cmd("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                return info
            if time.monotonic() > deadline:
                return {"status": "timeout"}
            time.sleep(0.01)

    def close(self):
        try:
            self.mon.close()
        except self.errors:
            pass                # QEMU has gone


class Qtest:
    """Port I/O through the -qtest chardev (works with -accel tcg -S)."""

    def __init__(self, path, timeout=10):
        self.sock = connect(path, timeout)
        self.f = self.sock.makefile("rw")

    def cmd(self, line):
        self.f.write(line + "\n")
        self.f.flush()
        while True:
            rsp = self.f.readline().split()
            if rsp and rsp[0] != "IRQ":
                break
        if rsp[0] != "OK":
            raise RuntimeError("qtest: %s: %s" % (line, rsp))
        return int(rsp[1], 16) if len(rsp) > 1 else None

    def _select(self, bus, devfn, off):
        self.cmd("outl 0xcf8 0x%x" % (0x80000000 | bus << 16 | devfn << 8 |
                                      (off & 0xFC)))

    def readb(self, bus, devfn, off):
        self._select(bus, devfn, off)
        return self.cmd("inb 0x%x" % (0xCFC + (off & 3)))

    def readl(self, bus, devfn, off):
        self._select(bus, devfn, off)
        return self.cmd("inl 0xcfc")

    def readw(self, bus, devfn, off):
        return self.readb(bus, devfn, off) | self.readb(bus, devfn, off + 1) << 8

    def writeb(self, bus, devfn, off, val):
        self._select(bus, devfn, off)
        self.cmd("outb 0x%x 0x%x" % (0xCFC + (off & 3), val))

    def writel(self, bus, devfn, off, val):
        self._select(bus, devfn, off)
        self.cmd("outl 0xcfc 0x%x" % val)

    def write(self, addr, data):
        """Guest memory."""
        self.cmd("write 0x%x 0x%x 0x%s" % (addr, len(data), data.hex()))


def number_buses(qt, qmp):
    """Give every bridge on bus 0 a bus number, as firmware would."""
    nxt = 1
    for dev in qmp.cmd("query-pci")[0]["devices"]:
        if "pci_bridge" in dev:
            devfn = dev["slot"] << 3 | dev["function"]
            qt.writeb(0, devfn, 0x19, nxt)      # secondary
            qt.writeb(0, devfn, 0x1A, nxt)      # subordinate
            nxt += 1


def flatten(devices):
    for dev in devices:
        yield dev
        yield from flatten(dev.get("pci_bridge", {}).get("devices", []))


def bar_text(region):
    if region["bar"] == 6:
        return "rom:%d" % region["size"]
    if region["type"] == "io":
        kind = "io"
    else:
        kind = "mem64" if region.get("mem_type_64") else "mem"
        kind += "pf" if region.get("prefetch") else ""
    return "%d:%s:%d" % (region["bar"], kind, region["size"])


# virtio device id -> prefix of its feature names in the Linux headers
DEVICE_PREFIX = {1: "NET", 2: "BLK", 3: "CONSOLE", 4: "RNG", 5: "BALLOON",
                 8: "SCSI"}
_bit_names = None


def bit_names():
    """(prefix, bit) -> name, from the package's virtio feature table: a
    bit's first name (the table lists the common headers and those of the
    devices named here first)."""
    global _bit_names
    if _bit_names is None:
        _bit_names = {}
        for _, bits in virtio_features.HEADERS:
            for name, bit in bits:
                m = re.match(r"VIRTIO_((?:(\w+?)_)?F_\w+)$", name)
                _bit_names.setdefault((m.group(2) or "", bit), m.group(1))
    return _bit_names


def feature_names(device_id, features):
    """Version-independent names: 'VIRTIO_BLK_F_FLUSH: ...' -> BLK_F_FLUSH.

    Older QEMUs decode fewer bits and report the rest as unknown: name those
    from the headers, so that the same bit reads the same everywhere.
    """
    names = []
    for part in ("transports", "dev-features"):
        for desc in features.get(part, []):
            name = desc.split(":")[0].strip()
            names.append(name.replace("VIRTIO_", "", 1))
    unknown = features.get("unknown-dev-features", 0)
    for bit in range(64):
        if unknown & (1 << bit):
            prefix = DEVICE_PREFIX.get(device_id, "")
            name = (bit_names().get((prefix, bit)) or
                    bit_names().get(("", bit)) or
                    bit_names().get(("RING", bit)) or "bit%d" % bit)
            names.append(name)
    return sorted(set(names))


def virtio_status(qmp):
    """qdev id of the proxy -> x-query-virtio-status of its backend."""
    out = {}
    for v in qmp.cmd("x-query-virtio"):
        parts = v["path"].split("/")
        if len(parts) >= 4 and parts[2] == "peripheral":
            out[parts[3]] = qmp.cmd("x-query-virtio-status", path=v["path"])
    return out


def fingerprint(qmp, qt=None):
    """One line per PCI device, sorted by address."""
    vstat = virtio_status(qmp)
    lines = []
    for bus in qmp.cmd("query-pci"):
        for dev in flatten(bus["devices"]):
            b, devfn = dev["bus"], dev["slot"] << 3 | dev["function"]
            ids = dev["id"]
            f = ["%02x:%02x.%x" % (b, dev["slot"], dev["function"]),
                 dev.get("qdev_id") or "-",
                 "%04x:%04x" % (ids["vendor"], ids["device"])]
            if "subsystem-vendor" in ids:
                f.append("sub %04x:%04x" % (ids["subsystem-vendor"],
                                            ids["subsystem"]))
            if qt:
                f.append("rev %02x" % qt.readb(b, devfn, 0x08))
                f.append("class %06x" % (qt.readb(b, devfn, 0x0B) << 16 |
                                         qt.readb(b, devfn, 0x0A) << 8 |
                                         qt.readb(b, devfn, 0x09)))
            else:
                f.append("class %04x" % dev["class_info"]["class"])
            f.append("bars " + (",".join(bar_text(r) for r in dev["regions"])
                                or "-"))
            if qt:
                f.append("caps " + caps_text(qt, b, devfn))
            st = vstat.get(dev.get("qdev_id") or "")
            if st:
                mode = "modern"
                if ids["device"] < 0x1040:
                    modern_caps = qt and "vendor@" in caps_text(qt, b, devfn)
                    mode = "transitional" if (modern_caps or not qt) else "legacy"
                f.append("virtio %d %s vqs %d features %s" % (
                    st["device-id"], mode if qt else "-", st["num-vqs"],
                    ",".join(feature_names(st["device-id"],
                                           st["host-features"]))))
            lines.append(" ".join(f))
    return sorted(lines)


def crosscheck(qmp, qt):
    """On a QEMU with x-query-guest-abi, check that it agrees with what
    query-pci and config space reads say: two methods, one guest ABI."""
    try:
        abi = {d["id"]: d for d in qmp.cmd("x-query-guest-abi") if "id" in d}
    except RuntimeError as e:
        if "has not been found" in str(e):
            return 0            # stock QEMU: nothing to compare with
        raise
    checked = 0
    for bus in qmp.cmd("query-pci"):
        for dev in flatten(bus["devices"]):
            d = abi.get(dev.get("qdev_id"))
            if not d:
                continue
            b, devfn = dev["bus"], dev["slot"] << 3 | dev["function"]
            if qt.readw(b, devfn, 0) == 0xFFFF:
                continue    # in a powered-off slot: config space hidden
            ids = dev["id"]
            mine = {
                "ids": (ids["vendor"], ids["device"]),
                "bars": sorted((r["bar"], r["size"]) for r in dev["regions"]
                               if r["bar"] < 6),
                "rom": sum(r["size"] for r in dev["regions"] if r["bar"] == 6),
                "caps": caps_text(qt, b, devfn),
            }
            theirs = {
                "ids": (d["vendor-id"], d["device-id"]),
                "bars": sorted((r["index"], r["size"]) for r in d["bars"]),
                "rom": d["rom-size"],
                "caps": ",".join(
                    CAP_NAMES.get(c["id"], "0x%02x" % c["id"]) +
                    ("@%02x/%d" % (c["offset"], d["msix-table-size"])
                     if c["id"] == 0x11 else "@%02x" % c["offset"])
                    for c in d["capabilities"] if not c["extended"]) or "-",
            }
            if mine != theirs:
                raise RuntimeError("x-query-guest-abi disagrees on %s: %s "
                                   "against %s" % (dev["qdev_id"], theirs,
                                                   mine))
            checked += 1
    return checked


def caps_text(qt, bus, devfn):
    if not qt.readw(bus, devfn, 0x06) & 0x10:
        return "-"
    caps, off, n = [], qt.readb(bus, devfn, 0x34) & ~3, 0
    while off >= 0x40 and n < 48:
        cid = qt.readb(bus, devfn, off)
        name = CAP_NAMES.get(cid, "0x%02x" % cid)
        if cid == 0x11:
            name += "@%02x/%d" % (off, (qt.readw(bus, devfn, off + 2) & 0x7FF) + 1)
        else:
            name += "@%02x" % off
        caps.append(name)
        off, n = qt.readb(bus, devfn, off + 1) & ~3, n + 1
    return ",".join(caps) or "-"


def _die_with_parent():
    """In the child: be killed when the parent dies, also if a signal
    interrupts the parent before it knows the child's pid."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PDEATHSIG


def launch(cmd, log):
    """The harness's one way to start a QEMU (directly, or through a
    wrapper that execs it, such as "ip netns exec"): output to the file
    @log, no input, and killed when the test that started it dies, however
    it dies."""
    return subprocess.Popen(cmd, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent)


class Vm:
    """A paused QEMU with QMP and qtest sockets; a context manager."""

    def __init__(self, qemu, args, qtest=True):
        self.dir = tempfile.mkdtemp(prefix="abiguard-abi-")
        self.qmp_path = os.path.join(self.dir, "qmp")
        self.qtest_path = os.path.join(self.dir, "qtest")
        self.log_path = os.path.join(self.dir, "log")
        cmd = [qemu, "-accel", "tcg", "-S", "-display", "none",
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path] + args
        if qtest:
            cmd += ["-qtest", "unix:%s,server=on,wait=off" % self.qtest_path]
        self.log = open(self.log_path, "w")
        self.proc = launch(cmd, self.log)
        try:
            self.qmp = Qmp(self.qmp_path)
            self.qt = Qtest(self.qtest_path) if qtest else None
        except (OSError, RuntimeError):
            out = self.output().strip()
            self.close()
            raise RuntimeError("QEMU did not start: %s" % out)
        except BaseException:
            self.close()        # interrupted: leave nothing behind
            raise

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def close(self):
        if getattr(self, "qmp", None):
            self.qmp.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# The device set of the goldens: (id, -device/device_add option string).
DEVICES = [
    ("blk", "virtio-blk-pci,drive=d-blk"),
    ("blk-nodiscard", "virtio-blk-pci,drive=d-blk-nodiscard,discard=off"),
    ("blk-nontrans", "virtio-blk-pci-non-transitional,drive=d-blk-nontrans"),
    ("net", "virtio-net-pci"),
    ("rng", "virtio-rng-pci"),
    ("balloon", "virtio-balloon-pci"),
    ("scsi", "virtio-scsi-pci"),
    ("serial", "virtio-serial-pci"),
    ("e1000", "e1000"),
]
FIRST_SLOT = 0x10


def device_set_args(machine, hotplug, extra=()):
    """Command line and device_add strings for the device set."""
    args = ["-machine", machine, "-nodefaults"] + list(extra)
    adds = []
    q35 = machine.startswith("pc-q35")
    for i, (dev_id, opts) in enumerate(DEVICES):
        if "drive=" in opts:
            args += ["-drive", "if=none,id=d-%s,driver=null-co,"
                     "read-zeroes=on,size=1M" % dev_id]
        slot = FIRST_SLOT + i
        if hotplug and q35:
            # q35 hot-plugs below PCIe root ports only
            args += ["-device", "pcie-root-port,id=rp-%s,chassis=%d,"
                     "addr=0x%x" % (dev_id, i + 1, slot)]
            where = "bus=rp-%s" % dev_id
        else:
            where = "addr=0x%x" % slot
        spec = "%s,id=%s,%s" % (opts, dev_id, where)
        if hotplug:
            adds.append(spec)
        else:
            args += ["-device", spec]
    return args, adds


def dump(qemu, machine, hotplug, extra=()):
    """Fingerprint of @machine with the device set, cold- or hot-plugged."""
    args, adds = device_set_args(machine, hotplug, extra)
    with Vm(qemu, args) as vm:
        for spec in adds:
            out = vm.qmp.cmd("human-monitor-command",
                             **{"command-line": "device_add " + spec})
            if out:
                raise RuntimeError("device_add %s: %s" % (spec, out.strip()))
        number_buses(vm.qt, vm.qmp)
        crosscheck(vm.qmp, vm.qt)
        return fingerprint(vm.qmp, vm.qt)


def migrate_to_file(vm, path):
    """Migrate the VM to the file @path, through exec: (7.2 has no file:)."""
    vm.qmp.cmd("migrate", uri="exec:cat > %s" % shlex.quote(path))
    status = vm.qmp.wait_migration(30)["status"]
    if status != "completed":
        raise RuntimeError("migration to %s %s" % (path, status))


def vmdesc_offset(stream):
    """Where the JSON description at the end of a migration stream starts:
    the offset of its QEMU_VM_VMDESCRIPTION byte (0x06), which a be32
    length of the JSON up to the stream's end follows."""
    for start in range(len(stream) - 5, 0, -1):
        if stream[start] == 0x06 and \
           struct.unpack_from(">I", stream, start + 1)[0] == len(stream) - start - 5:
            return start
    raise RuntimeError("no JSON description at the end of the stream")


def machines(qemu):
    with Vm(qemu, ["-machine", "none"], qtest=False) as vm:
        names = [m["name"] for m in vm.qmp.cmd("query-machines")]
    return sorted(n for n in names if n.startswith(("pc-i440fx-", "pc-q35-")))


def parse(line):
    """Fingerprint line -> (address, {field: value})."""
    words = line.split()
    fields = {"id": words[1], "ids": words[2]}
    key = None
    for w in words[3:]:
        if w in ("sub", "rev", "class", "bars", "caps", "virtio", "vqs",
                 "features"):
            key = w
            fields[key] = ""
        elif key:
            fields[key] = (fields[key] + " " + w).strip()
    return words[0], fields


def diff(expected, actual, label_a="golden", label_b="now"):
    """Differences between two fingerprints, as report lines."""
    a = dict(parse(line) for line in expected)
    b = dict(parse(line) for line in actual)
    out = []
    for addr in sorted(set(a) | set(b)):
        if addr not in b:
            out.append("%s (%s): only in %s" % (addr, a[addr]["id"], label_a))
            continue
        if addr not in a:
            out.append("%s (%s): only in %s" % (addr, b[addr]["id"], label_b))
            continue
        for key in sorted(set(a[addr]) | set(b[addr])):
            va, vb = a[addr].get(key, "-"), b[addr].get(key, "-")
            if va == vb:
                continue
            if key == "features":
                fa, fb = set(va.split(",")), set(vb.split(","))
                out.append("%s (%s): features only in %s: %s; only in %s: %s"
                           % (addr, a[addr]["id"], label_a,
                              ",".join(sorted(fa - fb)) or "-", label_b,
                              ",".join(sorted(fb - fa)) or "-"))
            else:
                out.append("%s (%s): %s is %s in %s, %s in %s"
                           % (addr, a[addr]["id"], key, va, label_a, vb,
                              label_b))
    return out
