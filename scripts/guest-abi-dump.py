#!/usr/bin/python3
"""Print the guest-ABI fingerprint of a QEMU binary, machine type and the
golden device set, cold-plugged or hot-plugged.

Usage: guest-abi-dump.py QEMU MACHINE [--hotplug] [-- EXTRA QEMU ARGS...]
Works on any QEMU >= 7.2, stock or patched (see scripts/guestabi.py).
"""
import sys

import guestabi


def main(argv):
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    hotplug = "--hotplug" in argv
    args = [a for a in argv if a != "--hotplug"]
    if len(args) != 2:
        sys.exit(__doc__.strip())
    try:
        print("\n".join(guestabi.dump(args[0], args[1], hotplug, extra)))
    except RuntimeError as e:
        sys.exit("guest-abi-dump: %s" % e)


if __name__ == "__main__":
    main(sys.argv[1:])
