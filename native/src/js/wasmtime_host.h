// SPDX-License-Identifier: MIT
// The wasm::Host of a wasmtime instance made from JS (wasmtime_host.cc): its imports are calls
// of the grant-checked HostImports object the TS engine passes to instantiate().
#ifndef VFIOBOX_NATIVE_JS_WASMTIME_HOST_H_
#define VFIOBOX_NATIVE_JS_WASMTIME_HOST_H_

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "native/src/wasm/host.h"
#include "native/src/wasm/instance.h"

namespace vfiobox {

/** A wasm::Host that its instance's owner tells about the instance's life. */
class JsHostImports : public wasm::Host {
 public:
  /** the instance these imports serve, once Instance::Create has made it */
  virtual void set_instance(wasm::Instance* instance) = 0;
  /** the instance was disposed: no lent buffer may outlive its memory */
  virtual void InstanceGone() = 0;
};

/** Reads every method it will call from `imports`; throws TypeError for a missing one. */
std::unique_ptr<JsHostImports> MakeJsHost(Napi::Env env, Napi::Object imports);

/** A plain Uint8Array copy (a Buffer's slice() is a view, which the engine interface's users
 *  do not expect of a Uint8Array). */
Napi::Uint8Array PlainBytes(Napi::Env env, const uint8_t* data, size_t len);

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_JS_WASMTIME_HOST_H_
