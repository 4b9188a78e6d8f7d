#!/usr/bin/python3
"""Before migrating a running VM, check that the destination would present
the same guest ABI.

  preflight.py SOURCE_QMP_SOCKET DEST_QEMU -- DEST QEMU ARGS...

Reads the running source's fingerprint through its QMP socket (query-pci,
x-query-virtio-status: any QEMU >= 7.2, stock too), starts the destination
binary paused (-S -incoming defer) with the given command line, reads its
fingerprint the same way, and prints every difference with the device
properties that would make the destination match. The destination is always
killed afterwards, also on Ctrl-C or SIGTERM.

Exit status: 0 when they match, 1 when they differ, 2 on an error.
"""
import signal
import sys

import guestabi

# Feature -> the virtio device property that offers it (as named by
# guestabi.feature_names()).
FEATURE_PROPS = {
    "BLK_F_DISCARD": "discard", "BLK_F_WRITE_ZEROES": "write-zeroes",
    "BLK_F_SECURE_ERASE": "secure-erase", "BLK_F_CONFIG_WCE": "config-wce",
    "BLK_F_SCSI": "scsi", "NET_F_MQ": "mq", "NET_F_RSS": "rss",
    "NET_F_HASH_REPORT": "hash", "CONSOLE_F_EMERG_WRITE": "emergency-write",
    "BALLOON_F_PAGE_POISON": "page-poison",
    "BALLOON_F_FREE_PAGE_HINT": "free-page-hint",
    "BALLOON_F_DEFLATE_ON_OOM": "deflate-on-oom",
    "BALLOON_F_REPORTING": "free-page-reporting",
    "F_RING_PACKED": "packed", "RING_F_INDIRECT_DESC": "indirect_desc",
    "RING_F_EVENT_IDX": "event_idx", "F_RING_RESET": "queue_reset",
}


def remedies(source, dest):
    """For each device whose features differ: the properties to add."""
    src = dict(guestabi.parse(line) for line in source)
    dst = dict(guestabi.parse(line) for line in dest)
    out = []
    for addr in sorted(set(src) & set(dst)):
        fs = set(src[addr].get("features", "").split(","))
        fd = set(dst[addr].get("features", "").split(","))
        props = ["%s=off" % FEATURE_PROPS[f] for f in sorted(fd - fs)
                 if f in FEATURE_PROPS]
        props += ["%s=on" % FEATURE_PROPS[f] for f in sorted(fs - fd)
                  if f in FEATURE_PROPS]
        if props:
            out.append("%s (%s): add %s to its -device on the destination"
                       % (addr, dst[addr]["id"], ",".join(props)))
    return out


def main(argv):
    if "--" not in argv or argv.index("--") != 2:
        sys.stderr.write(__doc__.strip() + "\n")
        return 2
    sock, qemu, args = argv[0], argv[1], argv[3:]
    # turn SIGTERM into an exception, so that the finally below runs
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(2))
    try:
        qmp = guestabi.Qmp(sock, timeout=1)
        source = guestabi.fingerprint(qmp)
        qmp.close()
    except (OSError, RuntimeError) as e:
        sys.stderr.write("preflight: cannot read the source at %s: %s\n"
                         % (sock, e))
        return 2
    dest_vm = None
    try:
        dest_vm = guestabi.Vm(qemu, args + ["-incoming", "defer"], qtest=False)
        dest = guestabi.fingerprint(dest_vm.qmp)
    except RuntimeError as e:
        sys.stderr.write("preflight: destination: %s\n" % e)
        return 2
    finally:
        if dest_vm:
            dest_vm.close()
    differences = guestabi.diff(source, dest, "source", "destination")
    if not differences:
        print("preflight: the destination presents the same guest ABI "
              "(%d PCI devices)" % len(source))
        return 0
    print("preflight: the destination differs from the source; migrating "
          "would fail or change the guest's devices:")
    for line in differences:
        print("  " + line)
    for line in remedies(source, dest):
        print("  fix: " + line)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
