// SPDX-License-Identifier: MIT
// The `wasmtime` export (host/plugins/engines/wasmtime-native.ts): compile with an on-disk
// artifact cache, and instances as ObjectWraps over native/src/wasm/, whose imports JsHost
// (wasmtime_host.cc) answers by calling the grant-checked HostImports object. No engine logic
// lives here: it converts values and errors between JS and native/src/wasm/.
#include "native/src/js/wasmtime.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "native/src/js/common.h"
#include "native/src/js/wasmtime_host.h"
#include "native/src/wasm/instance.h"

namespace vfiobox {

namespace {

using wasm::HostStatus;

// ---------------------------------------------------------------------------------------
// Errors: what the TS engine turns into WitError / PluginError

Napi::Error Failure(Napi::Env env, const char* kind, const std::string& message,
                    const char* code = nullptr) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("vfioboxKind", Napi::String::New(env, kind));
  if (code != nullptr) error.Set("code", Napi::String::New(env, code));
  return error;
}

[[noreturn]] void ThrowOutcome(Napi::Env env, const wasm::Outcome& o) {
  switch (o.kind) {
    case wasm::Outcome::kErr:
      throw Failure(env, "wit", o.message, o.message.c_str());
    case wasm::Outcome::kTrap:
      throw Failure(env, "trap", o.message);
    default:
      throw Failure(env, "invalid", o.message);
  }
}

// ---------------------------------------------------------------------------------------
// The on-disk artifact cache: "VFBXCWM1", u64 body length, u64 FNV-1a of the body, the body.
// A file that is short, foreign or corrupt is ignored (and rewritten after the compile).

constexpr char kCacheMagic[8] = {'V', 'F', 'B', 'X', 'C', 'W', 'M', '1'};
constexpr size_t kCacheHeader = 24;

uint64_t Fnv1a(const uint8_t* data, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ data[i]) * 0x100000001b3ull;
  return h;
}

bool ReadAll(const std::string& path, std::vector<uint8_t>* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  uint8_t chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return n == 0;
    }
    out->insert(out->end(), chunk, chunk + n);
  }
}

