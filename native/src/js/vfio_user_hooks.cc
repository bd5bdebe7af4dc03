// SPDX-License-Identifier: MIT
// JsServerHooks: ServerCore's DeviceHooks as calls into the JS callbacks object. Raw Node-API
// only (vfio_user_napi.h): these run from libuv callbacks, possibly while a worker is being
// terminated, and must then fail quietly instead of aborting. Per request: three numbers and
// one napi_call_function; the handle scope and the callback scope (microtasks) belong to the
// poll wakeup (vfio_user_server.cc), not to each request.
#include <cerrno>
#include <cstring>

#include "native/src/js/vfio_user_napi.h"
#include "native/src/js/vfio_user_server.h"

namespace vfiobox {

int JsServerHooks::Call(const Napi::FunctionReference& cb, size_t argc, const napi_value* argv) {
  if (owner_->js_gone_ || owner_->env_dying_) return kAbandoned;
  if (cb.IsEmpty()) return 0;
  napi_env env = owner_->env_;
  napi_value result = nullptr;
  if (rawjs::CallDirect(env, cb, argc, argv, &result)) {
    double err = -1;
    if (napi_get_value_double(env, result, &err) == napi_ok) {
      if (err >= 0 && err < 4096 && static_cast<int>(err) == err) return static_cast<int>(err);
    } else {
      napi_valuetype type = napi_null;
      if (napi_typeof(env, result, &type) == napi_ok && type == napi_undefined) return 0;
    }
  } else {
    rawjs::ClearException(env);
    // A throw leaves the thread able to run JS; termination (worker.terminate(): the
    // watchdog stopping a plugin call) does not. Then the request is left in flight.
    if (!rawjs::CallDirect(env, owner_->callbacks_.probe, 0, nullptr, &result)) {
      rawjs::ClearException(env);
      owner_->js_gone_ = true;
      return kAbandoned;
    }
  }
  // threw, or returned something that is not an errno
  ++owner_->callback_errors_;
  return EIO;
}

bool JsServerHooks::Gone() const { return owner_->js_gone_ || owner_->env_dying_; }

uint8_t* JsServerHooks::Scratch(uint32_t count) {
  napi_env env = owner_->env_;
  napi_value array = nullptr;
  if (napi_get_reference_value(env, owner_->scratch_, &array) != napi_ok || array == nullptr) {
    return nullptr;
  }
  // re-read every time: JS may have detached (transferred) the buffer since
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, array, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      data == nullptr || length < count) {
    return nullptr;
  }
  return static_cast<uint8_t*>(data);
}

int JsServerHooks::RegionRead(uint32_t region, uint64_t offset, uint8_t* out, uint32_t count) {
  if (Gone()) return kAbandoned;  // no handle may be made: no scope is open
  if (int direct = owner_->DirectRead(region, offset, out, count); direct >= 0) return direct;
  napi_env env = owner_->env_;
  napi_value args[3] = {rawjs::Uint(env, region), rawjs::Number(env, static_cast<double>(offset)),
                        rawjs::Uint(env, count)};
  int err = Call(owner_->callbacks_.region_read, 3, args);
  if (err != 0) return err;
  uint8_t* scratch = Scratch(count);
  if (scratch == nullptr) return EIO;
  std::memcpy(out, scratch, count);
  return 0;
}

int JsServerHooks::RegionWrite(uint32_t region, uint64_t offset, const uint8_t* data,
                               uint32_t count) {
  if (Gone()) return kAbandoned;  // no handle may be made: no scope is open
  if (int direct = owner_->DirectWrite(region, offset, data, count); direct >= 0) return direct;
  napi_env env = owner_->env_;
  uint8_t* scratch = Scratch(count);
  if (scratch == nullptr) return EIO;
  std::memcpy(scratch, data, count);
  napi_value args[3] = {rawjs::Uint(env, region), rawjs::Number(env, static_cast<double>(offset)),
                        rawjs::Uint(env, count)};
  return Call(owner_->callbacks_.region_write, 3, args);
}

int JsServerHooks::Reset() { return Call(owner_->callbacks_.reset, 0, nullptr); }

void JsServerHooks::OnConnect() {
  if (Gone()) return;
  napi_value args[1] = {rawjs::Bool(owner_->env_, false)};
  Call(owner_->callbacks_.on_connect, 1, args);
}

void JsServerHooks::OnAdopt() {
  if (Gone()) return;
  napi_value args[1] = {rawjs::Bool(owner_->env_, true)};
  Call(owner_->callbacks_.on_connect, 1, args);
}

void JsServerHooks::OnDisconnect(const std::string& reason) {
  if (Gone()) return;
  owner_->DropWindows(0, 0);
  napi_value args[1] = {rawjs::String(owner_->env_, reason)};
  Call(owner_->callbacks_.on_disconnect, 1, args);
}

void JsServerHooks::OnIrqState(uint32_t index, uint32_t start, uint32_t count, uint32_t flags) {
  if (Gone()) return;
  napi_env env = owner_->env_;
  napi_value args[4] = {rawjs::Uint(env, index), rawjs::Uint(env, start), rawjs::Uint(env, count),
                        rawjs::Uint(env, flags)};
  Call(owner_->callbacks_.on_irq_state, 4, args);
}

void JsServerHooks::OnDmaMap(uint64_t iova, uint64_t size, uint32_t flags, bool has_fd) {
  if (Gone()) return;
  napi_env env = owner_->env_;
  napi_value args[4] = {rawjs::BigU64(env, iova), rawjs::BigU64(env, size), rawjs::Uint(env, flags),
                        rawjs::Bool(env, has_fd)};
  Call(owner_->callbacks_.on_dma_map, 4, args);
}

void JsServerHooks::OnDmaUnmap(uint64_t iova, uint64_t size) {
  if (Gone()) return;
  owner_->DropWindows(iova, size);
  napi_env env = owner_->env_;
  napi_value args[2] = {rawjs::BigU64(env, iova), rawjs::BigU64(env, size)};
  Call(owner_->callbacks_.on_dma_unmap, 2, args);
}

void JsServerHooks::OnProtocolError(uint16_t command, int err, const std::string& what) {
  if (Gone()) return;
  napi_env env = owner_->env_;
  napi_value args[3] = {rawjs::Uint(env, command), rawjs::Number(env, err),
                        rawjs::String(env, what)};
  Call(owner_->callbacks_.on_protocol_error, 3, args);
}

}  // namespace vfiobox
