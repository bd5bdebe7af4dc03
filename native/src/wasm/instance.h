// SPDX-License-Identifier: MIT
// The wasmtime engine of the native core (DESIGN.md "Engines"): a plugin component's core
// module (component_binary.h) compiled by wasmtime's C API and called directly, with the
// canonical ABI of the vfiobox:device interfaces done here (canon_abi.h), so that a plugin call
// is one wasm call and a host import one C call: no V8, no dynamic component values.
//
// Limits: a store limiter caps each linear memory (a grow beyond the cap fails, as malloc
// failing), and epoch interruption stops a call that overruns its budget (a trap, on the
// calling thread: no watchdog thread has to kill anything). After any trap the instance is
// poisoned; the caller makes a fresh one (engine.ts).
//
// Threads: a Module may be instantiated on any thread; an Instance is used by the thread that
// made it, without locking. The process has one wasmtime engine and one epoch ticker thread.
#ifndef VFIOBOX_NATIVE_SRC_WASM_INSTANCE_H_
#define VFIOBOX_NATIVE_SRC_WASM_INSTANCE_H_

#include <wasmtime.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "native/src/wasm/host.h"

namespace vfiobox::wasm {

/** The wasmtime crate version linked in (native/wasmtime/Cargo.toml). */
extern const char kWasmtimeVersion[];

/** How an export call ended. The success path leaves `message` empty (no allocation). */
struct Outcome {
  enum Kind : uint8_t {
    kOk,
    kErr,      // the export returned err: message is the error case (or load-state's string)
    kTrap,     // trap, deadline, a host fault, a malformed result, or poisoned by an earlier one
    kInvalid,  // the instance is disposed, re-entered, or lacks the export
  };
  Kind kind = kOk;
  std::string message;
  bool ok() const { return kind == kOk; }
};

/** types.device-description, lifted. */
struct BarDescription {
  uint8_t index;
  uint64_t size_bytes;
  uint8_t kind;  // bar-kind: 0 mem32, 1 mem64, 2 io
  bool prefetchable;
};
struct MsixLayout {
  uint16_t vectors;
  uint8_t table_bar;
  uint32_t table_offset;
  uint8_t pba_bar;
  uint32_t pba_offset;
};
struct ClaimedRange {
  uint8_t bar;
  uint64_t offset;
  uint64_t length_bytes;
};
struct DeviceDescription {
  uint16_t vendor_id, device_id, subsystem_vendor_id, subsystem_id;
  uint32_t class_code;
  uint8_t revision;
  std::vector<BarDescription> bars;
  std::optional<uint8_t> intx;  // intx-pin: 0 a .. 3 d
  uint8_t msi_vectors;
  std::optional<MsixLayout> msix;
  std::vector<ClaimedRange> claimed_ranges;
};
using MemoryArea = ClaimedRange;  // types.memory-area has the same fields

/** A compiled core module, shareable between threads. */
class Module {
 public:
  /**
   * compiles the core module of `component` (any thread). On failure returns nullptr and sets
   * `why`.
   */
  static std::shared_ptr<Module> Compile(const uint8_t* component, size_t size, std::string* why);
  /** a module from Serialize's bytes; nullptr (and `why`) if they do not fit this build */
  static std::shared_ptr<Module> Deserialize(const uint8_t* bytes, size_t size, std::string* why);
  ~Module();
  /** the compiled artifact (for the on-disk cache); empty on failure */
  std::vector<uint8_t> Serialize() const;
  wasmtime_module_t* raw() const { return module_; }

 private:
  explicit Module(wasmtime_module_t* module) : module_(module) {}
  wasmtime_module_t* module_;
};

struct InstanceOptions {
  std::string abi;            // "0.1.0": import module names are vfiobox:device/<iface>@<abi>
  uint64_t memory_bytes = 0;  // cap per linear memory; 0 = wasmtime's default (4 GiB)
  uint32_t budget_ms = 0;     // per-call budget; 0 = none
};

class Instance {
 public:
  /** instantiates `module` against `host` (which must outlive the instance). */
  static std::unique_ptr<Instance> Create(std::shared_ptr<Module> module, Host* host,
                                          const InstanceOptions& options, std::string* why);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  Outcome Describe(DeviceDescription* out);
  Outcome ConfigRead(uint32_t offset, uint8_t width, uint32_t* value);
  Outcome ConfigWrite(uint32_t offset, uint8_t width, uint32_t value);
  Outcome RegionRead(uint8_t bar, uint64_t offset, uint8_t width, uint64_t* value);
  Outcome RegionWrite(uint8_t bar, uint64_t offset, uint8_t width, uint64_t value);
  Outcome Reset();
  Outcome Timer(uint32_t id);
  Outcome SaveState(std::vector<uint8_t>* out);
  Outcome LoadState(const uint8_t* data, size_t len);
  Outcome StreamReady();
  /** false when the module exports no memory-areas#areas */
  bool HasMemoryAreas() const;
  Outcome MemoryAreas(std::vector<MemoryArea>* out);
  /** bytes of linear memory now */
  uint64_t MemoryBytes() const;
  /** drops the store; later calls return kInvalid */
  void Dispose();
  bool live() const { return state_ == State::kLive; }

