// SPDX-License-Identifier: MIT
// The methods of VfioUserServer the device model calls (dmaRead, dmaWrite, dmaCheck,
// dmaReadInto, dmaWriteFrom, triggerIrq, memoryRead, memoryWrite),
// stats(), and the host functions the main thread calls after terminating a worker:
// vfioUserFence (answer the request in flight as a fenced device) and vfioUserClose (drop a
// detached host). Normal JS-facing methods: they run inside a JS call.
#include <cerrno>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"
#include "native/src/js/vfio_user_server.h"

namespace vfiobox {

namespace {

// [SPEC "Commands"] names, indexed by command number (14 is unused).
const char* const kCommandNames[vfio_user::kCmdMax + 1] = {"UNKNOWN",
                                                           "VERSION",
                                                           "DMA_MAP",
                                                           "DMA_UNMAP",
                                                           "DEVICE_GET_INFO",
                                                           "DEVICE_GET_REGION_INFO",
                                                           "DEVICE_GET_REGION_IO_FDS",
                                                           "DEVICE_GET_IRQ_INFO",
                                                           "DEVICE_SET_IRQS",
                                                           "REGION_READ",
                                                           "REGION_WRITE",
                                                           "DMA_READ",
                                                           "DMA_WRITE",
                                                           "DEVICE_RESET",
                                                           "UNUSED_14",
                                                           "REGION_WRITE_MULTI",
                                                           "DEVICE_FEATURE",
                                                           "MIG_DATA_READ",
                                                           "MIG_DATA_WRITE"};

Napi::Value Num(Napi::Env env, uint64_t v) {
  return Napi::Number::New(env, static_cast<double>(v));
}

Napi::Array Counts(Napi::Env env, const std::vector<uint64_t>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(i, Num(env, v[i]));
  return a;
}

}  // namespace

Napi::Value JsVfioUserServer::JsDmaRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t iova = ArgBigU64(info[0], "iova");
  uint64_t len = ArgUint(info[1], "len", vfio_user::kMaxSendQueueBytes);
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, len);
  int r = attached_ ? core().DmaRead(iova, out.Data(), len) : -EFAULT;
  UpdateClientWatch();  // a DMA exchange may have queued commands
  if (r < 0) {
    ThrowErrno(env, "vfio-user:DMA_READ", -r,
               {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(len)}});
  }
  return out;
}

Napi::Value JsVfioUserServer::JsDmaWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t iova = ArgBigU64(info[0], "iova");
  Napi::Uint8Array data = ArgBytes(info[1], "data");
  int r = attached_ ? core().DmaWrite(iova, data.Data(), data.ElementLength()) : -EFAULT;
  UpdateClientWatch();
  if (r < 0) {
    ThrowErrno(
        env, "vfio-user:DMA_WRITE", -r,
        {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(data.ElementLength())}});
  }
  return env.Undefined();
}

vfio_user::RegionMemory* JsVfioUserServer::MemoryOf(const Napi::CallbackInfo& info,
                                                    const char* op) {
  uint64_t region = ArgUint(info[0], "region", 0xffffffff);
  if (!attached_) ThrowErrno(info.Env(), op, ENODEV);  // not listening (or closed): no memory
  const std::vector<vfio_user::RegionSpec>& regions = core().layout().regions;
  if (region >= regions.size() || !regions[region].memory) {
    ThrowRangeError(info.Env(), "region", "a memory-backed region", info[0]);
  }
  return regions[region].memory.get();
}

Napi::Value JsVfioUserServer::JsMemoryRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  vfio_user::RegionMemory* memory = MemoryOf(info, "shared-memory.read");
  uint64_t offset = ArgUint(info[1], "offset");
  uint64_t len = ArgUint(info[2], "len");
  if (offset > memory->size() || len > memory->size() - offset) {
    ThrowRangeError(env, "len", "offset + len <= " + std::to_string(memory->size()), info[2]);
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, len);
  memory->Read(offset, out.Data(), len);  // cannot fail: checked above
  return out;
}

