// SPDX-License-Identifier: MIT
// The host side of a plugin's imports (wit/vfiobox-device/<ver>/*.wit), as the wasmtime engine
// (instance.h) calls them: already grant-checked, on the thread of the plugin call, with
// arguments lifted from the plugin's memory. One implementation calls into JS (js/wasmtime.cc);
// a native one can answer without JS. The engine knows nothing of grants or devices.
#ifndef VFIOBOX_NATIVE_SRC_WASM_HOST_H_
#define VFIOBOX_NATIVE_SRC_WASM_HOST_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace vfiobox::wasm {

/** Cases of the WIT error enums (types.wit), in declaration order = their canonical ABI value. */
enum class AccessError : uint8_t { kInvalidWidth, kOutOfRange, kNotGranted, kUnsupported, kDevice };
enum class DmaError : uint8_t { kNotMapped, kNotGranted, kAccessDenied, kTooLarge };
enum class IrqError : uint8_t { kInvalidVector, kNotGranted };
enum class WindowError : uint8_t {
  kNotMapped,
  kNotGranted,
  kAccessDenied,
  kInvalidRange,
  kBusy,
  kTooMany,
  kUnsupported,
};

/** What a DMA window maps (DmaPort::WindowSource): a range of a file that cannot shrink. */
struct WindowFile {
  int fd = -1;          // borrowed for the call: the instance maps it at once
  uint64_t offset = 0;  // of the window's first byte in the file, a multiple of 4096
};

/** How a host import ended. */
struct HostStatus {
  enum Kind : uint8_t {
    kOk,
    kErr,    // return err(err_case) to the plugin
    kFault,  // a host failure that is no WIT error: the call traps, the instance is poisoned
  };
  Kind kind = kOk;
  uint8_t err_case = 0;
  std::string fault;  // for kFault: what failed (empty on the success path: no allocation)

  static HostStatus Ok() { return {}; }
  static HostStatus Err(uint8_t c) { return {kErr, c, {}}; }
  static HostStatus Fault(std::string why) { return {kFault, 0, std::move(why)}; }
};

/**
 * Where a host import puts a list<u8> result: `len` bytes of the plugin's memory, allocated
 * through its cabi_realloc. The pointer is valid until the plugin runs again. nullptr: the
 * allocation failed (the plugin trapped or returned a bad pointer); return a fault then.
 */
class GuestBuffer {
 public:
  virtual uint8_t* Alloc(uint32_t len) = 0;

 protected:
  ~GuestBuffer() = default;
};

/**
 * A native answer to dma.read / dma.write, consulted before the Host's own (Instance::
 * set_dma_port): for a served device, the vfio-user server's table of mmapped client memory,
 * with the instance's DMA grant checked by the port (js/vfio_user_direct.cc). A port answers
 * only what it can answer completely, a copy between client memory and the plugin's; anything
 * else it declines (returns false) before it has allocated or copied anything, and the Host's
 * import decides: a refusal, an unmapped range, a range that goes by message. So refusals,
 * their counters and their errors have one implementation, the Host's.
 */
class DmaPort {
 public:
  /** true: answered (*status set; ok means out holds the bytes); false: declined, untouched */
  virtual bool Read(uint64_t iova, uint32_t len, GuestBuffer& out, HostStatus* status) = 0;
  virtual bool Write(uint64_t iova, const uint8_t* data, uint32_t len, HostStatus* status) = 0;
  /**
   * dma.map-window (WIT 0.1.2): the file behind [iova, iova + len) if the grant allows it (read
   * access, and write too when `writable`). Ok with *file set, or Err(a WindowError case).
   * Only a port can answer this (the Host has no guest memory to map): without one, or from
   * a port that has no mapping to offer, a window is unsupported.
   */
  virtual HostStatus WindowSource(uint64_t iova, uint32_t len, bool writable, WindowFile* file) {
    (void)iova, (void)len, (void)writable, (void)file;
    return HostStatus::Err(static_cast<uint8_t>(WindowError::kUnsupported));
  }

 protected:
  ~DmaPort() = default;
};

class Host {
 public:
  virtual ~Host() = default;
  virtual HostStatus IrqRaise(uint32_t vector) = 0;
  virtual HostStatus IrqLower(uint32_t vector) = 0;
  virtual HostStatus IrqIsMasked(uint32_t vector, bool* masked) = 0;
  /** reads len bytes at iova into out.Alloc(len); allocate only once the read can succeed */
  virtual HostStatus DmaRead(uint64_t iova, uint32_t len, GuestBuffer& out) = 0;
  virtual HostStatus DmaWrite(uint64_t iova, const uint8_t* data, uint32_t len) = 0;
  /** level: a log-level case (trace .. error); message: valid UTF-8 */
  virtual HostStatus Log(uint8_t level, std::string_view message) = 0;
  virtual HostStatus NowNs(uint64_t* ns) = 0;
  virtual HostStatus SetTimer(uint32_t id, uint64_t delay_ns) = 0;
  virtual HostStatus CancelTimer(uint32_t id) = 0;
  virtual HostStatus StreamWrite(const uint8_t* data, uint32_t len, uint32_t* accepted) = 0;
  virtual HostStatus StreamRead(uint32_t max_len, GuestBuffer& out) = 0;
  /** passthrough-variant only (has_region) */
  virtual HostStatus RegionRead(uint8_t bar, uint64_t offset, uint8_t width, uint64_t* value) = 0;
  virtual HostStatus RegionWrite(uint8_t bar, uint64_t offset, uint8_t width, uint64_t value) = 0;
  /** emulated-device-with-memory only (has_shared_memory) */
  virtual HostStatus SharedRead(uint8_t bar, uint64_t offset, uint32_t len, GuestBuffer& out) = 0;
  virtual HostStatus SharedWrite(uint8_t bar, uint64_t offset, const uint8_t* data,
                                 uint32_t len) = 0;
  /** which optional interfaces the instance may import (the linker defines only these) */
  virtual bool has_region() const = 0;
  virtual bool has_shared_memory() const = 0;
};

}  // namespace vfiobox::wasm

#endif  // VFIOBOX_NATIVE_SRC_WASM_HOST_H_
