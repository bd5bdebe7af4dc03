// SPDX-License-Identifier: MIT
// The `wasmtime` export (host/plugins/engines/wasmtime-native.ts): compile with an on-disk
// artifact cache, instances as ObjectWraps, and JsHost, the wasm::Host that calls the
// (grant-checked) HostImports object. No engine logic lives here: it converts values and
// errors between JS and native/src/wasm/.
#include "native/src/js/wasmtime.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "native/src/js/common.h"
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

/** a plain Uint8Array copy (a Buffer's slice() is a view, which the engine interface's users
 *  do not expect of a Uint8Array) */
Napi::Uint8Array PlainBytes(Napi::Env env, const uint8_t* data, size_t len) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, len);
  if (len > 0) std::memcpy(buffer.Data(), data, len);
  return Napi::Uint8Array::New(env, len, buffer, 0);
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
// JsHost: the imports, as calls of the HostImports object's methods

constexpr const char* kIrqErrors[] = {"invalid-vector", "not-granted"};
constexpr const char* kDmaErrors[] = {"not-mapped", "not-granted", "access-denied", "too-large"};
constexpr const char* kAccessErrors[] = {"invalid-width", "out-of-range", "not-granted",
                                         "unsupported", "device-error"};
constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warn", "error"};

struct ErrorEnum {
  const char* const* cases;
  uint8_t count;
};
constexpr ErrorEnum kNoErrors{nullptr, 0};
constexpr ErrorEnum kIrqEnum{kIrqErrors, 2};
constexpr ErrorEnum kDmaEnum{kDmaErrors, 4};
constexpr ErrorEnum kAccessEnum{kAccessErrors, 5};

class JsHost final : public wasm::Host {
 public:
  /** reads every method it will call from `host`; throws TypeError for a missing one */
  JsHost(Napi::Env env, Napi::Object host) : env_(env) {
    Bind(host, "irq", {{"raise", &irq_raise_}, {"lower", &irq_lower_}, {"isMasked", &irq_masked_}},
         &irq_);
    Bind(host, "dma", {{"read", &dma_read_}, {"write", &dma_write_}}, &dma_);
    BindOneCopyDma();
    Bind(host, "log", {{"log", &log_}}, &log_obj_);
    Bind(host, "clock",
         {{"nowNs", &now_ns_}, {"setTimer", &set_timer_}, {"cancelTimer", &cancel_timer_}},
         &clock_);
    Bind(host, "byteStream", {{"write", &stream_write_}, {"read", &stream_read_}}, &stream_);
    has_region_ = host.Get("region").IsObject();
    if (has_region_) {
      Bind(host, "region", {{"read", &region_read_}, {"write", &region_write_}}, &region_);
    }
    has_shared_ = host.Get("sharedMemory").IsObject();
    if (has_shared_) {
      Bind(host, "sharedMemory", {{"read", &shared_read_}, {"write", &shared_write_}}, &shared_);
    }
  }

  ~JsHost() override { DetachLent(); }
  /** the instance was disposed: no lent buffer may outlive its memory */
  void InstanceGone() { DetachLent(); }

  bool has_region() const override { return has_region_; }
  bool has_shared_memory() const override { return has_shared_; }

  HostStatus IrqRaise(uint32_t v) override {
    return Call(irq_, irq_raise_, kIrqEnum, "irq.raise", {U32(v)}, nullptr);
  }
  HostStatus IrqLower(uint32_t v) override {
    return Call(irq_, irq_lower_, kIrqEnum, "irq.lower", {U32(v)}, nullptr);
  }
  HostStatus IrqIsMasked(uint32_t v, bool* masked) override {
    Napi::HandleScope scope(env_);
    Napi::Value r;
    HostStatus s = Call(irq_, irq_masked_, kNoErrors, "irq.is-masked", {U32(v)}, &r);
    if (s.kind != HostStatus::kOk) return s;
    if (!r.IsBoolean()) return Bad("irq.is-masked", "a boolean", r);
    *masked = r.As<Napi::Boolean>().Value();
    return s;
  }
  /** the instance whose memory the one-copy DMA lends out (set once it exists) */
  void set_instance(wasm::Instance* instance) { instance_ = instance; }