  // ---- used by the import trampolines (instance.cc) ----
  struct Exports;
  Host* host() const { return host_; }
  /**
   * a native port in front of the host's dma.read/dma.write (host.h DmaPort), or nullptr; the
   * port must outlive its installation (its owner clears it before it goes)
   */
  void set_dma_port(DmaPort* port) { dma_port_ = port; }
  DmaPort* dma_port() const { return dma_port_; }
  /**
   * the plugin's memory, or {nullptr, 0}. During a plugin call (in host imports) the answer is a
   * snapshot, taken at the first look of the call: the base never moves (SharedEngine), and the
   * size only grows (also inside a Realloc), so a snapshot's bounds are never too wide; a check
   * they refuse looks again (ForgetMemory) before failing. Two wasmtime calls per plugin call
   * instead of two per look (they were a third of a native dma.write's cost, and a tenth of a
   * hot dma.read's while each Realloc dropped the snapshot).
   */
  uint8_t* memory_data(size_t* size) const;
  /** drops the snapshot: the next memory_data asks wasmtime */
  void ForgetMemory() const { memory_known_ = false; }
  /**
   * memory[ptr, ptr + len) (an argument, a return area, a window), or nullptr when it is not
   * all inside the plugin's memory or ptr is not a multiple of align; a refusal by the
   * snapshot looks again first
   */
  uint8_t* GuestRange(uint32_t ptr, uint64_t len, uint32_t align) const;
  /** calls cabi_realloc(0, 0, align, len); 0 and a fault note on failure */
  bool Realloc(uint32_t align, uint32_t len, uint32_t* ptr);
  /** keeps the first host fault of a call: the trap's reason */
  void NoteFault(std::string why);

  // ---- DMA windows (dma.map-window, WIT 0.1.2; windows.cc) ----
  /** windows one instance may hold at once (window-error.too-many beyond) */
  static constexpr size_t kMaxWindows = 64;
  /** maps guest memory [iova, +len) (through the DMA port) over linear memory [at, +len) */
  HostStatus MapWindow(uint64_t iova, uint32_t len, uint32_t at, bool writable);
  /** the window starting at `at` goes; its range reads zeros */
  HostStatus UnmapWindow(uint32_t at);
  /**
   * the VMM unmapped guest memory [iova, iova + size) (size 0: all of it, a disconnect): the
   * windows over it go, and read zeros from now on. Called between plugin calls.
   */
  void DropWindows(uint64_t iova, uint64_t size);
  size_t window_count() const { return windows_.size(); }

 private:
  enum class State : uint8_t { kLive, kPoisoned, kDisposed };
  Instance() = default;
  /** calls export `f` (args then results in `raw`); a trap poisons */
  Outcome Call(int export_id, wasmtime_val_raw_t* raw, size_t n);
  Outcome Fail(Outcome::Kind kind, std::string message);
  Outcome Dead() const;
  /** enters or leaves plugin code (an export, cabi_realloc's caller, a post-return, the start) */
  void SetInCall(bool in_call);
  /** the post-return of export `f` with the pointer it returned */
  Outcome PostReturn(int export_id, uint32_t ptr);
  Outcome Lifted(const Outcome& lift, int export_id, uint32_t ptr);
  /** makes linear memory [at, +len) plain zeroed memory again; false: the kernel refused */
  bool ZeroFill(uint32_t at, uint32_t len);

  struct Window {
    uint32_t at;
    uint32_t len;
    uint64_t iova;
  };

  std::shared_ptr<Module> module_;
  Host* host_ = nullptr;
  DmaPort* dma_port_ = nullptr;
  wasmtime_store_t* store_ = nullptr;
  wasmtime_context_t* ctx_ = nullptr;
  std::unique_ptr<Exports> exports_;
  uint64_t deadline_ticks_ = 0;
  uint32_t budget_ms_ = 0;
  State state_ = State::kLive;
  bool in_call_ = false;
  std::string fault_;                  // the first host fault of the current call
  mutable bool memory_known_ = false;  // memory_base_/memory_size_ hold this call's snapshot
  mutable uint8_t* memory_base_ = nullptr;
  mutable size_t memory_size_ = 0;
  std::string poisoned_by_;
  std::vector<Window> windows_;  // disjoint ranges of linear memory mapped from guest memory
};

}  // namespace vfiobox::wasm

#endif  // VFIOBOX_NATIVE_SRC_WASM_INSTANCE_H_
