#!/bin/bash
# build/deb-host: a pristine Debian 13 root with the packages of make deb
# installed by apt, and the archive's libvirt, as a new host gets them
# (qemu-system-x86 needs seabios >= 1.17, which Debian 13 has in backports).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

debs=$("$TOP/scripts/make-deb.sh")
libvirt=$(pin "$DEB_SUITE" libvirt-daemon-system "$DEB_HOST_LIBVIRT_VERSION")
"$TOP/scripts/make-deb-root.sh" deb-host "$debs" \
  "qemu-system-x86 qemu-system-common qemu-system-data qemu-utils" \
  "libvirt-daemon-system=$libvirt seabios/$DEB_SUITE-backports"
