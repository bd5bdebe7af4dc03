// SPDX-License-Identifier: MIT
// IommuContext: what a JS Iommu is. One backend, the DMA table that mirrors the kernel's
// mappings, and weak references to the devices opened through it.
//  - dmaMap checks, in order: no-IOMMU refusal, the table's alignment/wrap/overlap rules
//    (dma_table.h), the backend's valid IOVA ranges; only then the kernel, then the table.
//  - dmaUnmap asks the table first (a split is refused with EINVAL, an empty range is 0 bytes
//    without a syscall), then the kernel, then removes the entries.
//  - Close order matters on a real kernel: devices first (munmap BARs, close device fds), then
//    DMA unmaps, then the backend (IOMMU_DESTROY is EBUSY while a device is still attached),
//    and only then the table drops its references to DMA buffer memory.
// Lifetime: devices hold a shared_ptr to the context; the context holds weak_ptrs to devices.
#ifndef VFIOBOX_NATIVE_SRC_IOMMU_CONTEXT_H_
#define VFIOBOX_NATIVE_SRC_IOMMU_CONTEXT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "native/src/dma_table.h"
#include "native/src/iommu_backend.h"
#include "native/src/vfio_device.h"

namespace vfiobox {

class IommuContext {
 public:
  /** kind: "legacy", "noiommu" or "iommufd". */
  static Expected<std::shared_ptr<IommuContext>> Create(const std::string& kind);
  IommuContext(std::unique_ptr<IommuBackend> backend, std::string kind);
  ~IommuContext() { Close(); }

  const std::string& kind() const { return kind_; }
  bool Closed() const { return backend_ == nullptr; }

  Expected<std::shared_ptr<VfioDevice>> OpenDevice(const DeviceOpenSpec& spec);
  /** valid IOVA ranges, cached until the next OpenDevice (attaching can shrink them). */
  Expected<std::vector<IovaRange>> IovaRanges();
  Expected<uint64_t> PageSizes();
  Status DmaMap(std::shared_ptr<void> owner, uint8_t* hva, uint64_t buffer_offset, uint64_t iova,
                uint64_t size, uint32_t flags);
  Expected<uint64_t> DmaUnmap(uint64_t iova, uint64_t size);
  std::vector<DmaEntry> DmaList() const { return table_.List(); }
  /**
   * Benchmarks only (benchDmaLoop in host/native/types.ts): n x (map, unmap) of one range, all
   * in C++. through_table = false: the backend's DmaMap/DmaUnmap (the ioctls, as
   * bench/c/vfio_bench.c issues them) without the table; true: this context's DmaMap/DmaUnmap
   * (table, range checks, owner). Refused like DmaMap when the range is not mappable, so the
   * table and the kernel never disagree. Stops at the first error.
   */
  Status DmaMapUnmapLoop(const std::shared_ptr<void>& owner, uint8_t* hva, uint64_t buffer_offset,
                         uint64_t iova, uint64_t size, uint32_t flags, uint64_t n,
                         bool through_table);
  const DmaTable& table() const { return table_; }
  /** idempotent; see the close order above. */
  void Close();

 private:
  Status ClosedStatus(const char* op) const;
  /** fills ranges_ from the backend unless cached. */
  Status LoadRanges();
  Status CheckIovaRanges(uint64_t iova, uint64_t size);

  std::unique_ptr<IommuBackend> backend_;
  std::string kind_;
  DmaTable table_;
  std::vector<std::weak_ptr<VfioDevice>> devices_;
  std::optional<std::vector<IovaRange>> ranges_;
};

/** "[0x0-0xfedfffff,0xfef00000-0xffffffffffffffff]" */
std::string FormatRanges(const std::vector<IovaRange>& ranges);

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_IOMMU_CONTEXT_H_
