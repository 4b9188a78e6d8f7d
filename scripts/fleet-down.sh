#!/bin/bash
# make fleet-down: stop the hosts of make fleet (and with them every
# domain on them), and remove their namespaces and directories.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

FLEET=$BUILD/fleet
# SIGKILL, as hosts_down in tests/libvirt-hosts.sh does, and for its reason
for h in old v10.0 v10.2; do
  [ -f "$FLEET/$h/pid" ] && kill -KILL "$(cat "$FLEET/$h/pid")" 2>/dev/null
done
sleep 0.5
for ns in abg-fleet abg-fleet-old abg-fleet-v10.0 abg-fleet-v10.2; do
  ip netns del "$ns" 2>/dev/null
done
rm -rf "$FLEET"
log "fleet removed"
