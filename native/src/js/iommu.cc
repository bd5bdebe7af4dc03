// SPDX-License-Identifier: MIT
// JS class Iommu (NativeIommu in host/native/types.ts).
#include <linux/vfio.h>

#include <chrono>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"

namespace vfiobox {

void ThrowClosed(Napi::Env env, const char* op, const char* what) {
  ThrowErrno(env, Status::Custom(op, EBADF, "ERR_VFIO_CLOSED", std::string(what) + " is closed"));
}

namespace {

/** defines `name` on `self` as a function whose callback data is `fast` (see IommuFastPath). */
template <Napi::Function::Callback kCallback>
void AttachFastFunction(Napi::Env env, Napi::Object self, const char* name,
                        const std::shared_ptr<IommuFastPath>& fast) {
  // SAFETY: the function's data pointer is kept alive by a heap copy of the shared_ptr that the
  // function's own finalizer deletes, so it is valid for every call the function can receive.
  auto* keep = new std::shared_ptr<IommuFastPath>(fast);
  Napi::Function fn = Napi::Function::New<kCallback>(env, name, keep->get());
  fn.AddFinalizer([](Napi::Env, std::shared_ptr<IommuFastPath>* p) { delete p; }, keep);
  self.DefineProperty(Napi::PropertyDescriptor::Value(name, fn, napi_default));
}

IommuFastPath& FastPath(const Napi::CallbackInfo& info) {
  // SAFETY: only AttachFastFunction makes these functions, with an IommuFastPath as data.
  return *static_cast<IommuFastPath*>(info.Data());
}

/** the selected buffer's memory (selectDmaBuffer), or throws: none selected, or closed. */
std::shared_ptr<DmaMemory> SelectedMemory(Napi::Env env, IommuFastPath& fast,
                                          const Napi::Value& arg) {
  if (!fast.has_selected) ThrowTypeError(env, "buffer", "a DmaBuffer (selectDmaBuffer first)", arg);
  std::shared_ptr<DmaMemory> mem = fast.selected.lock();
  // expired: closed and no entry left; closed: closed while entries still share the memory
  if (!mem || mem->closed) ThrowClosed(env, fast.map_op, "the DmaBuffer");
  return mem;
}

/** a batch's two lists must pair up */
void CheckSameLength(Napi::Env env, size_t n_offsets, size_t n_iovas) {
  if (n_offsets == n_iovas) return;
  ThrowRangeError(env, "iovas",
                  "as many entries as bufferOffsets (" + std::to_string(n_offsets) + ")",
                  Napi::Number::New(env, static_cast<double>(n_iovas)));
}

}  // namespace

Napi::Function JsIommu::Define(Napi::Env env) {
  return DefineClass(
      env, "Iommu",
      {InstanceAccessor<&JsIommu::JsKind>("kind"),
       InstanceMethod<&JsIommu::JsOpenDevice>("openDevice"),
       InstanceMethod<&JsIommu::JsIovaRanges>("iovaRanges"),
       InstanceMethod<&JsIommu::JsPageSizes>("pageSizes"),
       InstanceMethod<&JsIommu::JsDmaMap>("dmaMap"),
       InstanceMethod<&JsIommu::JsSelectDmaBuffer>("selectDmaBuffer"),
       InstanceMethod<&JsIommu::JsDmaMapBatch>("dmaMapBatch"),
       InstanceMethod<&JsIommu::JsDmaUnmapBatch>("dmaUnmapBatch"),
       InstanceMethod<&JsIommu::JsDmaList>("dmaList"), InstanceMethod<&JsIommu::JsClose>("close")});
}

JsIommu::JsIommu(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsIommu>(info) {
  kind_ = ArgString(info[0], "kind");
  if (kind_ != "legacy" && kind_ != "iommufd" && kind_ != "noiommu") {
    ThrowRangeError(info.Env(), "kind", "'legacy', 'iommufd' or 'noiommu'", info[0]);
  }
  if (kind_ == "iommufd") map_op_ = "IOMMU_IOAS_MAP";
  auto ctx = IommuContext::Create(kind_);
  if (!ctx.ok()) ThrowErrno(info.Env(), ctx.status());
  ctx_ = std::move(*ctx);
  fast_ = std::make_shared<IommuFastPath>();
  fast_->ctx = ctx_;
  fast_->map_op = map_op_;
  Napi::Object self = info.This().As<Napi::Object>();
  AttachFastFunction<&JsIommu::JsDmaMapSelected>(info.Env(), self, "dmaMapSelected", fast_);
  AttachFastFunction<&JsIommu::JsDmaUnmapFast>(info.Env(), self, "dmaUnmap", fast_);
  AttachFastFunction<&JsIommu::JsDmaMapBatchSelected>(info.Env(), self, "dmaMapBatchSelected",
                                                      fast_);
}

Napi::Value JsIommu::JsKind(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kind_);
}

Napi::Value JsIommu::JsOpenDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject())
    ThrowTypeError(env, "spec", "an object { bdf, groupPath | cdevPath }", info[0]);
  Napi::Object spec = info[0].As<Napi::Object>();
  DeviceOpenSpec open;
  open.bdf = ArgString(spec.Get("bdf"), "spec.bdf");
  if (kind_ == "iommufd") {
    open.cdev_path = ArgString(spec.Get("cdevPath"), "spec.cdevPath");
  } else {
    open.group_path = ArgString(spec.Get("groupPath"), "spec.groupPath");
  }
  auto device = ctx_->OpenDevice(open);
  if (!device.ok()) ThrowErrno(env, device.status());
  auto* init = new JsDevice::Init{ctx_, std::move(*device)};
  // SAFETY: the External carries ownership of `init` into the Device constructor, which
  // deletes it; nothing else sees the pointer.
  return Data(env).device_ctor.New({Napi::External<JsDevice::Init>::New(env, init)});
}

