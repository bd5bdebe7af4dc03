// SPDX-License-Identifier: MIT
// Module init: instance data, the export list of host/native/types.ts (Native), nothing else.
#include <napi.h>

#include "native/src/js/classes.h"
#include "native/src/js/common.h"
#include "native/src/sys.h"
#ifndef VFIOBOX_FAKE
#include "native/src/js/vfio_user_server.h"
#endif
#ifdef VFIOBOX_WASMTIME
#include "native/src/js/wasmtime.h"
#endif

namespace vfiobox {

namespace {

constexpr int kAbiVersion = 6;  // NATIVE_ABI_VERSION in host/native/types.ts

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) ThrowTypeError(info.Env(), "factory", "a function", info[0]);
  Data(info.Env()).error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Object InitExports(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted with the environment
  Napi::Function iommu = JsIommu::Define(env);
  Napi::Function dma_buffer = JsDmaBuffer::Define(env);
  Napi::Function eventfd = JsEventFd::Define(env);
  data->iommu_ctor = Napi::Persistent(iommu);
  data->device_ctor = Napi::Persistent(JsDevice::Define(env));
  data->mapping_ctor = Napi::Persistent(JsMapping::Define(env));
  data->dma_buffer_ctor = Napi::Persistent(dma_buffer);
  data->eventfd_ctor = Napi::Persistent(eventfd);

  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  exports.Set("sysLayer", Napi::String::New(env, sys::kLayerName));
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory, "setErrorFactory"));
  exports.Set("Iommu", iommu);
  exports.Set("DmaBuffer", dma_buffer);
  exports.Set("EventFd", eventfd);
  exports.Set("benchDmaLoop", Napi::Function::New(env, JsIommu::JsBenchDmaLoop, "benchDmaLoop"));
#ifdef VFIOBOX_FAKE
  exports.Set("fake", CreateFakeExport(env));
#else
  // vfio-user uses real sockets and memfds (direct syscalls): the real addon only
  Napi::Function socket = JsVfioUserSocket::Define(env);
  data->vfio_user_socket_ctor = Napi::Persistent(socket);
  exports.Set("VfioUserSocket", socket);
  Napi::Function server = JsVfioUserServer::Define(env);
  data->vfio_user_server_ctor = Napi::Persistent(server);
  exports.Set("VfioUserServer", server);
  DefineFdFunctions(env, exports);
#endif
#ifdef VFIOBOX_WASMTIME
  exports.Set("wasmtime", CreateWasmtimeExport(env));
#endif
  return exports;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) { return InitExports(env, exports); }

}  // namespace vfiobox

// NODE_API_MODULE pastes tokens from the function name, so it needs an unqualified one.
static Napi::Object InitVfioCore(Napi::Env env, Napi::Object exports) {
  return vfiobox::Init(env, exports);
}
NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitVfioCore)
