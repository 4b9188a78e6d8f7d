"""The offloads incident's hosts (tests/offloads-test.py, make
demo-offloads): a network namespace with a bridge and a tap per host, a
peer in a second namespace joined to the bridge by a veth pair, QEMUs on
the taps running a real guest whose virtio-net sends the traffic of
tests/guest/abiguard-net.c to tests/offloads-peer.py, and a migration
between two such QEMUs over loopback.
"""
import json
import os
import re
import subprocess
import sys
import time

from guesthosts import Host

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                     "tests")
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
             os.path.join(TESTS, "offloads-peer.py"),
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
    """@host runs and the guest's traffic reaches the peer, intact; the
    peer's status before and after."""
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
    return before, after


class Scenario:
    """A peer, a source with the guest's traffic going, and a destination;
    closed on exit."""

    def __init__(self, net, wd, qemu, machine, guest, mem=256):
        self.net, self.wd, self.mem = net, wd, mem
        self.qemu, self.machine, self.guest = qemu, machine, guest
        self.peer = Peer(net, wd)
        self.src = self.dst = None

    def __enter__(self):
        try:
            self.src = boot(self.net, self.wd, "src", self.qemu,
                            self.machine, self.guest, "tap-src",
                            mem=self.mem)
            start_traffic(self.src, self.peer)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for host in (self.src, self.dst):
            if host:
                host.close()
        self.peer.close()

    def migrate(self, dev="", netdev=""):
        """To a destination with @dev and @netdev options."""
        self.dst = incoming(self.net, self.wd, self.qemu, self.machine,
                            self.guest, dev, netdev, self.mem)
        return migrate(self.src, self.dst)

    def dst_said(self):
        with open(self.dst.log.name) as f:
            return f.read()
