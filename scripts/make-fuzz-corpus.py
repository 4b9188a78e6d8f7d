#!/usr/bin/python3
"""Seed corpus for the incoming-migration fuzz targets: real streams.

  make-fuzz-corpus.py FUZZER ANALYZE_MIGRATION OUTDIR FIELDSDIR QEMU...

For each fuzz target of FUZZER (qemu-fuzz-x86_64), asks it for the QEMU
command line it loads streams into, starts each QEMU given with that command
line (but TCG for the qtest accelerator), and migrates it to a file:
OUTDIR/<target>/<qemu>.stream.  A QEMU that lacks the target's machine type
is skipped.  Debian's 7.2 has no "file:" migration, so every QEMU writes
through "exec:cat".

Beside each stream goes the same stream without its RAM section and
without the JSON description a destination skips,
<qemu>.device-state.stream, so that the fuzzer spends its executions on
the device state, where the parsers are.

For each stream it writes FIELDSDIR/<target>/<stream>.fields: where each
field of each section is, as the base's own analyze-migration.py
(ANALYZE_MIGRATION) reads the stream with its JSON description.  The fuzz
targets' mutator (tests/qtest/fuzz/migration_fuzz.c in the series) changes
those fields' values and keeps the rest, the framing.
"""
import contextlib
import io
import os
import runpy
import re
import shlex
import struct
import subprocess
import sys

import guestabi

TARGETS = ["incoming-pc-i440fx-7.2", "incoming-pc-q35-10.0-abiguard1"]


def target_args(fuzzer, target):
    """The arguments the fuzz target starts QEMU with, as it prints them."""
    out = subprocess.run([fuzzer, "--fuzz-target=" + target, "-runs=0"],
                         env=dict(os.environ, QTEST_LOG="1"),
                         capture_output=True, text=True, timeout=120).stdout
    for line in out.splitlines():
        if line.startswith("Starting ") and " with Arguments: " in line:
            args = shlex.split(line.split(" with Arguments: ", 1)[1])
            break
    else:
        raise RuntimeError("%s printed no command line for %s"
                           % (fuzzer, target))
    i = args.index("-qtest")            # the fuzzer's own: not for QEMU
    del args[i:i + 2]
    # guestabi.Vm runs it under TCG
    return [a.replace(",accel=qtest", "") for a in args]


# migration/savevm.c and migration/ram.c
SECTION_PART, SECTION_END, COMMAND = 0x02, 0x03, 0x08
SECTION_FOOTER = 0x7e
RAM_MEM_SIZE, RAM_ZERO, RAM_PAGE, RAM_EOS, RAM_CONTINUE = 0x04, 0x02, 0x08, 0x10, 0x20
PAGE_SIZE = 4096
# QEMU_VM_SECTION_START, section id, "ram", instance 0, version 4
RAM_START = re.compile(rb"\x01(....)\x03ram\x00\x00\x00\x00\x00\x00\x00\x04", re.S)


def device_state(stream):
    """The stream without its RAM section and without the JSON description
    after its end, which a destination skips; and a function that gives
    where a byte of the stream is in it (None: not there).

    Knows the precopy RAM format of a stream written with default
    capabilities, as the seed sources write it; raises ValueError (or
    RuntimeError, for the description) otherwise.
    """
    start = RAM_START.search(stream)
    if not start:
        raise ValueError("no RAM section")
    ram_id = start.group(1)
    out = stream[:start.start()]
    pos = start.end()
    while True:
        pos = skip_ram_pages(stream, pos)
        if stream[pos:pos + 5] != bytes([SECTION_FOOTER]) + ram_id:
            raise ValueError("no RAM section footer at %d" % pos)
        pos += 5
        while stream[pos] == COMMAND:           # e.g. switchover-start
            length, = struct.unpack_from(">H", stream, pos + 3)
            out += stream[pos:pos + 5 + length]
            pos += 5 + length
        kind, section = stream[pos], stream[pos + 1:pos + 5]
        if kind not in (SECTION_PART, SECTION_END) or section != ram_id:
            raise ValueError("RAM section not ended at %d" % pos)
        pos += 5
        if kind == SECTION_END:
            pos = skip_ram_pages(stream, pos) + 5       # and its footer
            break
    ram_start, ram_end, shift = start.start(), pos, len(out) - pos
    out += stream[pos:]
    state = out[:guestabi.vmdesc_offset(out)]

    def where(offset):
        if offset < ram_start:
            return offset
        if offset >= ram_end and offset + shift < len(state):
            return offset + shift
        return None
    return state, where


