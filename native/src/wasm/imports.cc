// SPDX-License-Identifier: MIT
// Instance: the host imports. One trampoline for all of them; each lowers the plugin's
// arguments, checks its return area before the host runs (a bad pointer never costs a side
// effect), calls the Host (host.h; its implementations check the grants) and stores the result.
#include <string>

#include "native/src/wasm/canon_abi.h"
#include "native/src/wasm/host.h"
#include "native/src/wasm/instance.h"
#include "native/src/wasm/internal.h"

namespace vfiobox::wasm {

using internal::ValidUtf8;

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

}  // namespace

namespace internal {

wasm_trap_t* Trampoline(void* env, wasmtime_caller_t* caller, wasmtime_val_raw_t* a,
                        size_t /*nargs*/) {
  const int id = static_cast<int>(reinterpret_cast<intptr_t>(env));
  auto* inst = static_cast<Instance*>(wasmtime_context_get_data(wasmtime_caller_context(caller)));
  return Import(id, inst, a);
}

}  // namespace internal

}  // namespace vfiobox::wasm
