"""TAP output for the harness's Python tests: one helper for all of them.

    tap = Tap(len(cases))       # or Tap(): the plan is printed at the end
    tap.result(ok, "name", ["a diagnostic line", ...])
    tap.result(False, "name", todo="why")      # a named expected failure
    sys.exit(tap.done())

scripts/check.sh counts the results and compares them with the plan.
"""
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

    def done(self):
        """The exit status: 1 if a result failed or some are missing."""
        if self.plan is None:
            print("1..%d" % self.count, flush=True)
        elif self.count != self.plan:
            print("# planned %d results, printed %d" % (self.plan, self.count))
            return 1
        return 1 if self.failed else 0
