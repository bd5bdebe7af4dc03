#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs the native C++ tests under ASan + UBSan. Prints one "N passed, N failed"
# line (summed over all test binaries) and exits non-zero on any failure, build error included.
set -u
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build/native-test"
mkdir -p "$out"
cxx="${CXX:-g++}"
flags=(-std=c++17 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer
       -fsanitize=address,undefined -fno-sanitize-recover=all -pthread -I"$root")
src="$root/native/src"
core=("$src/dma_table.cc" "$src/iommu_context.cc" "$src/vfio_legacy.cc" "$src/vfio_iommufd.cc"
      "$src/vfio_device.cc" "$src/sys_fake.cc" "$src/fake_vfio.cc" "$src/fake_device.cc"
      "$src/fake_iommufd.cc" "$src/fake_control.cc")
# vfio-user: direct socket/mmap syscalls; sys_linux.cc only for UniqueFd's close
vu=("$src/vfio_user/transport.cc" "$src/vfio_user/json_caps.cc" "$src/vfio_user/server_core.cc"
    "$src/vfio_user/server_dma.cc" "$src/vfio_user/server_device.cc" "$src/vfio_user/server_irq.cc"
    "$src/vfio_user/server_dma_msg.cc" "$src/vfio_user/server_host.cc" "$src/dma_table.cc"
    "$src/vfio_user/region_memory.cc"
    "$src/guarded_copy.cc" "$src/sys_linux.cc")
declare -A tests=(
  [dma_table]="$root/native/test/dma_table_test.cc $src/dma_table.cc"
  [uapi_layout]="$root/native/test/uapi_layout_test.cc $src/sys_linux.cc"
  [backend_fake]="$root/native/test/backend_fake_test.cc ${core[*]}"
  [guarded_copy]="$root/native/test/guarded_copy_test.cc $src/guarded_copy.cc"
  [vfio_user_codec]="$root/native/test/vfio_user_codec_test.cc ${vu[*]}"
  [vfio_user_server]="$root/native/test/vfio_user_server_test.cc ${vu[*]}"
  [vfio_user_host]="$root/native/test/vfio_user_host_test.cc ${vu[*]}"
  [vfio_user_memory]="$root/native/test/vfio_user_memory_test.cc ${vu[*]}"
  [component_binary]="$root/native/test/component_binary_test.cc $src/wasm/component_binary.cc"
)
names=(dma_table uapi_layout backend_fake guarded_copy vfio_user_codec vfio_user_server
  vfio_user_host vfio_user_memory component_binary)
passed=0
failed=0
# The wasmtime engine core against the real plugins: needs scripts/wasmtime.sh's library and
# scripts/build-plugins.sh's components (setup.sh makes both). In CI their absence fails.
wasmtime_dir="$(bash "$root/scripts/wasmtime.sh" dir)"
if [[ -n "$wasmtime_dir" && -f "$root/build/plugins/edu.wasm" && -f "$root/build/plugins/hostile.wasm" ]]; then
  tests[wasm_instance]="$root/native/test/wasm_instance_test.cc $src/wasm/module.cc $src/wasm/instance.cc \
    $src/wasm/lift.cc $src/wasm/imports.cc $src/wasm/windows.cc $src/wasm/component_binary.cc -I$wasmtime_dir/include $wasmtime_dir/lib/libvfiobox_wasmtime.a -ldl -lm"
  names+=(wasm_instance)
elif [[ "${CI:-}" == true ]]; then
  echo "wasm_instance: FAILED: wasmtime (scripts/wasmtime.sh) or build/plugins missing in CI"
  failed=$((failed + 1))
else
  echo "wasm_instance: SKIPPED (LOUDLY): run bash scripts/setup.sh to build wasmtime and the plugins"
fi
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  if ! "$cxx" "${flags[@]}" ${tests[$name]} -o "$out/$name" 2>"$out/$name.build.log"; then
    cat "$out/$name.build.log"
    echo "$name: build failed"
    failed=$((failed + 1))
    continue
  fi
  log="$("$out/$name" "$root" 2>&1)"
  status=$?
  echo "$log"
  line="$(echo "$log" | grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' | tail -1)"
  if [[ -z "$line" ]]; then
    echo "$name: crashed or printed no summary (exit $status)"
    failed=$((failed + 1))
    continue
  fi
  p="$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')"
  f="$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')"
  passed=$((passed + p))
  failed=$((failed + f))
  if [[ $status -ne 0 && $f -eq 0 ]]; then failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
