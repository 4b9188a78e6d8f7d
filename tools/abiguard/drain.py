"""Empty a libvirt host: every running VM migrates live to another host.

  abiguard drain --from URI --to URI [--to URI ...] [--dry-run]
                 [--parallel N] [--unsafe] [--json] DOMAIN... | --all

Plan: for every domain and every destination, the preflight's verdict,
asked of that destination's QEMU (one throwaway copy per destination and
per device configuration, compared with each domain's own guest-ABI
fingerprint; four at a time).  A domain goes where it migrates as it is, to the least
loaded such destination; else where it migrates with the preflight's
remedy, checked again with the remedy applied; else it stays, with every
destination's reason.  --dry-run prints the plan and stops.

Move: each domain migrates live through libvirt, --parallel N at a time
(default 1).  An adapted domain's destination XML, and its persistent
definition there, carry the remedy, so that the destination starts its
devices as the source has them, also after a restart.  A persistent
domain is undefined on the source.  Progress goes to stderr.

Prove: after each migration, the destination's QEMU compares the
fingerprint the source reported just before it with the running domain:
no difference but those the plan accepted, or the drain says so and
stops.

Stop: on SIGINT or SIGTERM no new migration starts and the running ones
end; a second signal cancels them (libvirt leaves such a domain running
on the source).  Every domain runs on exactly one host.

Exit status: 0 when every domain moved, 1 when some stayed, 2 on an error
(a migration that failed, a fingerprint that changed, a host that could
not be asked).
"""
import concurrent.futures
import copy
import json
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET

from abiguard import abi, preflight
from abiguard.preflight import Error, Monitor

# fingerprints read and throwaway copies compared at a time, in the plan:
# QMP reads and paused QEMUs, cheap next to a migration
PLAN_WORKERS = 4
# the parts of a domain's XML that do not shape its devices
NOT_SHAPE = ("name", "uuid", "title", "description", "metadata")


def shape(xml):
    """A key equal for domains whose throwaway copies are the same: their
    devices, without what names, locates or identifies one VM."""
    root = ET.fromstring(xml)
    for tag in NOT_SHAPE:
        for node in root.findall(tag):
            root.remove(node)
    for dev in root.find("devices"):
        for child in list(dev):
            if child.tag in ("source", "backingStore", "mac", "log"):
                dev.remove(child)
    return ET.tostring(root, encoding="unicode")


