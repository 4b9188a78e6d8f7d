#!/usr/bin/python3
"""Golden guest-ABI dumps: one file per machine type, device set cold- and
hot-plugged (scripts/guestabi.py).

  guest-abi-golden.py generate QEMU DIR [MACHINE...]
      write DIR/<machine>.txt for every pc-i440fx-*/pc-q35-* of QEMU
      (or the given ones)
  guest-abi-golden.py check QEMU DIR [-- EXTRA QEMU ARGS...]
      dump every machine type DIR has with QEMU and compare; TAP output,
      exit 1 on any difference

make check runs 'check' with the patched build against goldens generated
from Debian's stock QEMU 10.0.2 (tests/golden/stock-10.0.2) and from the
patched build for the series' own machine types (tests/golden/abiguard).
Regenerate: make goldens.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "scripts"))
import guestabi  # noqa: E402
from tap import Tap  # noqa: E402


def dump_both(qemu, machine, extra=()):
    return (["# cold"] + guestabi.dump(qemu, machine, False, extra) +
            ["# hotplug"] + guestabi.dump(qemu, machine, True, extra))


def sections(lines):
    out, cur = {}, None
    for line in lines:
        if line.startswith("# "):
            cur = out.setdefault(line[2:], [])
        elif line:
            cur.append(line)
    return out


def generate(qemu, outdir, wanted):
    os.makedirs(outdir, exist_ok=True)
    for machine in wanted or guestabi.machines(qemu):
        path = os.path.join(outdir, machine + ".txt")
        try:
            lines = dump_both(qemu, machine)
        except RuntimeError as e:
            # e.g. a device of the set that this QEMU cannot create there
            print("skipped %s: %s" % (machine, e), file=sys.stderr)
            continue
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(path + ".tmp", path)
        print("wrote", path)


def check(qemu, golddir, extra):
    files = sorted(f for f in os.listdir(golddir) if f.endswith(".txt"))
    tap = Tap(len(files))
    for name in files:
        machine = name[:-4]
        with open(os.path.join(golddir, name)) as f:
            golden = sections(f.read().splitlines())
        try:
            now = sections(dump_both(qemu, machine, extra))
            report = []
            for plug in ("cold", "hotplug"):
                report += ["%s %s %s" % (machine, plug, d) for d in
                           guestabi.diff(golden.get(plug, []),
                                         now.get(plug, []))]
        except RuntimeError as e:
            report = ["%s: %s" % (machine, e)]
        tap.result(not report, machine, report)
    return tap.done()


def main(argv):
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    if len(argv) < 3 or argv[0] not in ("generate", "check"):
        sys.exit(__doc__.strip())
    if argv[0] == "generate":
        generate(argv[1], argv[2], argv[3:])
        return 0
    return check(argv[1], argv[2], extra)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
