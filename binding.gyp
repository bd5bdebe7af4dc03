# SPDX-License-Identifier: MIT
# vfio_core: the addon with real syscalls (sys_linux.cc).
# vfio_core_fake: the same code over the in-memory fake kernel (sys_fake.cc), for tests only.
# Build: npx node-gyp rebuild --nodedir=/usr -j 2   (Node headers from /usr/include/node)
# wasmtime: vfio_core links wasmtime's C API when scripts/wasmtime.sh has built it (setup.sh
# does); without it the addon has no `wasmtime` export and the engine says how to get one.
{
  "variables": {
    "wasmtime_dir": "<!(bash scripts/wasmtime.sh dir)",
    "core_sources": [
      "native/src/addon.cc",
      "native/src/errors.cc",
      "native/src/dma_table.cc",
      "native/src/iommu_context.cc",
      "native/src/vfio_legacy.cc",
      "native/src/vfio_iommufd.cc",
      "native/src/vfio_device.cc",
      "native/src/js/common.cc",
      "native/src/js/iommu.cc",
      "native/src/js/device.cc",
      "native/src/js/irqs.cc",
      "native/src/js/mapping.cc",
      "native/src/js/dma_buffer.cc",
      "native/src/js/eventfd.cc"
    ]
  },
  "target_defaults": {
    "include_dirs": ["."],
    "defines": ["NAPI_VERSION=8"],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror"],
    "dependencies": [
      "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
    ]
  },
  "targets": [
    {
      "target_name": "vfio_core",
      "sources": [
        "<@(core_sources)",
        "native/src/sys_linux.cc",
        "native/src/guarded_copy.cc",
        "native/src/vfio_user/transport.cc",
        "native/src/vfio_user/json_caps.cc",
        "native/src/vfio_user/server_core.cc",
        "native/src/vfio_user/server_dma.cc",
        "native/src/vfio_user/server_device.cc",
        "native/src/vfio_user/server_irq.cc",
        "native/src/vfio_user/server_dma_msg.cc",
        "native/src/vfio_user/server_host.cc",
        "native/src/vfio_user/region_memory.cc",
        "native/src/js/vfio_user_socket.cc",
        "native/src/js/vfio_user_server.cc",
        "native/src/js/vfio_user_hooks.cc",
        "native/src/js/vfio_user_direct.cc",
        "native/src/js/vfio_user_server_io.cc",
        "native/src/js/vfio_user_fds.cc",
        "native/src/js/fd_mapping.cc"
      ],
      "conditions": [
        ["wasmtime_dir!=''", {
          "defines": ["VFIOBOX_WASMTIME=1"],
          "include_dirs": ["<(wasmtime_dir)/include"],
          "sources": [
            "native/src/wasm/component_binary.cc",
            "native/src/wasm/module.cc",
            "native/src/wasm/instance.cc",
            "native/src/wasm/lift.cc",
            "native/src/wasm/imports.cc",
            "native/src/wasm/windows.cc",
            "native/src/js/wasmtime.cc",
            "native/src/js/wasmtime_host.cc"
          ],
          "libraries": ["<(wasmtime_dir)/lib/libvfiobox_wasmtime.a", "-lpthread", "-ldl", "-lm"]
        }]
      ]
    },
    {
      "target_name": "vfio_core_fake",
      "defines": ["VFIOBOX_FAKE=1"],
      "sources": [
        "<@(core_sources)",
        "native/src/sys_fake.cc",
        "native/src/fake_vfio.cc",
        "native/src/fake_device.cc",
        "native/src/fake_iommufd.cc",
        "native/src/fake_control.cc",
        "native/src/js/fake.cc"
      ]
    }
  ]
}
