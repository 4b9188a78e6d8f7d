#!/bin/bash
# preflight.py against a running stock QEMU 7.2 source (TAP output).
# Usage: tests/preflight-test.sh QEMU_STOCK_7_2 QEMU_PATCHED
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
old=$1 new=$2
tmp=$(mktemp -d)
src_pid=
cleanup() { [ -n "$src_pid" ] && kill "$src_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
n=0 fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; fail=1; fi; }
leftovers() { pgrep -f "abiguard-abi-" >/dev/null && echo yes || echo no; }

disk="-drive if=none,id=d1,driver=null-co,size=1M"
# The incident's source: an old host whose disk has no discard/write-zeroes.
"$old" -machine pc-i440fx-7.2 -accel tcg -S -nodefaults -display none \
  -qmp "unix:$tmp/src.qmp,server=on,wait=off" $disk \
  -device virtio-blk-pci,id=disk1,drive=d1,addr=0xb,discard=off,write-zeroes=off &
src_pid=$!
for _ in $(seq 100); do [ -S "$tmp/src.qmp" ] && break; sleep 0.05; done

dest=(-machine pc-i440fx-7.2 -nodefaults $disk -device virtio-blk-pci,id=disk1,drive=d1,addr=0xb)
"$top/scripts/preflight.py" "$tmp/src.qmp" "$new" -- "${dest[@]}" > "$tmp/out" 2>&1
rc=$?
cat "$tmp/out" | sed 's/^/# /'
ok $(( rc == 1 ? 0 : 1 )) "incident: exit status 1 (got $rc)"
grep -q "00:0b.0 (disk1): bars is 0:io:64,1:mem:4096,4:mem64pf:16384 in source, 0:io:128,1:mem:4096,4:mem64pf:16384 in destination" "$tmp/out"
ok $? "incident: BAR0 64 bytes on the source, 128 on the destination"
grep -q "fix: 00:0b.0 (disk1): add discard=off,write-zeroes=off to its -device on the destination" "$tmp/out"
ok $? "incident: the properties to add"
[ "$(leftovers)" = no ]; ok $? "incident: the destination is gone"

"$top/scripts/preflight.py" "$tmp/src.qmp" "$new" -- "${dest[@]/addr=0xb/addr=0xb,discard=off,write-zeroes=off}" > "$tmp/out2" 2>&1
rc=$?
ok $(( rc == 0 ? 0 : 1 )) "matching destination: exit status 0 (got $rc)"

# Interrupted at various points, also while the destination runs: it must
# not be left behind.
for delay in 0.03 0.06 0.09 0.12 0.15; do
  "$top/scripts/preflight.py" "$tmp/src.qmp" "$new" -- "${dest[@]}" > /dev/null 2>&1 &
  pf=$!
  sleep $delay; kill -TERM $pf 2>/dev/null; wait $pf 2>/dev/null
  sleep 0.1
  [ "$(leftovers)" = no ]; ok $? "interrupted after ${delay}s: the destination is gone"
done

"$top/scripts/preflight.py" "$tmp/nonexistent.qmp" "$new" -- "${dest[@]}" > "$tmp/out3" 2>&1
rc=$?
grep -q "preflight: cannot read the source at $tmp/nonexistent.qmp" "$tmp/out3"
ok $(( rc == 2 ? $? : 1 )) "no source: a one-line error, exit status 2 (got $rc)"
echo "1..$n"
exit $fail