def skip_ram_pages(stream, pos):
    """Where the RAM content at pos ends, after its end-of-section flag."""
    while True:
        addr, = struct.unpack_from(">Q", stream, pos)
        pos += 8
        flags = addr & (PAGE_SIZE - 1)
        if flags & RAM_MEM_SIZE:
            total = addr & ~(PAGE_SIZE - 1)
            while total:
                pos += 1 + stream[pos]
                total -= struct.unpack_from(">Q", stream, pos)[0]
                pos += 8
        elif flags & (RAM_ZERO | RAM_PAGE):
            if not flags & RAM_CONTINUE:
                pos += 1 + stream[pos]
            pos += 1 if flags & RAM_ZERO else PAGE_SIZE
        elif flags & RAM_EOS:
            return pos
        else:
            raise ValueError("RAM flags 0x%x at %d" % (flags, pos - 8))


def stream_fields(analyze, path):
    """Each field of each section of the stream at path, as QEMU's
    analyze-migration.py reads it: (offset, size, section, kind, name),
    in the stream's order.  kind: "i" a big-endian integer, "l" a
    little-endian one, "b" a bool, "x" bytes."""
    argv, sys.argv = sys.argv, [analyze, "-f", path, "-d", "desc"]
    try:        # a script without a main guard: it prints the description
        with contextlib.redirect_stdout(io.StringIO()):
            am = runpy.run_path(analyze, run_name="analyze_migration")
    finally:
        sys.argv = argv
    fields, section, depth = [], [None], [0]
    read_field, read_struct = am["VMSDFieldGeneric"].read, am["VMSDFieldStruct"].read

    def read_leaf(self):
        start = self.file.tell()
        data = read_field(self)
        kind = ("l" if isinstance(self, am["VMSDFieldIntLE"]) else
                "i" if isinstance(self, am["VMSDFieldInt"]) else
                "b" if isinstance(self, am["VMSDFieldBool"]) else "x")
        fields.append((start, self.file.tell() - start, section[0], kind,
                       self.desc["name"]))
        return data

    def read_section(self):     # a section, or a subsection in one
        if depth[0] == 0:
            key = self.section_key
            section[0] = key if isinstance(key, str) else "%s (%d)" % key
        depth[0] += 1
        try:
            return read_struct(self)
        finally:
            depth[0] -= 1

    am["VMSDFieldGeneric"].read = read_leaf
    am["VMSDSection"].read = read_section
    am["MigrationDump"](path).read()
    return fields


def write_fields(path, seed, fields):
    """The fields file of the stream in file seed: the seed's path relative
    to the fields file (the mutator knows an input of the same layout by
    the seed's size and bytes outside the fields), then a field a line,
    sections numbered from 0."""
    numbers = {}
    with open(path, "w") as f:
        f.write("stream-fields 2 %s\n"
                % os.path.relpath(seed, os.path.dirname(path)))
        for offset, size, section, kind, name in fields:
            number = numbers.setdefault(section, len(numbers))
            f.write("%d %d %d %s %s/%s\n" % (offset, size, number, kind,
                                             section, name))


def main(fuzzer, analyze, outdir, fieldsdir, qemus):
    for target in TARGETS:
        args = target_args(fuzzer, target)
        machine = args[args.index("-machine") + 1].split(",")[0]
        os.makedirs(os.path.join(outdir, target), exist_ok=True)
        os.makedirs(os.path.join(fieldsdir, target), exist_ok=True)
        for qemu in qemus:
            if machine not in guestabi.machines(qemu):
                continue
            path = os.path.join(outdir, target,
                                os.path.basename(qemu) + ".stream")
            with guestabi.Vm(qemu, args, qtest=False) as vm:
                guestabi.migrate_to_file(vm, path)
            with open(path, "rb") as f:
                stream = f.read()
            devices = path.replace(".stream", ".device-state.stream")
            state, where = device_state(stream)
            with open(devices, "wb") as f:
                f.write(state)
            fields = stream_fields(analyze, path)
            state_fields = [(where(offset),) + tuple(rest) for offset, *rest in fields]
            if any(f[0] is None for f in state_fields):
                raise RuntimeError("%s: a field in the RAM section" % path)
            for name, layout in ((path, fields), (devices, state_fields)):
                write_fields(os.path.join(fieldsdir, target, os.path.basename(name)
                                          + ".fields"), name, layout)
            print("%s: %s, %d bytes, %d of device state, %d fields"
                  % (target, os.path.basename(qemu), len(stream),
                     len(state), len(fields)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 6:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
