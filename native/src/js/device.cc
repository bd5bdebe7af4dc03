// SPDX-License-Identifier: MIT
// JS class Device (NativeDevice in host/native/types.ts). Not constructible from JS: made by
// Iommu.openDevice.
#include <linux/vfio.h>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"

namespace vfiobox {

Napi::Function JsDevice::Define(Napi::Env env) {
  return DefineClass(
      env, "Device",
      {InstanceAccessor<&JsDevice::JsBdf>("bdf"), InstanceMethod<&JsDevice::JsInfo>("info"),
       InstanceMethod<&JsDevice::JsRegionInfo>("regionInfo"),
       InstanceMethod<&JsDevice::JsIrqInfo>("irqInfo"), InstanceMethod<&JsDevice::JsRead>("read"),
       InstanceMethod<&JsDevice::JsWrite>("write"),
       InstanceMethod<&JsDevice::JsReadBlock>("readBlock"),
       InstanceMethod<&JsDevice::JsWriteBlock>("writeBlock"),
       InstanceMethod<&JsDevice::JsMmap>("mmap"), InstanceMethod<&JsDevice::JsSetIrqs>("setIrqs"),
       InstanceMethod<&JsDevice::JsReset>("reset"), InstanceMethod<&JsDevice::JsClose>("close")});
}

JsDevice::JsDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsDevice>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Device is not constructible: use Iommu.openDevice()");
  }
  // SAFETY: the External was made by JsIommu::JsOpenDevice and transfers ownership of Init.
  std::unique_ptr<Init> init(info[0].As<Napi::External<Init>>().Data());
  ctx_ = std::move(init->ctx);
  device_ = std::move(init->device);
}

Napi::Value JsDevice::JsBdf(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), device_->bdf());
}

Napi::Value JsDevice::JsInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto di = device_->Info();
  if (!di.ok()) ThrowErrno(env, di.status());
  Napi::Object out = Napi::Object::New(env);
  out.Set("flags", di->flags);
  out.Set("numRegions", di->num_regions);
  out.Set("numIrqs", di->num_irqs);
  return out;
}

namespace {

Napi::Value CapToJs(Napi::Env env, const RegionCap& cap) {
  Napi::Object out = Napi::Object::New(env);
  switch (cap.kind) {
    case RegionCap::Kind::kSparseMmap: {
      out.Set("kind", "sparse-mmap");
      Napi::Array areas = Napi::Array::New(env, cap.areas.size());
      for (uint32_t i = 0; i < cap.areas.size(); ++i) {
        Napi::Object a = Napi::Object::New(env);
        a.Set("offset", static_cast<double>(cap.areas[i].first));
        a.Set("sizeBytes", static_cast<double>(cap.areas[i].second));
        areas.Set(i, a);
      }
      out.Set("areas", areas);
      break;
    }
    case RegionCap::Kind::kType:
      out.Set("kind", "type");
      out.Set("type", cap.type);
      out.Set("subtype", cap.subtype);
      break;
    case RegionCap::Kind::kMsixMappable:
      out.Set("kind", "msix-mappable");
      break;
    default:
      out.Set("kind", "unknown");
      out.Set("id", cap.id);
      out.Set("version", cap.version);
  }
  return out;
}

}  // namespace

Napi::Value JsDevice::JsRegionInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "index", 0xffffffff));
  auto ri = device_->GetRegionInfo(index);
  if (!ri.ok()) ThrowErrno(env, ri.status());
  Napi::Object out = Napi::Object::New(env);
  out.Set("index", ri->index);
  out.Set("flags", ri->flags);
  out.Set("sizeBytes", static_cast<double>(ri->size));
  out.Set("fdOffset", Napi::BigInt::New(env, ri->fd_offset));
  Napi::Array caps = Napi::Array::New(env, ri->caps.size());
  for (uint32_t i = 0; i < ri->caps.size(); ++i) caps.Set(i, CapToJs(env, ri->caps[i]));
  out.Set("caps", caps);
  return out;
}

Napi::Value JsDevice::JsIrqInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "index", 0xffffffff));
  auto ii = device_->IrqInfo(index);
  if (!ii.ok()) ThrowErrno(env, ii.status());
  Napi::Object out = Napi::Object::New(env);
  out.Set("index", ii->index);
  out.Set("flags", ii->flags);
  out.Set("count", ii->count);
  return out;
}