/** writes path atomically (a temporary file, then rename); failures only lose the cache */
void WriteCache(const std::string& path, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> file(kCacheHeader);
  std::memcpy(file.data(), kCacheMagic, 8);
  uint64_t len = body.size();
  uint64_t sum = Fnv1a(body.data(), body.size());
  std::memcpy(file.data() + 8, &len, 8);
  std::memcpy(file.data() + 16, &sum, 8);
  file.insert(file.end(), body.begin(), body.end());
  // pid and thread: workers of one process may compile the same component at once
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(::gettid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t done = 0;
  while (done < file.size()) {
    ssize_t n = ::write(fd, file.data() + done, file.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  bool ok = done == file.size() && ::close(fd) == 0;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

std::shared_ptr<wasm::Module> LoadCached(const std::string& path) {
  std::vector<uint8_t> file;
  if (!ReadAll(path, &file) || file.size() < kCacheHeader) return nullptr;
  uint64_t len = 0, sum = 0;
  std::memcpy(&len, file.data() + 8, 8);
  std::memcpy(&sum, file.data() + 16, 8);
  if (std::memcmp(file.data(), kCacheMagic, 8) != 0 || len != file.size() - kCacheHeader ||
      Fnv1a(file.data() + kCacheHeader, len) != sum) {
    return nullptr;
  }
  std::string why;
  return wasm::Module::Deserialize(file.data() + kCacheHeader, len, &why);
}

class CompileWorker : public Napi::AsyncWorker {
 public:
  CompileWorker(Napi::Env env, std::vector<uint8_t> bytes, std::string cache_path)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        bytes_(std::move(bytes)),
        cache_path_(std::move(cache_path)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (!cache_path_.empty()) module_ = LoadCached(cache_path_);
    if (module_) return;
    module_ = wasm::Module::Compile(bytes_.data(), bytes_.size(), &why_);
    if (module_ && !cache_path_.empty()) WriteCache(cache_path_, module_->Serialize());
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!module_) {
      deferred_.Reject(Failure(env, "invalid", why_).Value());
      return;
    }
    auto* holder = new std::shared_ptr<wasm::Module>(module_);
    // SAFETY: the External hands `holder` to the JsWasmComponent constructor, which owns it.
    deferred_.Resolve(Data(env).wasm_component_ctor.New(
        {Napi::External<std::shared_ptr<wasm::Module>>::New(env, holder)}));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> bytes_;
  std::string cache_path_;
  std::shared_ptr<wasm::Module> module_;
  std::string why_;
};

// ---------------------------------------------------------------------------------------
// JS values of the device export's results

Napi::Object DescriptionObject(Napi::Env env, const wasm::DeviceDescription& d) {
  static constexpr const char* kBarKinds[] = {"mem32", "mem64", "io"};
  static constexpr const char* kPins[] = {"a", "b", "c", "d"};
  Napi::Object o = Napi::Object::New(env);
  o.Set("vendorId", d.vendor_id);
  o.Set("deviceId", d.device_id);
  o.Set("subsystemVendorId", d.subsystem_vendor_id);
  o.Set("subsystemId", d.subsystem_id);
  o.Set("classCode", d.class_code);
  o.Set("revision", d.revision);
  Napi::Array bars = Napi::Array::New(env, d.bars.size());
  for (size_t i = 0; i < d.bars.size(); i++) {
    const wasm::BarDescription& b = d.bars[i];
    Napi::Object bar = Napi::Object::New(env);
    bar.Set("index", b.index);
    bar.Set("sizeBytes", Napi::BigInt::New(env, b.size_bytes));
    bar.Set("kind", kBarKinds[b.kind]);
    bar.Set("prefetchable", b.prefetchable);
    bars.Set(static_cast<uint32_t>(i), bar);
  }
  o.Set("bars", bars);
  Napi::Object irqs = Napi::Object::New(env);
  irqs.Set("intx", d.intx ? Napi::String::New(env, kPins[*d.intx]) : env.Undefined());
  irqs.Set("msiVectors", d.msi_vectors);
  if (d.msix) {
    Napi::Object m = Napi::Object::New(env);
    m.Set("vectors", d.msix->vectors);
    m.Set("tableBar", d.msix->table_bar);
    m.Set("tableOffset", d.msix->table_offset);
    m.Set("pbaBar", d.msix->pba_bar);
    m.Set("pbaOffset", d.msix->pba_offset);
    irqs.Set("msix", m);
  } else {
    irqs.Set("msix", env.Undefined());
  }
  o.Set("irqs", irqs);
  Napi::Array ranges = Napi::Array::New(env, d.claimed_ranges.size());
  for (size_t i = 0; i < d.claimed_ranges.size(); i++) {
    const wasm::ClaimedRange& r = d.claimed_ranges[i];
    Napi::Object range = Napi::Object::New(env);
    range.Set("bar", r.bar);
    range.Set("offset", Napi::BigInt::New(env, r.offset));
    range.Set("lengthBytes", Napi::BigInt::New(env, r.length_bytes));
    ranges.Set(static_cast<uint32_t>(i), range);
  }
  o.Set("claimedRanges", ranges);
  return o;
}

// ---------------------------------------------------------------------------------------
// The classes

/** Tags every WasmInstance object, so LiveWasmOf can tell one from any other object. */
constexpr napi_type_tag kWasmInstanceTypeTag = {0x5a0c7e21b9d84f13ULL, 0x92e4a6c3d17f0b58ULL};

class JsWasmInstance : public Napi::ObjectWrap<JsWasmInstance> {
 public:
  using Init = LiveWasm;

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WasmInstance",
                       {
                           InstanceMethod<&JsWasmInstance::JsDescribe>("describe"),
                           InstanceMethod<&JsWasmInstance::JsConfigRead>("configRead"),
                           InstanceMethod<&JsWasmInstance::JsConfigWrite>("configWrite"),
                           InstanceMethod<&JsWasmInstance::JsRegionRead>("regionRead"),
                           InstanceMethod<&JsWasmInstance::JsRegionWrite>("regionWrite"),
                           InstanceMethod<&JsWasmInstance::JsReset>("reset"),
                           InstanceMethod<&JsWasmInstance::JsTimer>("timer"),
                           InstanceMethod<&JsWasmInstance::JsSaveState>("saveState"),
                           InstanceMethod<&JsWasmInstance::JsLoadState>("loadState"),
                           InstanceMethod<&JsWasmInstance::JsStreamReady>("streamReady"),
                           InstanceMethod<&JsWasmInstance::JsMemoryAreas>("memoryAreas"),
                           InstanceMethod<&JsWasmInstance::JsMemoryBytes>("memoryBytes"),
                           InstanceMethod<&JsWasmInstance::JsDispose>("dispose"),
                       });
  }

  explicit JsWasmInstance(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsWasmInstance>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "WasmInstance is made by WasmComponent.instantiate");
    }
    // SAFETY: the External was made by JsWasmComponent::JsInstantiate and transfers Init.
    live_.reset(info[0].As<Napi::External<Init>>().Data());
    info.This().As<Napi::Object>().TypeTag(&kWasmInstanceTypeTag);
  }

  const std::shared_ptr<LiveWasm>& live() const { return live_; }

 private:
  wasm::Instance& Live(Napi::Env) { return *live_->instance; }
  static void Check(Napi::Env env, const wasm::Outcome& o) {
    if (!o.ok()) ThrowOutcome(env, o);
  }

  Napi::Value JsDescribe(const Napi::CallbackInfo& info) {
    wasm::DeviceDescription d{};
    Check(info.Env(), Live(info.Env()).Describe(&d));
    return DescriptionObject(info.Env(), d);
  }
  Napi::Value JsConfigRead(const Napi::CallbackInfo& info) {
    auto offset = static_cast<uint32_t>(ArgUint(info[0], "offset", UINT32_MAX));
    auto width = static_cast<uint8_t>(ArgUint(info[1], "width", 255));
    uint32_t value = 0;
    Check(info.Env(), Live(info.Env()).ConfigRead(offset, width, &value));
    return Napi::Number::New(info.Env(), value);
  }
  Napi::Value JsConfigWrite(const Napi::CallbackInfo& info) {
    auto offset = static_cast<uint32_t>(ArgUint(info[0], "offset", UINT32_MAX));
    auto width = static_cast<uint8_t>(ArgUint(info[1], "width", 255));
    auto value = static_cast<uint32_t>(ArgUint(info[2], "value", UINT32_MAX));
    Check(info.Env(), Live(info.Env()).ConfigWrite(offset, width, value));
    return info.Env().Undefined();
  }
  Napi::Value JsRegionRead(const Napi::CallbackInfo& info) {
    auto bar = static_cast<uint8_t>(ArgUint(info[0], "bar", 255));
    uint64_t offset = ArgBigU64(info[1], "offset");
    auto width = static_cast<uint8_t>(ArgUint(info[2], "width", 255));
    uint64_t value = 0;
    Check(info.Env(), Live(info.Env()).RegionRead(bar, offset, width, &value));
    return Napi::BigInt::New(info.Env(), value);
  }
  Napi::Value JsRegionWrite(const Napi::CallbackInfo& info) {
    auto bar = static_cast<uint8_t>(ArgUint(info[0], "bar", 255));
    uint64_t offset = ArgBigU64(info[1], "offset");
    auto width = static_cast<uint8_t>(ArgUint(info[2], "width", 255));
    uint64_t value = ArgBigU64(info[3], "value");
    Check(info.Env(), Live(info.Env()).RegionWrite(bar, offset, width, value));
    return info.Env().Undefined();
  }
  Napi::Value JsReset(const Napi::CallbackInfo& info) {
    Check(info.Env(), Live(info.Env()).Reset());
    return info.Env().Undefined();
  }
  Napi::Value JsTimer(const Napi::CallbackInfo& info) {
    auto id = static_cast<uint32_t>(ArgUint(info[0], "id", UINT32_MAX));
    Check(info.Env(), Live(info.Env()).Timer(id));
    return info.Env().Undefined();
  }
  Napi::Value JsSaveState(const Napi::CallbackInfo& info) {
    std::vector<uint8_t> state;
    Check(info.Env(), Live(info.Env()).SaveState(&state));
    return PlainBytes(info.Env(), state.data(), state.size());
  }
  Napi::Value JsLoadState(const Napi::CallbackInfo& info) {
    Napi::Uint8Array state = ArgBytes(info[0], "state");
    Check(info.Env(), Live(info.Env()).LoadState(state.Data(), state.ElementLength()));
    return info.Env().Undefined();
  }
  Napi::Value JsStreamReady(const Napi::CallbackInfo& info) {
    Check(info.Env(), Live(info.Env()).StreamReady());
    return info.Env().Undefined();
  }
  Napi::Value JsMemoryAreas(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    wasm::Instance& inst = Live(env);
    if (!inst.HasMemoryAreas()) return env.Undefined();
    std::vector<wasm::MemoryArea> areas;
    Check(env, inst.MemoryAreas(&areas));
    Napi::Array out = Napi::Array::New(env, areas.size());
    for (size_t i = 0; i < areas.size(); i++) {
      Napi::Object a = Napi::Object::New(env);
      a.Set("bar", areas[i].bar);
      a.Set("offset", Napi::BigInt::New(env, areas[i].offset));
      a.Set("lengthBytes", Napi::BigInt::New(env, areas[i].length_bytes));
      out.Set(static_cast<uint32_t>(i), a);
    }
    return out;
  }
  Napi::Value JsMemoryBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(live_->instance->MemoryBytes()));
  }
  Napi::Value JsDispose(const Napi::CallbackInfo& info) {
    live_->instance->Dispose();  // a direct route holding live_ sees a disposed instance too
    static_cast<JsHostImports*>(live_->host.get())->InstanceGone();  // the memory is gone
    return info.Env().Undefined();
  }

  std::shared_ptr<LiveWasm> live_;
};

