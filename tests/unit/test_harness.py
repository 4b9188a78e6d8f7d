"""Unit tests of the harness's pure functions: no root, no build, no QEMU.

  python3 -m unittest discover -s tests/unit -v      (make check-fast)
"""
import importlib.util
import os
import struct
import subprocess
import sys
import tempfile
import time
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path[:0] = [os.path.join(TOP, "scripts"), os.path.join(TOP, "tests"),
                os.path.join(TOP, "tools")]
import guestabi  # noqa: E402
import tap  # noqa: E402
from abiguard import abi, drain, preflight  # noqa: E402


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


table = load(os.path.join(TOP, "scripts", "upstream-qtests-table.py"),
             "upstream_qtests_table")
stream = load(os.path.join(TOP, "tests", "migration-stream-compare.py"),
              "migration_stream_compare")

BLK = ("00:10.0 blk 1af4:1001 sub 1af4:0002 rev 00 class 010000 bars "
       "0:io:128,1:mem:4096 caps MSI-X@98/2,vendor@84 virtio 2 transitional "
       "vqs 1 features BLK_F_DISCARD,BLK_F_FLUSH,F_VERSION_1")


class Fingerprint(unittest.TestCase):
    def test_parse(self):
        addr, f = guestabi.parse(BLK)
        self.assertEqual(addr, "00:10.0")
        self.assertEqual(f["id"], "blk")
        self.assertEqual(f["bars"], "0:io:128,1:mem:4096")
        self.assertEqual(f["virtio"], "2 transitional")
        self.assertEqual(f["features"], "BLK_F_DISCARD,BLK_F_FLUSH,F_VERSION_1")

    def test_diff_bar_and_features(self):
        now = BLK.replace("0:io:128", "0:io:64").replace("BLK_F_DISCARD,", "")
        self.assertEqual(guestabi.diff([BLK], [now]), [
            "00:10.0 (blk): bars is 0:io:128,1:mem:4096 in golden, "
            "0:io:64,1:mem:4096 in now",
            "00:10.0 (blk): features only in golden: BLK_F_DISCARD; "
            "only in now: -"])

    def test_diff_device_only_on_one_side(self):
        self.assertEqual(guestabi.diff([BLK], [], "src", "dst"),
                         ["00:10.0 (blk): only in src"])
        self.assertEqual(guestabi.diff([BLK], [BLK]), [])


class FeatureNames(unittest.TestCase):
    """Feature names from the package's table of the virtio headers."""

    def test_unknown_bits_named_from_the_table(self):
        names = guestabi.feature_names(2, {
            "dev-features": ["VIRTIO_BLK_F_FLUSH: cache flush"],
            "unknown-dev-features": (1 << 16) | (1 << 32) | (1 << 47)})
        self.assertEqual(names, ["BLK_F_FLUSH", "BLK_F_SECURE_ERASE",
                                 "F_VERSION_1", "bit47"])

    def test_every_name_has_its_bit(self):
        self.assertEqual(abi.FEATURE_BITS["VIRTIO_NET_F_GUEST_USO6"], 55)
        self.assertEqual(abi.FEATURE_BITS["VIRTIO_BLK_F_WRITE_ZEROES"], 14)
        self.assertEqual(abi.feature_mask({
            "transports": ["VIRTIO_F_VERSION_1: modern",
                           "VHOST_USER_F_PROTOCOL_FEATURES: ..."],
            "dev-features": ["VIRTIO_NET_F_GUEST_USO4: a",
                             "VIRTIO_NET_F_GUEST_USO4: b"],
            "unknown-dev-features": 1 << 3}),
            (1 << 32) | (1 << 30) | (1 << 54) | (1 << 55) | (1 << 3))


class Package(unittest.TestCase):
    """The abiguard package: one version, one command."""

    def test_debian_version_is_the_package_version(self):
        import abiguard
        with open(os.path.join(TOP, "tools", "debian", "changelog")) as f:
            self.assertEqual(f.readline().split()[1], "(%s)"
                             % abiguard.__version__)

    def test_command_outside_the_checkout(self):
        """--version from another directory, and a bad subcommand is one
        usage error, exit status 2."""
        import abiguard
        env = dict(os.environ, PYTHONPATH=os.path.join(TOP, "tools"))
        run = subprocess.run([sys.executable, "-m", "abiguard", "--version"],
                             capture_output=True, text=True, env=env,
                             cwd="/")
        self.assertEqual(run.stdout, "abiguard %s\n" % abiguard.__version__)
        run = subprocess.run([sys.executable, "-m", "abiguard", "drian"],
                             capture_output=True, text=True, env=env,
                             cwd="/")
        self.assertEqual(run.returncode, 2)
        self.assertIn("invalid choice: 'drian'", run.stderr.splitlines()[-1])


