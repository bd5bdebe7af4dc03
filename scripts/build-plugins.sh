#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds every plugin and test fixture component into build/plugins/<name>.wasm:
#   plugins/{c,js}/<name>/      make -C (each folder with a Makefile); build/<name>.wasm gets
#                               plugins/c/<name>/manifest.json embedded when there is one
#   test/fixtures/plugins/<f>/  make -C; every build/<x>.wasm is copied, with <f>/<x>.manifest.json
#                               or (for x = f) <f>/manifest.json embedded when present
# Incremental: make skips what is up to date, and a copy is rewritten only when its component
# or manifest changed, so a warm run takes about a second. Prints one line per component.
#
#   bash scripts/build-plugins.sh            build everything
#   bash scripts/build-plugins.sh --list     print the output paths, build nothing
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ROOT}/build/plugins"
EMBED="${ROOT}/scripts/embed-manifest.mjs"
JOBS="${VFIOBOX_MAKE_JOBS:-2}" # shared 2-core machines: never more by default

log() { printf 'build-plugins: %s\n' "$*"; }

# install <component> <manifest or ''>: copies (embedding the manifest) into $OUT when stale.
install_component() {
  local src="$1" manifest="$2" name dst note
  name="$(basename "${src}")"
  dst="${OUT}/${name}"
  note="no manifest"
  [[ -n "${manifest}" ]] && note="manifest ${manifest#"${ROOT}/"} embedded"
  if [[ -f "${dst}" && "${dst}" -nt "${src}" && ( -z "${manifest}" || "${dst}" -nt "${manifest}" ) \
        && "${dst}" -nt "${EMBED}" ]]; then
    log "up to date  ${dst#"${ROOT}/"} (${note})"
    return
  fi
  if [[ -n "${manifest}" ]]; then
    node "${EMBED}" "${src}" "${manifest}" "${dst}"
  else
    cp "${src}" "${dst}.tmp.$$" && mv "${dst}.tmp.$$" "${dst}"
  fi
  log "built       ${dst#"${ROOT}/"} $(stat -c %s "${dst}") bytes (${note})"
}

# components <dir>: the components a plugin folder's build produced (not the core modules).
components() {
  find "$1/build" -maxdepth 1 -name '*.wasm' ! -name '*.core.wasm' 2>/dev/null | sort
}

build_dir() {
  local dir="$1" kind="$2" component base manifest
  [[ -f "${dir}/Makefile" ]] || return 0
  if [[ "${LIST:-0}" == 1 ]]; then
    for component in $(components "${dir}"); do echo "${OUT}/$(basename "${component}")"; done
    return
  fi
  make -s -C "${dir}" -j"${JOBS}" >/dev/null || {
    log "make -C ${dir#"${ROOT}/"} failed; rerun it for the details" >&2
    return 1
  }
  for component in $(components "${dir}"); do
    base="$(basename "${component}" .wasm)"
    manifest=""
    if [[ -f "${dir}/${base}.manifest.json" ]]; then
      manifest="${dir}/${base}.manifest.json"
    elif [[ "${base}" == "$(basename "${dir}")" && -f "${dir}/manifest.json" ]]; then
      manifest="${dir}/manifest.json"
    fi
    [[ "${kind}" == plugin && "${base}" != "$(basename "${dir}")" ]] && continue
    install_component "${component}" "${manifest}"
  done
}

main() {
  LIST=0
  [[ "${1:-}" == --list ]] && LIST=1
  mkdir -p "${OUT}"
  local dir status=0
  for dir in "${ROOT}"/plugins/c/*/ "${ROOT}"/plugins/js/*/; do
    build_dir "${dir%/}" plugin || status=1
  done
  for dir in "${ROOT}"/test/fixtures/plugins/*/; do build_dir "${dir%/}" fixture || status=1; done
  return "${status}"
}

main "$@"
