#!/usr/bin/python3
"""The second incident: host-kernel offloads (virtio-net USO), with real
guests.  TAP output.

A guest runs on a virtio-net whose tap is on a bridge in a network
namespace the test makes, and sends TCP, and UDP that its kernel segments
late (UDP_SEGMENT), to a peer in a second namespace (tests/offloads-peer.py
checks every record and datagram).  Source and destination QEMU share the
bridge's namespace, each with its own tap, and migrate over loopback.

  (a) the 6.12 guest negotiated USO; the destination does not offer it, as
      a machine type that masks it would not (host_uso, guest_uso4,
      guest_uso6 off): stock fails after all RAM with its message; the
      series refuses before RAM, naming the features, the properties and
      the remedy.  The guest keeps running and its traffic continues.
  (b) the same destination, the 6.1 guest, which never negotiates USO:
      it migrates on both, and the series lists the difference as
      compatible.
  (c) a destination whose tap has no vnet_hdr, so offers no offloads:
      refused before RAM, and the cause names the backend, not a property.
  (d) on the 10.2 base: the UDP tunnel offloads.  The 6.12 driver does not
      negotiate them; a destination without them is compatible.

Usage: tests/offloads-test.py GUEST_6.1 GUEST_6.12 PATCHED_QEMU:MACHINE
           [STOCK_QEMU:MACHINE]

The UDP tunnel case runs where the patched QEMU has the properties.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "scripts"))
from offloadhosts import (TUNNEL, TUNNEL_OFF, USO, USO_OFF,  # noqa: E402
                          Network, Scenario, negotiated, traffic_goes_on)
from tap import Tap  # noqa: E402

DEV = "virtio-net-pci 'net0' at 0000:00:04.0: "


def refused(s, patched, dev, netdev, lacking, cause, remedy, unsaid=()):
    """Migrate to a destination (@dev, @netdev) that lacks @lacking, which
    the guest negotiated: refused, before RAM if @patched, the cause saying
    @cause and the remedy @remedy but none of @unsaid (lists of anchors; a
    stock destination says none), and the guest's traffic goes on on the
    source."""
    failures = []
    missing = [lacking[b] for b in lacking if b not in negotiated(s.src)]
    if missing:
        return ["the guest did not negotiate %s" % missing], ""
    info, secs, sent, loaded = s.migrate(dev, netdev)
    said = s.dst_said()
    if info["status"] != "failed":
        failures.append("migration %s, expected failed" % info["status"])
    if patched and loaded != ["pci-guest-abi"]:
        failures.append("the destination began to load %r, expected only "
                        "['pci-guest-abi'], before RAM" % loaded)
    if not patched and "ram" not in loaded:
        failures.append("the destination began to load %r, expected RAM "
                        "before it failed" % loaded)
    lines = {kind: [ln for ln in said.splitlines()
                    if ln.startswith("  " + DEV + kind + ": ")]
             for kind in ("cause", "remedy")}
    for kind, wants in (("cause", cause), ("remedy", remedy)):
        for want in wants:
            if not any(want in ln for ln in lines[kind]):
                failures.append("the destination's %s does not say %r: %r"
                                % (kind, want, lines[kind]))
    for not_want in unsaid:
        if any(not_want in ln for ln in lines["remedy"]):
            failures.append("the destination's remedy says %r: %r"
                            % (not_want, lines["remedy"]))
    if patched and not all(n in info.get("error-desc", "") for n in cause):
        failures.append("the source's error does not name %s: %r"
                        % (cause, info.get("error-desc")))
    traffic_goes_on(s.src, s.peer, failures)
    error = (lines["cause"] or [ln for ln in said.splitlines()
                                if ln.startswith("qemu-system")] or [""])[0]
    return failures, ("%s %.2f s after migrate, the source had sent %d MiB "
                      "of RAM; the guest's traffic went on; the destination "
                      "said: %s" % ("refused" if patched else "failed", secs,
                                    sent >> 20, error.strip()[:300]))


def compatible(s, patched, dev, absent, field="virtio host features"):
    """Migrate to a destination (@dev) without @absent, which the guest did
    not negotiate: it migrates, the series lists the difference in @field as
    compatible, and the traffic goes on on the destination."""
    failures = []
    got = [absent[b] for b in absent if b in negotiated(s.src)]
    if got:
        return ["the guest negotiated %s" % got], ""
    info, secs, _, _ = s.migrate(dev)
    if info["status"] != "completed":
        return ["migration %s: %s" % (info["status"],
                                      info.get("error-desc"))], ""
    noted = ""
    if patched:
        check = s.dst.qmp.cmd("x-query-guest-abi-check")
        fields = [(c["device"], d["field"]) for c in check["compatible"]
                  for d in c["differences"]]
        if check["differences"] or fields != [(DEV[:-2], field)]:
            failures.append("the check found %r" % check)
        noted = ", the difference listed as compatible"
    traffic_goes_on(s.dst, s.peer, failures)
    return failures, ("migrated in %.2f s%s; the guest's traffic went on on "
                      "the destination" % (secs, noted))


def has_tunnel(qemu):
    """Whether @qemu's virtio-net has the UDP tunnel offloads (10.2 on)."""
    out = subprocess.run([qemu, "-device", "virtio-net-pci,help"],
                         capture_output=True, text=True).stdout
    return "host_tunnel=" in out


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__.strip())
    guest61, guest612 = argv[0], argv[1]
    qemus = [(argv[2], True)] + ([(argv[3], False)] if len(argv) == 4
                                 else [])
    cases = []
    for spec, patched in qemus:
        qemu, machine = spec.split(":", 1)
        kind = "patched" if patched else "stock"
        uso_cause = list(USO.values()) if patched else []
        cases += [
            ("(a) %s %s: the 6.12 guest negotiated USO, the destination "
             "does not offer it" % (kind, machine), guest612, qemu, machine,
             lambda s, p=patched, c=uso_cause: refused(
                 s, p, USO_OFF, "", USO, c,
                 ["guest_uso4=on,guest_uso6=on,host_uso=on"] if p else [])),
            ("(b) %s %s: the same destination, the 6.1 guest never "
             "negotiated USO" % (kind, machine), guest61, qemu, machine,
             lambda s, p=patched: compatible(s, p, USO_OFF, USO)),
            ("(c) %s %s: the destination's tap has no vnet_hdr"
             % (kind, machine), guest612, qemu, machine,
             lambda s, p=patched: refused(
                 s, p, "", ",vnet_hdr=off", {0: "VIRTIO_NET_F_CSUM"},
                 ["has no vnet_hdr"] if p else [],
                 ["backend"] if p else [],
                 # the backend decides it: no property would help
                 ["=on", "=off"])),
        ]
        if patched and has_tunnel(qemu):
            cases.append(
                ("(d) %s %s: the 6.12 guest negotiates no UDP tunnel "
                 "offload; a destination without them" % (kind, machine),
                 guest612, qemu, machine, tunnel))
    tap = Tap(len(cases))
    with Network() as net:
        for name, guest, qemu, machine, fn in cases:
            with tempfile.TemporaryDirectory(prefix="abiguard-net-") as wd:
                try:
                    with Scenario(net, wd, qemu, machine, guest) as s:
                        failures, summary = fn(s)
                except (RuntimeError, OSError, AssertionError,
                        subprocess.TimeoutExpired) as e:
                    failures, summary = [str(e)], ""
            tap.result(not failures, name, failures or [summary])
    return tap.done()


def tunnel(s):
    """10.2 offers the UDP tunnel offloads where the tap does; the 6.12
    driver predates them, so negotiates none, and a destination without
    them is compatible.  The guest's sysfs shows bits 0-63 only: asked of
    QEMU."""
    st = s.src.qmp.cmd("x-query-virtio-status",
                       path="/machine/peripheral/net0/virtio-backend")
    offered = [f.split(":")[0] for f in st["host-features"]["dev-features"]]
    got = [f.split(":")[0] for f in st["guest-features"]["dev-features"]]
    if sorted(TUNNEL.values()) != sorted(set(offered) & set(TUNNEL.values())):
        return ["the source does not offer all of %s: its tap lacks them?"
                % list(TUNNEL.values())], ""
    if set(got) & set(TUNNEL.values()):
        return ["the guest negotiated %s" % (set(got) & set(TUNNEL.values()))
                ], ""
    failures, summary = compatible(s, True, TUNNEL_OFF, TUNNEL,
                                   "virtio host features 64-127")
    return failures, "offered, none negotiated; " + summary


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
