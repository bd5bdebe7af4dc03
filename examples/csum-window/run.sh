#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The DMA window example as the README runs it (test/vfio-user/examples.test.ts runs this).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
node examples/csum-window/client.mjs
