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
import json
import re
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "scripts"))
from guesthosts import Host  # noqa: E402
from tap import Tap  # noqa: E402

PEER_ADDR, GUEST_ADDR, PORT = "10.231.4.1", "10.231.4.10", 5201
# the feature bits, and their names
USO = {54: "VIRTIO_NET_F_GUEST_USO4", 55: "VIRTIO_NET_F_GUEST_USO6",
       56: "VIRTIO_NET_F_HOST_USO"}
USO_OFF = ",host_uso=off,guest_uso4=off,guest_uso6=off"
TUNNEL = {65: "VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO",
          66: "VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO_CSUM",
          67: "VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO",
          68: "VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO_CSUM"}
TUNNEL_OFF = (",host_tunnel=off,host_tunnel_csum=off,guest_tunnel=off,"
              "guest_tunnel_csum=off")


class Network:
    """The namespace of both hosts (a bridge, a tap per host) and the
    peer's, joined by a veth pair; removed again on exit."""

    def __init__(self):
        tag = "%d" % os.getpid()
        self.hosts, self.peer_ns = "abg-net-" + tag, "abg-peer-" + tag

    def __enter__(self):
        def ip(*args):
            subprocess.run(("ip",) + args, check=True)
        try:
            ip("netns", "add", self.hosts)
            ip("netns", "add", self.peer_ns)
            h = ("-n", self.hosts)
            ip(*h, "link", "add", "br0", "type", "bridge")
            for tap in ("tap-src", "tap-dst"):
                ip(*h, "tuntap", "add", "dev", tap, "mode", "tap")
                ip(*h, "link", "set", tap, "master", "br0", "up")
            ip(*h, "link", "add", "veth-peer", "type", "veth", "peer", "name",
               "eth0", "netns", self.peer_ns)
            ip(*h, "link", "set", "veth-peer", "master", "br0", "up")
            ip(*h, "link", "set", "br0", "up")
            ip(*h, "link", "set", "lo", "up")
            ip("-n", self.peer_ns, "addr", "add", PEER_ADDR + "/24", "dev",
               "eth0")
            ip("-n", self.peer_ns, "link", "set", "eth0", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for ns in (self.hosts, self.peer_ns):
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)


class Peer:
    """tests/offloads-peer.py in the peer's namespace."""

    def __init__(self, net, wd):
        self.status_path = os.path.join(wd, "peer.json")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", net.peer_ns, sys.executable,
             os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "offloads-peer.py"),
             PEER_ADDR, str(PORT), self.status_path])

    def status(self):
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {"tcp": 0, "udp": 0, "udp_lost": 0, "errors": []}

    def wait_more(self, than, timeout=30):
        """The status once TCP records and datagrams both passed @than's."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if (st["tcp"] > than["tcp"] and st["udp"] > than["udp"]) \
                    or time.monotonic() > deadline:
                return st
            time.sleep(0.1)

    def close(self):
        self.proc.kill()
        self.proc.wait()


def boot(net, wd, name, qemu, machine, guest, tap, dev="", netdev="",
         extra=(), mem=256):
    """A QEMU on @tap with the guest's virtio-net, net0 at 00:04.0."""
    return Host(name, qemu, machine, wd, None, [
        "-netdev", "tap,id=nd0,ifname=%s,script=no,downscript=no%s"
        % (tap, netdev),
        "-device", "virtio-net-pci,id=net0,netdev=nd0,addr=0x4,"
        "mac=52:54:00:12:34:56" + dev] + list(extra), net.hosts,
        guest=guest, mem=mem)


def start_traffic(src, peer):
    src.console.expect("GUEST READY", 120)
    src.console.run("ip addr add %s/24 dev eth0 && ip link set eth0 up && "
                    "(abiguard-net %s %d &); echo NETUP-$((1 + 1))"
                    % (GUEST_ADDR, PEER_ADDR, PORT), "NETUP-2")
    return peer.wait_more({"tcp": 0, "udp": 0})


def negotiated(host):
    """The feature bits the guest's driver negotiated, as the guest says
    (virtio's sysfs "features": one 0 or 1 a bit, bit 0 first)."""
    bits = host.console.run("echo F=$(cat /sys/class/net/eth0/device/"
                            "features)", r"F=([01]+)\r?\n").group(1)
    return {n for n, b in enumerate(bits) if b == "1"}


