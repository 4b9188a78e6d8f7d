#!/usr/bin/python3
"""Markdown table of two upstream-qtests.py results, side by side.

  upstream-qtests-table.py UNPATCHED.json PATCHED.json

One row per test: the result on each build (cases passed, failed and
skipped) and the seconds each took.  A row is marked **differs**, and the
exit status is 1, when the series changed an outcome: the test's result,
or a case that passes unpatched and does not pass patched (skipped, failed
or gone).  Cases only the patched build has (the series' machine types,
its own qtests) must pass; their counts are shown, not marked.
"""
import json
import sys


def cell(r):
    if r is None:
        return "not run"
    parts = [f"{r['ok']} ok"]
    if r["not_ok"]:
        parts.append(f"{r['not_ok']} not ok")
    if r["skip"]:
        parts.append(f"{r['skip']} skipped")
    if r["rc"] != 0:
        parts.append(f"exit {r['rc']}")
    if "first_run" in r:
        parts.append("second run; the first: " + cell(r["first_run"]))
    return f"{r['result']} ({', '.join(parts)})"


def changed(u, p):
    """What the series changed in a test's outcome, as a phrase, or None."""
    if p is None:
        return "not run on the patched build"
    if u is not None and u["result"] != p["result"]:
        return "result %s, unpatched %s" % (p["result"], u["result"])
    was = u["cases"] if u else {}
    for case, outcome in sorted(p["cases"].items()):
        if outcome != "pass" and was.get(case, "pass") == "pass":
            return "%s: %s" % (case, outcome)
    gone = sorted(c for c, o in was.items() if o == "pass" and c not in p["cases"])
    return "%s: gone" % gone[0] if gone else None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    unpatched, patched = (json.load(open(p)) for p in sys.argv[1:])
    print("| test | unpatched | patched | seconds (unpatched / patched) |")
    print("| --- | --- | --- | --- |")
    differ = []
    for name in sorted(set(unpatched) | set(patched)):
        u, p = unpatched.get(name), patched.get(name)
        why = changed(u, p)
        differs = " **differs** (%s)" % why if why else ""
        if why:
            differ.append(name)
        secs = " / ".join(str(r["seconds"]) if r else "-" for r in (u, p))
        print(f"| {name}{differs} | {cell(u)} | {cell(p)} | {secs} |")
    for label, res in (("unpatched", unpatched), ("patched", patched)):
        total = sum(r["seconds"] for r in res.values())
        fails = sum(r["result"] == "fail" for r in res.values())
        print(f"\n{label}: {len(res)} tests, {fails} failed, "
              f"{total / 60:.1f} minutes")
    if differ:
        sys.stderr.write("upstream qtests whose outcome differs on the "
                         "patched build: %s\n" % ", ".join(differ))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
