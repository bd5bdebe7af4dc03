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

}  // namespace

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
    direct_.target.reset();
    direct_.exclude.clear();
    direct_.bars = 0;
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
  direct_.target = std::move(target);
  direct_.bars = bars;
  direct_.exclude = std::move(exclude);
  return Napi::Boolean::New(env, true);
#else
  return Napi::Boolean::New(env, false);  // no wasmtime in this build: never direct
#endif
}

}  // namespace vfiobox
