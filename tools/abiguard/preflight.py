"""Will each running VM of a libvirt host migrate to another host?

  abiguard preflight --to URI [--from URI] [--xml FILE] [--json] DOMAIN... | --all

For each running domain of the source host (--from, default the local
libvirt), the preflight reads its guest-ABI fingerprint through libvirt's
QEMU monitor pass-through: x-query-guest-abi where the source QEMU has it,
else what any stock QEMU answers over QMP.  On the
destination host it starts a throwaway copy of the domain through that
host's libvirt, from the domain's own migratable XML (or --xml FILE, as
given to 'virsh migrate --xml', for one domain): renamed, paused, and each
disk on a sparse scratch volume of the same size in a pool of its own, so
that nothing of the real VM is opened or locked.  It asks that QEMU's
x-guest-abi-compare, the comparison the migration's early
check runs, destroys the copy and its volumes, and prints one line per
domain: "migrates", "migrates with notes" or "refused", then the report
and, for a refusal, the remedy as the domain XML change that applies it.

Exit status: 0 when every domain migrates, 1 when any is refused, 2 on an
error (a domain that cannot be checked, a destination QEMU without the
comparison).
"""
import json
import os
import signal
import sys
import time
import uuid
import xml.etree.ElementTree as ET

try:
    import libvirt
    import libvirt_qemu
except ImportError:             # said by run(); --help works without them
    libvirt = libvirt_qemu = None

from abiguard import abi

COMPARE = "x-guest-abi-compare"
STOP = {signal.SIGTERM, signal.SIGINT}
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
ET.register_namespace("qemu", QEMU_NS)


class Error(Exception):
    pass


class Monitor:
    """QMP through libvirt, as abiguard.abi asks it."""

    def __init__(self, dom):
        self.dom = dom

    def cmd(self, execute, **args):
        rsp = json.loads(libvirt_qemu.qemuMonitorCommand(
            self.dom, json.dumps({"execute": execute, "arguments": args}), 0))
        if "error" in rsp:
            raise RuntimeError("%s: %s" % (execute, rsp["error"]["desc"]))
        return rsp["return"]


def message(e):
    """An exception's one-line reason, libvirt's own for libvirt's."""
    if libvirt and isinstance(e, libvirt.libvirtError):
        return e.get_error_message()
    return str(e)


def silence_libvirt():
    # errors come back as exceptions; libvirt need not print them too
    libvirt.registerErrorHandler(lambda *args: None, None)


class Scratch:
    """A directory pool of its own on the destination, for the copy's
    disks.  remove() takes it away with everything in it, also when it
    was only partly made."""

    def __init__(self, conn, tag):
        self.conn, self.tag = conn, tag
        xml = ("<pool type='dir'><name>%s</name><target><path>"
               "/var/lib/libvirt/%s</path></target></pool>" % (tag, tag))
        try:
            self.pool = conn.storagePoolDefineXML(xml, 0)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                raise Error("the destination's libvirt has no storage driver "
                            "(libvirt-daemon-driver-storage) for the copy's "
                            "scratch disks")
            raise
        self.pool.build(0)
        self.pool.create(0)

    def volume(self, name, capacity):
        vol = self.pool.createXML(
            "<volume><name>%s</name><capacity unit='bytes'>%d</capacity>"
            "<allocation>0</allocation><target><format type='raw'/></target>"
            "</volume>" % (name, capacity), 0)
        return vol.path()

    @staticmethod
    def remove(conn, tag):
        try:
            pool = conn.storagePoolLookupByName(tag)
        except libvirt.libvirtError:
            return
        if pool.isActive():
            for vol in pool.listAllVolumes(0):
                vol.delete(0)
            pool.destroy()
        try:
            pool.delete(0)
        except libvirt.libvirtError:
            pass                # never built
        pool.undefine()


CHARDEVS = ("serial", "console", "parallel", "channel")
CHARDEV_BACKENDS = ("file", "pty", "unix", "tcp", "udp", "pipe", "dev")


