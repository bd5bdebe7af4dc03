// SPDX-License-Identifier: MIT
// The canonical ABI of the vfiobox:device interfaces, written out for exactly these types
// (wit/vfiobox-device/0.1.x): core signatures of every lowered import and lifted export, and the
// memory layout of every result that goes through a return area. Facts from the component
// model's CanonicalABI.md: at most 1 flat result (more go through a pointer), records laid out
// field by field at their natural alignment, a variant as its smallest discriminant then the
// payload at the payload's alignment, list/string as (i32 ptr, i32 len).
//
// Layouts are asserted below with offsetof on mirror structs, so a wrong offset fails the build.
#ifndef VFIOBOX_NATIVE_SRC_WASM_CANON_ABI_H_
#define VFIOBOX_NATIVE_SRC_WASM_CANON_ABI_H_

#include <cstddef>
#include <cstdint>

namespace vfiobox::wasm::canon {

/**
 * Core signatures: one letter per value, 'i' i32, 'I' i64. A trailing retptr param is the
 * return area the import writes its result into.
 */
struct Signature {
  const char* params;
  const char* results;
};

// ---- exports (lifted): device@v, memory-areas@v ----
enum ExportId : int {
  kDescribe,
  kConfigRead,
  kConfigWrite,
  kRegionRead,
  kRegionWrite,
  kReset,
  kTimer,
  kSaveState,
  kLoadState,
  kStreamReady,
  kAreas,  // optional: memory-areas#areas (0.1.1)
  kExportCount,
};

struct ExportSpec {
  const char* iface;  // "device" or "memory-areas"
  const char* name;
  Signature sig;
  bool required;
};

inline constexpr ExportSpec kExports[kExportCount] = {
    {"device", "describe", {"", "i"}, true},
    {"device", "config-read", {"ii", "i"}, true},
    {"device", "config-write", {"iii", ""}, true},
    {"device", "region-read", {"iIi", "i"}, true},
    {"device", "region-write", {"iIiI", "i"}, true},
    {"device", "reset", {"", ""}, true},
    {"device", "timer", {"i", ""}, true},
    {"device", "save-state", {"", "i"}, true},
    {"device", "load-state", {"ii", "i"}, true},
    {"device", "stream-ready", {"", ""}, true},
    {"memory-areas", "areas", {"", "i"}, false},
};

// ---- imports (lowered) ----
enum ImportId : int {
  kIrqRaise,
  kIrqLower,
  kIrqIsMasked,
  kDmaRead,
  kDmaWrite,
  kLog,
  kNowNs,
  kSetTimer,
  kCancelTimer,
  kStreamWrite,
  kStreamRead,
  kRegionReadImport,
  kRegionWriteImport,
  kSharedRead,
  kSharedWrite,
  kDmaMapWindow,
  kDmaUnmapWindow,
  kImportCount,
};

/** kWindows: dma.map-window / unmap-window, defined for plugins at 0.1.2 or later only */
enum class Group : uint8_t { kAlways, kRegion, kSharedMemory, kWindows };

struct ImportSpec {
  const char* iface;
  const char* name;
  const char* what;  // for messages: "irq.raise"
  Signature sig;
  Group group;
};

inline constexpr ImportSpec kImports[kImportCount] = {
    {"irq", "raise", "irq.raise", {"ii", ""}, Group::kAlways},
    {"irq", "lower", "irq.lower", {"ii", ""}, Group::kAlways},
    {"irq", "is-masked", "irq.is-masked", {"i", "i"}, Group::kAlways},
    {"dma", "read", "dma.read", {"Iii", ""}, Group::kAlways},
    {"dma", "write", "dma.write", {"Iiii", ""}, Group::kAlways},
    {"log", "log", "log.log", {"iii", ""}, Group::kAlways},
    {"clock", "now-ns", "clock.now-ns", {"", "I"}, Group::kAlways},
    {"clock", "set-timer", "clock.set-timer", {"iI", ""}, Group::kAlways},
    {"clock", "cancel-timer", "clock.cancel-timer", {"i", ""}, Group::kAlways},
    {"byte-stream", "write", "byte-stream.write", {"ii", "i"}, Group::kAlways},
    {"byte-stream", "read", "byte-stream.read", {"ii", ""}, Group::kAlways},
    {"region", "read", "region.read", {"iIii", ""}, Group::kRegion},
    {"region", "write", "region.write", {"iIiIi", ""}, Group::kRegion},
    {"shared-memory", "read", "shared-memory.read", {"iIii", ""}, Group::kSharedMemory},
    {"shared-memory", "write", "shared-memory.write", {"iIiii", ""}, Group::kSharedMemory},
    // map-window(iova, len, at, writable, ret) / unmap-window(at, ret): result<_, window-error>
    {"dma", "map-window", "dma.map-window", {"Iiiii", ""}, Group::kWindows},
    {"dma", "unmap-window", "dma.unmap-window", {"ii", ""}, Group::kWindows},
};

// ---- enum case counts (types.wit) ----
inline constexpr uint8_t kAccessErrorCases = 5;
inline constexpr uint8_t kDmaErrorCases = 4;
inline constexpr uint8_t kIrqErrorCases = 2;
inline constexpr uint8_t kWindowErrorCases = 7;
inline constexpr uint8_t kLogLevelCases = 5;
inline constexpr uint8_t kBarKindCases = 3;
inline constexpr uint8_t kIntxPinCases = 4;

// ---- memory layouts (offsets inside the plugin's linear memory) ----
// The mirror structs below exist only for the static_asserts: they have the field order, sizes
// and natural alignment of the canonical ABI layout (on every target this code builds for,
// as for wasm32), so offsetof gives the canonical offsets.

/** result<_, E> with E an enum: discriminant u8, then the case u8 */
struct ResultUnitEnum {
  uint8_t is_err;
  uint8_t err;
};
static_assert(sizeof(ResultUnitEnum) == 2 && offsetof(ResultUnitEnum, err) == 1);
inline constexpr uint32_t kResultUnitEnumSize = 2, kResultUnitEnumAlign = 1;

/** result<u64, access-error>: discriminant u8, payload at 8 */
struct ResultU64 {
  uint8_t is_err;
  uint64_t payload;  // the value, or the error case in its low byte
};
static_assert(sizeof(ResultU64) == 16 && offsetof(ResultU64, payload) == 8);
inline constexpr uint32_t kResultU64Size = 16, kResultU64Align = 8;

/** list<u8> / string: (ptr, len) */
struct GuestList {
  uint32_t ptr;
  uint32_t len;
};
static_assert(sizeof(GuestList) == 8 && offsetof(GuestList, len) == 4);
inline constexpr uint32_t kListSize = 8, kListAlign = 4;

/** result<list<u8>, E> and result<_, string>: discriminant u8, payload at 4 */
struct ResultList {
  uint8_t is_err;
  GuestList list;  // ok: the list (or err: the string); for an enum error its case at offset 4
};
static_assert(sizeof(ResultList) == 12 && offsetof(ResultList, list) == 4);
inline constexpr uint32_t kResultListSize = 12, kResultListAlign = 4;

/** types.bar-description */
struct BarDescriptionLayout {
  uint8_t index;
  uint64_t size_bytes;
  uint8_t kind;
  uint8_t prefetchable;
};
static_assert(sizeof(BarDescriptionLayout) == 24 &&
              offsetof(BarDescriptionLayout, size_bytes) == 8);
static_assert(offsetof(BarDescriptionLayout, kind) == 16);
static_assert(offsetof(BarDescriptionLayout, prefetchable) == 17);
inline constexpr uint32_t kBarSize = 24, kBarAlign = 8;

/** types.claimed-range and types.memory-area */
struct RangeLayout {
  uint8_t bar;
  uint64_t offset;
  uint64_t length_bytes;
};
static_assert(sizeof(RangeLayout) == 24 && offsetof(RangeLayout, offset) == 8);
static_assert(offsetof(RangeLayout, length_bytes) == 16);
inline constexpr uint32_t kRangeSize = 24, kRangeAlign = 8;

/** types.msix-layout */
struct MsixLayoutLayout {
  uint16_t vectors;
  uint8_t table_bar;
  uint32_t table_offset;
  uint8_t pba_bar;
  uint32_t pba_offset;
};
static_assert(sizeof(MsixLayoutLayout) == 16 && offsetof(MsixLayoutLayout, table_bar) == 2);
static_assert(offsetof(MsixLayoutLayout, table_offset) == 4);
static_assert(offsetof(MsixLayoutLayout, pba_bar) == 8);
static_assert(offsetof(MsixLayoutLayout, pba_offset) == 12);

/** option<msix-layout>: discriminant u8, payload at 4 */
struct OptionMsix {
  uint8_t is_some;
  MsixLayoutLayout value;
};
static_assert(sizeof(OptionMsix) == 20 && offsetof(OptionMsix, value) == 4);

/** option<intx-pin>: discriminant u8, then the case u8 */
struct OptionPin {
  uint8_t is_some;
  uint8_t pin;
};
static_assert(sizeof(OptionPin) == 2 && offsetof(OptionPin, pin) == 1);

/** types.irq-description */
struct IrqDescriptionLayout {
  OptionPin intx;
  uint8_t msi_vectors;
  OptionMsix msix;
};
static_assert(sizeof(IrqDescriptionLayout) == 24);
static_assert(offsetof(IrqDescriptionLayout, msi_vectors) == 2);
static_assert(offsetof(IrqDescriptionLayout, msix) == 4);

/** types.device-description */
struct DeviceDescriptionLayout {
  uint16_t vendor_id;
  uint16_t device_id;
  uint16_t subsystem_vendor_id;
  uint16_t subsystem_id;
  uint32_t class_code;
  uint8_t revision;
  GuestList bars;
  IrqDescriptionLayout irqs;
  GuestList claimed_ranges;
};
static_assert(sizeof(DeviceDescriptionLayout) == 56);
static_assert(offsetof(DeviceDescriptionLayout, class_code) == 8);
static_assert(offsetof(DeviceDescriptionLayout, revision) == 12);
static_assert(offsetof(DeviceDescriptionLayout, bars) == 16);
static_assert(offsetof(DeviceDescriptionLayout, irqs) == 24);
static_assert(offsetof(DeviceDescriptionLayout, claimed_ranges) == 48);
inline constexpr uint32_t kDescriptionSize = 56, kDescriptionAlign = 4;

}  // namespace vfiobox::wasm::canon

#endif  // VFIOBOX_NATIVE_SRC_WASM_CANON_ABI_H_