class PipInstall(unittest.TestCase):
    def test_pip_installs_the_command(self):
        """pip installs tools/ into a virtual environment, offline, and the
        abiguard command it makes runs from any directory."""
        import shutil
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(TOP, "tools"), os.path.join(tmp, "src"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            venv = os.path.join(tmp, "venv")
            subprocess.run(["/usr/bin/python3", "-m", "venv",
                            "--system-site-packages", venv], check=True)
            pip = subprocess.run(
                [os.path.join(venv, "bin", "pip"), "install", "--no-index",
                 "--no-build-isolation", "-q", os.path.join(tmp, "src")],
                capture_output=True, text=True)
            self.assertEqual(pip.returncode, 0, pip.stdout + pip.stderr)
            run = subprocess.run([os.path.join(venv, "bin", "abiguard"),
                                  "--version"], capture_output=True,
                                 text=True, cwd="/",
                                 env={"PATH": "/usr/bin:/bin"})
        import abiguard
        self.assertEqual(run.stdout, "abiguard %s\n" % abiguard.__version__)


class Launcher(unittest.TestCase):
    def test_nothing_outlives_its_test(self):
        """A process started by guestabi.launch() dies with the test that
        started it, even one killed before any cleanup could run."""
        test = subprocess.run(
            [sys.executable, "-c", "import os, sys; sys.path.insert(0, %r); "
             "import guestabi; p = guestabi.launch(['sleep', '60'], "
             "open(os.devnull, 'w')); "
             "print(p.pid, flush=True); os.kill(os.getpid(), 9)"
             % os.path.join(TOP, "scripts")],
            capture_output=True, text=True)
        pid = int(test.stdout)
        for _ in range(100):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().split(") ")[1][0] == "Z":
                        break       # dead, waiting to be reaped by init
            except FileNotFoundError:
                break
            time.sleep(0.02)
        else:
            os.kill(pid, 9)
            self.fail("sleep %d outlived the test that launched it" % pid)


class Stream(unittest.TestCase):
    def test_vmdesc_offset(self):
        desc = b'{"page_size": 4096, "devices": []}'
        body = b"QEVM\x00\x00\x00\x03" + b"\x06\x00" * 8
        stream = body + b"\x06" + struct.pack(">I", len(desc)) + desc
        self.assertEqual(guestabi.vmdesc_offset(stream), len(body))

    def test_only_the_clock_may_differ(self):
        cmos = ("mc146818rtc", 0, "cmos_data")
        self.assertTrue(stream.same(cmos, "26 00 19 00", "27 00 18 00"))
        self.assertFalse(stream.same(cmos, "26 00 19 00", "26 01 19 00"))
        self.assertTrue(stream.same(("mc146818rtc", 0, "base_rtc"),
                                    "0x1", "0x2"))
        self.assertFalse(stream.same(("e1000", 0, "mac_reg/[1]"),
                                     "0x1", "0x2"))
        self.assertFalse(stream.same(("mc146818rtc", 0, "base_rtc"),
                                     "0x1", None))

    def test_no_description(self):
        with self.assertRaises(RuntimeError):
            guestabi.vmdesc_offset(b"QEVM\x00\x00\x00\x03" + b"\x00" * 16)


class Dom:
    def blockInfo(self, target):
        return [16 << 20, 0, 0]


class Scratch:
    def volume(self, name, capacity):
        return "/scratch/%s-%d" % (name, capacity)


DOMAIN = """<domain type='qemu'><name>vm1</name><uuid>x</uuid>
<os><type>hvm</type><nvram>/var/lib/nvram.fd</nvram></os><devices>
<disk type='block' device='disk'><driver name='qemu' type='qcow2'/>
<source dev='/dev/real'/><backingStore/><target dev='vda' bus='virtio'/>
<alias name='ua-disk1'/></disk>
<disk type='file' device='cdrom'><source file='/iso'/><target dev='sda'/></disk>
<memballoon model='virtio'><alias name='balloon0'/></memballoon>
</devices></domain>"""


class Xml(unittest.TestCase):
    def test_throwaway_opens_nothing_of_the_vm(self):
        out = preflight.throwaway_xml(DOMAIN, "copy1", Dom(), Scratch())
        self.assertIn("<name>copy1</name>", out)
        self.assertNotIn("/dev/real", out)
        self.assertNotIn("/iso", out)
        self.assertNotIn("nvram", out)
        self.assertIn('<source file="/scratch/vda.raw-16777216" />', out)
        self.assertIn('<driver name="qemu" type="raw" />', out)

    def test_throwaway_refuses_a_host_device(self):
        xml = DOMAIN.replace("</devices>", "<hostdev/></devices>")
        with self.assertRaises(preflight.Error):
            preflight.throwaway_xml(xml, "c", Dom(), Scratch())

    def test_remedy(self):
        devices = [
            {"device": "virtio-blk-pci 'ua-disk1' at 0000:00:02.0",
             "remedy-properties": [{"name": "discard", "value": "off"},
                                   {"name": "event_idx", "value": "off"},
                                   {"name": "queue-size", "value": "128"}]},
            {"device": "virtio-balloon-pci 'balloon0' at 0000:00:03.0",
             "remedy-properties": [{"name": "free-page-reporting",
                                    "value": "on"}]},
            {"device": "virtio-rng-pci at 0000:00:04.0",
             "remedy-properties": [{"name": "vectors", "value": "0"}]}]
        r = preflight.remedy_xml(preflight.remedy_changes(devices, DOMAIN))
        self.assertEqual(r["attributes"], [
            "<disk/driver> of alias 'ua-disk1': event_idx='off'",
            "<memballoon> of alias 'balloon0': freePageReporting='on'"])
        self.assertEqual(r["override"].splitlines(), [
            "<qemu:override>",
            "  <qemu:device alias='ua-disk1'>",
            "    <qemu:frontend>",
            "      <qemu:property name='discard' type='bool' value='false'/>",
            "      <qemu:property name='queue-size' type='unsigned' "
            "value='128'/>",
            "    </qemu:frontend>",
            "  </qemu:device>",
            "</qemu:override>"])


    def test_throwaway_leaves_the_vms_chardevs(self):
        xml = DOMAIN.replace("</devices>", "<serial type='file'><source "
                             "path='/var/log/vm1.log' append='on'/></serial>"
                             "<channel type='unix'><source mode='bind' "
                             "path='/run/vm1.agent'/><target type='virtio' "
                             "name='org.qemu.guest_agent.0'/></channel>"
                             "</devices>")
        out = preflight.throwaway_xml(xml, "c", Dom(), Scratch())
        self.assertNotIn("vm1.log", out)
        self.assertNotIn("vm1.agent", out)
        self.assertIn('<serial type="null" />', out)
        self.assertIn('<channel type="null"><target type="virtio" '
                      'name="org.qemu.guest_agent.0" /></channel>', out)

    def test_apply_remedy(self):
        """The changes in the domain XML, devices found by alias in the
        live XML when the migratable XML lacks libvirt's own aliases."""
        migratable = DOMAIN.replace("<alias name='balloon0'/>", "")
        changes = [
            {"alias": "ua-disk1", "element": None, "attribute": "discard",
             "value": "off"},
            {"alias": "ua-disk1", "element": "disk/driver",
             "attribute": "event_idx", "value": "on"},
            {"alias": "balloon0", "element": "memballoon",
             "attribute": "freePageReporting", "value": "on"}]
        out = preflight.apply_remedy(migratable, changes, DOMAIN)
        self.assertIn('<driver name="qemu" type="qcow2" event_idx="on" />',
                      out)
        self.assertIn('<memballoon model="virtio" freePageReporting="on" />',
                      out)
        self.assertIn('<qemu:override><qemu:device alias="ua-disk1">'
                      '<qemu:frontend><qemu:property name="discard" '
                      'type="bool" value="false" /></qemu:frontend>'
                      '</qemu:device></qemu:override>', out)
        self.assertEqual(preflight.remedy_xml(changes)["attributes"], [
            "<disk/driver> of alias 'ua-disk1': event_idx='on'",
            "<memballoon> of alias 'balloon0': freePageReporting='on'"])


class DrainPlan(unittest.TestCase):
    def test_shape_ignores_what_names_one_vm(self):
        other = DOMAIN.replace("vm1", "vm2").replace("<uuid>x", "<uuid>y") \
            .replace("/dev/real", "/dev/other")
        self.assertEqual(drain.shape(DOMAIN), drain.shape(other))
        self.assertNotEqual(drain.shape(DOMAIN), drain.shape(
            DOMAIN.replace("bus='virtio'", "bus='sata'")))


class TapReader(unittest.TestCase):
    def test_counts(self):
        c = tap.read("1..5\nok 1 /a\nok 2 /b # SKIP no kvm\n"
                     "not ok 3 /c # TODO races\nnot ok 4 - /d\n"
                     "# a comment\nok 5 /e\n", 1)
        self.assertEqual((c.passed, c.failed, c.skipped, c.xfailed),
                         (2, 1, 1, 1))
        # a failure carries its diagnostics, so that a CI log alone says why
        self.assertEqual(c.failures, ["/d | a comment"])
        self.assertEqual(c.cases, {"/a": "pass", "/b": "skip",
                                   "/c": "xfail", "/d": "fail",
                                   "/e": "pass"})

    def test_todo_that_passes_fails(self):
        c = tap.read("1..1\nok 1 /a # TODO why\n")
        self.assertEqual(c.failures,
                         ["/a # why: an expected failure passed "
                          "(remove its TODO)"])

    def test_missing_or_short_plan(self):
        self.assertEqual(tap.read("ok 1 /a\n").failures,
                         ["no plan: the stream ended early (exit 0)"])
        self.assertEqual(tap.read("1..3\nok 1 /a\n", -6).failures,
                         ["planned 3 results, read 1 (exit -6)"])

    def test_exit_status_without_failure(self):
        self.assertEqual(tap.read("1..1\nok 1 /a\n", 124).failures,
                         ["exit 124 with no failed result"])

    def test_whole_stream_skipped(self):
        c = tap.read("1..0 # SKIP no accelerator\n")
        self.assertEqual((c.passed, c.failed, c.skipped), (0, 0, 1))

    def test_known_race_only(self):
        race = "/x86_64/pc/virtio-net/vhost-user/reconnect"
        self.assertEqual(tap.known_race("1..2\nnot ok 1 %s\nok 2 /b\n"
                                        % race), [race])
        self.assertEqual(tap.known_race(
            "1..1\n# child process (%s/subprocess [42]) killed\n" % race),
            [race])
        self.assertIsNone(tap.known_race("1..2\nnot ok 1 %s\nnot ok 2 /b\n"
                                         % race))
        self.assertIsNone(tap.known_race("1..2\nok 1 /a\n"))


def result(result, cases):
    return {"result": result, "cases": cases}


class UpstreamOutcome(unittest.TestCase):
    def test_new_cases_that_pass_are_no_change(self):
        self.assertIsNone(table.changed(
            result("pass", {"/a": "pass"}),
            result("pass", {"/a": "pass", "/abiguard": "pass"})))
        self.assertIsNone(table.changed(None, result("pass", {"/x": "pass"})))

    def test_a_case_skipped_only_patched_differs(self):
        self.assertEqual(table.changed(result("pass", {"/a": "pass",
                                                       "/b": "pass"}),
                                       result("pass", {"/a": "pass",
                                                       "/b": "skip"})),
                         "/b: skip")

    def test_a_case_gone_or_result_changed_differs(self):
        self.assertEqual(table.changed(result("pass", {"/a": "pass"}),
                                       result("pass", {})), "/a: gone")
        self.assertEqual(table.changed(result("pass", {}),
                                       result("skip", {})),
                         "result skip, unpatched pass")


class PinRule(unittest.TestCase):
    """scripts/lib.sh's substitute(): the rule for a pin the registry no
    longer serves."""

    def pick(self, pinned, served):
        return subprocess.run(
            ["bash", "-c", '. "$0/scripts/lib.sh"; substitute "$1"', TOP,
             pinned], input="".join(v + "\n" for v in served), text=True,
            capture_output=True, check=True,
            env=dict(os.environ, BUILD=tempfile.gettempdir())).stdout.strip()

    def test_served_pin_is_kept(self):
        self.assertEqual(self.pick("1:7.2+dfsg-7+deb12u18+b3",
                                   ["1:7.2+dfsg-7+deb12u15",
                                    "1:7.2+dfsg-7+deb12u18+b3"]),
                         "1:7.2+dfsg-7+deb12u18+b3")

    def test_newest_revision_of_the_same_upstream(self):
        self.assertEqual(self.pick("1:11.1.3+ds-1~bpo13+1",
                                   ["1:11.1.3+ds-2~bpo13+1",
                                    "1:11.1.3+ds-10~bpo13+1",
                                    "1:11.2.0+ds-1~bpo13+1"]),
                         "1:11.1.3+ds-10~bpo13+1")

    def test_no_other_upstream_version(self):
        self.assertEqual(self.pick("1:11.1.3+ds-1~bpo13+1",
                                   ["1:11.2.0+ds-1~bpo13+1"]), "")


if __name__ == "__main__":
    unittest.main()