def throwaway_xml(xml, name, dom, scratch):
    """The domain's XML as a copy that opens nothing of the real VM."""
    root = ET.fromstring(xml)
    for tag, text in (("name", name), ("uuid", str(uuid.uuid4()))):
        if root.find(tag) is None:
            ET.SubElement(root, tag)
        root.find(tag).text = text
    if root.find("devices/hostdev") is not None:
        raise Error("it has a host device, which a copy cannot take")
    nvram = root.find("os/nvram")
    if nvram is not None:
        root.find("os").remove(nvram)  # libvirt makes the copy its own
    for dev in root.find("devices"):
        if dev.tag in CHARDEVS and dev.get("type") in CHARDEV_BACKENDS:
            # the same guest device on a backend that opens nothing: the
            # real VM's log files and sockets stay the real VM's
            dev.set("type", "null")
            for child in list(dev):
                if child.tag in ("source", "log", "protocol"):
                    dev.remove(child)
    for disk in root.iter("disk"):
        target = disk.find("target").get("dev")
        removable = disk.get("device") in ("cdrom", "floppy")
        if disk.find("source") is None:
            continue
        for child in list(disk):
            if child.tag in ("source", "backingStore"):
                disk.remove(child)
        disk.set("type", "file")
        if removable:
            continue            # an empty drive: the same device
        if disk.find("driver") is not None:
            disk.find("driver").set("type", "raw")
        ET.SubElement(disk, "source", file=scratch.volume(
            target + ".raw", dom.blockInfo(target)[0]))
    return ET.tostring(root, encoding="unicode")


# Device properties the domain XML sets itself: property -> (child
# element or None for the device's own element, attribute)
LIBVIRT_ATTRS = {
    "event_idx": ("driver", "event_idx"), "ioeventfd": ("driver", "ioeventfd"),
    "deflate-on-oom": (None, "autodeflate"),
    "free-page-reporting": (None, "freePageReporting"),
}


def remedy_changes(devices, domain_xml):
    """The domain XML changes that set each device's remedy properties,
    as dicts of alias, element, attribute and value: the element is the
    device's own tag, or tag/child, where libvirt has an attribute for the
    property, and None for the rest, which a qemu:override sets (the
    attribute is then the property).  libvirt names a device by its
    alias, the qdev id in QEMU's report."""
    aliases = {a.get("name"): dev for dev in ET.fromstring(domain_xml).find(
               "devices") for a in dev.iter("alias")}
    changes = []
    for dev in devices:
        alias = dev["device"].split("'")[1] if "'" in dev["device"] else None
        if alias not in aliases:
            continue
        for p in dev.get("remedy-properties", []):
            child, attr = LIBVIRT_ATTRS.get(p["name"], (None, None))
            element = None if attr is None else \
                aliases[alias].tag + ("/" + child if child else "")
            changes.append({"alias": alias, "element": element,
                            "attribute": attr or p["name"],
                            "value": p["value"]})
    return changes


def override_property(name, value):
    """A qemu:override property's type and value, from QEMU's."""
    if value in ("on", "off"):
        return "bool", "true" if value == "on" else "false"
    return "unsigned" if value.isdigit() else "string", value


def remedy_xml(changes):
    """The changes as a person applies them: attributes, and the
    qemu:override element to add."""
    attrs = ["<%(element)s> of alias '%(alias)s': %(attribute)s='%(value)s'"
             % c for c in changes if c["element"]]
    override = []
    for alias in dict.fromkeys(c["alias"] for c in changes
                               if not c["element"]):
        override += ["  <qemu:device alias='%s'>" % alias,
                     "    <qemu:frontend>"]
        for c in changes:
            if c["alias"] == alias and not c["element"]:
                override.append(
                    "      <qemu:property name='%s' type='%s' value='%s'/>"
                    % ((c["attribute"],) +
                       override_property(c["attribute"], c["value"])))
        override += ["    </qemu:frontend>", "  </qemu:device>"]
    if override:
        override = ["<qemu:override>"] + override + ["</qemu:override>"]
    return {"attributes": attrs, "override": "\n".join(override) or None}