Napi::Value JsVfioUserServer::JsMemoryWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  vfio_user::RegionMemory* memory = MemoryOf(info, "shared-memory.write");
  uint64_t offset = ArgUint(info[1], "offset");
  Napi::Uint8Array data = ArgBytes(info[2], "data");
  size_t len = data.ElementLength();
  if (offset > memory->size() || len > memory->size() - offset) {
    ThrowRangeError(env, "offset", "offset + data.length <= " + std::to_string(memory->size()),
                    info[1]);
  }
  memory->Write(offset, data.Data(), len);
  return env.Undefined();
}

namespace {

/**
 * memory[offset, offset + len) of an ArrayBuffer argument (a plugin's linear memory): its
 * bytes, or a RangeError naming the range. Checked here, where the pointer is made.
 */
uint8_t* ArgMemoryRange(const Napi::CallbackInfo& info, uint64_t* len) {
  Napi::Env env = info.Env();
  if (!info[1].IsArrayBuffer()) ThrowTypeError(env, "memory", "an ArrayBuffer", info[1]);
  Napi::ArrayBuffer memory = info[1].As<Napi::ArrayBuffer>();
  uint64_t offset = ArgUint(info[2], "offset");
  *len = ArgUint(info[3], "len", vfio_user::kMaxSendQueueBytes);
  uint64_t size = memory.ByteLength();
  if (offset > size || *len > size - offset) {
    ThrowRangeError(env, "offset", "a range inside the memory's " + std::to_string(size) + " bytes",
                    info[2]);
  }
  // SAFETY: offset + len <= ByteLength (checked above); no JS runs before the caller's copy
  // ends, so the buffer cannot be detached (a wasm memory.grow) under it.
  return static_cast<uint8_t*>(memory.Data()) + offset;
}

}  // namespace

Napi::Value JsVfioUserServer::JsDmaCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t iova = ArgBigU64(info[0], "iova");
  uint64_t len = ArgUint(info[1], "len", vfio_user::kMaxSendQueueBytes);
  bool to_guest = info[2].ToBoolean();
  int r = attached_ ? core().DmaCheck(iova, len, to_guest) : -EFAULT;
  if (r < 0) {
    ThrowErrno(env, to_guest ? "vfio-user:DMA_WRITE" : "vfio-user:DMA_READ", -r,
               {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(len)}});
  }
  return Napi::Boolean::New(env, r == 0);
}

// dmaReadInto/dmaWriteFrom: the plugin's one-copy DMA (host/plugins/engines/v8-dma.ts). The
// success path allocates no JS object.
Napi::Value JsVfioUserServer::JsDmaReadInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t iova = ArgBigU64(info[0], "iova");
  uint64_t len = 0;
  uint8_t* out = ArgMemoryRange(info, &len);
  int r = attached_ ? core().DmaRead(iova, out, len) : -EFAULT;
  UpdateClientWatch();
  if (r < 0) {
    ThrowErrno(env, "vfio-user:DMA_READ", -r,
               {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(len)}});
  }
  return env.Undefined();
}

Napi::Value JsVfioUserServer::JsDmaWriteFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t iova = ArgBigU64(info[0], "iova");
  uint64_t len = 0;
  const uint8_t* data = ArgMemoryRange(info, &len);
  int r = attached_ ? core().DmaWrite(iova, data, len) : -EFAULT;
  UpdateClientWatch();
  if (r < 0) {
    ThrowErrno(env, "vfio-user:DMA_WRITE", -r,
               {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(len)}});
  }
  return env.Undefined();
}

Napi::Value JsVfioUserServer::JsTriggerIrq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "index", 0xffffffff));
  uint32_t sub = static_cast<uint32_t>(ArgUint(info[1], "subindex", 0xffffffff));
  int r = 0;
  if (attached_) {
    r = core().TriggerIrq(index, sub);
  } else if (index >= layout_.irqs.size() || sub >= layout_.irqs[index].count) {
    r = -EINVAL;
  }
  if (r == -EINVAL) ThrowRangeError(env, "index/subindex", "an IRQ of the layout", info[1]);
  return Napi::Boolean::New(env, r > 0);
}

