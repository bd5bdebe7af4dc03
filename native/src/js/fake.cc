// SPDX-License-Identifier: MIT
// The `fake` export of vfio_core_fake.node (NativeFakeKernel / FakeDeviceSpec in types.ts).
#include <linux/vfio.h>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"
#include "native/src/sys_fake.h"

namespace vfiobox {

namespace {

bool OptBool(const Napi::Object& o, const char* key, const char* name, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) ThrowTypeError(o.Env(), name, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

Napi::Array Arr(const Napi::Object& o, const char* key, const char* name) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) ThrowTypeError(o.Env(), name, "an array", v);
  return v.As<Napi::Array>();
}

fake::RegionSpec ParseRegion(const Napi::Value& v) {
  if (!v.IsObject()) ThrowTypeError(v.Env(), "spec.regions[i]", "an object", v);
  Napi::Object o = v.As<Napi::Object>();
  fake::RegionSpec r;
  r.size = ArgUint(o.Get("sizeBytes"), "spec.regions[i].sizeBytes", uint64_t{1} << 32);
  r.flags = static_cast<uint32_t>(ArgUint(o.Get("flags"), "spec.regions[i].flags", 0xffffffff));
  if (!o.Get("sparse").IsUndefined()) {
    Napi::Array sparse = Arr(o, "sparse", "spec.regions[i].sparse");
    for (uint32_t i = 0; i < sparse.Length(); ++i) {
      Napi::Object a = sparse.Get(i).As<Napi::Object>();
      r.sparse.emplace_back(ArgUint(a.Get("offset"), "sparse[i].offset"),
                            ArgUint(a.Get("sizeBytes"), "sparse[i].sizeBytes"));
    }
  }
  if (o.Get("type").IsObject()) {
    Napi::Object t = o.Get("type").As<Napi::Object>();
    r.has_type = true;
    r.type = static_cast<uint32_t>(ArgUint(t.Get("type"), "type.type", 0xffffffff));
    r.subtype = static_cast<uint32_t>(ArgUint(t.Get("subtype"), "type.subtype", 0xffffffff));
  }
  r.msix_mappable = OptBool(o, "msixMappable", "spec.regions[i].msixMappable", false);
  return r;
}

fake::DeviceSpec ParseSpec(const Napi::Value& v) {
  if (!v.IsObject()) ThrowTypeError(v.Env(), "spec", "a FakeDeviceSpec object", v);
  Napi::Object o = v.As<Napi::Object>();
  fake::DeviceSpec s;
  s.bdf = ArgString(o.Get("bdf"), "spec.bdf");
  s.group = static_cast<int>(ArgUint(o.Get("group"), "spec.group", 1 << 20));
  s.noiommu = OptBool(o, "noiommu", "spec.noiommu", false);
  s.cdev = OptBool(o, "cdev", "spec.cdev", !s.noiommu);
  s.viable = OptBool(o, "viable", "spec.viable", true);
  s.reset_supported = OptBool(o, "resetSupported", "spec.resetSupported", true);
  Napi::Array regions = Arr(o, "regions", "spec.regions");
  for (uint32_t i = 0; i < regions.Length(); ++i) s.regions.push_back(ParseRegion(regions.Get(i)));
  Napi::Array irqs = Arr(o, "irqs", "spec.irqs");
  for (uint32_t i = 0; i < irqs.Length(); ++i) {
    Napi::Object q = irqs.Get(i).As<Napi::Object>();
    s.irqs.push_back({static_cast<uint32_t>(ArgUint(q.Get("count"), "irqs[i].count", 2048)),
                      static_cast<uint32_t>(ArgUint(q.Get("flags"), "irqs[i].flags", 0xffffffff))});
  }
  if (!o.Get("iovaRanges").IsUndefined()) {
    Napi::Array ranges = Arr(o, "iovaRanges", "spec.iovaRanges");
    for (uint32_t i = 0; i < ranges.Length(); ++i) {
      Napi::Object r = ranges.Get(i).As<Napi::Object>();
      s.iova_ranges.emplace_back(ArgBigU64(r.Get("start"), "iovaRanges[i].start"),
                                 ArgBigU64(r.Get("last"), "iovaRanges[i].last"));
    }
  }
  return s;
}

Napi::Value AddDevice(const Napi::CallbackInfo& info) {
  fake::DeviceSpec spec = ParseSpec(info[0]);
  int index = fake::AddDevice(spec);
  if (index < 0)
    ThrowErrno(info.Env(), "fake.addDevice", -index, {{"bdf", DetailValue::Str(spec.bdf)}});
  return Napi::Number::New(info.Env(), index);
}

Napi::Value InjectError(const Napi::CallbackInfo& info) {
  std::string op = ArgString(info[0], "op");
  int err = static_cast<int>(ArgUint(info[1], "errno", 4095));
  int count = info[2].IsUndefined() ? 1 : static_cast<int>(ArgUint(info[2], "count", 1 << 30));
  fake::InjectError(op, err, count);
  return info.Env().Undefined();
}

Napi::Value RaiseIrq(const Napi::CallbackInfo& info) {
  std::string bdf = ArgString(info[0], "bdf");
  auto index = static_cast<uint32_t>(ArgUint(info[1], "index", 0xffffffff));
  auto vector = static_cast<uint32_t>(ArgUint(info[2], "vector", 0xffffffff));
  return Napi::Boolean::New(info.Env(), fake::RaiseIrq(bdf, index, vector));
}

}  // namespace

Napi::Object CreateFakeExport(Napi::Env env) {
  Napi::Object fake = Napi::Object::New(env);
  fake.Set("reset", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
             fake::Reset();
             return info.Env().Undefined();
           }));
  fake.Set("addDevice", Napi::Function::New(env, AddDevice));
  fake.Set("injectError", Napi::Function::New(env, InjectError));
  fake.Set("raiseIrq", Napi::Function::New(env, RaiseIrq));
  fake.Set("openFds", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
             return Napi::Number::New(info.Env(), static_cast<double>(fake::OpenFds()));
           }));
  fake.Set("mappedBytes", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
             return Napi::Number::New(info.Env(), static_cast<double>(fake::MappedBytes()));
           }));
  fake.Set("liveMappings", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
             return Napi::Number::New(info.Env(), static_cast<double>(fake::LiveMappings()));
           }));
  return fake;
}

}  // namespace vfiobox
