// SPDX-License-Identifier: MIT
// IommuBackend: one IOMMU flavour behind one interface (QEMU's VFIOIOMMUClass, rust-vmm's
// VfioOps). Implementations: vfio_legacy.cc (type1v2 container + groups, and the no-IOMMU
// variant) and vfio_iommufd.cc (/dev/iommu + IOAS, devices through their cdev).
// Backends are thin: they issue the ioctls and report errors; the DMA table, range checks and
// close ordering live in IommuContext (iommu_context.h).
#ifndef VFIOBOX_NATIVE_SRC_IOMMU_BACKEND_H_
#define VFIOBOX_NATIVE_SRC_IOMMU_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "native/src/errors.h"
#include "native/src/fd.h"

namespace vfiobox {

struct IovaRange {
  uint64_t start = 0;
  uint64_t last = 0;  // inclusive
};

struct DeviceOpenSpec {
  std::string bdf;
  std::string group_path;  // legacy / noiommu
  std::string cdev_path;   // iommufd
};

class IommuBackend {
 public:
  virtual ~IommuBackend() = default;
  /** "legacy", "noiommu" or "iommufd" (IommuKind in types.ts). */
  virtual const char* Kind() const = 0;
  /** the kernel op names used in errors for map and unmap. */
  virtual const char* MapOp() const = 0;
  virtual const char* UnmapOp() const = 0;
  /** false for no-IOMMU: DmaMap always fails. */
  virtual bool SupportsDma() const = 0;
  /** attaches whatever the device needs (group + container, or bind + attach) and returns
   *  a device fd ready for VFIO_DEVICE_GET_INFO. */
  virtual Expected<UniqueFd> OpenDevice(const DeviceOpenSpec& spec) = 0;
  virtual Status DmaMap(uint64_t iova, uint64_t size, const void* hva, uint32_t flags) = 0;
  /** returns the bytes the kernel reports unmapped. */
  virtual Expected<uint64_t> DmaUnmap(uint64_t iova, uint64_t size) = 0;
  virtual Expected<std::vector<IovaRange>> IovaRanges() = 0;
  virtual Expected<uint64_t> PageSizes() = 0;
  /** closes every fd the backend owns; idempotent. Device fds must be closed first. */
  virtual void Release() = 0;
};

/** noiommu = VFIO_NOIOMMU_IOMMU with /dev/vfio/noiommu-N groups. */
Expected<std::unique_ptr<IommuBackend>> CreateLegacyBackend(bool noiommu);
Expected<std::unique_ptr<IommuBackend>> CreateIommufdBackend();

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_IOMMU_BACKEND_H_
