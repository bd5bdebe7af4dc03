// SPDX-License-Identifier: MIT
#include "native/src/wasm/instance.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "native/src/wasm/canon_abi.h"
#include "native/src/wasm/component_binary.h"

namespace vfiobox::wasm {

const char kWasmtimeVersion[] = "48.0.8";

namespace {

using canon::ExportId;
using canon::ImportId;

// One epoch tick per kTickMs: the budget granularity. A call may run up to one tick past
// its budget; 5 ms keeps the ticker's wakeups (200/s) out of the latency benches.
constexpr uint32_t kTickMs = 5;
// The deadline of a call without a budget: never reached.
constexpr uint64_t kNoDeadline = uint64_t{1} << 62;
// Tables: a C plugin's indirect-call table has a few hundred entries.
constexpr int64_t kMaxTableElements = 1 << 16;

/**
 * One line of a wasmtime message: its root cause (the line after the last "Caused by:", where
 * the context above it is a backtrace), else its first line.
 */
std::string FirstLine(const char* data, size_t size) {
  std::string all(data, size);
  size_t at = 0;
  size_t caused = all.rfind("Caused by:");
  if (caused != std::string::npos) at = all.find('\n', caused);
  if (at == std::string::npos) at = 0;
  while (at < all.size() && (all[at] == '\n' || all[at] == ' ')) at++;
  size_t end = all.find('\n', at);
  std::string out = all.substr(at, end == std::string::npos ? std::string::npos : end - at);
  while (!out.empty() && (out.back() == ':' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string TakeMessage(wasmtime_error_t* error) {
  wasm_name_t msg;
  wasmtime_error_message(error, &msg);
  std::string out = FirstLine(msg.data, msg.size);
  wasm_byte_vec_delete(&msg);
  wasmtime_error_delete(error);
  return out;
}

std::string TakeTrap(wasm_trap_t* trap, uint32_t budget_ms) {
  wasmtime_trap_code_t code;
  bool has_code = wasmtime_trap_code(trap, &code);
  wasm_message_t msg;
  wasm_trap_message(trap, &msg);
  std::string text =
      FirstLine(msg.data, msg.size > 0 && msg.data[msg.size - 1] == '\0' ? msg.size - 1 : msg.size);
  wasm_byte_vec_delete(&msg);
  wasm_trap_delete(trap);
  if (has_code && code == WASMTIME_TRAP_CODE_INTERRUPT) {
    return "exceeded its budget of " + std::to_string(budget_ms) + " ms (" + text + ")";
  }
  return text;
}

/**
 * The process's engine: epoch interruption on, cranelift at speed. Never freed.
 *
 * A linear memory never moves (memory_may_move off: a 32-bit memory lives in its reservation,
 * 4 GiB on 64-bit hosts, and grows in place). Instance::memory_data relies on it: its snapshot
 * of the base stays valid for the whole of a plugin call, whatever the plugin grows meanwhile.
 */
wasm_engine_t* SharedEngine() {
  static wasm_engine_t* engine = [] {
    wasm_config_t* config = wasm_config_new();
    wasmtime_config_epoch_interruption_set(config, true);
    wasmtime_config_cranelift_opt_level_set(config, WASMTIME_OPT_LEVEL_SPEED);
    wasmtime_config_memory_may_move_set(config, false);
    return wasm_engine_new_with_config(config);  // takes the config
  }();
  return engine;
}

/** Starts the epoch ticker once (a detached thread for the process's lifetime). */
void EnsureTicker() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::thread([engine = SharedEngine()] {
      for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
        wasmtime_engine_increment_epoch(engine);
      }
    }).detach();
  });
}

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

bool ValidUtf8(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

/** Bounds-checked loads from the plugin's memory; the first bad access sets `bad`. */
struct Reader {
  const uint8_t* base;
  size_t size;
  std::string bad;

  bool Has(uint64_t at, uint64_t len) {
    if (at <= size && len <= size - at) return true;
    if (bad.empty()) bad = "a result points outside the plugin's memory";
    return false;
  }
  template <typename T>
  T Load(uint64_t at) {
    T v{};
    if (Has(at, sizeof(T))) std::memcpy(&v, base + at, sizeof(T));
    return v;
  }
  /** a discriminant or enum case below `cases` */
  uint8_t Case(uint64_t at, uint8_t cases, const char* what) {
    uint8_t v = Load<uint8_t>(at);
    if (v >= cases && bad.empty()) bad = std::string("invalid ") + what + " " + std::to_string(v);
    return v;
  }
  /** a list of `count` elements of `elem` bytes at `align`: the first byte, or false */
  bool List(uint32_t ptr, uint32_t count, uint32_t elem, uint32_t align) {
    if (ptr % align != 0) {
      if (bad.empty()) bad = "a result list is not aligned";
      return false;
    }
    return Has(ptr, uint64_t{count} * elem);
  }
  /** the (ptr, len) of a list at `at`, checked as `count` elements of `elem` bytes */
  bool ListAt(uint64_t at, uint32_t elem, uint32_t align, uint32_t* ptr, uint32_t* count) {
    *ptr = Load<uint32_t>(at);
    *count = Load<uint32_t>(at + 4);
    return bad.empty() && List(*ptr, *count, elem, align);
  }
  /** count types.claimed-range / memory-area records at ptr (List-checked) */
  void Ranges(uint32_t ptr, uint32_t count, std::vector<ClaimedRange>* out) {
    using R = canon::RangeLayout;
    out->resize(count);
    for (uint32_t i = 0; i < count && bad.empty(); i++) {
      uint64_t at = ptr + uint64_t{i} * canon::kRangeSize;
      (*out)[i] = {Load<uint8_t>(at + offsetof(R, bar)), Load<uint64_t>(at + offsetof(R, offset)),
                   Load<uint64_t>(at + offsetof(R, length_bytes))};
    }
  }
  bool Area(uint32_t ptr, uint32_t len, uint32_t align) {
    if (ptr % align != 0) {
      if (bad.empty()) bad = "a return area is not aligned";
      return false;
    }
    return Has(ptr, len);
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------
// Module

std::shared_ptr<Module> Module::Compile(const uint8_t* component, size_t size, std::string* why) {
  CoreModuleSlice core;
  if (!FindMainCoreModule(component, size, &core, why)) return nullptr;
  wasmtime_module_t* module = nullptr;
  wasmtime_error_t* error = wasmtime_module_new(SharedEngine(), core.data, core.size, &module);
  if (error != nullptr) {
    *why = "wasmtime: " + TakeMessage(error);
    return nullptr;
  }
  return std::shared_ptr<Module>(new Module(module));
}

std::shared_ptr<Module> Module::Deserialize(const uint8_t* bytes, size_t size, std::string* why) {
  wasmtime_module_t* module = nullptr;
  // SAFETY: wasmtime trusts a serialized artifact's code. Only Serialize's output, read back
  // from the host's own cache after a checksum over every byte (js/wasmtime.cc), gets here.
  wasmtime_error_t* error = wasmtime_module_deserialize(SharedEngine(), bytes, size, &module);
  if (error != nullptr) {
    *why = "wasmtime: " + TakeMessage(error);
    return nullptr;
  }
  return std::shared_ptr<Module>(new Module(module));
}

Module::~Module() { wasmtime_module_delete(module_); }

std::vector<uint8_t> Module::Serialize() const {
  wasm_byte_vec_t vec;
  wasmtime_error_t* error = wasmtime_module_serialize(module_, &vec);
  if (error != nullptr) {
    wasmtime_error_delete(error);
    return {};
  }
  std::vector<uint8_t> out(reinterpret_cast<uint8_t*>(vec.data),
                           reinterpret_cast<uint8_t*>(vec.data) + vec.size);
  wasm_byte_vec_delete(&vec);
  return out;
}

// ---------------------------------------------------------------------------------------
// Instance: exports

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

wasm_trap_t* Trampoline(void* env, wasmtime_caller_t* caller, wasmtime_val_raw_t* args,
                        size_t nargs);

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
  memory_known_ = false;  // the allocator may have grown the memory
  if (error != nullptr || trap != nullptr) {
    NoteFault("cabi_realloc failed: " +
              (error != nullptr ? TakeMessage(error) : TakeTrap(trap, budget_ms_)));
    return false;
  }
  *ptr = static_cast<uint32_t>(raw[0].i32);
  size_t size = 0;
  memory_data(&size);
  if (*ptr % align != 0 || *ptr > size || len > size - *ptr) {
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

// ---------------------------------------------------------------------------------------
// Instance: the device export, lifted

namespace {

constexpr const char* kAccessErrorNames[canon::kAccessErrorCases] = {
    "invalid-width", "out-of-range", "not-granted", "unsupported", "device-error"};

Outcome ReaderOutcome(const Reader& r) {
  if (r.bad.empty()) return {};
  return {Outcome::kTrap, r.bad};
}

}  // namespace

Outcome Instance::Describe(DeviceDescription* out) {
  wasmtime_val_raw_t raw[1];
  Outcome call = Call(canon::kDescribe, raw, 1);
  if (!call.ok()) return call;
  uint32_t ptr = static_cast<uint32_t>(raw[0].i32);
  size_t size = 0;
  const uint8_t* base = memory_data(&size);
  Reader r{base, size, {}};
  using L = canon::DeviceDescriptionLayout;
  if (r.Area(ptr, canon::kDescriptionSize, canon::kDescriptionAlign)) {
    out->vendor_id = r.Load<uint16_t>(ptr + offsetof(L, vendor_id));
    out->device_id = r.Load<uint16_t>(ptr + offsetof(L, device_id));
    out->subsystem_vendor_id = r.Load<uint16_t>(ptr + offsetof(L, subsystem_vendor_id));
    out->subsystem_id = r.Load<uint16_t>(ptr + offsetof(L, subsystem_id));
    out->class_code = r.Load<uint32_t>(ptr + offsetof(L, class_code));
    out->revision = r.Load<uint8_t>(ptr + offsetof(L, revision));
    uint32_t bars_ptr = 0, bars_len = 0;
    if (r.ListAt(ptr + offsetof(L, bars), canon::kBarSize, canon::kBarAlign, &bars_ptr,
                 &bars_len)) {
      using B = canon::BarDescriptionLayout;
      out->bars.resize(bars_len);
      for (uint32_t i = 0; i < bars_len && r.bad.empty(); i++) {
        uint64_t at = bars_ptr + uint64_t{i} * canon::kBarSize;
        BarDescription& bar = out->bars[i];
        bar.index = r.Load<uint8_t>(at + offsetof(B, index));
        bar.size_bytes = r.Load<uint64_t>(at + offsetof(B, size_bytes));
        bar.kind = r.Case(at + offsetof(B, kind), canon::kBarKindCases, "bar-kind");
        bar.prefetchable = r.Load<uint8_t>(at + offsetof(B, prefetchable)) != 0;
      }
    }
    uint64_t irqs = ptr + offsetof(L, irqs);
    using I = canon::IrqDescriptionLayout;
    if (r.Case(irqs + offsetof(I, intx), 2, "option discriminant") == 1) {
      out->intx = r.Case(irqs + offsetof(I, intx) + 1, canon::kIntxPinCases, "intx-pin");
    }
    out->msi_vectors = r.Load<uint8_t>(irqs + offsetof(I, msi_vectors));
    uint64_t msix = irqs + offsetof(I, msix);
    if (r.Case(msix, 2, "option discriminant") == 1) {
      using M = canon::MsixLayoutLayout;
      uint64_t m = msix + offsetof(canon::OptionMsix, value);
      out->msix = MsixLayout{
          r.Load<uint16_t>(m + offsetof(M, vectors)), r.Load<uint8_t>(m + offsetof(M, table_bar)),
          r.Load<uint32_t>(m + offsetof(M, table_offset)),
          r.Load<uint8_t>(m + offsetof(M, pba_bar)), r.Load<uint32_t>(m + offsetof(M, pba_offset))};
    }
    uint32_t ranges_ptr = 0, ranges_len = 0;
    if (r.ListAt(ptr + offsetof(L, claimed_ranges), canon::kRangeSize, canon::kRangeAlign,
                 &ranges_ptr, &ranges_len)) {
      r.Ranges(ranges_ptr, ranges_len, &out->claimed_ranges);
    }
  }
  return Lifted(ReaderOutcome(r), canon::kDescribe, ptr);
}

Outcome Instance::ConfigRead(uint32_t offset, uint8_t width, uint32_t* value) {
  wasmtime_val_raw_t raw[2];
  raw[0].i32 = static_cast<int32_t>(offset);
  raw[1].i32 = width;
  Outcome call = Call(canon::kConfigRead, raw, 2);
  if (call.ok()) *value = static_cast<uint32_t>(raw[0].i32);
  return call;
}

Outcome Instance::ConfigWrite(uint32_t offset, uint8_t width, uint32_t value) {
  wasmtime_val_raw_t raw[3];
  raw[0].i32 = static_cast<int32_t>(offset);
  raw[1].i32 = width;
  raw[2].i32 = static_cast<int32_t>(value);
  return Call(canon::kConfigWrite, raw, 3);
}

namespace {

/** result<u64, access-error> or result<_, access-error> at ptr: ok, err(case) or a trap */
Outcome LiftAccessResult(Reader& r, uint32_t ptr, bool has_value, uint64_t* value) {
  uint32_t size = has_value ? canon::kResultU64Size : canon::kResultUnitEnumSize;
  uint32_t align = has_value ? canon::kResultU64Align : canon::kResultUnitEnumAlign;
  if (!r.Area(ptr, size, align)) return ReaderOutcome(r);
  uint8_t is_err = r.Case(ptr, 2, "result discriminant");
  uint32_t payload = has_value ? offsetof(canon::ResultU64, payload) : 1;
  if (is_err == 0) {
    if (has_value) *value = r.Load<uint64_t>(ptr + payload);
    return ReaderOutcome(r);
  }
  uint8_t code = r.Case(ptr + payload, canon::kAccessErrorCases, "access-error");
  if (!r.bad.empty()) return ReaderOutcome(r);
  return {Outcome::kErr, kAccessErrorNames[code]};
}

}  // namespace

Outcome Instance::RegionRead(uint8_t bar, uint64_t offset, uint8_t width, uint64_t* value) {
  wasmtime_val_raw_t raw[3];
  raw[0].i32 = bar;
  raw[1].i64 = static_cast<int64_t>(offset);
  raw[2].i32 = width;
  Outcome call = Call(canon::kRegionRead, raw, 3);
  if (!call.ok()) return call;
  uint32_t ptr = static_cast<uint32_t>(raw[0].i32);
  size_t size = 0;
  const uint8_t* base = memory_data(&size);
  Reader r{base, size, {}};
  return Lifted(LiftAccessResult(r, ptr, true, value), canon::kRegionRead, ptr);
}

Outcome Instance::RegionWrite(uint8_t bar, uint64_t offset, uint8_t width, uint64_t value) {
  wasmtime_val_raw_t raw[4];
  raw[0].i32 = bar;
  raw[1].i64 = static_cast<int64_t>(offset);
  raw[2].i32 = width;
  raw[3].i64 = static_cast<int64_t>(value);
  Outcome call = Call(canon::kRegionWrite, raw, 4);
  if (!call.ok()) return call;
  uint32_t ptr = static_cast<uint32_t>(raw[0].i32);
  size_t size = 0;
  const uint8_t* base = memory_data(&size);
  Reader r{base, size, {}};
  return Lifted(LiftAccessResult(r, ptr, false, nullptr), canon::kRegionWrite, ptr);
}

Outcome Instance::Reset() {
  wasmtime_val_raw_t raw[1];
  return Call(canon::kReset, raw, 1);
}

Outcome Instance::Timer(uint32_t id) {
  wasmtime_val_raw_t raw[1];
  raw[0].i32 = static_cast<int32_t>(id);
  return Call(canon::kTimer, raw, 1);
}

Outcome Instance::StreamReady() {
  wasmtime_val_raw_t raw[1];
  return Call(canon::kStreamReady, raw, 1);
}

Outcome Instance::SaveState(std::vector<uint8_t>* out) {
  wasmtime_val_raw_t raw[1];
  Outcome call = Call(canon::kSaveState, raw, 1);
  if (!call.ok()) return call;
  uint32_t ptr = static_cast<uint32_t>(raw[0].i32);
  size_t size = 0;
  const uint8_t* base = memory_data(&size);
  Reader r{base, size, {}};
  uint32_t data = 0, len = 0;
  if (r.Area(ptr, canon::kListSize, canon::kListAlign) && r.ListAt(ptr, 1, 1, &data, &len)) {
    out->assign(base + data, base + data + len);
  }
  return Lifted(ReaderOutcome(r), canon::kSaveState, ptr);
}

Outcome Instance::LoadState(const uint8_t* data, size_t len) {
  if (state_ != State::kLive) return Dead();
  if (len > UINT32_MAX) return {Outcome::kInvalid, "the state is larger than 4 GiB"};
  uint32_t at = 0;
  if (!Realloc(1, static_cast<uint32_t>(len), &at)) {
    std::string why = fault_;
    fault_.clear();
    return Fail(Outcome::kTrap, why);
  }
  size_t size = 0;
  uint8_t* base = memory_data(&size);
  if (len > 0) std::memcpy(base + at, data, len);
  wasmtime_val_raw_t raw[2];
  raw[0].i32 = static_cast<int32_t>(at);
  raw[1].i32 = static_cast<int32_t>(len);
  Outcome call = Call(canon::kLoadState, raw, 2);
  if (!call.ok()) return call;
  uint32_t ptr = static_cast<uint32_t>(raw[0].i32);
  base = memory_data(&size);
  Reader r{base, size, {}};
  Outcome lift;
  if (r.Area(ptr, canon::kResultListSize, canon::kResultListAlign) &&
      r.Case(ptr, 2, "result discriminant") == 1) {
    uint32_t s = 0, n = 0;
    if (r.ListAt(ptr + offsetof(canon::ResultList, list), 1, 1, &s, &n)) {
      if (!ValidUtf8(base + s, n))
        r.bad = "load-state returned an error string that is not UTF-8";
      else
        lift = {Outcome::kErr, std::string(reinterpret_cast<const char*>(base + s), n)};
    }
  }
  if (!r.bad.empty()) lift = ReaderOutcome(r);
  return Lifted(lift, canon::kLoadState, ptr);
}

bool Instance::HasMemoryAreas() const { return exports_ && exports_->has[canon::kAreas]; }

Outcome Instance::MemoryAreas(std::vector<MemoryArea>* out) {
  wasmtime_val_raw_t raw[1];
  Outcome call = Call(canon::kAreas, raw, 1);
  if (!call.ok()) return call;
  uint32_t ptr = static_cast<uint32_t>(raw[0].i32);
  size_t size = 0;
  const uint8_t* base = memory_data(&size);
  Reader r{base, size, {}};
  uint32_t list = 0, len = 0;
  if (r.Area(ptr, canon::kListSize, canon::kListAlign) &&
      r.ListAt(ptr, canon::kRangeSize, canon::kRangeAlign, &list, &len)) {
    r.Ranges(list, len, out);
  }
  return Lifted(ReaderOutcome(r), canon::kAreas, ptr);
}

// ---------------------------------------------------------------------------------------
// Imports: the trampolines, lowering each host call's result into the plugin's memory

namespace {

/** A list<u8> result allocated in the plugin by cabi_realloc when the host asks. */
class ReallocBuffer final : public GuestBuffer {
 public:
  explicit ReallocBuffer(Instance* inst) : inst_(inst) {}
  uint8_t* Alloc(uint32_t len) override {
    if (used_) {
      inst_->NoteFault("a host import allocated its result twice");
      return nullptr;
    }
    if (!inst_->Realloc(1, len, &ptr_)) return nullptr;
    used_ = true;
    len_ = len;
    size_t size = 0;
    return inst_->memory_data(&size) + ptr_;
  }
  bool used() const { return used_; }
  uint32_t ptr() const { return ptr_; }
  uint32_t len() const { return len_; }

 private:
  Instance* inst_;
  uint32_t ptr_ = 0;
  uint32_t len_ = 0;
  bool used_ = false;
};

wasm_trap_t* TrapWith(Instance* inst, const char* what, std::string why) {
  std::string text = std::string("host import ") + what + ": " + why;
  inst->NoteFault(text);
  return wasmtime_trap_new(text.data(), text.size());
}

/** result<_, E> into the return area */
void StoreUnitResult(uint8_t* area, const HostStatus& s) {
  area[0] = s.kind == HostStatus::kErr ? 1 : 0;
  area[1] = s.kind == HostStatus::kErr ? s.err_case : 0;
}

uint32_t U32(const wasmtime_val_raw_t& v) { return static_cast<uint32_t>(v.i32); }
uint64_t U64(const wasmtime_val_raw_t& v) { return static_cast<uint64_t>(v.i64); }

/** the case count of each import's WIT error enum (0: the function has none) */
uint8_t ErrorCases(int id) {
  switch (id) {
    case canon::kIrqRaise:
    case canon::kIrqLower:
      return canon::kIrqErrorCases;
    case canon::kDmaRead:
    case canon::kDmaWrite:
      return canon::kDmaErrorCases;
    case canon::kRegionReadImport:
    case canon::kRegionWriteImport:
    case canon::kSharedRead:
    case canon::kSharedWrite:
      return canon::kAccessErrorCases;
    case canon::kDmaMapWindow:
    case canon::kDmaUnmapWindow:
      return canon::kWindowErrorCases;
    default:
      return 0;
  }
}

wasm_trap_t* Import(int id, Instance* inst, wasmtime_val_raw_t* a) {
  const char* what = canon::kImports[id].what;
  if (!inst->live()) return TrapWith(inst, what, "the instance is gone");
  Host& host = *inst->host();
  HostStatus s;
  // Return areas are checked before the host runs, so a bad pointer never costs a side effect,
  // and re-derived after it, as an allocation may have grown (moved) the memory.
  auto unit_area = [&](uint32_t ptr) {
    return inst->GuestRange(ptr, canon::kResultUnitEnumSize, canon::kResultUnitEnumAlign);
  };
  switch (id) {
    case canon::kIrqRaise:
    case canon::kIrqLower: {
      if (unit_area(U32(a[1])) == nullptr) return TrapWith(inst, what, "bad return area");
      s = id == canon::kIrqRaise ? host.IrqRaise(U32(a[0])) : host.IrqLower(U32(a[0]));
      if (s.kind == HostStatus::kFault) break;
      StoreUnitResult(unit_area(U32(a[1])), s);
      break;
    }
    case canon::kIrqIsMasked: {
      bool masked = false;
      s = host.IrqIsMasked(U32(a[0]), &masked);
      a[0].i32 = masked ? 1 : 0;
      break;
    }
    case canon::kDmaRead:
    case canon::kStreamRead:
    case canon::kSharedRead: {
      // dma.read(iova, len, ret) / byte-stream.read(max, ret) / shared-memory.read(bar, off, len,
      // ret)
      const bool result = id != canon::kStreamRead;
      const uint32_t ret = U32(a[id == canon::kDmaRead ? 2 : id == canon::kStreamRead ? 1 : 3]);
      const uint32_t area_size = result ? canon::kResultListSize : canon::kListSize;
      if (inst->GuestRange(ret, area_size, canon::kListAlign) == nullptr) {
        return TrapWith(inst, what, "bad return area");
      }
      ReallocBuffer buffer(inst);
      if (id == canon::kDmaRead) {
        DmaPort* port = inst->dma_port();
        if (port == nullptr || !port->Read(U64(a[0]), U32(a[1]), buffer, &s))
          s = host.DmaRead(U64(a[0]), U32(a[1]), buffer);
      } else if (id == canon::kStreamRead) {
        s = host.StreamRead(U32(a[0]), buffer);
      } else {
        s = host.SharedRead(static_cast<uint8_t>(a[0].i32), U64(a[1]), U32(a[2]), buffer);
      }
      if (s.kind == HostStatus::kFault) break;
      if (s.kind == HostStatus::kOk && !buffer.used() && !buffer.Alloc(0)) {
        s = HostStatus::Fault("no memory for an empty result");
        break;
      }
      uint8_t* area = inst->GuestRange(ret, area_size, canon::kListAlign);
      canon::GuestList list{buffer.ptr(), buffer.len()};
      if (!result) {
        std::memcpy(area, &list, sizeof list);
      } else if (s.kind == HostStatus::kOk) {
        area[0] = 0;
        std::memcpy(area + offsetof(canon::ResultList, list), &list, sizeof list);
      } else {
        area[0] = 1;
        area[offsetof(canon::ResultList, list)] = s.err_case;
      }
      break;
    }
    case canon::kDmaWrite:
    case canon::kStreamWrite:
    case canon::kSharedWrite: {
      // dma.write(iova, ptr, len, ret) / byte-stream.write(ptr, len) -> u32 /
      // shared-memory.write(bar, off, ptr, len, ret)
      const int at = id == canon::kDmaWrite ? 1 : id == canon::kStreamWrite ? 0 : 2;
      const uint32_t ptr = U32(a[at]);
      const uint32_t len = U32(a[at + 1]);
      const uint8_t* data = inst->GuestRange(ptr, len, 1);
      if (data == nullptr) return TrapWith(inst, what, "the data is outside the plugin's memory");
      if (id == canon::kStreamWrite) {
        uint32_t accepted = 0;
        s = host.StreamWrite(data, len, &accepted);
        a[0].i32 = static_cast<int32_t>(accepted);
        break;
      }
      const uint32_t ret = U32(a[at + 2]);
      if (unit_area(ret) == nullptr) return TrapWith(inst, what, "bad return area");
      if (id == canon::kDmaWrite) {
        DmaPort* port = inst->dma_port();
        if (port == nullptr || !port->Write(U64(a[0]), data, len, &s))
          s = host.DmaWrite(U64(a[0]), data, len);
      } else {
        s = host.SharedWrite(static_cast<uint8_t>(a[0].i32), U64(a[1]), data, len);
      }
      if (s.kind == HostStatus::kFault) break;
      StoreUnitResult(unit_area(ret), s);
      break;
    }
    case canon::kDmaMapWindow:
    case canon::kDmaUnmapWindow: {
      // map-window(iova, len, at, writable, ret) / unmap-window(at, ret)
      const uint32_t ret = U32(a[id == canon::kDmaMapWindow ? 4 : 1]);
      if (unit_area(ret) == nullptr) return TrapWith(inst, what, "bad return area");
      s = id == canon::kDmaMapWindow
              ? inst->MapWindow(U64(a[0]), U32(a[1]), U32(a[2]), U32(a[3]) != 0)
              : inst->UnmapWindow(U32(a[0]));
      if (s.kind == HostStatus::kFault) break;
      StoreUnitResult(unit_area(ret), s);  // re-derived: the window may cover the return area
      break;
    }
    case canon::kLog: {
      const uint32_t level = U32(a[0]);
      if (level >= canon::kLogLevelCases) return TrapWith(inst, what, "invalid log-level");
      const uint8_t* msg = inst->GuestRange(U32(a[1]), U32(a[2]), 1);
      if (msg == nullptr) return TrapWith(inst, what, "the message is outside the plugin's memory");
      if (!ValidUtf8(msg, U32(a[2]))) return TrapWith(inst, what, "the message is not UTF-8");
      s = host.Log(static_cast<uint8_t>(level),
                   std::string_view(reinterpret_cast<const char*>(msg), U32(a[2])));
      break;
    }
    case canon::kNowNs: {
      uint64_t ns = 0;
      s = host.NowNs(&ns);
      a[0].i64 = static_cast<int64_t>(ns);
      break;
    }
    case canon::kSetTimer:
      s = host.SetTimer(U32(a[0]), U64(a[1]));
      break;
    case canon::kCancelTimer:
      s = host.CancelTimer(U32(a[0]));
      break;
    case canon::kRegionReadImport: {
      const uint32_t ret = U32(a[3]);
      if (inst->GuestRange(ret, canon::kResultU64Size, canon::kResultU64Align) == nullptr) {
        return TrapWith(inst, what, "bad return area");
      }
      uint64_t value = 0;
      s = host.RegionRead(static_cast<uint8_t>(a[0].i32), U64(a[1]), static_cast<uint8_t>(a[2].i32),
                          &value);
      if (s.kind == HostStatus::kFault) break;
      uint8_t* area = inst->GuestRange(ret, canon::kResultU64Size, canon::kResultU64Align);
      canon::ResultU64 out{};
      out.is_err = s.kind == HostStatus::kErr ? 1 : 0;
      out.payload = s.kind == HostStatus::kErr ? s.err_case : value;
      std::memcpy(area, &out.is_err, 1);
      std::memcpy(area + offsetof(canon::ResultU64, payload), &out.payload, 8);
      break;
    }
    case canon::kRegionWriteImport: {
      const uint32_t ret = U32(a[4]);
      if (unit_area(ret) == nullptr) return TrapWith(inst, what, "bad return area");
      s = host.RegionWrite(static_cast<uint8_t>(a[0].i32), U64(a[1]),
                           static_cast<uint8_t>(a[2].i32), U64(a[3]));
      if (s.kind == HostStatus::kFault) break;
      StoreUnitResult(unit_area(ret), s);
      break;
    }
    default:
      return TrapWith(inst, what, "unknown import");
  }
  if (s.kind == HostStatus::kFault) return TrapWith(inst, what, s.fault);
  if (s.kind == HostStatus::kErr && s.err_case >= ErrorCases(id)) {
    return TrapWith(inst, what, "the host returned an error the function does not have");
  }
  return nullptr;
}

/** every host import: its id is the function's env (DefineImports) */
wasm_trap_t* Trampoline(void* env, wasmtime_caller_t* caller, wasmtime_val_raw_t* a,
                        size_t /*nargs*/) {
  const int id = static_cast<int>(reinterpret_cast<intptr_t>(env));
  auto* inst = static_cast<Instance*>(wasmtime_context_get_data(wasmtime_caller_context(caller)));
  return Import(id, inst, a);
}

}  // namespace

}  // namespace vfiobox::wasm
