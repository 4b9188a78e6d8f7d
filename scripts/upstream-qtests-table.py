#!/usr/bin/python3
"""Markdown table of two upstream-qtests.py results, side by side.

  upstream-qtests-table.py UNPATCHED.json PATCHED.json

One row per test: the result on each build (cases passed, failed and
skipped) and the seconds each took.  Rows whose result or case counts
differ are marked, and make the exit status 1: the series must change no
upstream test's outcome.
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


def key(r):
    """What must be equal on both builds: the result and the case counts"""
    return r and (r["result"], r["ok"], r["not_ok"], r["skip"])


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    unpatched, patched = (json.load(open(p)) for p in sys.argv[1:])
    print("| test | unpatched | patched | seconds (unpatched / patched) |")
    print("| --- | --- | --- | --- |")
    differ = []
    for name in sorted(set(unpatched) | set(patched)):
        u, p = unpatched.get(name), patched.get(name)
        differs = " **differs**" if key(u) != key(p) else ""
        if differs:
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
