#!/bin/bash
# Download Debian's QEMU orig tarball of the base (BASE=10.0 or 10.2) from
# the pool of this machine's Debian mirror, and verify it against the
# SHA256 pinned in ./versions.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fetch_pool "$BASE_TARBALL" "$BASE_SHA256"
