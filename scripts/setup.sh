#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what a fresh Debian 12 machine lacks and builds everything. Idempotent; fast when warm.
#   apt: build tools, clang-format, QEMU and the lab's initramfs tools (root only)
#   npm ci; the wasm toolchain and wasmtime's C API (crates.io, cached by version);
#   the native addon (node-gyp against /usr/include/node: nothing is downloaded);
#   the TypeScript build and the CLI bundle.
# Heavy downloads are cached outside the repo in ${VFIOBOX_CACHE:-~/.cache/vfiobox}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '[setup] %s\n' "$*" >&2; }

APT_PKGS=(g++ make python3 clang-format qemu-system-x86 busybox-static cpio kmod xz-utils gcc-12 ca-certificates)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "WARNING: missing Debian packages (${missing[*]}); not root, so not installing them."
    say "         run: sudo apt-get install ${missing[*]}"
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  # Strict: the lock lists every platform's optional packages (biome, esbuild), so npm ci works
  # on a fresh machine. Regenerate it with `npm install` if package.json changes.
  npm ci --no-audit --no-fund >/dev/null
fi
if [ -x scripts/toolchain.sh ] && [ "${VFIOBOX_SKIP_TOOLCHAIN:-0}" != 1 ]; then
  say "wasm toolchain (cached in ${VFIOBOX_CACHE:-$HOME/.cache/vfiobox}/toolchain)"
  bash scripts/toolchain.sh >&2
fi
if [ "${VFIOBOX_SKIP_TOOLCHAIN:-0}" != 1 ]; then
  say "wasmtime C API for the native core (cached in ${VFIOBOX_CACHE:-$HOME/.cache/vfiobox}/wasmtime-capi)"
  bash scripts/wasmtime.sh >/dev/null
fi
say "build (native addon, TypeScript, bundle)"
npm run -s build >&2
if [ "${VFIOBOX_SKIP_TOOLCHAIN:-0}" != 1 ]; then
  say "plugins (plugins/c, test fixtures -> build/plugins)"
  bash scripts/build-plugins.sh >&2
fi
say "done"
