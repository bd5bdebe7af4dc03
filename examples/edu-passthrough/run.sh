#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Boots the lab guest (real kernel VFIO, two QEMU edu devices) and runs, inside it:
# `vfiobox list`, `vfiobox info` on the first edu, and edu.mjs through both IOMMU backends.
# Needs `npm run build` first (scripts/setup.sh does it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec test/lab/run-in-guest.sh sh -c '
  set -e
  node dist/vfiobox.mjs list
  echo
  node dist/vfiobox.mjs info "$VFIOLAB_DEV0_BDF"
  echo; echo "# edu.mjs --backend legacy"
  node examples/edu-passthrough/edu.mjs "$VFIOLAB_DEV0_BDF" --backend legacy
  echo; echo "# edu.mjs --backend iommufd"
  node examples/edu-passthrough/edu.mjs "$VFIOLAB_DEV0_BDF" --backend iommufd'
