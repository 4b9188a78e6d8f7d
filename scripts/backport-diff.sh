#!/bin/bash
# Compare the backport (patches/10.0/) with the development line
# (patches/10.2/), patch by patch, in order: whether each patch makes the
# same change on both bases.  Only what a base forces may differ; the cover
# letters say what.  A fix of code only 10.2 has comes after the patches
# both carry, and is listed as 10.2 only.  With -v, the lines that differ
# follow each patch.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

verbose=0
case ${1:-} in
  -v) verbose=1 ;;
  "") ;;
  *) die "usage: backport-diff.sh [-v]" ;;
esac

# A patch's change alone: the lines it removes and adds, file by file.
# Context lines and hunk positions follow from the base, so they are left out.
change() { sed -n '/^diff --git /,$p' "$1" | grep -E '^(diff --git|[-+])'; }
subject() { awk '/^Subject: /{s=substr($0,18);f=1;next} f&&/^ /{s=s$0;next} {f=0} END{print s}' "$1"; }

# series ARRAY BASE: the patch files of patches/BASE/, cover letter aside
series() {
  local -n list=$1
  local f
  list=()
  for f in "$TOP"/patches/"$2"/[0-9][0-9][0-9][0-9]-*.patch; do
    [[ $f == */0000-* ]] || list+=("$f")
  done
}
series dev 10.2
series back 10.0
[ ${#dev[@]} -ge ${#back[@]} ] ||
  die "10.2 has ${#dev[@]} patches and 10.0 has ${#back[@]}: the backport has a patch the development line lacks"

same=0
for i in "${!back[@]}"; do
  n=$(printf '%04d' $((i + 1)))
  d=$(diff <(change "${back[$i]}") <(change "${dev[$i]}") || true)
  if [ -z "$d" ]; then
    printf '%s [same]    %s\n' "$n" "$(subject "${dev[$i]}")"
    same=$((same + 1))
  else
    printf '%s [%4d -+] %s\n' "$n" "$(grep -c '^[<>]' <<<"$d")" "$(subject "${dev[$i]}")"
    [ "$(subject "${dev[$i]}")" = "$(subject "${back[$i]}")" ] ||
      printf '     10.0 has: %s\n' "$(subject "${back[$i]}")"
    [ $verbose = 0 ] || sed 's/^</    10.0:/; s/^>/    10.2:/; /^[0-9]/d; /^---$/d' <<<"$d"
  fi
done
for ((i = ${#back[@]}; i < ${#dev[@]}; i++)); do
  printf '%04d [10.2 only] %s\n' $((i + 1)) "$(subject "${dev[$i]}")"
done
echo "$same of ${#back[@]} patches make the same change on both bases; the others differ by the lines counted (-v shows them); $((${#dev[@]} - ${#back[@]})) only on 10.2"