Napi::Value JsIommu::JsIovaRanges(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ranges = ctx_->IovaRanges();
  if (!ranges.ok()) ThrowErrno(env, ranges.status());
  Napi::Array out = Napi::Array::New(env, ranges->size());
  for (uint32_t i = 0; i < ranges->size(); ++i) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("start", Napi::BigInt::New(env, (*ranges)[i].start));
    r.Set("last", Napi::BigInt::New(env, (*ranges)[i].last));
    out.Set(i, r);
  }
  return out;
}

Napi::Value JsIommu::JsPageSizes(const Napi::CallbackInfo& info) {
  auto sizes = ctx_->PageSizes();
  if (!sizes.ok()) ThrowErrno(info.Env(), sizes.status());
  return Napi::BigInt::New(info.Env(), *sizes);
}

namespace {

// Two N-API calls (tag check, unwrap), no InstanceOf: bench/README.md has the profile.
JsDmaBuffer* ArgBuffer(const Napi::Value& v) {
  Napi::Env env = v.Env();
  bool tagged = false;
  if (napi_check_object_type_tag(env, v, &kDmaBufferTypeTag, &tagged) != napi_ok || !tagged) {
    // null/undefined: the check's ToObject left a TypeError pending; ours replaces it
    napi_value pending;
    bool is_pending = false;
    if (napi_is_exception_pending(env, &is_pending) == napi_ok && is_pending) {
      napi_get_and_clear_last_exception(env, &pending);
    }
    ThrowTypeError(env, "buffer", "a DmaBuffer", v);
  }
  return JsDmaBuffer::Unwrap(v.As<Napi::Object>());
}

/** A BigUint64Array's elements, or nullptr when `v` is no BigUint64Array. */
const uint64_t* BigU64Elements(Napi::Env env, const Napi::Value& v, size_t* count) {
  napi_typedarray_type type;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, count, &data, nullptr, nullptr) != napi_ok ||
      type != napi_biguint64_array) {
    return nullptr;
  }
  // SAFETY: a BigUint64Array's data is `count` uint64_t (8-byte aligned by the spec); the
  // caller reads it before any JS runs, so the buffer cannot be detached meanwhile.
  return static_cast<const uint64_t*>(data);
}

uint32_t ArgDmaFlags(const Napi::Value& v) {
  uint64_t flags = ArgUint(v, "flags", 0xffffffff);
  constexpr uint64_t kRw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  if (flags == 0 || (flags & ~kRw) != 0) {
    ThrowRangeError(v.Env(), "flags", "VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE (1..3)", v);
  }
  return static_cast<uint32_t>(flags);
}

}  // namespace

