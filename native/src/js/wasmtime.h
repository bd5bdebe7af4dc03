// SPDX-License-Identifier: MIT
// The addon's `wasmtime` export (js/wasmtime.cc), present when the core is built with wasmtime.
#ifndef VFIOBOX_NATIVE_SRC_JS_WASMTIME_H_
#define VFIOBOX_NATIVE_SRC_JS_WASMTIME_H_

#include <napi.h>

#include <memory>

#include "native/src/wasm/host.h"
#include "native/src/wasm/instance.h"

namespace vfiobox {

/**
 * One live plugin instance and the host it calls, shared by its JS object (WasmInstance) and a
 * transport that calls it directly (the vfio-user server's direct BAR route). Used only on the
 * thread of `env`; the instance goes first, then the host.
 */
struct LiveWasm {
  napi_env env = nullptr;
  std::unique_ptr<wasm::Host> host;
  std::unique_ptr<wasm::Instance> instance;
  ~LiveWasm() { instance.reset(); }
};

/** the LiveWasm of a WasmInstance object made on `env`'s thread, or nullptr for anything else */
std::shared_ptr<LiveWasm> LiveWasmOf(Napi::Env env, Napi::Value value);

/** { version, compile(bytes, cachePath) }: host/plugins/engines/wasmtime-native.ts */
Napi::Object CreateWasmtimeExport(Napi::Env env);

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_JS_WASMTIME_H_
