#!/usr/bin/python3
"""Run upstream's x86_64 qtests of a QEMU build tree, as meson declares them.

  upstream-qtests.py BUILD_DIR OUT.json [TEST...]

Each test of the suite qtest-x86_64 (or only the TESTs named, whose results
then replace those already in OUT.json) runs with the command and
environment meson gives it, one after the other, from BUILD_DIR; its TAP
output goes to logs/ beside OUT.json.  Three departures from 'meson test',
all because guests make no progress under KVM here:

- run this under scripts/without-kvm.sh, so that tests fall back to TCG;
- migration-test loses the --full that meson adds when /dev/kvm existed at
  configure time (its quick set is what upstream runs without KVM);
- timeouts are meson's times TIMEOUT_MULTIPLIER ('meson test -t'): under
  TCG on two cores, migration-test's quick set takes longer than its 480 s.

OUT.json maps each test to its result: "pass", "fail" or "skip" (no case
passed, none failed), its counts as tests/tap.py reads them (ok, not ok,
skip, xfail), each case's outcome ("cases"), exit status and seconds.
A test that fails only in a case known to race under load
(tests/tap.py, KNOWN_RACES) gets one more run, and its entry is that run's,
with the first one under "first_run" (log NAME.log.first).  The exit
status is 0 if no test failed.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
import tap  # noqa: E402

TIMEOUT_MULTIPLIER = 3


def declared_tests(build):
    out = subprocess.run([os.path.join(build, "pyvenv/bin/meson"),
                          "introspect", "--tests", build],
                         check=True, capture_output=True, text=True).stdout
    return [t for t in json.loads(out)
            if any(s.split(":")[-1] == "qtest-x86_64" for s in t["suite"])]


def run(build, test, logdir):
    name = test["name"].split("/", 1)[1]
    cmd = [a for a in test["cmd"]
           if not (name == "migration-test" and a == "--full")]
    env = dict(os.environ, **test["env"])
    log = os.path.join(logdir, name + ".log")
    t0 = time.monotonic()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, cwd=test["workdir"] or build, env=env,
                                stdout=f, stderr=subprocess.STDOUT,
                                timeout=test["timeout"] * TIMEOUT_MULTIPLIER
                                ).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    seconds = round(time.monotonic() - t0, 1)
    with open(log, errors="replace") as f:
        c = tap.read(f.read(), rc)
    if c.failed:
        result = "fail"
    elif c.passed == 0:
        result = "skip"
    else:
        result = "pass"
    return name, {"result": result, "ok": c.passed, "not_ok": c.failed,
                  "skip": c.skipped, "xfail": c.xfailed, "rc": rc,
                  "seconds": seconds, "cases": c.cases}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    build, out, only = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3:]
    logdir = os.path.join(os.path.dirname(os.path.abspath(out)), "logs")
    os.makedirs(logdir, exist_ok=True)
    tests = [t for t in declared_tests(build)
             if not only or t["name"].split("/", 1)[1] in only]
    results = {}
    if only and os.path.exists(out):
        with open(out) as f:
            results = json.load(f)
    for test in tests:
        name, r = run(build, test, logdir)
        log = os.path.join(logdir, name + ".log")
        if r["result"] == "fail" and tap.known_race(open(log).read()):
            # failed only in a case that races under load (tap.KNOWN_RACES):
            # one more run, the first one recorded
            os.replace(log, log + ".first")
            name, again = run(build, test, logdir)
            r = dict(again, first_run=r)
        results[name] = r
        print(f"{name:32} {r['result']:5} {r['ok']:4} ok {r['not_ok']:3} "
              f"not ok {r['skip']:3} skipped {r['seconds']:7.1f} s",
              flush=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    failed = sorted(n for n, r in results.items() if r["result"] == "fail")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