void JsIommu::MapOne(Napi::Env env, IommuContext& ctx, const std::shared_ptr<DmaMemory>& mem,
                     uint64_t offset, uint64_t iova, uint64_t size, uint32_t flags) {
  uint64_t length = mem->map.Length();
  if (offset > length || size > length - offset) {
    ThrowRangeError(env, "bufferOffset + sizeBytes",
                    "at most the buffer size " + std::to_string(length),
                    Napi::Number::New(env, static_cast<double>(offset + size)));
  }
  if (offset % ctx.table().page_size() != 0) {
    ThrowRangeError(env, "bufferOffset", "a multiple of the page size",
                    Napi::Number::New(env, static_cast<double>(offset)));
  }
  // SAFETY: offset + size <= the mapping's length (checked above): hva stays in the buffer.
  uint8_t* hva = mem->map.Data() + offset;
  Status s = ctx.DmaMap(mem, hva, offset, iova, size, flags);
  if (!s.ok()) ThrowErrno(env, s);
}

// The per-call path of dmaMap/dmaUnmap: one N-API call per argument, nothing allocated on
// success, and an empty return value (undefined without napi_get_undefined).
Napi::Value JsIommu::JsDmaMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  JsDmaBuffer* buffer = ArgBuffer(info[0]);
  uint64_t offset = ArgUint(info[1], "bufferOffset");
  uint64_t iova = ArgBigU64(info[2], "iova");
  uint64_t size = ArgUint(info[3], "sizeBytes");
  uint32_t flags = ArgDmaFlags(info[4]);
  MapOne(env, *ctx_, buffer->Memory(env, map_op_), offset, iova, size, flags);
  return Napi::Value();
}

// The facade's path for a buffer mapped again and again (host/vfio/iommu.ts): select it once,
// then each map skips the buffer's tag check and unwrap (two N-API calls and one argument).
Napi::Value JsIommu::JsSelectDmaBuffer(const Napi::CallbackInfo& info) {
  // a closed buffer is selected too; dmaMapSelected then refuses it after checking its
  // arguments, in the order dmaMap checks them
  fast_->selected = ArgBuffer(info[0])->WeakMemory();
  fast_->has_selected = true;
  return Napi::Value();
}

Napi::Value JsIommu::JsDmaMapSelected(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  IommuFastPath& fast = FastPath(info);
  uint64_t offset = ArgUint(info[0], "bufferOffset");
  uint64_t iova = ArgBigU64(info[1], "iova");
  uint64_t size = ArgUint(info[2], "sizeBytes");
  uint32_t flags = ArgDmaFlags(info[3]);
  std::shared_ptr<DmaMemory> mem = SelectedMemory(env, fast, info[0]);
  MapOne(env, *fast.ctx, mem, offset, iova, size, flags);
  return Napi::Value();
}

Napi::Value JsIommu::JsDmaMapBatchSelected(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  IommuFastPath& fast = FastPath(info);
  size_t n_offsets = 0, n_iovas = 0;
  const uint64_t* offsets = BigU64Elements(env, info[0], &n_offsets);
  if (!offsets) ThrowTypeError(env, "bufferOffsets", "a BigUint64Array", info[0]);
  const uint64_t* iovas = BigU64Elements(env, info[1], &n_iovas);
  if (!iovas) ThrowTypeError(env, "iovas", "a BigUint64Array", info[1]);
  CheckSameLength(env, n_offsets, n_iovas);
  uint64_t size = ArgUint(info[2], "sizeBytes");
  uint32_t flags = ArgDmaFlags(info[3]);
  std::shared_ptr<DmaMemory> mem = SelectedMemory(env, fast, info[0]);
  // no JS runs inside this loop (errors are thrown after it stops), so the arrays stay put
  for (size_t i = 0; i < n_offsets; ++i) {
    MapOne(env, *fast.ctx, mem, offsets[i], iovas[i], size, flags);
  }
  return Napi::Value();
}

Napi::Value JsIommu::JsDmaUnmapFast(const Napi::CallbackInfo& info) {
  uint64_t iova = ArgBigU64(info[0], "iova");
  uint64_t size = ArgUint(info[1], "sizeBytes");
  auto bytes = FastPath(info).ctx->DmaUnmap(iova, size);
  if (!bytes.ok()) ThrowErrno(info.Env(), bytes.status());
  return Napi::Number::New(info.Env(), static_cast<double>(*bytes));
}

