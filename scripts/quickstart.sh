#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's first command: set up (apt, npm ci, toolchain, build, plugins) and run the main job
# on its embedded default: the bundled edu plugin served over vfio-user and driven by the
# built-in client (`vfiobox demo`). No root, VM or hardware is needed for the demo itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
echo "[quickstart] vfiobox demo: serve plugins/c/edu over vfio-user and drive it" >&2
exec node dist/vfiobox.mjs demo