const RegionInfo& JsDevice::CheckedRegion(const Napi::CallbackInfo& info, uint32_t index,
                                          uint64_t offset, uint64_t length) {
  auto region = device_->Region(index);
  if (!region.ok()) ThrowErrno(info.Env(), region.status());
  uint64_t size = (*region)->size;
  if (offset > size || length > size - offset) {
    ThrowRangeError(info.Env(), "offset",
                    "offset + length within region " + std::to_string(index) + " of size " +
                        std::to_string(size),
                    info[1]);
  }
  return **region;
}

Napi::Value JsDevice::JsRead(const Napi::CallbackInfo& info) {
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "region", 0xffffffff));
  uint64_t offset = ArgUint(info[1], "offset");
  unsigned width = ArgWidth(info[2], "width");
  CheckedRegion(info, index, offset, width);
  uint64_t value = 0;
  if (Status s = device_->Read(index, offset, width, &value); !s.ok()) ThrowErrno(info.Env(), s);
  return WidthValue(info.Env(), width, value);
}

Napi::Value JsDevice::JsWrite(const Napi::CallbackInfo& info) {
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "region", 0xffffffff));
  uint64_t offset = ArgUint(info[1], "offset");
  unsigned width = ArgWidth(info[2], "width");
  uint64_t value = ArgValueForWidth(info[3], "value", width);
  CheckedRegion(info, index, offset, width);
  if (Status s = device_->Write(index, offset, width, value); !s.ok()) ThrowErrno(info.Env(), s);
  return info.Env().Undefined();
}

Napi::Value JsDevice::JsReadBlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "region", 0xffffffff));
  uint64_t offset = ArgUint(info[1], "offset");
  uint64_t length = ArgUint(info[2], "length", 1 << 30);
  CheckedRegion(info, index, offset, length);
  std::vector<uint8_t> bytes(length);
  if (Status s = device_->ReadBlock(index, offset, bytes.data(), length); !s.ok())
    ThrowErrno(env, s);
  return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size());
}

Napi::Value JsDevice::JsWriteBlock(const Napi::CallbackInfo& info) {
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "region", 0xffffffff));
  uint64_t offset = ArgUint(info[1], "offset");
  Napi::Uint8Array data = ArgBytes(info[2], "data");
  CheckedRegion(info, index, offset, data.ElementLength());
  Status s = device_->WriteBlock(index, offset, data.Data(), data.ElementLength());
  if (!s.ok()) ThrowErrno(info.Env(), s);
  return info.Env().Undefined();
}

Napi::Value JsDevice::JsMmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "region", 0xffffffff));
  uint64_t offset = ArgUint(info[1], "offset");
  uint64_t size = ArgUint(info[2], "sizeBytes");
  if (size == 0) ThrowRangeError(env, "sizeBytes", "a size > 0", info[2]);
  if (offset % static_cast<uint64_t>(sys::PageSize()) != 0) {
    ThrowRangeError(env, "offset", "a multiple of the page size", info[1]);
  }
  const RegionInfo& region = CheckedRegion(info, index, offset, size);
  if (!(region.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
    ThrowErrno(env, Status::Custom("mmap", EINVAL, "ERR_VFIO_NOT_MMAPPABLE",
                                   "the region has no VFIO_REGION_INFO_FLAG_MMAP",
                                   {{"bdf", DetailValue::Str(device_->bdf())},
                                    {"region", DetailValue::Num(index)}}));
  }
  auto mapping = device_->Map(index, offset, size);
  if (!mapping.ok()) ThrowErrno(env, mapping.status());
  auto* init = new JsMapping::Init{device_, std::move(*mapping)};
  // SAFETY: ownership of `init` passes to the Mapping constructor through the External.
  return Data(env).mapping_ctor.New({Napi::External<JsMapping::Init>::New(env, init)});
}

Napi::Value JsDevice::JsReset(const Napi::CallbackInfo& info) {
  if (Status s = device_->Reset(); !s.ok()) ThrowErrno(info.Env(), s);
  return info.Env().Undefined();
}

Napi::Value JsDevice::JsClose(const Napi::CallbackInfo& info) {
  device_->Close();
  return info.Env().Undefined();
}

}  // namespace vfiobox
