#!/usr/bin/python3
"""Seed corpus for the incoming-migration fuzz targets: real streams.

  make-fuzz-corpus.py FUZZER OUTDIR QEMU...

For each fuzz target of FUZZER (qemu-fuzz-x86_64), asks it for the QEMU
command line it loads streams into, starts each QEMU given with that command
line (but TCG for the qtest accelerator), and migrates it to a file:
OUTDIR/<target>/<qemu>.stream.  A QEMU that lacks the target's machine type
is skipped.  Debian's 7.2 has no "file:" migration, so every QEMU writes
through "exec:cat".
"""
import os
import shlex
import subprocess
import sys

import guestabi

TARGETS = ["incoming-pc-i440fx-7.2", "incoming-pc-q35-10.0-abiguard1"]


def target_args(fuzzer, target):
    """The arguments the fuzz target starts QEMU with, as it prints them."""
    out = subprocess.run([fuzzer, "--fuzz-target=" + target, "-runs=0"],
                         env=dict(os.environ, QTEST_LOG="1"),
                         capture_output=True, text=True, timeout=120).stdout
    for line in out.splitlines():
        if line.startswith("Starting ") and " with Arguments: " in line:
            args = shlex.split(line.split(" with Arguments: ", 1)[1])
            break
    else:
        raise RuntimeError("%s printed no command line for %s"
                           % (fuzzer, target))
    i = args.index("-qtest")            # the fuzzer's own: not for QEMU
    del args[i:i + 2]
    # guestabi.Vm runs it under TCG
    return [a.replace(",accel=qtest", "") for a in args]


def main(fuzzer, outdir, qemus):
    for target in TARGETS:
        args = target_args(fuzzer, target)
        machine = args[args.index("-machine") + 1].split(",")[0]
        os.makedirs(os.path.join(outdir, target), exist_ok=True)
        for qemu in qemus:
            if machine not in guestabi.machines(qemu):
                continue
            path = os.path.join(outdir, target,
                                os.path.basename(qemu) + ".stream")
            with guestabi.Vm(qemu, args, qtest=False) as vm:
                guestabi.migrate_to_file(vm, path)
            print("%s: %s, %d bytes" % (target, os.path.basename(qemu),
                                        os.path.getsize(path)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
