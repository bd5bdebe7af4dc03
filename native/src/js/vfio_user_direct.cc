// SPDX-License-Identifier: MIT
// The direct BAR route of VfioUserServer (setDirect): a REGION_READ/WRITE that is one naturally
// aligned access of 1, 2, 4 or 8 bytes to a BAR the route names, outside its excluded ranges
// (the MSI-X table and PBA, which the device model emulates), goes straight from the request
// to the wasmtime plugin instance: no JS on the path (DESIGN.md "Engines"). The model installs
// the route for its live instance and clears it when that instance goes (host/device/model.ts).
//
// Anything the route does not answer itself goes the normal way, through the JS hooks: other
// accesses, and a plugin call that did not return (a trap, a deadline, a disposed or poisoned
// instance). The model then makes the same call, sees the fault, fences the device and answers
// as a fenced device does; so the route never has to know about fencing. A returned access
// error is answered here, with the errno of host/plugins/errno-map.ts ACCESS_ERRNO.
//
// The route also carries the instance's DMA grant and installs a DMA port on the instance
// (DirectDmaPort, wasm/host.h DmaPort): the plugin's dma.read/dma.write of mmapped client memory
// inside its grant then copy here, between the client's pages and the plugin's memory, with no
// JS, whichever way the plugin call came (this route, or the model from JS: a timer, a config
// write). What the port does not copy it declines, before any allocation or copy, and the
// grant-checked JS chain (grants.ts, supervisor.ts, server.ts DmaSpace) answers: refusals,
// their counters, ranges mapped without an fd (DMA_READ/DMA_WRITE messages), oversized calls.
// The port is installed with the route and taken off with it (the model clears the route when
// its instance stops being live: fence, restart, reload, close), so it never serves an
// instance the supervisor would not let reach DMA.
#include <cerrno>
#include <cstring>

#include "native/src/js/common.h"
#include "native/src/js/vfio_user_server.h"
#ifdef VFIOBOX_WASMTIME
#include "native/src/js/wasmtime.h"
#endif

namespace vfiobox {

namespace {

#ifdef VFIOBOX_WASMTIME
/** ACCESS_ERRNO (host/plugins/errno-map.ts) for an access-error case name */
int AccessErrno(const std::string& code) {
  if (code == "not-granted") return EPERM;
  if (code == "unsupported") return ENOTSUP;
  if (code == "device-error") return EIO;
  return EINVAL;  // invalid-width, out-of-range
}
#endif

/** DMA_ERRNO (host/plugins/errno-map.ts) backwards: the dma-error case of a core DMA errno */
uint8_t DmaErrorCase(int err) {
  switch (err) {
    case EPERM:
      return static_cast<uint8_t>(wasm::DmaError::kNotGranted);
    case EACCES:
      return static_cast<uint8_t>(wasm::DmaError::kAccessDenied);
    case E2BIG:
      return static_cast<uint8_t>(wasm::DmaError::kTooLarge);
    default:
      return static_cast<uint8_t>(wasm::DmaError::kNotMapped);  // EFAULT and the rest
  }
}

#ifdef VFIOBOX_WASMTIME
uint64_t BigArg(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsBigInt()) ThrowTypeError(env, name, "a bigint", v);
  bool lossless = false;
  uint64_t n = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) ThrowTypeError(env, name, "a bigint in 0 .. 2^64 - 1", v);
  return n;
}

/**
 * setDirect's 4th argument, the instance's DMA grant: undefined (none), or
 * { all: boolean, windows: [iova: bigint, size: bigint, access: 1 r | 2 w | 3 rw][], maxBytes }
 */
DirectRoute::DmaGrant DmaGrantArg(Napi::Env env, const Napi::Value& v) {
  DirectRoute::DmaGrant grant;
  if (v.IsUndefined()) return grant;
  if (!v.IsObject()) ThrowTypeError(env, "dma", "{ all, windows, maxBytes }", v);
  Napi::Object o = v.As<Napi::Object>();
  grant.all = o.Get("all").ToBoolean().Value();
  grant.max_bytes = static_cast<uint32_t>(ArgUint(o.Get("maxBytes"), "dma.maxBytes", UINT32_MAX));
  Napi::Value list = o.Get("windows");
  if (!list.IsArray()) ThrowTypeError(env, "dma.windows", "an array of [iova, size, access]", list);
  Napi::Array windows = list.As<Napi::Array>();
  for (uint32_t i = 0; i < windows.Length(); i++) {
    Napi::Value item = windows.Get(i);
    if (!item.IsArray() || item.As<Napi::Array>().Length() != 3) {
      ThrowTypeError(env, "dma.windows[i]", "[iova: bigint, size: bigint, access: 1 | 2 | 3]",
                     item);
    }
    Napi::Array w = item.As<Napi::Array>();
    auto access = ArgUint(w.Get(2u), "access", 3);
    grant.windows.push_back({BigArg(env, w.Get(0u), "iova"), BigArg(env, w.Get(1u), "size"),
                             (access & 1) != 0, (access & 2) != 0});
  }
  return grant;
}
#endif

}  // namespace

