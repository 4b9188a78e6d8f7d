#!/bin/bash
# make fuzz: fuzz the incoming migration stream.  Builds qemu-fuzz-x86_64
# from the base's patched tree with Debian's clang and libFuzzer, ASan and
# UBSan (build/qemu-fuzz, the ccache shared), makes the seed corpus from
# real streams of Debian's 7.2, Debian's 10.0.2 and the base's patched
# build (make-fuzz-corpus.py), and runs each fuzz target for SECONDS.
# The mutator is the targets' own, which changes the values of the
# stream's fields where make-fuzz-corpus.py found them (FUZZ_MUTATOR=fields,
# the default), or libFuzzer's byte mutations (FUZZ_MUTATOR=bytes).  Given
# both (FUZZ_MUTATOR="bytes fields"), it compares them: both run side by
# side on each target, one per core, each from the seeds alone.
# Prints, per target and mutator, the executions, the coverage (edges) and
# the findings, which libFuzzer writes to build/fuzz/<target>/<mutator>/
# findings/, and plots the coverage over time (build/fuzz/coverage.svg).
# With BASE=10.2, all of it is under build/10.2/ instead.
# Usage: fuzz.sh [SECONDS per target, default 60; 0: the corpus only] [TARGET...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

seconds=${1:-60}
shift || true
out=$BASE_BUILD/qemu-fuzz
fuzz=$BASE_BUILD/fuzz
patched=$BUILD/bin/qemu-patched-$BASE   # make-wrappers.sh names each base's so
fuzzer=$out/qemu-fuzz-x86_64
CC=clang CXX=clang++ QEMU_OUT=$out \
  EXTRA_CONFIGURE_FLAGS="--enable-fuzzing --enable-asan --enable-ubsan" \
  "$TOP/scripts/build-qemu.sh" --only qemu-fuzz-x86_64

seeds=$fuzz/seeds fields=$fuzz/fields
mutators=${FUZZ_MUTATOR:-fields}
for m in $mutators; do
  case $m in fields|bytes) ;; *) die "FUZZ_MUTATOR=$m: the mutators are fields and bytes" ;; esac
done
# the seeds and their fields files, made together (a fields file names its
# seed by a relative path), again when the script that makes them changed
if [ ! -d "$seeds" ] || [ ! -d "$fields" ] || [ "$TOP/scripts/make-fuzz-corpus.py" -nt "$fields" ]; then
  rm -rf "$seeds" "$fields" "$fuzz/corpus.tmp"
  "$TOP/scripts/make-fuzz-corpus.py" "$fuzzer" "$BASE_BUILD/qemu/scripts/analyze-migration.py" \
    "$fuzz/corpus.tmp/seeds" "$fuzz/corpus.tmp/fields" \
    "$BUILD/bin/qemu-stock-7.2" "$BUILD/bin/qemu-stock-10.0.2" "$patched"
  mv "$fuzz/corpus.tmp/fields" "$fields" && mv "$fuzz/corpus.tmp/seeds" "$seeds"
  rmdir "$fuzz/corpus.tmp"
fi

# Each finding is left as a file, and the run goes on (fork mode); leaks
# and undefined behaviour are findings too.  SECONDS 0: the corpus only.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# fuzz_one TARGET MUTATOR: run it, print its line and its findings
fuzz_one() {
  local target=$1 mutator=$2 dir=$fuzz/$1/$2 start execs cov findings mode max_len env=() rc=0
  local layouts seeded log=$dir/log
  [ "$seconds" != 0 ] || log=$dir/smoke.log   # the smoke keeps a long run's log
  [ "$mutator" = bytes ] || env=(FUZZ_STREAM_FIELDS="$fields/$target")
  # a comparison starts each mutator from the seeds alone
  [ "$mutators" = fields ] || [ "$mutators" = bytes ] || rm -rf "$dir/corpus"
  mkdir -p "$dir/corpus" "$dir/findings"
  max_len=$(stat -c %s "$seeds/$target"/* | sort -n | tail -n 1)
  start=$(date +%s)
  touch "$dir/started"      # findings of earlier runs stay, but do not count
  if [ "$seconds" = 0 ]; then
    mode=(-runs=0)
  else
    mode=(-max_total_time="$seconds" -fork=1 -ignore_crashes=1
          -ignore_timeouts=1 -ignore_ooms=1)
  fi
  env "${env[@]}" "$fuzzer" --fuzz-target="$target" "${mode[@]}" -max_len="$max_len" \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$dir/findings/" \
    "$dir/corpus" "$seeds/$target" > "$log" 2>&1 || rc=1
  # fork mode: "#<executions>: cov: ..."; one process: stat:: lines
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p; s/^#\([0-9]*\): cov:.*/\1/p' \
          "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  findings=$(find "$dir/findings" -type f -newer "$dir/started" | wc -l)
  printf '%-36s %-6s %9s executions in %s s, %6s edges, %d findings\n' \
    "$target" "$mutator" "${execs:-?}" "$(($(date +%s) - start))" "${cov:-?}" "$findings"
  [ "$findings" = 0 ] || { "$TOP/scripts/fuzz-findings.sh" --newer "$dir/started" "$target/$mutator"; rc=1; }
  # the mutator knows the fields of every seed (in fork mode the children
  # read them, and their output is not in the log)
  if [ "$mutator" = fields ] && [ "$seconds" = 0 ]; then
    layouts=$(sed -n 's/^migration_fuzz: the fields of \([0-9]*\) streams.*/\1/p' "$log" | head -n 1)
    seeded=$(find "$seeds/$target" -type f | wc -l)
    [ "${layouts:-0}" = "$seeded" ] ||
      { echo "  the mutator read the fields of ${layouts:-no} streams, not of the $seeded seeds"; rc=1; }
  fi
  return $rc
}

status=0 logs=()
targets=("$@")
[ $# -gt 0 ] || mapfile -t targets < <(ls "$seeds")
for target in "${targets[@]}"; do
  log "fuzzing $target for $seconds s with the mutators: $mutators (logs: $fuzz/$target/*/log)"
  pids=()
  for mutator in $mutators; do
    fuzz_one "$target" "$mutator" & pids+=($!)
    logs+=("$fuzz/$target/$mutator/log")
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
done
if [ "$seconds" != 0 ]; then
  "$TOP/scripts/plot-fuzz-coverage.py" "$fuzz/coverage.svg" "${logs[@]}"
  log "coverage over time: $fuzz/coverage.svg"
fi
exit $status
