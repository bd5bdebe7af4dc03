// SPDX-License-Identifier: MIT
// The addon's `wasmtime` export (js/wasmtime.cc), present when the core is built with wasmtime.
#ifndef VFIOBOX_NATIVE_SRC_JS_WASMTIME_H_
#define VFIOBOX_NATIVE_SRC_JS_WASMTIME_H_

#include <napi.h>

namespace vfiobox {

/** { version, compile(bytes, cachePath) }: host/plugins/engines/wasmtime-native.ts */
Napi::Object CreateWasmtimeExport(Napi::Env env);

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_JS_WASMTIME_H_