bool DirectRoute::DmaGrant::Allows(uint64_t iova, uint64_t len, bool write) const {
  if (all) return true;
  for (const Window& w : windows) {
    // iova - w.iova cannot wrap once iova >= w.iova; then both sides stay within u64
    if (iova >= w.iova && iova - w.iova <= w.size && len <= w.size - (iova - w.iova) &&
        (write ? w.write : w.read)) {
      return true;
    }
  }
  return false;
}

vfio_user::ServerCore* JsVfioUserServer::DirectCore() {
  if (!attached_ || closed_ || !direct_.target) return nullptr;
  return &core();
}

void JsVfioUserServer::ClearDirect() {
#ifdef VFIOBOX_WASMTIME
  if (direct_.target && direct_.target->instance &&
      direct_.target->instance->dma_port() == &direct_dma_) {
    // the instance is no longer live for the server: it keeps no view of the client's memory
    direct_.target->instance->DropWindows(0, 0);
    direct_.target->instance->set_dma_port(nullptr);
  }
#endif
  direct_.target.reset();
  direct_.exclude.clear();
  direct_.bars = 0;
  direct_.dma = {};
}

vfio_user::ServerCore* DirectDmaPort::Claim(uint64_t iova, uint32_t len, bool to_guest,
                                            DmaSpan* span) {
  DirectRoute& route = owner_->direct_;
  vfio_user::ServerCore* core = owner_->DirectCore();
  if (core == nullptr || len > route.dma.max_bytes || !route.dma.Allows(iova, len, to_guest) ||
      !core->MappedSpan(iova, len, to_guest, span)) {
    ++route.dma_declined;
    return nullptr;
  }
  ++(to_guest ? route.dma_writes : route.dma_reads);
  return core;
}

bool DirectDmaPort::Read(uint64_t iova, uint32_t len, wasm::GuestBuffer& out,
                         wasm::HostStatus* status) {
  DmaSpan span;
  vfio_user::ServerCore* core = Claim(iova, len, false, &span);
  if (core == nullptr) return false;
  // The plugin's cabi_realloc runs here (it may trap). It cannot unmap anything: DMA_UNMAP
  // and disconnects are handled on this thread, and not during a plugin call, so span stays.
  uint8_t* dst = out.Alloc(len);
  if (dst == nullptr) {
    *status = wasm::HostStatus::Fault("dma.read: the plugin could not allocate the result");
    return true;
  }
  // only a client that shrank its memory fd under the map fails here (counted in dma_faults)
  int r = core->CopyMapped(span, dst, false);
  *status = r == 0 ? wasm::HostStatus::Ok() : wasm::HostStatus::Err(DmaErrorCase(-r));
  return true;
}

bool DirectDmaPort::Write(uint64_t iova, const uint8_t* data, uint32_t len,
                          wasm::HostStatus* status) {
  DmaSpan span;
  vfio_user::ServerCore* core = Claim(iova, len, true, &span);
  if (core == nullptr) return false;
  // SAFETY: CopyMapped only reads from `buf` when to_guest is true.
  int r = core->CopyMapped(span, const_cast<uint8_t*>(data), true);
  *status = r == 0 ? wasm::HostStatus::Ok() : wasm::HostStatus::Err(DmaErrorCase(-r));
  return true;
}

wasm::HostStatus DirectDmaPort::WindowSource(uint64_t iova, uint32_t len, bool writable,
                                             wasm::WindowFile* file) {
  DirectRoute& route = owner_->direct_;
  vfio_user::ServerCore* core = owner_->DirectCore();
  auto refuse = [&route](wasm::WindowError e) {
    ++route.windows_refused;
    return wasm::HostStatus::Err(static_cast<uint8_t>(e));
  };
  if (core == nullptr) return refuse(wasm::WindowError::kUnsupported);
  // a writable window is read and written; the grant must allow both
  if (!route.dma.Allows(iova, len, false) || (writable && !route.dma.Allows(iova, len, true))) {
    return refuse(wasm::WindowError::kNotGranted);
  }
  int r = core->WindowFile(iova, len, writable, &file->fd, &file->offset);
  if (r == -EACCES) return refuse(wasm::WindowError::kAccessDenied);
  if (r == -ENOTSUP) return refuse(wasm::WindowError::kUnsupported);
  if (r < 0) return refuse(wasm::WindowError::kNotMapped);
  ++route.windows_mapped;
  return wasm::HostStatus::Ok();
}

