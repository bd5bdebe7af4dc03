#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# clang-format over native/ and plugins/c (Google base, 100 columns: .clang-format).
#   --check  fail if any file would change     --fix  rewrite in place
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CF=$(command -v clang-format || command -v clang-format-14 || true)
[ -n "$CF" ] || { echo "clang-format not installed (apt-get install clang-format)" >&2; exit 1; }
mapfile -t files < <(git ls-files -co --exclude-standard 'native/*.cc' 'native/*.h' 'plugins/c/*.c' 'plugins/c/*.h' 'test/fixtures/*.c' 'test/fixtures/*.h' 'test/lab-vu/*.c' 'test/lab-vu/*.h' | grep -v '/gen/' || true)
[ ${#files[@]} -gt 0 ] || exit 0
case "${1:---check}" in
  --check) "$CF" --dry-run --Werror "${files[@]}" ;;
  --fix) "$CF" -i "${files[@]}" ;;
  *) echo "usage: $0 --check|--fix" >&2; exit 2 ;;
esac