// Two forms: arrays (number[] offsets, bigint[] iovas) or two BigUint64Arrays, read in place.
Napi::Value JsIommu::JsDmaMapBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  JsDmaBuffer* buffer = ArgBuffer(info[0]);
  size_t n_offsets = 0, n_iovas = 0;
  const uint64_t* offsets = BigU64Elements(env, info[1], &n_offsets);
  const uint64_t* iovas = offsets ? BigU64Elements(env, info[2], &n_iovas) : nullptr;
  if (offsets && !iovas) {
    ThrowTypeError(env, "iovas", "a BigUint64Array (as bufferOffsets is one)", info[2]);
  }
  if (!offsets) {
    if (!info[1].IsArray()) {
      ThrowTypeError(env, "bufferOffsets", "an array of numbers or a BigUint64Array", info[1]);
    }
    if (!info[2].IsArray()) ThrowTypeError(env, "iovas", "an array of bigints", info[2]);
    n_offsets = info[1].As<Napi::Array>().Length();
    n_iovas = info[2].As<Napi::Array>().Length();
  }
  CheckSameLength(env, n_offsets, n_iovas);
  uint64_t size = ArgUint(info[3], "sizeBytes");
  uint32_t flags = ArgDmaFlags(info[4]);
  const auto& mem = buffer->Memory(env, map_op_);
  if (offsets) {
    // no JS runs inside this loop (errors are thrown after it stops), so the arrays stay put
    for (size_t i = 0; i < n_offsets; ++i) {
      MapOne(env, *ctx_, mem, offsets[i], iovas[i], size, flags);
    }
    return Napi::Value();
  }
  Napi::Array offset_array = info[1].As<Napi::Array>();
  Napi::Array iova_array = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < n_offsets; ++i) {
    MapOne(env, *ctx_, mem, ArgUint(offset_array.Get(i), "bufferOffsets[i]"),
           ArgBigU64(iova_array.Get(i), "iovas[i]"), size, flags);
  }
  return Napi::Value();
}

Napi::Value JsIommu::JsDmaUnmapBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t n = 0;
  const uint64_t* iovas = BigU64Elements(env, info[0], &n);
  if (!iovas) ThrowTypeError(env, "iovas", "a BigUint64Array", info[0]);
  uint64_t size = ArgUint(info[1], "sizeBytes");
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    auto bytes = ctx_->DmaUnmap(iovas[i], size);
    if (!bytes.ok()) ThrowErrno(env, bytes.status());
    total += *bytes;
  }
  return Napi::Number::New(env, static_cast<double>(total));
}

Napi::Value JsIommu::JsBenchDmaLoop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(Data(env).iommu_ctor.Value())) {
    ThrowTypeError(env, "iommu", "an Iommu", info[0]);
  }
  JsIommu* iommu = JsIommu::Unwrap(info[0].As<Napi::Object>());
  JsDmaBuffer* buffer = ArgBuffer(info[1]);
  uint64_t offset = ArgUint(info[2], "bufferOffset");
  uint64_t iova = ArgBigU64(info[3], "iova");
  uint64_t size = ArgUint(info[4], "sizeBytes");
  uint64_t n = ArgUint(info[5], "n");
  std::string mode = ArgString(info[6], "mode");
  if (mode != "backend" && mode != "table") {
    ThrowRangeError(env, "mode", "'backend' or 'table'", info[6]);
  }
  const auto& mem = buffer->Memory(env, iommu->map_op_);
  uint64_t length = mem->map.Length();
  if (offset > length || size > length - offset) {
    ThrowRangeError(env, "bufferOffset + sizeBytes",
                    "at most the buffer size " + std::to_string(length), info[4]);
  }
  // SAFETY: offset + size <= the mapping's length (checked above): hva stays in the buffer.
  uint8_t* hva = mem->map.Data() + offset;
  constexpr uint32_t kRw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  auto t0 = std::chrono::steady_clock::now();
  Status s = iommu->ctx_->DmaMapUnmapLoop(mem, hva, offset, iova, size, kRw, n, mode == "table");
  auto t1 = std::chrono::steady_clock::now();
  if (!s.ok()) ThrowErrno(env, s);
  return Napi::Number::New(
      env,
      static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
}

Napi::Value JsIommu::JsDmaList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<DmaEntry> entries = ctx_->DmaList();
  Napi::Array out = Napi::Array::New(env, entries.size());
  for (uint32_t i = 0; i < entries.size(); ++i) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("iova", Napi::BigInt::New(env, entries[i].iova));
    e.Set("sizeBytes", Napi::Number::New(env, static_cast<double>(entries[i].size)));
    e.Set("flags", Napi::Number::New(env, entries[i].flags));
    e.Set("bufferOffset", Napi::Number::New(env, static_cast<double>(entries[i].buffer_offset)));
    out.Set(i, e);
  }
  return out;
}

Napi::Value JsIommu::JsClose(const Napi::CallbackInfo& info) {
  ctx_->Close();
  return info.Env().Undefined();
}

}  // namespace vfiobox
