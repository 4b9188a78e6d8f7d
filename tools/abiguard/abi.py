"""The guest ABI of a running QEMU's PCI devices, asked over QMP.

A destination's x-guest-abi-compare takes a source's
fingerprint: x-query-guest-abi where the source QEMU has it, else what
any stock QEMU >= 7.2 answers over QMP (stock_guest_abi()).  A monitor is
anything with cmd(execute, **arguments) that returns QMP's "return" and
raises RuntimeError("COMMAND: reason") on an error.
"""

from abiguard import virtio_features

# Every name of a feature bit, as x-query-virtio-status prints them, with
# the transport bits QEMU names after vhost, outside the virtio headers.
FEATURE_BITS = {name: bit for _, bits in virtio_features.HEADERS
                for name, bit in bits}
FEATURE_BITS.update(VHOST_F_LOG_ALL=26, VHOST_USER_F_PROTOCOL_FEATURES=30)


def feature_mask(decoded):
    """x-query-virtio-status's decoded features -> the feature bits."""
    mask = decoded.get("unknown-dev-features", 0)
    seen = set()
    for desc in decoded.get("transports", []) + decoded.get("dev-features", []):
        name = desc.split(":")[0].strip()
        if name == "VIRTIO_NET_F_GUEST_USO4" and name in seen:
            # QEMU up to 10.0 labels bit 55, GUEST_USO6, as USO4 too
            name = "VIRTIO_NET_F_GUEST_USO6"
        seen.add(name)
        mask |= 1 << FEATURE_BITS[name]
    return mask


def pci_paths(devices, prefix):
    """query-pci devices -> (path as migration names it, device)."""
    for dev in devices:
        path = "%s:%02x.%x" % (prefix, dev["slot"], dev["function"])
        yield path, dev
        yield from pci_paths(dev.get("pci_bridge", {}).get("devices", []),
                             path)


def stock_virtio(qmp, proxy, status):
    """The virtio part of a fingerprint, from a stock QEMU."""
    backend = proxy + "/virtio-backend"
    modern = not qmp.cmd("qom-get", path=proxy, property="disable-modern")
    legacy = qmp.cmd("qom-get", path=proxy, property="disable-legacy") != "on"
    v = {"device-id": status["device-id"],
         "mode": ("transitional" if legacy else "modern") if modern
         else "legacy",
         "host-features": feature_mask(status["host-features"])}
    guest = feature_mask(status["guest-features"])
    if guest:
        v["guest-features"] = guest
    if status["device-id"] != 1:
        # virtio-net's queues follow its guest's multiqueue choice
        queues = [qmp.cmd("x-query-virtio-queue-status", path=backend,
                          queue=i) for i in range(status["num-vqs"])]
        v["queue-sizes"] = [q["vring-num-default"] for q in queues]
        v["queues-set-up"] = max([i + 1 for i, q in enumerate(queues)
                                  if q["vring-desc"]], default=0)
    return v


def stock_guest_abi(qmp):
    """What x-query-guest-abi would return, from what any QEMU >= 7.2
    answers over QMP.  It leaves out what only the config space says: the
    revision, the class code's programming interface, the capabilities,
    the MSI-X table of other than virtio devices, and the virtio config
    length (see x-guest-abi-compare)."""
    proxies = {}                # qdev id, or root-bus devfn, -> QOM path
    for v in qmp.cmd("x-query-virtio"):
        proxy = v["path"].rsplit("/", 1)[0]
        parts = proxy.split("/")
        if parts[2] == "peripheral":
            proxies[parts[3]] = proxy
        else:
            proxies[qmp.cmd("qom-get", path=proxy, property="addr")] = proxy
    out = []
    for bus in qmp.cmd("query-pci"):
        for path, dev in pci_paths(bus["devices"], "0000:%02x" % bus["bus"]):
            ids = dev["id"]
            d = {"path": path, "vendor-id": ids["vendor"],
                 "device-id": ids["device"],
                 "subsystem-vendor-id": ids.get("subsystem-vendor", 0),
                 "subsystem-id": ids.get("subsystem", 0),
                 "bars": [{"index": r["bar"], "io": r["type"] == "io",
                           "mem-type-64": r.get("mem_type_64", False),
                           "prefetch": r.get("prefetch", False),
                           "size": r["size"]}
                          for r in dev["regions"] if r["bar"] < 6],
                 "rom-size": sum(r["size"] for r in dev["regions"]
                                 if r["bar"] == 6)}
            qdev_id = dev.get("qdev_id")
            if qdev_id:
                d["id"] = qdev_id
                d["type"] = qmp.cmd("qom-get", property="type",
                                    path="/machine/peripheral/" + qdev_id)
                proxy = proxies.get(qdev_id)
            else:
                proxy = proxies.get(dev["slot"] << 3 | dev["function"]) \
                    if bus["bus"] == 0 and path.count(":") == 2 else None
            if proxy:
                status = qmp.cmd("x-query-virtio-status",
                                 path=proxy + "/virtio-backend")
                props = {p["name"] for p in qmp.cmd("qom-list", path=proxy)}
                if "vectors" in props:
                    d["msix-table-size"] = qmp.cmd("qom-get", path=proxy,
                                                   property="vectors")
                d["virtio"] = stock_virtio(qmp, proxy, status)
            out.append(d)
    return sorted(out, key=lambda d: d["path"])


def guest_abi(qmp):
    """The guest-ABI fingerprint a destination's
    x-guest-abi-compare takes: x-query-guest-abi where
    the QEMU has it, else what stock QEMU can say."""
    commands = {c["name"] for c in qmp.cmd("query-commands")}
    if "x-query-guest-abi" in commands:
        return qmp.cmd("x-query-guest-abi")
    return stock_guest_abi(qmp)
