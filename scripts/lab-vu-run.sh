#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# By hand: serve plugins with `vfiobox serve` and boot the lab-vu guest against them.
#   bash scripts/lab-vu-run.sh [PLUGIN...]      (default: edu serial16550; root)
# Each PLUGIN is a bundled name (build/plugins/<name>.wasm) and becomes one vfio-user-pci
# device. serial16550 gets --stream unix:<dir>/uart.sock and a peer that answers the guest's
# "hello from the guest" with "hello from the host". Prints the guest's VU lines; the serve
# logs, QEMU's trace and the kernel console stay in the run directory it names at the end.
# Environment: VFIOBOX_LAB_VU_CLI (default dist/vfiobox.mjs), VFIOBOX_LAB_VU_KEEP=0 to delete
# the run directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '[lab-vu-run] %s\n' "$*" >&2; }

CLI=${VFIOBOX_LAB_VU_CLI:-dist/vfiobox.mjs}
[ $# -gt 0 ] || set -- edu serial16550
DIR=$(mktemp -d /tmp/lab-vu-run.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${VFIOBOX_LAB_VU_KEEP:-1}" = 1 ]; then say "run directory: $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

# Waits until serve's stderr log says `listening <socket>` (or it exits).
wait_listening() {
  local log=$1 sock=$2 pid=$3 i
  for ((i = 0; i < 1200; i++)); do
    grep -qxF "listening $sock" "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; say "serve exited before listening"; exit 1; }
    sleep 0.1
  done
  say "serve did not listen within 120 s"
  exit 1
}

SOCKS=()
i=0
for plugin in "$@"; do
  sock=$DIR/$plugin.$i.sock
  args=(serve "build/plugins/$plugin.wasm" --socket "$sock" --log-json)
  [ "$plugin" = serial16550 ] && args+=(--stream "unix:$DIR/uart.sock")
  node "$CLI" "${args[@]}" 2>"$DIR/serve-$plugin.$i.log" &
  PIDS+=($!)
  wait_listening "$DIR/serve-$plugin.$i.log" "$sock" $!
  say "serving $plugin on $sock"
  if [ "$plugin" = serial16550 ]; then
    node -e '
      const s = require("node:net").createConnection(process.argv[1]);
      let got = "";
      s.on("data", (d) => {
        got += d;
        process.stderr.write(`[uart] ${JSON.stringify(String(d))}\n`);
        if (got.includes("hello from the guest\n")) { s.write("hello from the host\n"); got = ""; }
      });
      s.on("error", () => process.exit(0));' "$DIR/uart.sock" &
    PIDS+=($!)
  fi
  SOCKS+=("$sock")
  i=$((i + 1))
done

rc=0
bash test/lab-vu/boot.sh --out "$DIR/out" "${SOCKS[@]}" || rc=$?
exit $rc