Napi::Value JsVfioUserServer::JsStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  vfio_user::ServerStats none;  // before listen(): all zero
  none.region_reads.assign(layout_.regions.size(), 0);
  none.region_writes.assign(layout_.regions.size(), 0);
  const vfio_user::ServerStats& s = host_ ? host_->core().stats() : none;
  Napi::Object requests = Napi::Object::New(env);
  for (size_t i = 0; i < s.requests.size(); ++i) {
    if (s.requests[i] != 0) requests.Set(kCommandNames[i], Num(env, s.requests[i]));
  }
  Napi::Object errors = Napi::Object::New(env);
  for (const auto& [err, n] : s.errors) errors.Set(ErrnoName(err), Num(env, n));
  Napi::Object out = Napi::Object::New(env);
  out.Set("requests", requests);
  out.Set("errors", errors);
  out.Set("connects", Num(env, s.connects));
  out.Set("disconnects", Num(env, s.disconnects));
  out.Set("rejectedConnections", Num(env, s.rejected_connections));
  out.Set("dmaMaps", Num(env, s.dma_maps));
  out.Set("dmaUnmaps", Num(env, s.dma_unmaps));
  out.Set("dmaFaults", Num(env, s.dma_faults));
  out.Set("activeDmaMaps", Num(env, host_ ? host_->core().dma_map_count() : 0));
  out.Set("irqsSignalled", Num(env, s.irqs_signalled));
  out.Set("postedErrors", Num(env, s.posted_errors));
  out.Set("callbackErrors", Num(env, callback_errors_));
  out.Set("bytesIn", Num(env, s.bytes_in));
  out.Set("bytesOut", Num(env, s.bytes_out));
  out.Set("fencedReplies", Num(env, s.fenced_replies));
  out.Set("inlineServed", Num(env, inline_served_));
  out.Set("inlineTimeouts", Num(env, inline_timeouts_));
  out.Set("inlineYields", Num(env, inline_yields_));
  out.Set("directReads", Num(env, direct_.reads));
  out.Set("directWrites", Num(env, direct_.writes));
  out.Set("directErrors", Num(env, direct_.errors));
  out.Set("directFallbacks", Num(env, direct_.fallbacks));
  out.Set("directDmaReads", Num(env, direct_.dma_reads));
  out.Set("directDmaWrites", Num(env, direct_.dma_writes));
  out.Set("directDmaDeclined", Num(env, direct_.dma_declined));
  out.Set("directWindowsMapped", Num(env, direct_.windows_mapped));
  out.Set("directWindowsRefused", Num(env, direct_.windows_refused));
  out.Set("regionReads", Counts(env, s.region_reads));
  out.Set("regionWrites", Counts(env, s.region_writes));
  return out;
}

namespace {

Napi::Value Fence(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  vfio_user::FenceResult r = vfio_user::ServerHost::Fence(ArgString(info[0], "socketPath"));
  Napi::Object out = Napi::Object::New(env);
  out.Set("found", Napi::Boolean::New(env, r.found));
  out.Set("attached", Napi::Boolean::New(env, r.attached));
  bool known = r.answered > 0 && r.answered <= vfio_user::kCmdMax;
  out.Set("answered", r.answered == 0 ? env.Null()
                                      : Napi::String::New(env, known ? kCommandNames[r.answered]
                                                                     : kCommandNames[0]));
  return out;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info[0], "socketPath");
  int r = vfio_user::ServerHost::CloseDetached(path);
  if (r == -EBUSY) ThrowErrno(env, "close", EBUSY, {{"path", DetailValue::Str(path)}});
  return Napi::Boolean::New(env, r > 0);
}

}  // namespace

void DefineVfioUserHostFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("vfioUserFence", Napi::Function::New(env, Fence, "vfioUserFence"));
  exports.Set("vfioUserClose", Napi::Function::New(env, Close, "vfioUserClose"));
}

}  // namespace vfiobox
