#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's first command: set up (apt, npm ci, build) and run the main job on its embedded
# default: the lab guest's QEMU edu device driven through real kernel VFIO (examples/edu-passthrough).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
echo "[quickstart] booting the lab guest (first run prepares the guest kernel: about a minute)" >&2
exec bash examples/edu-passthrough/run.sh
