# abiguard: patched QEMU 10.0.2, its old-host peers, and the tests.
# `make demo` and `make check` do all set-up themselves (as root).

BUILD := $(CURDIR)/build
SCRIPTS := $(CURDIR)/scripts
export BUILD
include versions

.PHONY: all setup setup-demo setup-fast check-fast fetch peers old-host debian13-hosts tree build wrappers unpatched guest env demo demo-offloads check \
        check-qtest check-golden check-stream check-slirp check-offered check-libvirt \
        check-guest check-offloads check-matrix check-base102 check-crossversion check-crossversion-all check-releases build-10.2 unpatched-10.2 \
        check-pins check-upstream check-sanitizers deb check-deb deb-host fleet fleet-down check-drain bench-drain fuzz fuzz-findings bench bench-preflight goldens export \
        checkpatch backport-diff bisect-check clean

all: build wrappers

# What building the patched QEMU and the demo need; setup adds what the
# rest of make check needs (libvirt, mmdebstrap, clang, ...).
setup-demo:
	@$(SCRIPTS)/setup-apt.sh
	@$(SCRIPTS)/install-build-deps.sh demo
setup: setup-demo setup-fast
	@$(SCRIPTS)/install-build-deps.sh check
setup-fast:
	@$(SCRIPTS)/setup-apt.sh
	@$(SCRIPTS)/install-build-deps.sh fast

# The fast first stage: unit tests of the harness's pure functions,
# pyflakes and shellcheck; no build, no QEMU, well under a minute.
check-fast: setup-fast
	@$(SCRIPTS)/check-fast.sh

fetch: setup-demo
	@$(SCRIPTS)/fetch-source.sh

peers: setup-demo
	@$(SCRIPTS)/fetch-peers.sh

# The old host for the libvirt test: Debian 12 with QEMU 7.2 and libvirt 9.0.
old-host: setup
	@$(SCRIPTS)/make-old-host.sh

# Debian 13's QEMUs (10.0.13 from trixie, 11.1.3 from trixie-backports),
# each in a Debian 13 root: the newer peers of the release matrix.
debian13-hosts: setup
	@$(SCRIPTS)/make-debian13-host.sh $(PEER_DEBIAN13_VERSION) trixie
	@$(SCRIPTS)/make-debian13-host.sh $(PEER_DEBIAN13_BACKPORTS_VERSION) trixie-backports

tree: fetch
	@$(SCRIPTS)/make-tree.sh

build: tree peers
	@$(SCRIPTS)/build-qemu.sh

wrappers: build peers
	@$(SCRIPTS)/make-wrappers.sh

# The second base, QEMU 10.2.2 with patches/10.2/, and without.
# (setup: 10.2's tarball ships no .dtb files, so it needs dtc)
build-10.2: setup
	@$(MAKE) --no-print-directory build BASE=10.2
unpatched-10.2: setup
	@$(MAKE) --no-print-directory unpatched BASE=10.2

# The base's tree with only the build fix, built: upstream's qtests' control,
# and I1's reference on 10.2 (make unpatched BASE=10.2).
unpatched: tree peers
	@$(SCRIPTS)/build-unpatched.sh
	@$(SCRIPTS)/make-wrappers.sh

guest: setup
	@$(SCRIPTS)/make-guest.sh
	@$(SCRIPTS)/make-guest.sh offloads

# Every pin of ./versions against what the registry serves today.
check-pins: setup-demo
	@$(SCRIPTS)/check-pins.sh

env:
	@$(SCRIPTS)/print-env.sh

# The demo runs the patched QEMU and the two peers, nothing else: it builds
# no qtest.
demo: tree peers
	@$(SCRIPTS)/build-qemu.sh --only qemu-system-x86_64
	@$(SCRIPTS)/make-wrappers.sh
	@$(SCRIPTS)/demo.py
# the second incident (virtio-net USO) with a real guest: stock, then patched
demo-offloads: tree peers guest
	@$(SCRIPTS)/build-qemu.sh --only qemu-system-x86_64
	@$(SCRIPTS)/make-wrappers.sh
	@$(SCRIPTS)/demo-offloads.py

# make check runs all its parts (scripts/check.sh says what each covers,
# and their order); make check-PART runs one.
check: setup build-10.2 debian13-hosts wrappers guest old-host
	@$(SCRIPTS)/check.sh

check-qtest check-golden check-stream check-offered: wrappers
	@$(SCRIPTS)/check.sh $(@:check-%=%)
check-slirp: setup
	@$(SCRIPTS)/check.sh slirp
# the matrix and the guest test migrate from the 10.2 base too
check-matrix: build-10.2 wrappers
	@$(SCRIPTS)/check.sh matrix
check-base102: build-10.2 debian13-hosts wrappers guest
	@$(SCRIPTS)/check.sh base102
check-guest: build-10.2 wrappers guest
	@$(SCRIPTS)/check.sh guest
# upstream's migration-test between each base and Debian's QEMUs
check-crossversion: build-10.2 debian13-hosts wrappers
	@$(SCRIPTS)/check.sh crossversion
# the same pairs with migration-test's whole quick set: about 10 minutes
check-crossversion-all: build-10.2 debian13-hosts wrappers
	@$(SCRIPTS)/check.sh crossversion-all