def same_devices(root, live_xml):
    """alias -> the device element under root that is that device of the
    running domain (live_xml): the same tag, in the same order, since a
    migratable XML leaves out the aliases libvirt gave."""
    mine = {}
    for dev in root.find("devices"):
        mine.setdefault(dev.tag, []).append(dev)
    out, seen = {}, {}
    for dev in ET.fromstring(live_xml).find("devices"):
        i = seen[dev.tag] = seen.get(dev.tag, -1) + 1
        alias = dev.find("alias")
        if alias is not None and i < len(mine.get(dev.tag, [])):
            out[alias.get("name")] = mine[dev.tag][i]
    return out


def apply_remedy(xml, changes, live_xml):
    """The domain XML with the changes made; live_xml, the running
    domain's, names the devices by alias."""
    root = ET.fromstring(xml)
    devices = same_devices(root, live_xml)
    override = None
    for c in changes:
        alias, element, attr, value = (c["alias"], c["element"],
                                       c["attribute"], c["value"])
        if element:
            child = element.partition("/")[2]
            node = dev = devices[alias]
            if child:
                node = dev.find(child)
                if node is None:
                    node = ET.SubElement(dev, child)
            node.set(attr, value)
            continue
        if override is None:
            override = root.find("{%s}override" % QEMU_NS)
            if override is None:
                override = ET.SubElement(root, "{%s}override" % QEMU_NS)
        device = override.find("{%s}device[@alias='%s']" % (QEMU_NS, alias))
        if device is None:
            device = ET.SubElement(override, "{%s}device" % QEMU_NS,
                                   alias=alias)
        frontend = device.find("{%s}frontend" % QEMU_NS)
        if frontend is None:
            frontend = ET.SubElement(device, "{%s}frontend" % QEMU_NS)
        kind, v = override_property(attr, value)
        ET.SubElement(frontend, "{%s}property" % QEMU_NS, name=attr,
                      type=kind, value=v)
    return ET.tostring(root, encoding="unicode")


class Copy:
    """A throwaway copy of a domain, paused on a destination, whose QEMU
    compares fingerprints of a source with itself.  Usable in a with."""

    def __init__(self, dst_conn, dom, xml):
        self.conn = dst_conn
        self.tag = "abiguard-preflight-%d-%s" % (os.getpid(),
                                                 uuid.uuid4().hex[:8])
        try:
            self.dom = dst_conn.createXML(
                throwaway_xml(xml, self.tag, dom, Scratch(dst_conn, self.tag)),
                libvirt.VIR_DOMAIN_START_PAUSED)
        except BaseException:
            self.close()
            raise

    def compare(self, fingerprint):
        return compare(Monitor(self.dom), fingerprint)

    def close(self):
        # by name: an interruption may come before a handle is kept
        try:
            self.conn.lookupByName(self.tag).destroy()
        except libvirt.libvirtError:
            pass
        Scratch.remove(self.conn, self.tag)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def compare(monitor, fingerprint):
    """The verdict of the QEMU behind monitor on a source's fingerprint."""
    try:
        return monitor.cmd(COMPARE, source=fingerprint)
    except RuntimeError as e:
        if "has not been found" in str(e):
            raise Error("the destination's QEMU cannot compare guest "
                        "ABIs (it lacks %s): it is not patched" % COMPARE)
        raise


def verdict_of(check):
    return "refused" if check["differences"] else \
        "migrates with notes" if check["compatible"] else "migrates"


def result(name, check, domain_xml):
    """One domain's result: its verdict, the comparison and the remedy."""
    changes = remedy_changes(check["devices"], domain_xml)
    return {"domain": name, "verdict": verdict_of(check), "check": check,
            "remedy": remedy_xml(changes), "changes": changes}


