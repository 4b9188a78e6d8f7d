#!/usr/bin/python3
"""make demo-offloads: the second incident (virtio-net USO), told the way
make demo tells the first.

A VM with 2 GiB of RAM, half of it holding data, runs Debian's 6.12
kernel, whose virtio-net negotiates UDP segmentation offload (USO) on a
tap of a host kernel that has it.  It sends TCP and UDP to a peer while it
migrates to a destination that does not offer USO, as after an upgrade to
a QEMU whose machine type masks it (the properties host_uso, guest_uso4
and guest_uso6 off).  First stock to stock (Debian's QEMU 10.0.2), then
patched to patched (the series, on its machine type), then with the remedy
the refusal names.  The times to refusal are measured in this one run,
side by side, and written to $BUILD/demo-offloads.csv.
"""
import os
import re
import sys
import tempfile

from offloadhosts import (USO, USO_OFF, Network, Scenario, negotiated,
                          traffic_goes_on)

BUILD = os.environ["BUILD"]
GUEST = os.path.join(BUILD, "guest-offloads")
STOCK = (os.path.join(BUILD, "bin", "qemu-stock-10.0.2"), "pc-i440fx-10.0")
PATCHED = (os.path.join(BUILD, "bin", "qemu-patched"),
           "pc-i440fx-10.0-abiguard1")
MEM = 2048
FILL = 960          # MiB of data; the guest's tmpfs takes half its RAM


def say(text=""):
    print(text, flush=True)


def step(text):
    say("\n\033[1m>> " + text + "\033[0m")


def start(s):
    """The guest's RAM filled, its traffic going; what it negotiated."""
    s.src.console.run("dd if=/dev/urandom of=/fill bs=1M count=%d "
                      "2>/dev/null; echo FILLED-$((1 + 1))" % FILL,
                      "FILLED-2", 600)
    got = [USO[b] for b in sorted(USO) if b in negotiated(s.src)]
    st = s.peer.status()
    say("   source: %s, %s, %d MiB of RAM, %d MiB of it data"
        % (os.path.basename(s.qemu), s.machine, MEM, FILL))
    say("   the guest negotiated: %s" % (", ".join(got) or "no USO"))
    say("   its traffic so far: %d TCP records, %d UDP datagrams, intact"
        % (st["tcp"], st["udp"]))
    return got


def attempt(s, dev):
    say("   destination: the same QEMU and machine type, virtio-net-pci"
        "%s" % dev)
    info, secs, sent, loaded = s.migrate(dev)
    said = s.dst_said()
    say("   migration: %s after %.2f s, %d MiB of RAM sent"
        % (info["status"], secs, sent >> 20))
    return info, secs, sent, loaded, said


def goes_on(s, host):
    """Whether the VM runs on @host and its traffic goes on, said."""
    failures = []
    before, after = traffic_goes_on(host, s.peer, failures)
    say("   the VM on the %s: traffic %d -> %d TCP records, %d -> %d "
        "datagrams; %s" % ("source" if host is s.src else "destination",
                           before["tcp"], after["tcp"], before["udp"],
                           after["udp"], "; ".join(failures) or
                           "running, intact"))
    return not failures


def main():
    fail = False
    times = {}
    with Network() as net:
        step("1. Today: stock QEMU on both hosts (Debian's 10.0.2)")
        with tempfile.TemporaryDirectory(prefix="abiguard-demo-") as wd, \
                Scenario(net, wd, *STOCK, GUEST, MEM) as s:
            start(s)
            info, secs, sent, loaded, said = attempt(s, USO_OFF)
            for line in said.splitlines():
                if line.startswith("qemu-system"):
                    say("     " + line)
            times["stock"] = (secs, sent, "ram" in loaded)
            say("   => the destination loaded all RAM first (%s), then failed "
                "on a bit mask; the source says: %s"
                % ("yes" if "ram" in loaded else "NO",
                   info.get("error-desc", "(nothing)")))
            fail |= info["status"] != "failed" or not goes_on(s, s.src)
        step("2. The same, with the series on both hosts (its machine type)")
        with tempfile.TemporaryDirectory(prefix="abiguard-demo-") as wd, \
                Scenario(net, wd, *PATCHED, GUEST, MEM) as s:
            start(s)
            info, secs, sent, loaded, said = attempt(s, USO_OFF)
            for line in said.splitlines():
                if line.startswith("  virtio-net-pci"):
                    say("     " + line.strip())
            times["patched"] = (secs, sent, "ram" in loaded)
            desc = info.get("error-desc", "")
            cause = re.search(r"cause: [^;]*", desc)
            say("   => refused before any RAM (the destination began to load: "
                "%s); the source's query-migrate says why too: %s"
                % (", ".join(loaded), cause.group(0) if cause else desc))
            fail |= info["status"] != "failed" or loaded != ["pci-guest-abi"]
            fail |= not goes_on(s, s.src)
            m = re.search(r"remedy: start this device with (\S+)", said)
            s.dst.close()
            s.dst = None
            step("3. The operator starts the destination with the remedy "
                 "named: %s" % (m.group(1) if m else "NONE"))
            if not m:
                return 1
            info, secs, sent, loaded, said = attempt(s, "," + m.group(1))
            fail |= info["status"] != "completed" or not goes_on(s, s.dst)
    stock, patched = times["stock"], times["patched"]
    step("Time to refusal at %d MiB of guest RAM, measured in this run"
         % MEM)
    say("   stock:   %6.2f s, %5d MiB of RAM sent first" % (stock[0],
                                                         stock[1] >> 20))
    say("   patched: %6.2f s, %5d MiB of RAM sent first (the destination "
        "loaded none)" % (patched[0], patched[1] >> 20))
    say("   the series refuses %.0f times sooner" % (stock[0] / patched[0]))
    with open(os.path.join(BUILD, "demo-offloads.csv"), "w") as f:
        f.write("destination,seconds_to_refusal,ram_sent_mib,ram_loaded\n")
        for k in ("stock", "patched"):
            f.write("%s,%.3f,%d,%s\n" % (k, times[k][0], times[k][1] >> 20,
                                         "yes" if times[k][2] else "no"))
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