class JsWasmComponent : public Napi::ObjectWrap<JsWasmComponent> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WasmComponent",
                       {InstanceMethod<&JsWasmComponent::JsInstantiate>("instantiate")});
  }

  explicit JsWasmComponent(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<JsWasmComponent>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "WasmComponent is made by wasmtime.compile");
    }
    // SAFETY: the External was made by CompileWorker::OnOK and transfers the holder.
    std::unique_ptr<std::shared_ptr<wasm::Module>> holder(
        info[0].As<Napi::External<std::shared_ptr<wasm::Module>>>().Data());
    module_ = std::move(*holder);
  }

 private:
  Napi::Value JsInstantiate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) ThrowTypeError(env, "host", "a HostImports object", info[0]);
    if (!info[1].IsObject()) ThrowTypeError(env, "options", "an object", info[1]);
    Napi::Object opts = info[1].As<Napi::Object>();
    wasm::InstanceOptions options;
    options.abi = ArgString(opts.Get("abi"), "options.abi");
    options.memory_bytes = ArgUint(opts.Get("memoryBytes"), "options.memoryBytes");
    options.budget_ms =
        static_cast<uint32_t>(ArgUint(opts.Get("budgetMs"), "options.budgetMs", UINT32_MAX));
    auto init = std::make_unique<LiveWasm>();
    init->env = env;
    std::unique_ptr<JsHostImports> imports = MakeJsHost(env, info[0].As<Napi::Object>());
    JsHostImports* host = imports.get();
    init->host = std::move(imports);
    std::string why;
    init->instance = wasm::Instance::Create(module_, host, options, &why);
    if (init->instance) host->set_instance(init->instance.get());
    if (!init->instance) {
      // a trap while starting (a start function, _initialize) is the plugin's fault
      throw Failure(env, why.find("trap") != std::string::npos ? "trap" : "invalid", why);
    }
    // SAFETY: the External carries ownership of `init` into the WasmInstance constructor.
    return Data(env).wasm_instance_ctor.New({Napi::External<LiveWasm>::New(env, init.release())});
  }

  std::shared_ptr<wasm::Module> module_;
};