def migratable_xml(dom):
    return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)


def check(dst_conn, dom, xml_file):
    """The destination's verdict on one domain, as a dict."""
    if not dom.isActive():
        raise Error("not running")
    source = abi.guest_abi(Monitor(dom))
    if xml_file:
        with open(xml_file) as f:
            xml = f.read()
    else:
        xml = migratable_xml(dom)
    with Copy(dst_conn, dom, xml) as copy:
        verdict = copy.compare(source)
    return result(dom.name(), verdict, dom.XMLDesc(0))


def show(res):
    check = res["check"]
    print("%s: %s" % (res["domain"], res["verdict"]))
    if check["differences"]:
        for line in check["report"].splitlines():
            print("  " + line.strip())
    for dev in check["compatible"]:
        for d in dev["differences"]:
            print("  note: %s: %s: source %s, destination %s; %s"
                  % (dev["device"], d["field"], d["source"],
                     d["destination"], dev["cause"]))
    for change in res["remedy"]["attributes"]:
        print("  fix: in the domain XML given to virsh migrate --xml, set "
              + change)
    if res["remedy"]["override"]:
        print("  fix: add to the domain XML, in the namespace "
              "xmlns:qemu='%s', and give it to virsh migrate --xml:" % QEMU_NS)
        for line in res["remedy"]["override"].splitlines():
            print("    " + line)


def add_arguments(ap):
    ap.add_argument("--to", required=True, metavar="URI",
                    help="the destination host's libvirt")
    ap.add_argument("--from", dest="src", metavar="URI", default=None,
                    help="the source host's libvirt (default: the local one)")
    ap.add_argument("--xml", metavar="FILE",
                    help="the destination XML, as virsh migrate --xml takes "
                    "it (one domain only)")
    add_domain_arguments(ap)


def add_domain_arguments(ap):
    """What the preflight and the drain both take: the domains, and how
    to print."""
    ap.add_argument("--json", action="store_true", help="one JSON document")
    ap.add_argument("--all", action="store_true",
                    help="every running domain of the source host")
    ap.add_argument("domains", nargs="*", metavar="DOMAIN")


def can_run(args, ap):
    """The checks the preflight and the drain share: the libvirt bindings
    (False, said, if missing) and the domains named."""
    if libvirt is None:
        sys.stderr.write("%s: the libvirt Python bindings are missing: "
                         "install python3-libvirt\n" % ap.prog)
        return False
    if bool(args.domains) == args.all:
        ap.error("name domains or give --all, not both")
    return True


def run(args, ap):
    """The preflight of args; returns the exit status."""
    if not can_run(args, ap):
        return 2
    if args.xml and len(args.domains) != 1:
        ap.error("--xml needs exactly one domain")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(2))
    silence_libvirt()
    try:
        src_conn = libvirt.open(args.src)
        dst_conn = libvirt.open(args.to)
        doms = src_conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE) \
            if args.all else [src_conn.lookupByName(d) for d in args.domains]
    except libvirt.libvirtError as e:
        sys.stderr.write("abiguard preflight: %s\n" % message(e))
        return 2
    results, status = [], 0
    for dom in sorted(doms, key=lambda d: d.name()):
        # A signal in the middle of a libvirt call can cost the connection
        # the cleanup needs: take SIGTERM and Ctrl-C between domains only.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP)
        t0 = time.monotonic()
        try:
            res = check(dst_conn, dom, args.xml)
        except (Error, RuntimeError, libvirt.libvirtError, OSError) as e:
            msg = message(e)
            res = {"domain": dom.name(), "verdict": "error", "error": msg}
            if not args.json:
                print("%s: error: %s" % (dom.name(), msg))
            status = 2
        else:
            if res["verdict"] == "refused":
                status = max(status, 1)
            if not args.json:
                show(res)
        res["seconds"] = round(time.monotonic() - t0, 3)
        results.append(res)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP)
    if args.json:
        print(json.dumps(results, indent=2))
    return status