void JsVfioUserServer::DropWindows(uint64_t iova, uint64_t size) {
#ifdef VFIOBOX_WASMTIME
  if (direct_.target && direct_.target->instance) {
    direct_.target->instance->DropWindows(iova, size);
  }
#else
  (void)iova, (void)size;
#endif
}

#ifdef VFIOBOX_WASMTIME
int JsVfioUserServer::DirectAnswer(const wasm::Outcome& o, uint64_t* served) {
  if (o.kind == wasm::Outcome::kOk) {
    ++*served;
    return 0;
  }
  if (o.kind == wasm::Outcome::kErr) {
    ++direct_.errors;
    return AccessErrno(o.message);
  }
  ++direct_.fallbacks;  // not answered: the model retries the call (and fences)
  return -1;
}
#endif

bool JsVfioUserServer::DirectEligible(uint32_t region, uint64_t offset, uint32_t count) const {
  if (!direct_.target || region >= 8 || ((direct_.bars >> region) & 1) == 0) return false;
  if ((count != 1 && count != 2 && count != 4 && count != 8) || offset % count != 0) return false;
  for (const DirectRoute::Range& r : direct_.exclude) {
    if (r.region == region && offset < r.offset + r.length && r.offset < offset + count) {
      return false;
    }
  }
  return true;
}

int JsVfioUserServer::DirectRead(uint32_t region, uint64_t offset, uint8_t* out, uint32_t count) {
#ifdef VFIOBOX_WASMTIME
  if (!DirectEligible(region, offset, count)) return -1;
  uint64_t value = 0;
  int r = DirectAnswer(direct_.target->instance->RegionRead(static_cast<uint8_t>(region), offset,
                                                            static_cast<uint8_t>(count), &value),
                       &direct_.reads);
  if (r == 0) std::memcpy(out, &value, count);  // little-endian host, little-endian wire
  return r;
#else
  (void)region, (void)offset, (void)out, (void)count;
#endif
  return -1;
}

int JsVfioUserServer::DirectWrite(uint32_t region, uint64_t offset, const uint8_t* data,
                                  uint32_t count) {
#ifdef VFIOBOX_WASMTIME
  if (!DirectEligible(region, offset, count)) return -1;
  uint64_t value = 0;
  std::memcpy(&value, data, count);
  return DirectAnswer(direct_.target->instance->RegionWrite(static_cast<uint8_t>(region), offset,
                                                            static_cast<uint8_t>(count), value),
                      &direct_.writes);
#else
  (void)region, (void)offset, (void)data, (void)count;
#endif
  return -1;
}

Napi::Value JsVfioUserServer::JsSetDirect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info[0].IsNull() || info[0].IsUndefined()) {
    ClearDirect();
    return Napi::Boolean::New(env, false);
  }
#ifdef VFIOBOX_WASMTIME
  std::shared_ptr<LiveWasm> target = LiveWasmOf(env, info[0]);
  if (!target) {
    ThrowTypeError(env, "instance", "a wasmtime plugin instance made on this thread", info[0]);
  }
  auto bars = static_cast<uint8_t>(ArgUint(info[1], "bars", 0x3f));
  if (!info[2].IsArray())
    ThrowTypeError(env, "exclude", "an array of [region, offset, length]", info[2]);
  Napi::Array list = info[2].As<Napi::Array>();
  std::vector<DirectRoute::Range> exclude;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value item = list.Get(i);
    if (!item.IsArray() || item.As<Napi::Array>().Length() != 3) {
      ThrowTypeError(env, "exclude[i]", "[region, offset, length]", item);
    }
    Napi::Array r = item.As<Napi::Array>();
    exclude.push_back({static_cast<uint32_t>(ArgUint(r.Get(0u), "region", 7)),
                       ArgUint(r.Get(1u), "offset"), ArgUint(r.Get(2u), "length")});
  }
  DirectRoute::DmaGrant dma = DmaGrantArg(env, info[3]);
  ClearDirect();
  direct_.target = std::move(target);
  direct_.bars = bars;
  direct_.exclude = std::move(exclude);
  direct_.dma = std::move(dma);
  if (direct_.target->instance) direct_.target->instance->set_dma_port(&direct_dma_);
  return Napi::Boolean::New(env, true);
#else
  return Napi::Boolean::New(env, false);  // no wasmtime in this build: never direct
#endif
}

}  // namespace vfiobox
