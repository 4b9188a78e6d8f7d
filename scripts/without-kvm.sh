#!/bin/bash
# Run a command with /dev/kvm unusable, in a mount namespace of its own.
# Guests make no progress under KVM on these machines, and upstream's
# qtests pick KVM whenever /dev/kvm is writable: a read-only bind mount of
# an empty file over it makes access(W_OK) and open(O_RDWR) fail, so they
# fall back to TCG.  Nothing outside the namespace changes.
# Usage: without-kvm.sh COMMAND [ARG...]
set -euo pipefail
[ -e /dev/kvm ] || exec "$@"
exec unshare --mount --propagation private /bin/bash -c '
  set -e
  empty=$(mktemp)
  mount --bind "$empty" /dev/kvm
  mount -o remount,bind,ro /dev/kvm
  rm -f "$empty"
  exec "$@"' without-kvm "$@"
