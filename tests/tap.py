"""TAP for the harness: the writer of its Python tests, and the one reader
of every TAP stream it runs (the series' qtests, upstream's, the harness's
own tests, the sanitizer run).

    tap = Tap(len(cases))       # or Tap(): the plan is printed at the end
    tap.result(ok, "name", ["a diagnostic line", ...])
    tap.result(False, "name", todo="why")      # a named expected failure
    tap.skip("name", "why")                    # passed on from another stream
    sys.exit(tap.done())

    counts = read(text, rc)     # a stream, and its writer's exit status

or, from a shell, "tap.py count LOG RC", which prints the counts as
"passed failed skipped xfailed" on the first line, then a line per problem
("fail NAME" or "xfail NAME").

A failed run of upstream's qos-test is run again only when it failed in a
case that races under load and nowhere else (known_race(); from a shell,
"tap.py known-race LOG" exits 0 and prints the cases then).
"""
import re
import sys


class Tap:
    def __init__(self, plan=None):
        self.plan = plan
        self.count = 0
        self.failed = 0
        if plan is not None:
            print("1..%d" % plan, flush=True)

    def result(self, ok, name, diagnostics=(), todo=None):
        """Print one result; returns @ok."""
        self.count += 1
        print("%s %d %s%s" % ("ok" if ok else "not ok", self.count, name,
                              " # TODO " + todo if todo else ""))
        for line in diagnostics:
            print("# " + line)
        sys.stdout.flush()
        self.failed += not ok and not todo
        return ok

    def skip(self, name, why):
        """Print a skipped result, with the reason its writer gave."""
        self.count += 1
        print("ok %d %s # SKIP %s" % (self.count, name, why), flush=True)

    def done(self):
        """The exit status: 1 if a result failed or some are missing."""
        if self.plan is None:
            print("1..%d" % self.count, flush=True)
        elif self.count != self.plan:
            print("# planned %d results, printed %d" % (self.plan, self.count))
            return 1
        return 1 if self.failed else 0


RESULT = re.compile(r"^(ok|not ok)\b\s*(\d+)?\s*-?\s*(.*?)\s*"
                    r"(?:#\s*(SKIP|TODO)\S*\s*(.*))?$", re.IGNORECASE)
PLAN = re.compile(r"^1\.\.(\d+)")


class Counts:
    """What one TAP stream says.

    passed, failed, skipped and xfailed (a "not ok" marked TODO: a named
    expected failure) count results; failures and xfails name them, and
    cases maps each result's name to "pass", "fail", "skip" or "xfail".  A
    TODO that passes, a missing or short plan, "Bail out!", or a non-zero
    exit with no failed result are failures too.
    """

    def __init__(self):
        self.passed = self.failed = self.skipped = self.xfailed = 0
        self.failures, self.xfails = [], []
        self.cases = {}

    def fail(self, why):
        self.failed += 1
        self.failures.append(why)


def read(text, rc=0):
    c = Counts()
    plan = None
    ran = 0
    failed_at = None        # the failure whose "# " lines follow
    for line in text.splitlines():
        if failed_at is not None and line.startswith("# "):
            # its first diagnostics, so that a CI log alone tells why
            if len(c.failures[failed_at]) < 400:
                c.failures[failed_at] += " | " + line[2:200]
            continue
        failed_at = None
        if line.startswith("Bail out!"):
            c.fail(line)
            continue
        m = PLAN.match(line)
        if m:
            plan = int(m.group(1))
            if plan == 0 and "# SKIP" in line.upper():
                c.skipped += 1      # the whole stream skipped, and says why
            continue
        m = RESULT.match(line)
        if not m:
            continue
        ran += 1
        ok = m.group(1).lower() == "ok"
        directive = (m.group(4) or "").upper()
        name = m.group(3) + (" # " + m.group(5) if m.group(5) else "")
        if directive == "SKIP":
            c.skipped += 1
            c.cases[m.group(3)] = "skip"
        elif directive == "TODO" and ok:
            c.fail("%s: an expected failure passed (remove its TODO)" % name)
            c.cases[m.group(3)] = "fail"
        elif directive == "TODO":
            c.xfailed += 1
            c.xfails.append(name)
            c.cases[m.group(3)] = "xfail"
        elif ok:
            c.passed += 1
            c.cases[m.group(3)] = "pass"
        else:
            c.fail(name)
            c.cases[m.group(3)] = "fail"
            failed_at = len(c.failures) - 1
    if plan is None:
        c.fail("no plan: the stream ended early (exit %s)" % rc)
    elif plan != ran:
        c.fail("planned %d results, read %d (exit %s)" % (plan, ran, rc))
    elif rc != 0 and not c.failed:
        c.fail("exit %s with no failed result" % rc)
    return c


# Upstream cases that race under load, with the reason.
KNOWN_RACES = {
    "/vhost-user/reconnect": "it gives the backend 5 s to get the memory "
                             "table again",
}
CHILD = re.compile(r"child process \(([^ )]*)")


def failed_cases(text):
    """The cases a stream says failed: its "not ok" results, and the child
    processes glib names when a case's subprocess fails or crashes."""
    cases = set()
    for line in text.splitlines():
        m = RESULT.match(line)
        if m and m.group(1).lower() == "not ok" and m.group(4) is None:
            cases.add(m.group(3))
        for child in CHILD.findall(line):
            cases.add(child[:-len("/subprocess")]
                      if child.endswith("/subprocess") else child)
    return sorted(cases)


def known_race(text):
    """The failed cases if every one is a known race, else None."""
    cases = failed_cases(text)
    if cases and all(any(c.endswith(r) for r in KNOWN_RACES) for c in cases):
        return cases
    return None


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "known-race":
        with open(sys.argv[2], errors="replace") as f:
            cases = known_race(f.read())
        if cases is None:
            sys.exit(1)
        print(" ".join(cases))
        return
    if len(sys.argv) != 4 or sys.argv[1] != "count":
        sys.exit("usage: tap.py count LOG RC | tap.py known-race LOG")
    with open(sys.argv[2], errors="replace") as f:
        rc = sys.argv[3]
        c = read(f.read(), int(rc) if rc.lstrip("-").isdigit() else rc)
    print(c.passed, c.failed, c.skipped, c.xfailed)
    for name in c.failures:
        print("fail " + name)
    for name in c.xfails:
        print("xfail " + name)


if __name__ == "__main__":
    main()
