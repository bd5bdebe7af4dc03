#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# serial16550 + edu served by `vfiobox serve`, attached to a real QEMU guest (see README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec bash scripts/lab-vu-run.sh serial16550 edu
