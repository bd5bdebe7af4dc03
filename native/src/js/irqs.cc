// SPDX-License-Identifier: MIT
// Device.setIrqs: converts a NativeIrqData payload to VFIO_DEVICE_SET_IRQS.
#include <linux/vfio.h>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"

namespace vfiobox {

namespace {

constexpr uint32_t kMaxVectors = 1 << 16;  // MSI-X has at most 2048; keeps the FAM small

Napi::Array ArgArray(const Napi::Value& v, const char* name, const char* expected) {
  if (!v.IsArray()) ThrowTypeError(v.Env(), name, expected, v);
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > kMaxVectors) {
    ThrowRangeError(v.Env(), name, "at most 65536 entries", Napi::Number::New(v.Env(), a.Length()));
  }
  return a;
}

int ArgEventFd(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (v.IsNull()) return -1;  // de-assign this vector
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(Data(env).eventfd_ctor.Value())) {
    ThrowTypeError(env, "data.fds[i]", "an EventFd or null", v);
  }
  return JsEventFd::Unwrap(v.As<Napi::Object>())->Fd(env, "VFIO_DEVICE_SET_IRQS");
}

IrqPayload ArgPayload(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) ThrowTypeError(env, "data", "{ type: 'none' | 'bool' | 'eventfd', ... }", v);
  Napi::Object data = v.As<Napi::Object>();
  std::string type = ArgString(data.Get("type"), "data.type");
  IrqPayload p;
  if (type == "none") {
    p.data_type = VFIO_IRQ_SET_DATA_NONE;
    p.count = static_cast<uint32_t>(ArgUint(data.Get("count"), "data.count", kMaxVectors));
  } else if (type == "bool") {
    p.data_type = VFIO_IRQ_SET_DATA_BOOL;
    Napi::Array values = ArgArray(data.Get("values"), "data.values", "an array of booleans");
    for (uint32_t i = 0; i < values.Length(); ++i) {
      Napi::Value b = values.Get(i);
      if (!b.IsBoolean()) ThrowTypeError(env, "data.values[i]", "a boolean", b);
      p.bools.push_back(b.As<Napi::Boolean>().Value() ? 1 : 0);
    }
    p.count = values.Length();
  } else if (type == "eventfd") {
    p.data_type = VFIO_IRQ_SET_DATA_EVENTFD;
    Napi::Array fds = ArgArray(data.Get("fds"), "data.fds", "an array of EventFd | null");
    for (uint32_t i = 0; i < fds.Length(); ++i) p.fds.push_back(ArgEventFd(fds.Get(i)));
    p.count = fds.Length();
  } else {
    ThrowRangeError(env, "data.type", "'none', 'bool' or 'eventfd'", data.Get("type"));
  }
  return p;
}

}  // namespace

Napi::Value JsDevice::JsSetIrqs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t index = static_cast<uint32_t>(ArgUint(info[0], "index", 0xffffffff));
  uint64_t action = ArgUint(info[1], "action", 0xffffffff);
  if (action != VFIO_IRQ_SET_ACTION_MASK && action != VFIO_IRQ_SET_ACTION_UNMASK &&
      action != VFIO_IRQ_SET_ACTION_TRIGGER) {
    ThrowRangeError(env, "action", "VFIO_IRQ_SET_ACTION_MASK, _UNMASK or _TRIGGER (8, 16, 32)",
                    info[1]);
  }
  uint32_t start = static_cast<uint32_t>(ArgUint(info[2], "start", 0xffffffff));
  IrqPayload payload = ArgPayload(info[3]);
  Status s = device_->SetIrqs(index, static_cast<uint32_t>(action), start, payload);
  if (!s.ok()) ThrowErrno(env, s);
  return env.Undefined();
}

}  // namespace vfiobox