  HostStatus DmaRead(uint64_t iova, uint32_t len, wasm::GuestBuffer& out) override {
    Napi::HandleScope scope(env_);
    Napi::Value r;
    if (!dma_read_into_.IsEmpty() && instance_ != nullptr) {
      // one copy: the host writes straight into the plugin's memory (DmaTarget)
      lent_ = &out;
      lent_at_ = -1;
      HostStatus s = Call(dma_, dma_read_into_, kDmaEnum, "dma.read",
                          {Big(iova), U32(len), target_.Value()}, &r);
      lent_ = nullptr;
      if (s.kind != HostStatus::kOk) return s;
      if (lent_at_ < 0 || !r.IsNumber() || r.As<Napi::Number>().DoubleValue() != lent_at_) {
        return Bad("dma.readInto", "the offset its target.alloc returned", r);
      }
      return s;
    }
    HostStatus s = Call(dma_, dma_read_, kDmaEnum, "dma.read", {Big(iova), U32(len)}, &r);
    if (s.kind != HostStatus::kOk) return s;
    return Bytes("dma.read", r, len, out);
  }
  HostStatus DmaWrite(uint64_t iova, const uint8_t* data, uint32_t len) override {
    Napi::HandleScope scope(env_);
    size_t size = 0;
    uint8_t* base = instance_ != nullptr ? instance_->memory_data(&size) : nullptr;
    if (!dma_write_from_.IsEmpty() && base != nullptr && data >= base &&
        data + len <= base + size) {
      // one copy: the host reads straight out of the plugin's memory
      HostStatus s = Call(
          dma_, dma_write_from_, kDmaEnum, "dma.write",
          {Big(iova), LendMemory(), U32(static_cast<uint32_t>(data - base)), U32(len)}, nullptr);
      return s;
    }
    return Call(dma_, dma_write_, kDmaEnum, "dma.write", {Big(iova), Copy(data, len)}, nullptr);
  }
  HostStatus Log(uint8_t level, std::string_view message) override {
    Napi::HandleScope scope(env_);
    return Call(log_obj_, log_, kNoErrors, "log.log",
                {Napi::String::New(env_, kLogLevels[level]),
                 Napi::String::New(env_, message.data(), message.size())},
                nullptr);
  }
  HostStatus NowNs(uint64_t* ns) override {
    Napi::HandleScope scope(env_);
    Napi::Value r;
    HostStatus s = Call(clock_, now_ns_, kNoErrors, "clock.now-ns", {}, &r);
    if (s.kind != HostStatus::kOk) return s;
    bool lossless = false;
    if (!r.IsBigInt()) return Bad("clock.now-ns", "a bigint", r);
    *ns = r.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) return Bad("clock.now-ns", "a bigint in [0, 2^64)", r);
    return s;
  }
  HostStatus SetTimer(uint32_t id, uint64_t delay_ns) override {
    Napi::HandleScope scope(env_);
    return Call(clock_, set_timer_, kNoErrors, "clock.set-timer", {U32(id), Big(delay_ns)},
                nullptr);
  }
  HostStatus CancelTimer(uint32_t id) override {
    Napi::HandleScope scope(env_);
    return Call(clock_, cancel_timer_, kNoErrors, "clock.cancel-timer", {U32(id)}, nullptr);
  }
  HostStatus StreamWrite(const uint8_t* data, uint32_t len, uint32_t* accepted) override {
    Napi::HandleScope scope(env_);
    Napi::Value r;
    HostStatus s =
        Call(stream_, stream_write_, kNoErrors, "byte-stream.write", {Copy(data, len)}, &r);
    if (s.kind != HostStatus::kOk) return s;
    double n = r.IsNumber() ? r.As<Napi::Number>().DoubleValue() : -1;
    if (!(n >= 0 && n <= len && static_cast<uint32_t>(n) == n)) {
      return Bad("byte-stream.write", "a count of accepted bytes", r);
    }
    *accepted = static_cast<uint32_t>(n);
    return s;
  }
  HostStatus StreamRead(uint32_t max_len, wasm::GuestBuffer& out) override {
    Napi::HandleScope scope(env_);
    Napi::Value r;
    HostStatus s = Call(stream_, stream_read_, kNoErrors, "byte-stream.read", {U32(max_len)}, &r);
    if (s.kind != HostStatus::kOk) return s;
    return Bytes("byte-stream.read", r, max_len, out, /*exact=*/false);
  }
  HostStatus RegionRead(uint8_t bar, uint64_t offset, uint8_t width, uint64_t* value) override {
    Napi::HandleScope scope(env_);
    Napi::Value r;
    HostStatus s = Call(region_, region_read_, kAccessEnum, "region.read",
                        {U32(bar), Big(offset), U32(width)}, &r);
    if (s.kind != HostStatus::kOk) return s;
    bool lossless = false;
    if (!r.IsBigInt()) return Bad("region.read", "a bigint", r);
    *value = r.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) return Bad("region.read", "a bigint in [0, 2^64)", r);
    return s;
  }
  HostStatus RegionWrite(uint8_t bar, uint64_t offset, uint8_t width, uint64_t value) override {
    Napi::HandleScope scope(env_);
    return Call(region_, region_write_, kAccessEnum, "region.write",
                {U32(bar), Big(offset), U32(width), Big(value)}, nullptr);
  }
  HostStatus SharedRead(uint8_t bar, uint64_t offset, uint32_t len,
                        wasm::GuestBuffer& out) override {
    Napi::HandleScope scope(env_);
    Napi::Value r;
    HostStatus s = Call(shared_, shared_read_, kAccessEnum, "shared-memory.read",
                        {U32(bar), Big(offset), U32(len)}, &r);
    if (s.kind != HostStatus::kOk) return s;
    return Bytes("shared-memory.read", r, len, out);
  }
  HostStatus SharedWrite(uint8_t bar, uint64_t offset, const uint8_t* data, uint32_t len) override {
    Napi::HandleScope scope(env_);
    return Call(shared_, shared_write_, kAccessEnum, "shared-memory.write",
                {U32(bar), Big(offset), Copy(data, len)}, nullptr);
  }

 private:
  struct Method {
    const char* name;
    Napi::FunctionReference* ref;
  };

  /**
   * dma.readInto / dma.writeFrom (engine.ts HostImports, optional): the host copies between
   * client memory and the plugin's memory itself, once. The plugin's memory is lent to JS as
   * an external ArrayBuffer for the duration of one import call and detached right after, so
   * nothing can keep it. The DmaTarget's alloc is the plugin's cabi_realloc.
   */
  void BindOneCopyDma() {
    Napi::Object dma = dma_.Value();
    Napi::Value read_into = dma.Get("readInto");
    Napi::Value write_from = dma.Get("writeFrom");
    if (read_into.IsFunction()) dma_read_into_ = Napi::Persistent(read_into.As<Napi::Function>());
    if (write_from.IsFunction()) {
      dma_write_from_ = Napi::Persistent(write_from.As<Napi::Function>());
    }
    Napi::Object target = Napi::Object::New(env_);
    target.Set("alloc", Napi::Function::New(env_, &JsHost::TargetAlloc, "alloc", this));
    target.Set("memory", Napi::Function::New(env_, &JsHost::TargetMemory, "memory", this));
    target_ = Napi::Persistent(target);
  }

  static Napi::Value TargetAlloc(const Napi::CallbackInfo& info) {
    auto* self = static_cast<JsHost*>(info.Data());
    Napi::Env env = info.Env();
    auto len = static_cast<uint32_t>(ArgUint(info[0], "len", UINT32_MAX));
    if (self->lent_ == nullptr || self->lent_at_ >= 0) {
      throw Napi::Error::New(env, "DmaTarget.alloc: called outside its dma.read, or twice");
    }
    uint8_t* at = self->lent_->Alloc(len);
    size_t size = 0;
    uint8_t* base = self->instance_->memory_data(&size);
    if (at == nullptr || base == nullptr) {
      throw Napi::Error::New(env, "DmaTarget.alloc: the plugin could not allocate the result");
    }
    self->lent_at_ = static_cast<double>(at - base);
    return Napi::Number::New(env, self->lent_at_);
  }

  static Napi::Value TargetMemory(const Napi::CallbackInfo& info) {
    auto* self = static_cast<JsHost*>(info.Data());
    if (self->lent_ == nullptr) {
      throw Napi::Error::New(info.Env(), "DmaTarget.memory: called outside its dma.read");
    }
    return self->LendMemory();
  }

  /**
   * The plugin's memory as an external ArrayBuffer. One buffer is kept while the memory keeps
   * its base and size (creating one costs more than the rest of a small dma call); it is
   * detached when the memory grows, and when the host goes (the instance was disposed), so no
   * JS object ever reaches memory that is not the plugin's any more. Only the host's own
   * (trusted) import code sees it: a plugin cannot reach JS objects.
   */
  Napi::Value LendMemory() {
    size_t size = 0;
    uint8_t* base = instance_->memory_data(&size);
    if (!lent_memory_.IsEmpty() && base == lent_base_ && size == lent_size_) {
      return lent_memory_.Value();
    }
    DetachLent();
    napi_value ab = nullptr;
    // SAFETY: base/size are the plugin's memory now. wasmtime grows a memory in place within
    // its reservation and never shrinks it, and the buffer is detached before the memory
    // changes size (checked at every lend) or goes (~JsHost runs before the store is freed).
    if (napi_create_external_arraybuffer(env_, base, size, nullptr, nullptr, &ab) != napi_ok) {
      throw Napi::Error::New(env_, "could not lend the plugin's memory");
    }
    lent_memory_ = Napi::Persistent(Napi::Value(env_, ab).As<Napi::Object>());
    lent_base_ = base;
    lent_size_ = size;
    return lent_memory_.Value();
  }

  void DetachLent() {
    if (lent_memory_.IsEmpty()) return;
    napi_detach_arraybuffer(env_, lent_memory_.Value());
    lent_memory_.Reset();
  }

  void Bind(Napi::Object host, const char* iface, std::initializer_list<Method> methods,
            Napi::ObjectReference* obj) {
    Napi::Value v = host.Get(iface);
    if (!v.IsObject()) ThrowTypeError(env_, iface, "an object of host functions", v);
    Napi::Object o = v.As<Napi::Object>();
    *obj = Napi::Persistent(o);
    for (const Method& m : methods) {
      Napi::Value f = o.Get(m.name);
      if (!f.IsFunction()) {
        std::string name = std::string(iface) + "." + m.name;
        ThrowTypeError(env_, name.c_str(), "a function", f);
      }
      *m.ref = Napi::Persistent(f.As<Napi::Function>());
    }
  }

  Napi::Value U32(uint32_t v) { return Napi::Number::New(env_, v); }
  Napi::Value Big(uint64_t v) { return Napi::BigInt::New(env_, v); }
  Napi::Value Copy(const uint8_t* data, uint32_t len) { return PlainBytes(env_, data, len); }

  static HostStatus Bad(const char* what, const char* expected, const Napi::Value& got) {
    return HostStatus::Fault(std::string(what) + " returned " + Describe(got) + ", expected " +
                             expected);
  }

  /** a Uint8Array result copied into the plugin (exactly len bytes, or at most len) */
  static HostStatus Bytes(const char* what, const Napi::Value& r, uint32_t len,
                          wasm::GuestBuffer& out, bool exact = true) {
    if (!r.IsTypedArray() || r.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      return Bad(what, "a Uint8Array", r);
    }
    Napi::Uint8Array bytes = r.As<Napi::Uint8Array>();
    size_t n = bytes.ElementLength();
    if (exact ? n != len : n > len) {
      return Bad(what, exact ? "exactly the bytes asked for" : "at most max-len bytes", r);
    }
    uint8_t* dst = out.Alloc(static_cast<uint32_t>(n));
    if (dst == nullptr) return HostStatus::Fault("no memory in the plugin for the result");
    if (n > 0) std::memcpy(dst, bytes.Data(), n);
    return HostStatus::Ok();
  }

  /**
   * Calls obj.fn(args). A thrown WitError whose code is a case of `errors` is err(case);
   * anything else thrown is a fault. `result` (optional) gets the return value.
   */
  HostStatus Call(const Napi::ObjectReference& obj, const Napi::FunctionReference& fn,
                  ErrorEnum errors, const char* what, std::initializer_list<napi_value> args,
                  Napi::Value* result) {
    try {
      Napi::Value r = fn.Call(obj.Value(), args);
      if (result != nullptr) *result = r;
      return HostStatus::Ok();
    } catch (const Napi::Error& e) {
      Napi::Value thrown = e.Value();
      std::string text = "threw " + Describe(thrown);
      if (thrown.IsObject()) {
        Napi::Object o = thrown.As<Napi::Object>();
        Napi::Value name = o.Get("name");
        Napi::Value code = o.Get("code");
        if (name.IsString() && name.As<Napi::String>().Utf8Value() == "WitError" &&
            code.IsString()) {
          std::string c = code.As<Napi::String>().Utf8Value();
          for (uint8_t i = 0; i < errors.count; i++) {
            if (c == errors.cases[i]) return HostStatus::Err(i);
          }
        }
        Napi::Value message = o.Get("message");
        if (name.IsString() && message.IsString()) {
          text = "threw " + name.As<Napi::String>().Utf8Value() + ": " +
                 message.As<Napi::String>().Utf8Value();
        }
      }
      return HostStatus::Fault(std::string(what) + " " + text);
    }
  }

  Napi::Env env_;
  bool has_region_ = false;
  bool has_shared_ = false;
  Napi::ObjectReference irq_, dma_, log_obj_, clock_, stream_, region_, shared_;
  Napi::FunctionReference irq_raise_, irq_lower_, irq_masked_, dma_read_, dma_write_, log_;
  Napi::FunctionReference now_ns_, set_timer_, cancel_timer_, stream_write_, stream_read_;
  Napi::FunctionReference region_read_, region_write_, shared_read_, shared_write_;
  // one-copy DMA (BindOneCopyDma)
  Napi::FunctionReference dma_read_into_, dma_write_from_;
  Napi::ObjectReference target_;
  wasm::Instance* instance_ = nullptr;
  wasm::GuestBuffer* lent_ = nullptr;  // the dma.read in progress
  double lent_at_ = -1;                // the offset its alloc returned
  Napi::ObjectReference lent_memory_;  // LendMemory's buffer, while base and size hold
  uint8_t* lent_base_ = nullptr;
  size_t lent_size_ = 0;
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
    static_cast<JsHost*>(live_->host.get())->InstanceGone();  // the memory is gone
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
    init->host = std::make_unique<JsHost>(env, info[0].As<Napi::Object>());
    std::string why;
    auto* host = static_cast<JsHost*>(init->host.get());
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
