#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds and caches wasmtime's C API (crates.io, native/wasmtime/Cargo.toml + Cargo.lock, exact
# versions) as one static library with its headers, for the native core's wasmtime engine.
#
#   scripts/wasmtime.sh            build if needed, print the install directory (default)
#   scripts/wasmtime.sh dir        print the install directory if it is built, else nothing
#                                  (binding.gyp: the addon is built without wasmtime then)
#   scripts/wasmtime.sh check      exit 1 unless it is built
#   scripts/wasmtime.sh version    print the pinned wasmtime version
#
# Install directory: ${VFIOBOX_CACHE:-~/.cache/vfiobox}/wasmtime-capi/<version>-<key>/ with
# include/ (wasmtime.h, the generated wasmtime/conf.h) and lib/libvfiobox_wasmtime.a, where key
# hashes the manifest and lock file, so a change to either builds a new one. The first build
# takes about 10 minutes on 2 cores; the cargo target directory is removed afterwards.
# Safe with CI=true and no stdin; a lock serialises concurrent runs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly WASMTIME_VERSION=48.0.8
readonly MANIFEST="${root}/native/wasmtime/Cargo.toml"
readonly CACHE="${VFIOBOX_CACHE:-${HOME}/.cache/vfiobox}/wasmtime-capi"
key="$(cat "${MANIFEST}" "${root}/native/wasmtime/Cargo.lock" "${root}/native/wasmtime/src/lib.rs" \
  | sha256sum | cut -c1-12)"
readonly DEST="${CACHE}/${WASMTIME_VERSION}-${key}"

log() { printf 'wasmtime: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

built() { [[ -f "${DEST}/.complete" && -f "${DEST}/lib/libvfiobox_wasmtime.a" ]]; }

find_cargo() {
  if [[ -n "${CARGO:-}" ]]; then echo "${CARGO}"; return; fi
  command -v cargo 2>/dev/null && return
  [[ -x "${HOME}/.cargo/bin/cargo" ]] && { echo "${HOME}/.cargo/bin/cargo"; return; }
  die "cargo not found (set CARGO=/path/to/cargo); the wasmtime engine needs it once"
}

build() {
  mkdir -p "${CACHE}"
  exec 9>"${CACHE}/.lock"
  flock 9
  if built; then flock -u 9; return 0; fi
  local cargo target include
  cargo="$(find_cargo)"
  target="${CACHE}/target"
  log "cargo build wasmtime-c-api-impl ${WASMTIME_VERSION} -> ${DEST}; takes about 10 minutes once"
  CARGO_TARGET_DIR="${target}" CARGO_TERM_PROGRESS_WHEN=never \
    "${cargo}" build --release --locked --quiet --manifest-path "${MANIFEST}" </dev/null >&2
  # wasmtime-c-api-impl's build script installs the headers, with conf.h for these features
  include="$(dirname "$(find "${target}/release/build" -path '*wasmtime-c-api-impl-*/out/include/wasmtime/conf.h' | head -n1)")/.."
  [[ -f "${include}/wasmtime.h" ]] || die "no headers in ${target}/release/build"
  rm -rf "${DEST}"
  mkdir -p "${DEST}/lib"
  cp -r "${include}" "${DEST}/include"
  cp "${target}/release/libvfiobox_wasmtime.a" "${DEST}/lib/"
  rm -rf "${target}"
  echo "wasmtime-c-api-impl ${WASMTIME_VERSION} ${key}" >"${DEST}/.complete"
  flock -u 9
}

case "${1:-install}" in
  install) build; echo "${DEST}" ;;
  dir) if built; then echo "${DEST}"; fi ;;
  check) built ;;
  version) echo "${WASMTIME_VERSION}" ;;
  -h | --help | help) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown mode '$1' (install|dir|check|version)" ;;
esac
