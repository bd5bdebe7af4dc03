// SPDX-License-Identifier: MIT
// JsHost: the wasm::Host of one wasmtime instance (wasmtime_host.h). Each import is a call of
// a method of the HostImports object the TS engine hands in (host/plugins/engines/wasmtime.ts,
// engine.ts HostImports), which checks the grants; this file converts the arguments and the
// result, and maps a thrown WitError to the import's error case. dma.read / dma.write copy
// once, through a view of the plugin's memory lent to JS for the call.
#include "native/src/js/wasmtime_host.h"

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "native/src/js/common.h"

namespace vfiobox {

/** a plain Uint8Array copy (a Buffer's slice() is a view, which the engine interface's users
 *  do not expect of a Uint8Array) */
Napi::Uint8Array PlainBytes(Napi::Env env, const uint8_t* data, size_t len) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, len);
  if (len > 0) std::memcpy(buffer.Data(), data, len);
  return Napi::Uint8Array::New(env, len, buffer, 0);
}

namespace {

using wasm::HostStatus;

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

class JsHost final : public JsHostImports {
 public:
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
  void InstanceGone() override { DetachLent(); }

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
  void set_instance(wasm::Instance* instance) override { instance_ = instance; }

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

}  // namespace

std::unique_ptr<JsHostImports> MakeJsHost(Napi::Env env, Napi::Object imports) {
  return std::make_unique<JsHost>(env, imports);
}

}  // namespace vfiobox
