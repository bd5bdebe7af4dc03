// SPDX-License-Identifier: MIT
// The methods of VfioUserServer the device model calls (dmaRead, dmaWrite, triggerIrq) and
// stats(). Normal JS-facing methods: they run on the server's thread inside a JS call.
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
  int r = closed_ ? -EFAULT : core_->DmaRead(iova, out.Data(), len);
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
  int r = closed_ ? -EFAULT : core_->DmaWrite(iova, data.Data(), data.ElementLength());
  UpdateClientWatch();
  if (r < 0) {
    ThrowErrno(
        env, "vfio-user:DMA_WRITE", -r,
        {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(data.ElementLength())}});
  }
  return env.Undefined();
}

Napi::Value JsVfioUserServer::JsTriggerIrq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "index", 0xffffffff));
  uint32_t sub = static_cast<uint32_t>(ArgUint(info[1], "subindex", 0xffffffff));
  int r = closed_ ? 0 : core_->TriggerIrq(index, sub);
  if (r == -EINVAL) ThrowRangeError(env, "index/subindex", "an IRQ of the layout", info[1]);
  return Napi::Boolean::New(env, r > 0);
}

Napi::Value JsVfioUserServer::JsStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const vfio_user::ServerStats& s = core_->stats();
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
  out.Set("activeDmaMaps", Num(env, core_->dma_map_count()));
  out.Set("irqsSignalled", Num(env, s.irqs_signalled));
  out.Set("postedErrors", Num(env, s.posted_errors));
  out.Set("callbackErrors", Num(env, callback_errors_));
  out.Set("bytesIn", Num(env, s.bytes_in));
  out.Set("bytesOut", Num(env, s.bytes_out));
  out.Set("regionReads", Counts(env, s.region_reads));
  out.Set("regionWrites", Counts(env, s.region_writes));
  return out;
}

}  // namespace vfiobox
