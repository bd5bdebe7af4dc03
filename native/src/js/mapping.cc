// SPDX-License-Identifier: MIT
// JS class Mapping (NativeMapping): width-checked volatile access to an mmap'd region. The
// memory is never exposed as an ArrayBuffer; after close() or Device.close() every access
// throws ERR_VFIO_CLOSED, so no use-after-munmap is reachable from JS.
#include <sys/mman.h>

#include <cerrno>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"

namespace vfiobox {

Napi::Function JsMapping::Define(Napi::Env env) {
  return DefineClass(
      env, "Mapping",
      {InstanceAccessor<&JsMapping::JsSizeBytes>("sizeBytes"),
       InstanceAccessor<&JsMapping::JsRegionIndex>("regionIndex"),
       InstanceAccessor<&JsMapping::JsRegionOffset>("regionOffset"),
       InstanceMethod<&JsMapping::JsRead>("read"), InstanceMethod<&JsMapping::JsWrite>("write"),
       InstanceMethod<&JsMapping::JsClose>("close")});
}

JsMapping::JsMapping(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsMapping>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Mapping is not constructible: use Device.mmap()");
  }
  // SAFETY: the External was made by JsDevice::JsMmap and transfers ownership of Init.
  std::unique_ptr<Init> init(info[0].As<Napi::External<Init>>().Data());
  device_ = std::move(init->device);
  mapping_ = std::move(init->mapping);
}

Napi::Value JsMapping::JsSizeBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(mapping_->Size()));
}

Napi::Value JsMapping::JsRegionIndex(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), mapping_->region());
}

Napi::Value JsMapping::JsRegionOffset(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(mapping_->region_offset()));
}

uint8_t* JsMapping::Checked(const Napi::CallbackInfo& info, const char* op, uint64_t offset,
                            unsigned width, int prot) {
  if (!mapping_->Alive()) ThrowClosed(info.Env(), op, "the mapping");
  if (!mapping_->Allows(prot)) {  // the access would fault: refuse it instead of crashing
    ThrowErrno(info.Env(), Status::Custom(op, EACCES, "ERR_VFIO_MAPPING_ACCESS",
                                          prot == PROT_WRITE ? "the region is not writable"
                                                             : "the region is not readable",
                                          {{"region", DetailValue::Num(mapping_->region())}}));
  }
  if (offset > mapping_->Size() || width > mapping_->Size() - offset) {
    ThrowRangeError(info.Env(), "offset", "offset + width <= " + std::to_string(mapping_->Size()),
                    info[0]);
  }
  if (offset % width != 0) {
    ThrowRangeError(info.Env(), "offset", "a multiple of the width " + std::to_string(width),
                    info[0]);
  }
  // SAFETY: the mapping is alive (not munmapped) and offset + width <= its size, with offset
  // aligned to width, so the access stays inside the mmap.
  return mapping_->Data() + offset;
}

Napi::Value JsMapping::JsRead(const Napi::CallbackInfo& info) {
  uint64_t offset = ArgUint(info[0], "offset");
  unsigned width = ArgWidth(info[1], "width");
  uint8_t* p = Checked(info, "Mapping.read", offset, width, PROT_READ);
  return WidthValue(info.Env(), width, MmioLoad(p, width));
}

Napi::Value JsMapping::JsWrite(const Napi::CallbackInfo& info) {
  uint64_t offset = ArgUint(info[0], "offset");
  unsigned width = ArgWidth(info[1], "width");
  uint64_t value = ArgValueForWidth(info[2], "value", width);
  uint8_t* p = Checked(info, "Mapping.write", offset, width, PROT_WRITE);
  MmioStore(p, width, value);
  return info.Env().Undefined();
}

Napi::Value JsMapping::JsClose(const Napi::CallbackInfo& info) {
  mapping_->Kill();
  return info.Env().Undefined();
}

}  // namespace vfiobox