def incoming(net, wd, qemu, machine, guest, dev="", netdev="", mem=256):
    """The destination, waiting on loopback; the trace names each section
    it begins to load."""
    dst = boot(net, wd, "dst", qemu, machine, guest, "tap-dst", dev, netdev,
               ["-incoming", "defer", "-trace",
                "qemu_loadvm_state_section_startfull"], mem)
    dst.qmp.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "return-path", "state": True}])
    dst.qmp.cmd("migrate-incoming", uri="tcp:127.0.0.1:4444")
    return dst


def migrate(src, dst):
    """Migrate; the source's final query-migrate, the seconds it took, the
    bytes of RAM it sent, and the sections the destination began to load."""
    src.qmp.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "return-path", "state": True}])
    t0 = time.monotonic()
    src.qmp.cmd("migrate", uri="tcp:127.0.0.1:4444")
    sent = 0
    while True:
        info = src.qmp.cmd("query-migrate")
        sent = max(sent, info.get("ram", {}).get("transferred", 0))
        if info.get("status") in ("completed", "failed", "cancelled"):
            break
        if time.monotonic() - t0 > 600:
            info = {"status": "timeout"}
            break
        time.sleep(0.01)
    secs = time.monotonic() - t0
    if info["status"] == "failed":
        dst.proc.wait(timeout=30)
    with open(dst.log.name) as f:
        loaded = re.findall(r"qemu_loadvm_state_section_startfull\S* "
                            r"\d+\(([^)]*)\)", f.read())
    return info, secs, sent, loaded


def traffic_goes_on(host, peer, failures):
    """@host runs and the guest's traffic reaches the peer, intact."""
    status = host.qmp.cmd("query-status")["status"]
    if status != "running":
        failures.append("the %s host is %s, not running" % (host.name,
                                                            status))
    before = peer.status()
    after = peer.wait_more(before)
    if after["tcp"] <= before["tcp"] or after["udp"] <= before["udp"]:
        failures.append("the guest's traffic stopped on the %s host: %r "
                        "then %r" % (host.name, before, after))
    failures.extend(after["errors"])
    return after


class Scenario:
    """A peer, a source with the guest's traffic going, and a destination;
    closed on exit."""

    def __init__(self, net, wd, qemu, machine, guest):
        self.net, self.wd = net, wd
        self.qemu, self.machine, self.guest = qemu, machine, guest
        self.peer = Peer(net, wd)
        self.src = self.dst = None

    def __enter__(self):
        self.src = boot(self.net, self.wd, "src", self.qemu, self.machine,
                        self.guest, "tap-src")
        start_traffic(self.src, self.peer)
        return self

    def __exit__(self, *exc):
        for host in (self.src, self.dst):
            if host:
                host.close()
        self.peer.close()

    def migrate(self, dev="", netdev=""):
        """To a destination with @dev and @netdev options."""
        self.dst = incoming(self.net, self.wd, self.qemu, self.machine,
                            self.guest, dev, netdev)
        return migrate(self.src, self.dst)

    def dst_said(self):
        with open(self.dst.log.name) as f:
            return f.read()


DEV = "virtio-net-pci 'net0' at 0000:00:04.0: "


def refused(s, patched, dev, netdev, lacking, cause, remedy):
    """Migrate to a destination (@dev, @netdev) that lacks @lacking, which
    the guest negotiated: refused, before RAM if @patched, the cause saying
    @cause and the remedy @remedy (lists of anchors; a stock destination
    says none), and the guest's traffic goes on on the source."""
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
        check = s.dst.qmp.cmd("__invalid.abiguard_query-guest-abi-check")
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
                 ["the same properties, backend and machine type"]
                 if p else [])),
        ]
        if patched and has_tunnel(qemu):
            cases.append(
                ("(d) %s %s: the 6.12 guest negotiates no UDP tunnel "
                 "offload; a destination without them" % (kind, machine),
                 guest612, qemu, machine,
                 lambda s: tunnel(s)))
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
