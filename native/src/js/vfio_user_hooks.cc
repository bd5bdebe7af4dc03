// SPDX-License-Identifier: MIT
// JsServerHooks: ServerCore's DeviceHooks as calls into the JS callbacks object. Raw Node-API
// only (vfio_user_napi.h): these run from libuv callbacks, possibly while a worker is being
// terminated, and must then fail quietly (EIO) instead of aborting. A callback that throws
// is answered with EIO and counted in callbackErrors.
#include <cerrno>
#include <cstring>

#include "native/src/js/vfio_user_napi.h"
#include "native/src/js/vfio_user_server.h"

namespace vfiobox {

int JsServerHooks::Call(const Napi::FunctionReference& cb, std::initializer_list<napi_value> args) {
  if (cb.IsEmpty() || owner_->env_dying_) return 0;
  napi_env env = owner_->env_;
  napi_value result = nullptr;
  if (rawjs::Call(env, cb, args, &result)) {
    napi_valuetype type = napi_undefined;
    napi_typeof(env, result, &type);
    if (type == napi_undefined) return 0;
    double err = -1;
    if (type == napi_number) napi_get_value_double(env, result, &err);
    if (err >= 0 && err < 4096 && static_cast<int>(err) == err) return static_cast<int>(err);
  }
  // threw, returned something that is not an errno, or could not be called at all
  ++owner_->callback_errors_;
  return EIO;
}

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
  napi_env env = owner_->env_;
  rawjs::Scope scope(env);
  if (owner_->env_dying_ || !scope.ok()) return EIO;
  int err = Call(owner_->callbacks_.region_read,
                 {rawjs::Number(env, region), rawjs::Number(env, static_cast<double>(offset)),
                  rawjs::Number(env, count)});
  if (err != 0) return err;
  uint8_t* scratch = Scratch(count);
  if (scratch == nullptr) return EIO;
  std::memcpy(out, scratch, count);
  return 0;
}

int JsServerHooks::RegionWrite(uint32_t region, uint64_t offset, const uint8_t* data,
                               uint32_t count) {
  napi_env env = owner_->env_;
  rawjs::Scope scope(env);
  if (owner_->env_dying_ || !scope.ok()) return EIO;
  uint8_t* scratch = Scratch(count);
  if (scratch == nullptr) return EIO;
  std::memcpy(scratch, data, count);
  return Call(owner_->callbacks_.region_write,
              {rawjs::Number(env, region), rawjs::Number(env, static_cast<double>(offset)),
               rawjs::Number(env, count)});
}

int JsServerHooks::Reset() {
  rawjs::Scope scope(owner_->env_);
  return Call(owner_->callbacks_.reset, {});
}

void JsServerHooks::OnConnect() {
  rawjs::Scope scope(owner_->env_);
  Call(owner_->callbacks_.on_connect, {});
}

void JsServerHooks::OnDisconnect(const std::string& reason) {
  napi_env env = owner_->env_;
  rawjs::Scope scope(env);
  Call(owner_->callbacks_.on_disconnect, {rawjs::String(env, reason)});
}

void JsServerHooks::OnIrqState(uint32_t index, uint32_t start, uint32_t count, uint32_t flags) {
  napi_env env = owner_->env_;
  rawjs::Scope scope(env);
  Call(owner_->callbacks_.on_irq_state, {rawjs::Number(env, index), rawjs::Number(env, start),
                                         rawjs::Number(env, count), rawjs::Number(env, flags)});
}

void JsServerHooks::OnDmaMap(uint64_t iova, uint64_t size, uint32_t flags, bool has_fd) {
  napi_env env = owner_->env_;
  rawjs::Scope scope(env);
  Call(owner_->callbacks_.on_dma_map, {rawjs::BigU64(env, iova), rawjs::BigU64(env, size),
                                       rawjs::Number(env, flags), rawjs::Bool(env, has_fd)});
}

void JsServerHooks::OnDmaUnmap(uint64_t iova, uint64_t size) {
  napi_env env = owner_->env_;
  rawjs::Scope scope(env);
  Call(owner_->callbacks_.on_dma_unmap, {rawjs::BigU64(env, iova), rawjs::BigU64(env, size)});
}

void JsServerHooks::OnProtocolError(uint16_t command, int err, const std::string& what) {
  napi_env env = owner_->env_;
  rawjs::Scope scope(env);
  Call(owner_->callbacks_.on_protocol_error,
       {rawjs::Number(env, command), rawjs::Number(env, err), rawjs::String(env, what)});
}

}  // namespace vfiobox
