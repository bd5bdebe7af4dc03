#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job, three ways: the demo (serve + built-in client in one command), the same device
# served by `vfiobox serve` and walked by `vfiobox demo --socket`, and the library client script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
node dist/vfiobox.mjs demo
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
node dist/vfiobox.mjs serve edu --socket "$dir/edu.sock" 2>"$dir/serve.log" &
pid=$!
for _ in $(seq 100); do grep -q '^listening' "$dir/serve.log" && break; sleep 0.1; done
node dist/vfiobox.mjs demo --socket "$dir/edu.sock"
kill -TERM "$pid"; wait "$pid"
tail -n 2 "$dir/serve.log"
node examples/edu-vfio-user/client.mjs
