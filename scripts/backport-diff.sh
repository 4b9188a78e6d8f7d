#!/bin/bash
# Compare the backport (patches/10.0/) with the development line
# (patches/10.2/), patch by patch, in order: whether each patch makes the
# same change on both bases.  Only what a base forces may differ; the cover
# letters say what.  With -v, the lines that differ follow each patch.
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

# Patches pair by subject, in 10.2's order; a patch one base alone needs
# (10.0: what upstream 10.2 already has; 10.2: a fix of code only 10.2
# has) is listed as such.
# key SUBJECT: the subject without the release numbers a base may name
key() { sed 's/[0-9.{},]//g' <<<"$1"; }
declare -A back_of used
for f in "${back[@]}"; do back_of[$(key "$(subject "$f")")]=$f; done
same=0 paired=0
for i in "${!dev[@]}"; do
  n=$(printf '%04d' $((i + 1)))
  s=$(subject "${dev[$i]}")
  k=$(key "$s")
  if [ -z "${back_of[$k]:-}" ]; then
    printf '%s [10.2 only] %s\n' "$n" "$s"
    continue
  fi
  paired=$((paired + 1))
  d=$(diff <(change "${back_of[$k]}") <(change "${dev[$i]}") || true)
  used[$k]=1
  if [ -z "$d" ]; then
    printf '%s [same]    %s\n' "$n" "$s"
    same=$((same + 1))
  else
    printf '%s [%4d -+] %s\n' "$n" "$(grep -c '^[<>]' <<<"$d")" "$s"
    b=$(subject "${back_of[$k]}")
    [ "$b" = "$s" ] || printf '     10.0 has: %s\n' "$b"
    [ $verbose = 0 ] || sed 's/^</    10.0:/; s/^>/    10.2:/; /^[0-9]/d; /^---$/d' <<<"$d"
  fi
done
for k in "${!back_of[@]}"; do
  [ -n "${used[$k]:-}" ] ||
    printf '     [10.0 only] %s\n' "$(basename "${back_of[$k]}")"
done
echo "$same of $paired patches both bases carry make the same change; the others differ by the lines counted (-v shows them); $((${#dev[@]} - paired)) only on 10.2, $((${#back[@]} - paired)) only on 10.0"