Napi::Value JsCompile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array bytes = ArgBytes(info[0], "bytes");
  std::string cache_path;
  if (!info[1].IsUndefined()) cache_path = ArgString(info[1], "cachePath");
  auto* worker = new CompileWorker(
      env, std::vector<uint8_t>(bytes.Data(), bytes.Data() + bytes.ElementLength()), cache_path);
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // deletes itself after OnOK/OnError
  return promise;
}

}  // namespace

std::shared_ptr<LiveWasm> LiveWasmOf(Napi::Env env, Napi::Value value) {
  bool tagged = false;
  if (!value.IsObject() ||
      napi_check_object_type_tag(env, value, &kWasmInstanceTypeTag, &tagged) != napi_ok ||
      !tagged) {
    return nullptr;
  }
  const std::shared_ptr<LiveWasm>& live = JsWasmInstance::Unwrap(value.As<Napi::Object>())->live();
  return live && live->env == static_cast<napi_env>(env) ? live : nullptr;
}

Napi::Object CreateWasmtimeExport(Napi::Env env) {
  AddonData& data = Data(env);
  data.wasm_component_ctor = Napi::Persistent(JsWasmComponent::Define(env));
  data.wasm_instance_ctor = Napi::Persistent(JsWasmInstance::Define(env));
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", Napi::String::New(env, wasm::kWasmtimeVersion));
  out.Set("compile", Napi::Function::New(env, JsCompile, "compile"));
  return out;
}

}  // namespace vfiobox
