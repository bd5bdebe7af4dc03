// SPDX-License-Identifier: MIT
// What the engine's files in native/src/wasm/ share, beside instance.h's interface: the
// process's engine and epoch ticker and wasmtime's messages (module.cc), the bounds-checked
// Reader the lifting of export results uses (lift.cc), UTF-8 validation (lift.cc, for strings
// from the plugin), and the trampoline every host import goes through (imports.cc).
#ifndef VFIOBOX_NATIVE_WASM_INTERNAL_H_
#define VFIOBOX_NATIVE_WASM_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "native/src/wasm/canon_abi.h"
#include "native/src/wasm/instance.h"

namespace vfiobox::wasm::internal {

// One epoch tick per kTickMs: the budget granularity. A call may run up to one tick past
// its budget; 5 ms keeps the ticker's wakeups (200/s) out of the latency benches.
constexpr uint32_t kTickMs = 5;

/** The process's engine (module.cc). Never freed. */
wasm_engine_t* SharedEngine();

/** Starts the epoch ticker once (a detached thread for the process's lifetime). */
void EnsureTicker();

/** The root cause of a wasmtime error, one line; deletes the error. */
std::string TakeMessage(wasmtime_error_t* error);

/** A trap's message, one line (a budget interrupt says so); deletes the trap. */
std::string TakeTrap(wasm_trap_t* trap, uint32_t budget_ms);

/** Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
bool ValidUtf8(const uint8_t* s, size_t n);

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

/** Every host import: its canon::ImportId is the function's env (imports.cc). */
wasm_trap_t* Trampoline(void* env, wasmtime_caller_t* caller, wasmtime_val_raw_t* args,
                        size_t nargs);

}  // namespace vfiobox::wasm::internal

#endif  // VFIOBOX_NATIVE_WASM_INTERNAL_H_
