# TAP output for the harness's shell tests: one helper for all of them.
# Sourced.  The plan is printed at the end, by tap_done.
#   tap_ok STATUS NAME     ok when STATUS is 0; returns STATUS
#   tap_todo NAME REASON   a named expected failure
#   tap_done               prints the plan; fails if a result failed
tap_count=0 tap_failed=0
tap_ok() {
  tap_count=$((tap_count + 1))
  if [ "$1" = 0 ]; then
    echo "ok $tap_count $2"
  else
    echo "not ok $tap_count $2"
    tap_failed=1
  fi
  return "$1"
}
tap_todo() {
  tap_count=$((tap_count + 1))
  echo "not ok $tap_count $1 # TODO $2"
}
tap_done() {
  echo "1..$tap_count"
  return $tap_failed
}
