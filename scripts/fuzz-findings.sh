#!/bin/bash
# make fuzz-findings: what each input a fuzz run kept is, on the fuzzer
# as built now (so, after a fix, what is left).  Each input of
# build/fuzz/<target>/<mutator>/findings/ (build/10.2/fuzz/ with
# BASE=10.2) runs again with FUZZ_SAY_LOAD=1, and the inputs are grouped
# by the first line of their report (the assertion, the sanitizer's line
# or libFuzzer's; values from the input shown as N) and by whether their
# load completed: a destination whose load failed never runs on, so only
# findings whose load completed, or that fail during the load, are what a
# destination meets.  Prints the number of inputs per group and one of
# them.  fuzz.sh runs it on the findings of its own run.
# Usage: fuzz-findings.sh [--newer FILE] [TARGET[/MUTATOR]...]
#   (default: every target and mutator with findings; --newer: only the
#   inputs newer than FILE)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fuzzer=$BASE_BUILD/qemu-fuzz/qemu-fuzz-x86_64
fuzz=$BASE_BUILD/fuzz
newer=()
if [ "${1:-}" = --newer ]; then
  newer=(-newer "$2")
  shift 2
fi
[ -x "$fuzzer" ] || die "no fuzzer at $fuzzer: run make fuzz FUZZ_SECONDS=0 BASE=$BASE first"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

dirs=()
if [ $# = 0 ]; then
  for d in "$fuzz"/*/*/findings; do
    [ -d "$d" ] && dirs+=("$(dirname "$d")")
  done
else
  for t in "$@"; do
    case $t in
      */*) dirs+=("$fuzz/$t") ;;
      *) for d in "$fuzz/$t"/*/findings; do [ -d "$d" ] && dirs+=("$(dirname "$d")"); done ;;
    esac
  done
fi
[ ${#dirs[@]} != 0 ] || die "no findings under $fuzz${1:+ for $*}"

for dir in "${dirs[@]}"; do
  [ -d "$dir/findings" ] || die "no findings in $dir"
  target=$(basename "$(dirname "$dir")")
  echo "${dir#"$fuzz"/}: $(find "$dir/findings" -type f "${newer[@]}" | wc -l) inputs"
  find "$dir/findings" -type f "${newer[@]}" | sort | while read -r f; do
    # each finding fails again, and what it says may be missing
    out=$(FUZZ_SAY_LOAD=1 timeout 60 "$fuzzer" --fuzz-target="$target" -timeout=10 "$f" 2>&1) || true
    what=$(grep -m 1 -E 'Assertion|runtime error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' <<< "$out" |
           perl -pe 's/^==\d+== *//; s#^.*\.\./qemu/##; s/(?<![:\w])(0x[0-9a-f]+|\d{3,})\b/N/g') || true
    load=$(grep -m 1 -o 'the load \(completed\|failed\)' <<< "$out" | cut -d' ' -f3) || true
    printf '%s (load %s)\t%s\n' "${what:-no report when run again}" "${load:-not finished}" "$f"
  done | sort | awk -F '\t' '
    $1 != what { if (n) printf "  %4d x %s\n         e.g. %s\n", n, what, example; what = $1; n = 0; example = $2 }
    { n++ } END { if (n) printf "  %4d x %s\n         e.g. %s\n", n, what, example }'
done
