#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Installs and caches the C plugin toolchain, keyed by exact version.
#
#   scripts/toolchain.sh            install if needed, then print the tool paths (default)
#   scripts/toolchain.sh install    same as the default
#   scripts/toolchain.sh env        install if needed, print `export ...` lines: eval "$(... env)"
#   scripts/toolchain.sh make       install if needed, print Makefile assignments (plugins/c/*)
#   scripts/toolchain.sh check      install nothing; exit 1 if anything is missing
#   scripts/toolchain.sh versions   print the pinned versions
#
# Sources: Debian apt (clang, lld) and crates.io through `cargo install --locked` only; nothing
# else is downloaded. Safe with CI=true and no stdin; a lock serialises concurrent runs.
#
# Why these versions: jco 1.12.0 (the fast V8 glue, DESIGN.md "Engines") bundles wasmparser /
# wit-component 0.230.0. A component must be readable by its oldest consumer, and newer parsers
# read older output but not always the reverse, so the producers are pinned to the same
# generation: wasm-tools 1.230.0 (wit-component 0.230.0) and wit-bindgen 0.42.1, whose C
# generator is built on wit-component 0.230.0. Bump all three together.
set -euo pipefail

readonly WIT_BINDGEN_VERSION=0.42.1
readonly WASM_TOOLS_VERSION=1.230.0
readonly LLVM_MAJOR=16 # bookworm ships clang/lld 14, 15 and 16; 16 is the newest there.
# Only the subcommands the plugin builds and smoke checks use: a third of the build time.
readonly WIT_BINDGEN_FEATURES=c
readonly WASM_TOOLS_FEATURES=validate,print,parse,component,metadata,strip,objdump,dump
readonly APT_PACKAGES=("clang-${LLVM_MAJOR}" "lld-${LLVM_MAJOR}")

readonly CACHE_ROOT="${VFIOBOX_CACHE:-${HOME}/.cache/vfiobox}/toolchain"
readonly LLVM_BIN="/usr/lib/llvm-${LLVM_MAJOR}/bin"
readonly WIT_BINDGEN_ROOT="${CACHE_ROOT}/cargo/wit-bindgen-cli-${WIT_BINDGEN_VERSION}"
readonly WASM_TOOLS_ROOT="${CACHE_ROOT}/cargo/wasm-tools-${WASM_TOOLS_VERSION}"
readonly WIT_BINDGEN="${WIT_BINDGEN_ROOT}/bin/wit-bindgen"
readonly WASM_TOOLS="${WASM_TOOLS_ROOT}/bin/wasm-tools"

log() { printf 'toolchain: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

apt_missing() {
  local pkg missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("${pkg}")
  done
  echo "${missing[@]:-}"
}

ensure_apt() {
  local missing sudo=()
  missing="$(apt_missing)"
  [[ -z "${missing}" ]] && return 0
  command -v apt-get >/dev/null || die "need ${missing} (Debian packages) but apt-get is absent"
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "need root or sudo to install: ${missing}"
    sudo=(sudo -n)
  fi
  log "apt-get install ${missing}"
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends ${missing} </dev/null >&2; then
    log "apt-get update (package lists missing or stale)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
    # shellcheck disable=SC2086
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends ${missing} </dev/null >&2
  fi
}

find_cargo() {
  if [[ -n "${CARGO:-}" ]]; then echo "${CARGO}"; return; fi
  command -v cargo 2>/dev/null && return
  [[ -x "${HOME}/.cargo/bin/cargo" ]] && { echo "${HOME}/.cargo/bin/cargo"; return; }
  die "cargo not found (set CARGO=/path/to/cargo)"
}

# cargo_tool CRATE VERSION FEATURES ROOT BIN: one crate at one exact version in its own root.
cargo_tool() {
  local crate="$1" version="$2" features="$3" root="$4" bin="$5" cargo
  [[ -x "${bin}" && -f "${root}/.complete" ]] && return 0
  cargo="$(find_cargo)"
  log "cargo install ${crate}@${version} (features ${features}) -> ${root}; takes minutes once"
  rm -rf "${root}"
  # A private target dir so a half-finished build never leaves a half-written root behind.
  CARGO_TARGET_DIR="${CACHE_ROOT}/cargo-target-${crate}-${version}" CARGO_TERM_PROGRESS_WHEN=never \
    "${cargo}" install --locked --quiet --root "${root}" --no-default-features \
    --features "${features}" "${crate}" --version "=${version}" </dev/null >&2
  rm -rf "${CACHE_ROOT}/cargo-target-${crate}-${version}"
  "${bin}" --version >/dev/null || die "${bin} does not run"
  echo "${crate} ${version} ${features}" >"${root}/.complete"
}

ensure_all() {
  mkdir -p "${CACHE_ROOT}"
  exec 9>"${CACHE_ROOT}/.lock"
  flock 9
  ensure_apt
  [[ -x "${LLVM_BIN}/clang" && -x "${LLVM_BIN}/wasm-ld" ]] \
    || die "clang or wasm-ld missing in ${LLVM_BIN}"
  cargo_tool wit-bindgen-cli "${WIT_BINDGEN_VERSION}" "${WIT_BINDGEN_FEATURES}" \
    "${WIT_BINDGEN_ROOT}" "${WIT_BINDGEN}"
  cargo_tool wasm-tools "${WASM_TOOLS_VERSION}" "${WASM_TOOLS_FEATURES}" \
    "${WASM_TOOLS_ROOT}" "${WASM_TOOLS}"
  flock -u 9
}

check_all() {
  local ok=0 f
  [[ -z "$(apt_missing)" ]] || { log "missing apt packages: $(apt_missing)"; ok=1; }
  for f in "${LLVM_BIN}/clang" "${LLVM_BIN}/wasm-ld" "${WIT_BINDGEN}" "${WASM_TOOLS}"; do
    [[ -x "${f}" ]] || { log "missing ${f}"; ok=1; }
  done
  return "${ok}"
}

print_paths() {
  echo "CLANG=${LLVM_BIN}/clang"
  echo "WASM_LD=${LLVM_BIN}/wasm-ld"
  echo "WIT_BINDGEN=${WIT_BINDGEN}"
  echo "WIT_BINDGEN_VERSION=${WIT_BINDGEN_VERSION}"
  echo "WASM_TOOLS=${WASM_TOOLS}"
  echo "WASM_TOOLS_VERSION=${WASM_TOOLS_VERSION}"
}

main() {
  case "${1:-install}" in
    install) ensure_all; print_paths ;;
    env)
      ensure_all
      print_paths | sed 's/^/export /'
      echo "export PATH=\"${WIT_BINDGEN_ROOT}/bin:${WASM_TOOLS_ROOT}/bin:${LLVM_BIN}:\$PATH\""
      ;;
    make) ensure_all; print_paths | sed 's/=/ := /' ;;
    check) check_all && print_paths ;;
    versions)
      echo "wit-bindgen-cli ${WIT_BINDGEN_VERSION}"
      echo "wasm-tools ${WASM_TOOLS_VERSION}"
      echo "clang/lld ${LLVM_MAJOR} (Debian: ${APT_PACKAGES[*]})"
      ;;
    -h | --help | help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown mode '$1' (install|env|make|check|versions)" ;;
  esac
}

main "$@"
