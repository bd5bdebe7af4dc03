#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The memory-area example as the README runs it (test/vfio-user/examples.test.ts runs this).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
node examples/scratchpad-mmap/client.mjs
