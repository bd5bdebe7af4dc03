// SPDX-License-Identifier: MIT
// VfioDevice: one open VFIO device fd (from a group or a bound cdev) and the BAR mappings made
// from it. The device owns its mappings: Close() munmaps every one and marks it dead, so a
// RegionMapping held elsewhere (a JS Mapping) can only ever see "closed", never freed memory.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_DEVICE_H_
#define VFIOBOX_NATIVE_SRC_VFIO_DEVICE_H_

#include <linux/vfio.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "native/src/errors.h"
#include "native/src/fd.h"

namespace vfiobox {

struct RegionCap {
  enum class Kind { kSparseMmap, kType, kMsixMappable, kUnknown };
  Kind kind = Kind::kUnknown;
  uint16_t id = 0;
  uint16_t version = 0;
  std::vector<std::pair<uint64_t, uint64_t>> areas;  // sparse mmap: (offset, size)
  uint32_t type = 0;
  uint32_t subtype = 0;
};

struct RegionInfo {
  uint32_t index = 0;
  uint32_t flags = 0;
  uint64_t size = 0;
  uint64_t fd_offset = 0;
  std::vector<RegionCap> caps;
};

/** VFIO_DEVICE_SET_IRQS payload: VFIO_IRQ_SET_DATA_{NONE,BOOL,EVENTFD}. */
struct IrqPayload {
  uint32_t data_type = VFIO_IRQ_SET_DATA_NONE;
  uint32_t count = 0;
  std::vector<uint8_t> bools;  // DATA_BOOL: count entries
  std::vector<int32_t> fds;    // DATA_EVENTFD: count entries, -1 = de-assign
};

class RegionMapping {
 public:
  RegionMapping(Mapping map, uint32_t region, uint64_t region_offset, int prot)
      : map_(std::move(map)), region_(region), region_offset_(region_offset), prot_(prot) {}
  /** PROT_READ / PROT_WRITE as mapped: an access the mapping lacks would fault (SIGSEGV). */
  bool Allows(int prot) const { return (prot_ & prot) == prot; }
  bool Alive() const { return map_.Valid(); }
  uint8_t* Data() const { return map_.Data(); }
  size_t Size() const { return size_; }
  uint32_t region() const { return region_; }
  uint64_t region_offset() const { return region_offset_; }
  /** munmap now; afterwards Alive() is false. Idempotent. */
  void Kill() { map_.Reset(); }

 private:
  Mapping map_;
  size_t size_ = map_.Length();  // kept after Kill() for reporting
  uint32_t region_;
  uint64_t region_offset_;
  int prot_;
};

/** one volatile access of exactly `width` (1/2/4/8) bytes at p, which must be aligned. */
uint64_t MmioLoad(const uint8_t* p, unsigned width);
void MmioStore(uint8_t* p, unsigned width, uint64_t value);

class VfioDevice {
 public:
  VfioDevice(UniqueFd fd, std::string bdf) : fd_(std::move(fd)), bdf_(std::move(bdf)) {}
  ~VfioDevice() { Close(); }
  VfioDevice(const VfioDevice&) = delete;
  VfioDevice& operator=(const VfioDevice&) = delete;

  const std::string& bdf() const { return bdf_; }
  bool Closed() const { return !fd_.Valid(); }

  Expected<vfio_device_info> Info();
  /** VFIO_DEVICE_GET_REGION_INFO with the argsz retry and the capability chain parsed. */
  Expected<RegionInfo> GetRegionInfo(uint32_t index);
  /** the region info, fetched once and cached (read/write/mmap use fd_offset and size). */
  Expected<const RegionInfo*> Region(uint32_t index);
  Expected<vfio_irq_info> IrqInfo(uint32_t index);
  Status SetIrqs(uint32_t index, uint32_t action, uint32_t start, const IrqPayload& payload);
  Status Reset();
  /** width 1/2/4/8 at `offset` inside region `index` (bounds checked by the caller). */
  Status Read(uint32_t index, uint64_t offset, unsigned width, uint64_t* value);
  Status Write(uint32_t index, uint64_t offset, unsigned width, uint64_t value);
  Status ReadBlock(uint32_t index, uint64_t offset, uint8_t* out, size_t length);
  Status WriteBlock(uint32_t index, uint64_t offset, const uint8_t* data, size_t length);
  /** mmap [offset, offset+size) of a region with VFIO_REGION_INFO_FLAG_MMAP. */
  Expected<std::shared_ptr<RegionMapping>> Map(uint32_t index, uint64_t offset, uint64_t size);
  /** munmaps every mapping (they turn dead) and closes the fd. Idempotent. */
  void Close();

 private:
  Status ClosedStatus(const char* op) const;
  Detail RegionDetail(uint32_t index, uint64_t offset) const;

  UniqueFd fd_;
  std::string bdf_;
  std::vector<std::optional<RegionInfo>> regions_;
  std::vector<std::weak_ptr<RegionMapping>> mappings_;
};

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_VFIO_DEVICE_H_
