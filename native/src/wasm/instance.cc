// SPDX-License-Identifier: MIT
// Instance: a plugin's store and instance, linked against the host imports (imports.cc), with
// its exports found and signature-checked; calls into it under the epoch budget; its memory.
// The exports' results are lifted in lift.cc, DMA windows are windows.cc, the engine and
// Module are module.cc.
#include "native/src/wasm/instance.h"

#include <cstdio>
#include <cstring>

#include "native/src/wasm/canon_abi.h"
#include "native/src/wasm/internal.h"

namespace vfiobox::wasm {

namespace {

using internal::EnsureTicker;
using internal::kTickMs;
using internal::SharedEngine;
using internal::TakeMessage;
using internal::TakeTrap;
using internal::Trampoline;

// The deadline of a call without a budget: never reached.
constexpr uint64_t kNoDeadline = uint64_t{1} << 62;
// Tables: a C plugin's indirect-call table has a few hundred entries.
constexpr int64_t kMaxTableElements = 1 << 16;

wasm_valkind_t Kind(char c) { return c == 'I' ? WASM_I64 : WASM_I32; }

wasm_valtype_vec_t Types(const char* letters) {
  size_t n = std::strlen(letters);
  wasm_valtype_vec_t vec;
  wasm_valtype_vec_new_uninitialized(&vec, n);
  for (size_t i = 0; i < n; i++) vec.data[i] = wasm_valtype_new(Kind(letters[i]));
  return vec;
}

wasm_functype_t* FuncType(const canon::Signature& sig) {
  wasm_valtype_vec_t params = Types(sig.params);
  wasm_valtype_vec_t results = Types(sig.results);
  return wasm_functype_new(&params, &results);  // takes both vectors
}

bool SameTypes(const wasm_valtype_vec_t* vec, const char* letters) {
  if (vec->size != std::strlen(letters)) return false;
  for (size_t i = 0; i < vec->size; i++) {
    if (wasm_valtype_kind(vec->data[i]) != Kind(letters[i])) return false;
  }
  return true;
}

bool HasSignature(wasmtime_context_t* ctx, const wasmtime_func_t* func,
                  const canon::Signature& sig) {
  wasm_functype_t* type = wasmtime_func_type(ctx, func);
  bool same = SameTypes(wasm_functype_params(type), sig.params) &&
              SameTypes(wasm_functype_results(type), sig.results);
  wasm_functype_delete(type);
  return same;
}

}  // namespace

struct Instance::Exports {
  wasmtime_instance_t instance;
  wasmtime_memory_t memory;
  wasmtime_func_t funcs[canon::kExportCount];
  bool has[canon::kExportCount] = {};
  wasmtime_func_t post[canon::kExportCount];
  bool has_post[canon::kExportCount] = {};
  wasmtime_func_t realloc;
  bool has_realloc = false;
};

namespace {

/** the core export name of an interface function: "vfiobox:device/device@0.1.0#describe" */
std::string ExportName(const canon::ExportSpec& spec, const std::string& abi) {
  return std::string("vfiobox:device/") + spec.iface + "@" + abi + "#" + spec.name;
}

bool GetFunc(wasmtime_context_t* ctx, wasmtime_instance_t* inst, const std::string& name,
             wasmtime_func_t* out) {
  wasmtime_extern_t item;
  if (!wasmtime_instance_export_get(ctx, inst, name.data(), name.size(), &item)) return false;
  if (item.kind != WASMTIME_EXTERN_FUNC) {
    wasmtime_extern_delete(&item);
    return false;
  }
  *out = item.of.func;
  return true;
}

}  // namespace

namespace {

/** dma.map-window and unmap-window exist from 0.1.2 on (abi: "x.y.z", as host/plugins/abi.ts) */
bool HasWindows(const std::string& abi) {
  unsigned major = 0, minor = 0, patch = 0;
  if (std::sscanf(abi.c_str(), "%u.%u.%u", &major, &minor, &patch) != 3) return false;
  return major > 0 || minor > 1 || (minor == 1 && patch >= 2);
}

}  // namespace

std::unique_ptr<Instance> Instance::Create(std::shared_ptr<Module> module, Host* host,
                                           const InstanceOptions& options, std::string* why) {
  std::unique_ptr<Instance> self(new Instance());
  self->module_ = std::move(module);
  self->host_ = host;
  self->exports_ = std::make_unique<Exports>();
  wasm_engine_t* engine = SharedEngine();
  self->store_ = wasmtime_store_new(engine, self.get(), nullptr);
  self->ctx_ = wasmtime_store_context(self->store_);
  int64_t memory = options.memory_bytes > 0 ? static_cast<int64_t>(options.memory_bytes) : -1;
  wasmtime_store_limiter(self->store_, memory, kMaxTableElements, 1, 4, 1);
  if (options.budget_ms > 0) {
    EnsureTicker();
    self->budget_ms_ = options.budget_ms;
    self->deadline_ticks_ = (options.budget_ms + kTickMs - 1) / kTickMs + 1;
  } else {
    self->deadline_ticks_ = kNoDeadline;
  }
  wasmtime_context_set_epoch_deadline(self->ctx_, self->deadline_ticks_);

  wasmtime_linker_t* linker = wasmtime_linker_new(engine);
  for (int id = 0; id < canon::kImportCount; id++) {
    const canon::ImportSpec& spec = canon::kImports[id];
    if ((spec.group == canon::Group::kRegion && !host->has_region()) ||
        (spec.group == canon::Group::kSharedMemory && !host->has_shared_memory())) {
      continue;  // not granted: a plugin importing it fails to link below
    }
    if (spec.group == canon::Group::kWindows && !HasWindows(options.abi)) continue;
    std::string mod = std::string("vfiobox:device/") + spec.iface + "@" + options.abi;
    wasm_functype_t* type = FuncType(spec.sig);
    wasmtime_error_t* error = wasmtime_linker_define_func_unchecked(
        linker, mod.data(), mod.size(), spec.name, std::strlen(spec.name), type, Trampoline,
        reinterpret_cast<void*>(static_cast<intptr_t>(id)), nullptr);
    wasm_functype_delete(type);
    if (error != nullptr) {
      *why = "wasmtime: " + TakeMessage(error);
      wasmtime_linker_delete(linker);
      return nullptr;
    }
  }
  Exports& ex = *self->exports_;
  wasm_trap_t* trap = nullptr;
  self->SetInCall(true);  // a start function runs here: imports may see the instance
  wasmtime_error_t* error =
      wasmtime_linker_instantiate(linker, self->ctx_, self->module_->raw(), &ex.instance, &trap);
  self->SetInCall(false);
  wasmtime_linker_delete(linker);
  if (error != nullptr || trap != nullptr) {
    std::string text = error != nullptr ? TakeMessage(error) : TakeTrap(trap, options.budget_ms);
    *why = self->fault_.empty() ? text : self->fault_;
    return nullptr;
  }

  wasmtime_extern_t item;
  if (!wasmtime_instance_export_get(self->ctx_, &ex.instance, "memory", 6, &item) ||
      item.kind != WASMTIME_EXTERN_MEMORY) {
    *why = "the core module exports no memory";
    return nullptr;
  }
  ex.memory = item.of.memory;
  ex.has_realloc = GetFunc(self->ctx_, &ex.instance, "cabi_realloc", &ex.realloc);
  if (ex.has_realloc && !HasSignature(self->ctx_, &ex.realloc, {"iiii", "i"})) {
    *why = "cabi_realloc has the wrong signature";
    return nullptr;
  }
  for (int id = 0; id < canon::kExportCount; id++) {
    const canon::ExportSpec& spec = canon::kExports[id];
    std::string name = ExportName(spec, options.abi);
    ex.has[id] = GetFunc(self->ctx_, &ex.instance, name, &ex.funcs[id]);
    if (!ex.has[id]) {
      if (spec.required) {
        *why = "the core module does not export " + name;
        return nullptr;
      }
      continue;
    }
    if (!HasSignature(self->ctx_, &ex.funcs[id], spec.sig)) {
      *why = name + " has the wrong core signature";
      return nullptr;
    }
    ex.has_post[id] = GetFunc(self->ctx_, &ex.instance, "cabi_post_" + name, &ex.post[id]);
    if (ex.has_post[id] && !HasSignature(self->ctx_, &ex.post[id], {"i", ""})) {
      *why = "cabi_post_" + name + " has the wrong signature";
      return nullptr;
    }
  }
  // A reactor's initializer (wasi-libc's constructors) runs once, before any export.
  wasmtime_func_t init;
  if (GetFunc(self->ctx_, &ex.instance, "_initialize", &init)) {
    if (!HasSignature(self->ctx_, &init, {"", ""})) {
      *why = "_initialize has the wrong signature";
      return nullptr;
    }
    wasmtime_val_raw_t raw[1];
    self->SetInCall(true);
    wasmtime_error_t* err = wasmtime_func_call_unchecked(self->ctx_, &init, raw, 1, &trap);
    self->SetInCall(false);
    if (err != nullptr || trap != nullptr) {
      std::string text = err != nullptr ? TakeMessage(err) : TakeTrap(trap, options.budget_ms);
      *why = "_initialize: " + (self->fault_.empty() ? text : self->fault_);
      return nullptr;
    }
  }
  return self;
}

Instance::~Instance() { Dispose(); }

void Instance::Dispose() {
  if (state_ == State::kDisposed) return;
  state_ = State::kDisposed;
  if (in_call_) return;  // a host import disposed us mid-call: Call frees the store after
  if (store_ != nullptr) wasmtime_store_delete(store_);
  store_ = nullptr;
  ctx_ = nullptr;
}

uint64_t Instance::MemoryBytes() const {
  if (ctx_ == nullptr) return 0;
  return wasmtime_memory_data_size(ctx_, &exports_->memory);
}

uint8_t* Instance::memory_data(size_t* size) const {
  if (ctx_ == nullptr) {
    *size = 0;
    return nullptr;
  }
  if (memory_known_) {
    *size = memory_size_;
    return memory_base_;
  }
  *size = wasmtime_memory_data_size(ctx_, &exports_->memory);
  uint8_t* base = wasmtime_memory_data(ctx_, &exports_->memory);
  if (in_call_) {
    memory_base_ = base;
    memory_size_ = *size;
    memory_known_ = true;
  }
  return base;
}

uint8_t* Instance::GuestRange(uint32_t ptr, uint64_t len, uint32_t align) const {
  if (ptr % align != 0) return nullptr;
  auto inside = [&](size_t size) { return ptr <= size && len <= size - ptr; };
  size_t size = 0;
  uint8_t* base = memory_data(&size);
  if (base != nullptr && !inside(size)) {
    // The snapshot may predate a memory.grow earlier in this call (memory only grows, and
    // never moves): look again before refusing.
    ForgetMemory();
    base = memory_data(&size);
  }
  if (base == nullptr || !inside(size)) return nullptr;
  return base + ptr;
}

void Instance::SetInCall(bool in_call) {
  in_call_ = in_call;
  memory_known_ = false;  // a call starts or ends: the next look asks wasmtime
}

void Instance::NoteFault(std::string why) {
  if (fault_.empty()) fault_ = std::move(why);
}

bool Instance::Realloc(uint32_t align, uint32_t len, uint32_t* ptr) {
  if (!exports_->has_realloc) {
    NoteFault("the plugin exports no cabi_realloc for a list result");
    return false;
  }
  wasmtime_val_raw_t raw[4];
  raw[0].i32 = 0;
  raw[1].i32 = 0;
  raw[2].i32 = static_cast<int32_t>(align);
  raw[3].i32 = static_cast<int32_t>(len);
  wasm_trap_t* trap = nullptr;
  wasmtime_error_t* error = wasmtime_func_call_unchecked(ctx_, &exports_->realloc, raw, 4, &trap);
  if (error != nullptr || trap != nullptr) {
    NoteFault("cabi_realloc failed: " +
              (error != nullptr ? TakeMessage(error) : TakeTrap(trap, budget_ms_)));
    return false;
  }
  *ptr = static_cast<uint32_t>(raw[0].i32);
  // The allocator may have grown the memory (it never moves): GuestRange checks the block
  // against the call's snapshot and asks wasmtime again only when the snapshot is too short.
  if (GuestRange(*ptr, len, align) == nullptr) {
    NoteFault("cabi_realloc returned a block outside the plugin's memory");
    return false;
  }
  return true;
}

Outcome Instance::Dead() const {
  if (state_ == State::kDisposed) return {Outcome::kInvalid, "the instance was disposed"};
  return {Outcome::kTrap, "the instance is poisoned by an earlier fault (" + poisoned_by_ + ")"};
}

Outcome Instance::Fail(Outcome::Kind kind, std::string message) {
  if (kind == Outcome::kTrap) {
    state_ = State::kPoisoned;
    poisoned_by_ = message;
  }
  return {kind, std::move(message)};
}

Outcome Instance::Call(int export_id, wasmtime_val_raw_t* raw, size_t n) {
  if (state_ != State::kLive) return Dead();
  if (in_call_) return {Outcome::kInvalid, "the plugin was re-entered from a host import"};
  if (!exports_->has[export_id]) return {Outcome::kInvalid, "the plugin does not export it"};
  // SAFETY: the export's core signature was checked at instantiation, and `raw` holds
  // max(params, results) values (the callers size it from canon::kExports).
  wasmtime_context_set_epoch_deadline(ctx_, deadline_ticks_);
  SetInCall(true);
  wasm_trap_t* trap = nullptr;
  wasmtime_error_t* error =
      wasmtime_func_call_unchecked(ctx_, &exports_->funcs[export_id], raw, n, &trap);
  SetInCall(false);
  if (state_ == State::kDisposed) {  // disposed by a host import during the call
    if (error != nullptr) wasmtime_error_delete(error);
    if (trap != nullptr) wasm_trap_delete(trap);
    state_ = State::kLive;
    Dispose();
    return Dead();
  }
  if (error == nullptr && trap == nullptr) return {};
  std::string text = error != nullptr ? TakeMessage(error) : TakeTrap(trap, budget_ms_);
  std::string why = fault_.empty() ? text : fault_;
  fault_.clear();
  return Fail(Outcome::kTrap, std::move(why));
}

Outcome Instance::PostReturn(int export_id, uint32_t ptr) {
  if (!exports_->has_post[export_id]) return {};
  wasmtime_val_raw_t raw[1];
  raw[0].i32 = static_cast<int32_t>(ptr);
  SetInCall(true);
  wasm_trap_t* trap = nullptr;
  wasmtime_error_t* error =
      wasmtime_func_call_unchecked(ctx_, &exports_->post[export_id], raw, 1, &trap);
  SetInCall(false);
  if (error == nullptr && trap == nullptr) return {};
  std::string text = error != nullptr ? TakeMessage(error) : TakeTrap(trap, budget_ms_);
  return Fail(Outcome::kTrap, "post-return: " + text);
}

/** After lifting a return area: a malformed result traps; else the post-return runs. */
Outcome Instance::Lifted(const Outcome& lift, int export_id, uint32_t ptr) {
  if (lift.kind == Outcome::kTrap) return Fail(Outcome::kTrap, lift.message);
  Outcome post = PostReturn(export_id, ptr);
  if (!post.ok()) return post;
  return lift;
}

bool Instance::HasMemoryAreas() const { return exports_ && exports_->has[canon::kAreas]; }

}  // namespace vfiobox::wasm
