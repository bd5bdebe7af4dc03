// SPDX-License-Identifier: MIT
// Instance: the device exports, called and their results lifted out of the plugin's memory
// (canonical ABI, canon_abi.h). A malformed result traps; nothing the plugin wrote is trusted
// before the bounds-checked Reader has looked at it.
#include <string>
#include <vector>

#include "native/src/wasm/canon_abi.h"
#include "native/src/wasm/instance.h"
#include "native/src/wasm/internal.h"

namespace vfiobox::wasm {

namespace internal {

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

}  // namespace internal

using internal::Reader;
using internal::ValidUtf8;

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

}  // namespace vfiobox::wasm