# a long run, outside make check: the guest test from every old host to 10.2
check-releases: build-10.2 debian13-hosts wrappers guest
	@$(SCRIPTS)/check.sh releases
check-libvirt: wrappers guest old-host
	@$(SCRIPTS)/check.sh libvirt
# the offloads incident (virtio-net USO) with real guests on taps
check-offloads: build-10.2 wrappers guest
	@$(SCRIPTS)/check.sh offloads

# Debian packages (docs/packages.md): the 10.2 base's QEMU built with
# Debian's own packaging and the series in debian/patches/abiguard/, and
# the abiguard tools; then both installed with apt on pristine Debian 13
# roots and tried against the old Debian 12 host.  About 40 minutes cold.
deb: setup
	@$(SCRIPTS)/make-deb.sh
	@$(SCRIPTS)/make-tools-deb.sh
check-deb: setup old-host guest
	@$(SCRIPTS)/check-deb.sh
deb-host: setup
	@$(SCRIPTS)/make-deb-host.sh

# A fleet to drain (README, "Draining a host"): libvirt hosts with the
# Debian 12 QEMU 7.2, the patched 10.0.2 and the packaged patched 10.2.2.
fleet: wrappers old-host guest deb-host
	@$(SCRIPTS)/fleet-up.sh
fleet-down:
	@$(SCRIPTS)/fleet-down.sh
# abiguard drain on a fleet of its own (tests/drain-test.sh), then removed
check-drain: wrappers old-host guest deb-host
	@$(SCRIPTS)/check-drain.sh
# the drain against virsh migrate by hand, and the plan of 100 domains
bench-drain: wrappers old-host guest deb-host
	@$(SCRIPTS)/bench-drain.py

# Upstream's whole x86_64 qtest suite, patched and unpatched builds side
# by side (docs/upstream-qtests.md): about 30 minutes once both are built.
# These three take BASE=10.2 (setup: its tree needs dtc, fuzz clang).
check-upstream: setup tree peers
	@$(SCRIPTS)/check-upstream.sh

# The series' qtests on an ASan + UBSan build (docs/fuzzing.md): about
# 15 minutes the first time.
check-sanitizers: setup tree peers
	@$(SCRIPTS)/check-sanitizers.sh

# Fuzz the incoming migration stream, FUZZ_SECONDS per target (default 60),
# on a clang/libFuzzer build with ASan and UBSan (docs/fuzzing.md), with
# the targets' field mutator; FUZZ_MUTATOR=bytes for libFuzzer's, or
# FUZZ_MUTATOR="bytes fields" to compare the two side by side.
FUZZ_SECONDS ?= 60
fuzz: setup wrappers
	@$(SCRIPTS)/fuzz.sh $(FUZZ_SECONDS)

# What each input the fuzz runs kept is on the fuzzer as built now (after a
# fix: what is left), grouped by report and by whether its load completed.
fuzz-findings:
	@$(SCRIPTS)/fuzz-findings.sh

# Regenerate the golden guest-ABI dumps (tests/golden).
goldens: build-10.2 unpatched-10.2 wrappers
	@tests/guest-abi-golden.py generate $(BUILD)/bin/qemu-stock-10.0.2 tests/golden/stock-10.0.2
	@tests/guest-abi-golden.py generate $(BUILD)/bin/qemu-patched tests/golden/abiguard \
	  pc-i440fx-10.0-abiguard1 pc-q35-10.0-abiguard1
	@tests/guest-abi-golden.py generate $(BUILD)/bin/qemu-unpatched-10.2 tests/golden/unpatched-10.2.2
	@tests/guest-abi-golden.py generate $(BUILD)/bin/qemu-patched-10.2 tests/golden/abiguard-10.2 \
	  pc-i440fx-10.2-abiguard1 pc-q35-10.2-abiguard1

# Only on request: a few minutes.
bench: wrappers guest
	@$(SCRIPTS)/bench-secure-erase.py
	@$(SCRIPTS)/bench-refusal.py
	@export GUEST_ACCEL=$$($(SCRIPTS)/detect-accel.sh $(BUILD)/bin/qemu-patched $(BUILD)/guest) && \
	  $(SCRIPTS)/bench-migration.py && $(SCRIPTS)/bench-erase-in-guest.py

# The preflight test's timings, as the table in docs/bench-preflight.md.
bench-preflight: wrappers old-host
	@PREFLIGHT_TIMINGS=$(BUILD)/bench-preflight.md tests/preflight-test.sh \
	  $(BUILD)/old-host $(BUILD)/bin/qemu-patched > $(BUILD)/bench-preflight.log; \
	  rc=$$?; cat $(BUILD)/bench-preflight.md; exit $$rc

export:
	@$(SCRIPTS)/export-patches.sh

checkpatch: tree
	@$(MAKE) --no-print-directory tree BASE=10.2
	@$(SCRIPTS)/checkpatch.sh

# The backport beside the development line, patch by patch (-v: the lines).
backport-diff:
	@$(SCRIPTS)/backport-diff.sh $(if $(V),-v)

bisect-check: tree
	@$(SCRIPTS)/bisect-check.sh

clean:
	rm -rf $(BUILD)
