#!/usr/bin/python3
"""Upstream's migration-test in its cross-version mode, as one TAP test.

  migration-test-across.py BUILD_DIR PEER SIDE MACHINE [CASE...]

Runs BUILD_DIR's migration-test, from BUILD_DIR, with BUILD_DIR's QEMU
(QTEST_QEMU_BINARY, as meson gives it) on one side and the QEMU PEER on
the other: SIDE "src" makes PEER the source (QTEST_QEMU_BINARY_SRC), "dst"
the destination (QTEST_QEMU_BINARY_DST).  Both run MACHINE
(QTEST_QEMU_MACHINE_TYPE), /dev/kvm hidden (scripts/without-kvm.sh).  The
CASEs given (migration-test's -p), or its whole quick set.

Upstream supports a peer of the previous release only.  A case that needs
what PEER's release lacks (NEEDS, by the releases the two QEMUs report) is
left out of the run and then run alone: it must fail, and is a named
expected failure with the reason.  Should it pass, the limit is gone and
the test fails, so that NEEDS stays true.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSTCOPY_LATENCY = ("the test reads postcopy-latency from the destination's "
                    "query-migrate, which QEMU 10.1 added")
MULTIFD_POSTCOPY = ("multifd with postcopy came in QEMU 10.1: 10.0 answers "
                    "\"Postcopy is not yet compatible with multifd\"")
# (case, the peer's side it concerns, the release it needs there, why)
NEEDS = [
    ("/x86_64/migration/postcopy/plain", "dst", (10, 1), POSTCOPY_LATENCY),
    ("/x86_64/migration/postcopy/recovery/plain", "dst", (10, 1),
     POSTCOPY_LATENCY),
    ("/x86_64/migration/postcopy/preempt/plain", "dst", (10, 1),
     POSTCOPY_LATENCY),
    ("/x86_64/migration/multifd+postcopy/tcp/plain/cancel", "src", (10, 1),
     MULTIFD_POSTCOPY),
    ("/x86_64/migration/multifd+postcopy/tcp/plain/cancel", "dst", (10, 1),
     MULTIFD_POSTCOPY),
]


def release(qemu, cwd):
    out = subprocess.run([qemu, "-version"], cwd=cwd, capture_output=True,
                         text=True).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    if not m:
        sys.exit("%s -version: no release in %r" % (qemu, out[:200]))
    return int(m.group(1)), int(m.group(2))


def run(build, env, args):
    test = os.path.join(build, "tests/qtest/migration-test")
    p = subprocess.run([os.path.join(TOP, "scripts/without-kvm.sh"), test,
                        "--tap", "-k"] + args, cwd=build, env=env,
                       capture_output=True, text=True, errors="replace",
                       timeout=900)
    # the run's own output, as diagnostics of this stream
    sys.stderr.write("".join("# " + line for line in
                             (p.stdout + p.stderr).splitlines(True)))
    return p.stdout, p.returncode


def main():
    if len(sys.argv) < 5 or sys.argv[3] not in ("src", "dst"):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    build, peer, side, machine = sys.argv[1:5]
    cases = sys.argv[5:]
    env = dict(os.environ, QTEST_QEMU_MACHINE_TYPE=machine)
    env["QTEST_QEMU_BINARY_" + side.upper()] = peer
    ours = release(env["QTEST_QEMU_BINARY"], build)
    theirs = release(peer, build)
    limits = {case: why for case, s, needs, why in NEEDS
              if s == side and theirs < needs <= ours
              and (not cases or case in cases)}
    if cases:
        args = [a for c in cases if c not in limits for a in ("-p", c)]
    else:
        args = [a for c in limits for a in ("-s", c)]
    out, rc = run(build, env, args) if args or not cases else ("1..0", 0)
    counts = tap.read(out, rc)
    t = tap.Tap()
    for name, outcome in counts.cases.items():
        if name in limits:
            continue
        if outcome == "skip":
            t.skip(name, "skipped by migration-test itself")
        else:
            t.result(outcome == "pass", name)
    for why in counts.failures:
        if not any(why.startswith(n) for n in counts.cases):
            t.result(False, "migration-test: " + why)
    for case, why in limits.items():
        out, rc = run(build, env, ["-p", case])
        alone = tap.read(out, rc)
        if alone.cases.get(case) == "pass" and not alone.failed:
            t.result(False, case + " passed: the limit in NEEDS is gone")
        else:
            t.result(False, case, todo="%d.%d as %s: %s" % (
                theirs + ("the destination" if side == "dst"
                          else "the source", why)))
    sys.exit(t.done())


if __name__ == "__main__":
    main()