class Fleet:
    """The source host and the destinations, and the domains to move."""

    def __init__(self, libvirt, args):
        self.libvirt = libvirt
        self.src = libvirt.open(args.src)
        self.dsts = {uri: libvirt.open(uri) for uri in args.to}
        if args.all:
            self.doms = self.src.listAllDomains(
                libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        else:
            self.doms = [self.src.lookupByName(d) for d in args.domains]
        self.doms.sort(key=lambda d: d.name())

    def only(self, uri):
        """The fleet with one destination."""
        narrow = copy.copy(self)
        narrow.dsts = {uri: self.dsts[uri]}
        return narrow


def read_domain(dom):
    """What the plan needs of a running domain."""
    if not dom.isActive():
        raise Error("not running")
    return {"dom": dom, "name": dom.name(),
            "fingerprint": abi.guest_abi(Monitor(dom)),
            "xml": preflight.migratable_xml(dom), "live": dom.XMLDesc(0)}


def ask(conn, group, xml):
    """The verdicts of one destination on a group of domains of one shape:
    name -> the preflight's result, or {"error": ...}."""
    out = {}
    try:
        with preflight.Copy(conn, group[0]["dom"], xml) as copy:
            for d in group:
                out[d["name"]] = preflight.result(
                    d["name"], copy.compare(d["fingerprint"]), d["live"])
    except (Error, RuntimeError, OSError, preflight.libvirt.libvirtError) as e:
        for d in group:
            out.setdefault(d["name"], {"verdict": "error",
                                       "error": preflight.message(e)})
    return out


def ask_all(fleet, domains, xml_of):
    """verdicts[name][uri] for each domain, against every destination,
    each domain as xml_of(domain) configures it."""
    groups = {}
    for d in domains:
        groups.setdefault(shape(xml_of(d)), []).append(d)
    verdicts = {d["name"]: {} for d in domains}
    with concurrent.futures.ThreadPoolExecutor(PLAN_WORKERS) as ex:
        jobs = [ex.submit(ask, conn, group, xml_of(group[0]))
                for group in groups.values() for conn in fleet.dsts.values()]
        uris = [uri for _ in groups for uri in fleet.dsts]
        for uri, job in zip(uris, jobs):
            for name, res in job.result().items():
                verdicts[name][uri] = res
    return verdicts, len(jobs)


def reason(res):
    if res["verdict"] == "error":
        return "error: " + res["error"]
    check = res["check"]
    first = [line.strip() for line in check["report"].splitlines()
             if line.strip()]
    return "; ".join(first[1:] or first)


def read_or_error(dom):
    try:
        return read_domain(dom)
    except (Error, RuntimeError, preflight.libvirt.libvirtError) as e:
        return {"domain": dom.name(), "action": "error",
                "error": preflight.message(e)}


def plan(fleet):
    """Where each domain goes and how: a list of dicts, one per domain,
    and where the time went."""
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(PLAN_WORKERS) as ex:
        read = list(ex.map(read_or_error, fleet.doms))
    domains = [d for d in read if "fingerprint" in d]
    planned = [d for d in read if "fingerprint" not in d]
    t1 = time.monotonic()
    verdicts, copies = ask_all(fleet, domains, lambda d: d["xml"])
    t2 = time.monotonic()
    load = {uri: 0 for uri in fleet.dsts}
    adapt = []
    for d in domains:
        v = verdicts[d["name"]]
        as_is = [uri for uri in fleet.dsts
                 if v[uri]["verdict"] in ("migrates", "migrates with notes")]
        if as_is:
            uri = min(as_is, key=lambda u: load[u])
            load[uri] += 1
            planned.append(step(d, uri, v[uri], "as it is"))
            continue
        fixable = [uri for uri in fleet.dsts
                   if v[uri]["verdict"] == "refused" and v[uri]["changes"]]
        entry = {"domain": d["name"], "action": "stays",
                 "reasons": {uri: reason(v[uri]) for uri in fleet.dsts},
                 "remedies": {uri: v[uri]["remedy"] for uri in fixable}}
        planned.append(entry)
        if fixable:
            adapt.append((d, fixable, entry))
    # the remedy applied, asked again: a remedy is only as good as the
    # verdict on it
    for uri in fleet.dsts:
        todo = [(d, entry) for d, fixable, entry in adapt
                if uri in fixable and entry["action"] == "stays"]
        if not todo:
            continue
        fixed = {d["name"]: preflight.apply_remedy(
            d["xml"], verdicts[d["name"]][uri]["changes"], d["live"])
            for d, _ in todo}
        again, more = ask_all(fleet.only(uri), [d for d, _ in todo],
                              lambda d: fixed[d["name"]])
        copies += more
        for d, entry in todo:
            res = again[d["name"]][uri]
            if res["verdict"] not in ("migrates", "migrates with notes"):
                entry["reasons"][uri] += "; with the remedy: " + reason(res)
                continue
            load[uri] += 1
            entry.clear()
            entry.update(step(d, uri, res, "adapted"))
            entry["changes"] = verdicts[d["name"]][uri]["changes"]
            entry["xml"] = fixed[d["name"]]
    t3 = time.monotonic()
    return sorted(planned, key=lambda p: p["domain"]), {
        "read_seconds": round(t1 - t0, 2), "ask_seconds": round(t2 - t1, 2),
        "remedy_seconds": round(t3 - t2, 2), "copies": copies}


def step(d, uri, res, how):
    notes = ["%s: %s: source %s, destination %s"
             % (dev["device"], diff["field"], diff["source"],
                diff["destination"])
             for dev in res["check"]["compatible"]
             for diff in dev["differences"]]
    return {"domain": d["name"], "action": "move", "to": uri, "how": how,
            "notes": notes, "xml": None, "changes": [],
            "accepted": sorted((dev["device"], diff["field"])
                               for dev in res["check"]["compatible"]
                               for diff in dev["differences"])}


class Drain:
    """The moves of a plan, --parallel at a time, and their results."""

    def __init__(self, fleet, parallel, unsafe):
        self.fleet, self.parallel, self.unsafe = fleet, parallel, unsafe
        self.stopping = self.cancelling = False
        self.running = {}               # name -> source domain
        self.lock = threading.Lock()

    def signal(self, signum, frame):
        if self.stopping:
            self.cancelling = True
        self.stopping = True

    def move(self, p):
        """Migrate one domain, then prove its fingerprint; the result."""
        try:
            return self.migrate(p)
        except (Error, RuntimeError, self.fleet.libvirt.libvirtError) as e:
            return {"domain": p["domain"], "to": p["to"], "how": p["how"],
                    "result": "failed", "error": preflight.message(e)}

    def migrate(self, p):
        lv = self.fleet.libvirt
        dom = self.fleet.src.lookupByName(p["domain"])
        out = {"domain": p["domain"], "to": p["to"], "how": p["how"],
               "changes": p["changes"], "notes": p["notes"]}
        before = abi.guest_abi(Monitor(dom))
        flags = lv.VIR_MIGRATE_LIVE | lv.VIR_MIGRATE_PERSIST_DEST
        if dom.isPersistent():
            flags |= lv.VIR_MIGRATE_UNDEFINE_SOURCE
        if self.unsafe:
            flags |= lv.VIR_MIGRATE_UNSAFE
        params = {}
        if p["xml"]:
            params[lv.VIR_MIGRATE_PARAM_DEST_XML] = p["xml"]
            params[lv.VIR_MIGRATE_PARAM_PERSIST_XML] = p["xml"]
        t0 = time.monotonic()
        with self.lock:
            self.running[p["domain"]] = dom
        try:
            new = dom.migrate3(self.fleet.dsts[p["to"]], params, flags)
        except lv.libvirtError as e:
            out["seconds"] = round(time.monotonic() - t0, 1)
            out["result"] = "cancelled" if self.cancelling else "failed"
            out["error"] = preflight.message(e)
            return out
        finally:
            with self.lock:
                del self.running[p["domain"]]
        out["seconds"] = round(time.monotonic() - t0, 1)
        try:
            stats = new.jobStats(lv.VIR_DOMAIN_JOB_STATS_COMPLETED)
            out["downtime_ms"] = stats.get("downtime")
        except lv.libvirtError:
            out["downtime_ms"] = None
        check = preflight.compare(Monitor(new), before)
        accepted = sorted((dev["device"], diff["field"])
                          for dev in check["compatible"]
                          for diff in dev["differences"])
        out["fingerprint"] = "same" if not check["differences"] and \
            accepted == p["accepted"] else "changed"
        if out["fingerprint"] == "changed":
            out["result"] = "changed"
            out["error"] = check["report"].strip() or \
                "differences the plan did not accept: %s" % accepted
        else:
            out["result"] = "moved"
        return out

    def progress(self):
        lines = []
        with self.lock:
            running = dict(self.running)
        for name, dom in sorted(running.items()):
            try:
                stats = dom.jobStats(0)
            except self.fleet.libvirt.libvirtError:
                continue
            total = stats.get("memory_total", 0)
            lines.append("%s: migrating, %s" % (
                name, "RAM %d MiB sent, %d of %d MiB left" % (
                    stats.get("memory_processed", 0) >> 20,
                    stats.get("memory_remaining", 0) >> 20, total >> 20)
                if total else "the destination starts"))
        if lines:
            sys.stderr.write("abiguard drain: " + "; ".join(lines) + "\n")

    def run(self, steps):
        results = []
        todo = list(steps)
        with concurrent.futures.ThreadPoolExecutor(self.parallel) as ex:
            jobs, last = {}, 0
            said_stop, cancelled = False, {}
            while todo or jobs:
                while todo and len(jobs) < self.parallel and \
                        not self.stopping:
                    p = todo.pop(0)
                    jobs[ex.submit(self.move, p)] = p
                if not jobs:
                    break
                done, _ = concurrent.futures.wait(
                    jobs, timeout=0.5,
                    return_when=concurrent.futures.FIRST_COMPLETED)
                for job in done:
                    del jobs[job]
                    res = job.result()
                    results.append(res)
                    if res["result"] == "changed":
                        self.stopping = True
                if self.stopping and not said_stop:
                    said_stop = True
                    sys.stderr.write("abiguard drain: stopping: no new "
                                     "migration; %d not started\n"
                                     % len(todo))
                if self.cancelling and not cancelled:
                    with self.lock:
                        cancelled = dict(self.running)
                    for name, dom in sorted(cancelled.items()):
                        sys.stderr.write("abiguard drain: cancelling the "
                                         "migration of %s\n" % name)
                        try:
                            dom.abortJob()
                        except self.fleet.libvirt.libvirtError:
                            pass
                if time.monotonic() - last >= 2:
                    self.progress()
                    last = time.monotonic()
        results += [{"domain": p["domain"], "to": p["to"], "how": p["how"],
                     "result": "not started"} for p in todo]
        return results


def summary(entry, names):
    """What the report says of one domain after where it went: a line,
    then more lines for the reasons it stayed."""
    if entry["result"] in ("moved", "changed"):
        how = entry["how"]
        if entry.get("changes"):
            how += ": " + ", ".join(
                "%s %s=%s" % (c["alias"], c["attribute"], c["value"])
                for c in entry["changes"])
        if entry.get("notes"):
            how += "; noted: " + "; ".join(entry["notes"])
        return how + ("" if entry["result"] == "moved" else
                      "; FINGERPRINT CHANGED: " + entry["error"])
    if entry["result"] == "stayed":
        return "no destination takes it\n" + "\n".join(
            "    %s: %s" % (names[uri], r)
            for uri, r in entry["reasons"].items())
    return entry.get("error", "")


def report(entries, names):
    print("%-20s %-12s %-10s %8s %9s  %s" % ("DOMAIN", "RESULT", "TO",
                                            "TIME s", "DOWN ms", "HOW"))
    for e in entries:
        down = e.get("downtime_ms")
        print("%-20s %-12s %-10s %8s %9s  %s" % (
            e["domain"], e["result"], names.get(e.get("to"), "-"),
            e.get("seconds", "-"), "-" if down is None else down,
            summary(e, names)))


def show_plan(planned, names):
    for p in planned:
        if p["action"] == "move":
            print("%s: to %s, %s" % (p["domain"], names[p["to"]], p["how"]))
            for c in p["changes"]:
                print("  remedy: %s %s=%s" % (c["alias"], c["attribute"],
                                              c["value"]))
            for n in p["notes"]:
                print("  note: " + n)
        elif p["action"] == "stays":
            print("%s: stays" % p["domain"])
            for uri, r in p["reasons"].items():
                print("  %s: %s" % (names[uri], r))
        else:
            print("%s: error: %s" % (p["domain"], p["error"]))


def add_arguments(ap):
    ap.add_argument("--from", dest="src", metavar="URI", required=True,
                    help="the host to empty")
    ap.add_argument("--to", metavar="URI", action="append", required=True,
                    help="a destination host (repeat for more)")
    ap.add_argument("--dry-run", action="store_true",
                    help="print the plan and stop")
    ap.add_argument("--parallel", type=int, default=1, metavar="N",
                    help="migrations at a time (default 1)")
    ap.add_argument("--unsafe", action="store_true",
                    help="as virsh migrate --unsafe: for hosts that share "
                    "storage libvirt cannot tell is shared (make fleet's)")
    preflight.add_domain_arguments(ap)


def run(args, ap):
    if not preflight.can_run(args, ap):
        return 2
    lv = preflight.libvirt
    if args.parallel < 1:
        ap.error("--parallel needs a number of at least 1")
    preflight.silence_libvirt()
    t0 = time.monotonic()
    try:
        fleet = Fleet(lv, args)
        planned, timing = plan(fleet)
    except (lv.libvirtError, Error, RuntimeError) as e:
        sys.stderr.write("abiguard drain: %s\n" % preflight.message(e))
        return 2
    plan_s = round(time.monotonic() - t0, 2)
    names = {uri: "dst%d" % (i + 1) for i, uri in enumerate(args.to)}
    moves = [p for p in planned if p["action"] == "move"]
    stays = [p for p in planned if p["action"] != "move"]
    if args.dry_run:
        if args.json:
            print(json.dumps({"plan": planned, "plan_seconds": plan_s,
                              "plan_timing": timing, "destinations": names},
                             indent=2))
        else:
            show_plan(planned, names)
            print("plan: %d to move, %d to stay, in %.1f s; destinations: %s"
                  % (len(moves), len(stays), plan_s, ", ".join(
                      "%s %s" % (n, u) for u, n in names.items())))
        return 2 if any(p["action"] == "error" for p in planned) else \
            1 if stays else 0
    drain = Drain(fleet, args.parallel, args.unsafe)
    for s in preflight.STOP:
        signal.signal(s, drain.signal)
    t1 = time.monotonic()
    entries = drain.run(moves)
    entries += [{"domain": p["domain"],
                 "result": "stayed" if p["action"] == "stays" else "error",
                 "reasons": p.get("reasons"), "remedies": p.get("remedies"),
                 "error": p.get("error")} for p in stays]
    entries.sort(key=lambda e: e["domain"])
    total = {"plan_seconds": plan_s, "plan_timing": timing,
             "move_seconds": round(time.monotonic() - t1, 2)}
    if args.json:
        print(json.dumps({"domains": entries, "destinations": names,
                          **total}, indent=2))
    else:
        report(entries, names)
        print("moved %d, stayed %d, failed %d; plan %.1f s, moves %.1f s; "
              "destinations: %s" % (
                  sum(e["result"] == "moved" for e in entries),
                  sum(e["result"] in ("stayed", "not started", "cancelled")
                      for e in entries),
                  sum(e["result"] in ("failed", "changed", "error")
                      for e in entries),
                  total["plan_seconds"], total["move_seconds"],
                  ", ".join("%s %s" % (n, u) for u, n in names.items())))
    if any(e["result"] in ("failed", "changed", "error") for e in entries):
        return 2
    return 0 if all(e["result"] == "moved" for e in entries) else 1
