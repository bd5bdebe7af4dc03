// SPDX-License-Identifier: MIT
// iommufd backend: /dev/iommu with one IOAS allocated at construction; devices are opened
// through their cdev (/dev/vfio/devices/vfioN), bound with VFIO_DEVICE_BIND_IOMMUFD and
// attached with VFIO_DEVICE_ATTACH_IOMMUFD_PT (Documentation/userspace-api/iommufd.rst and
// vfio.rst "VFIO device cdev"). A cdev refuses every ioctl but BIND until bound (EINVAL).
#ifndef VFIOBOX_NATIVE_SRC_VFIO_IOMMUFD_H_
#define VFIOBOX_NATIVE_SRC_VFIO_IOMMUFD_H_

#include <vector>

#include "native/src/iommu_backend.h"

namespace vfiobox {

class IommufdBackend : public IommuBackend {
 public:
  IommufdBackend(UniqueFd iommufd, uint32_t ioas_id)
      : iommufd_(std::move(iommufd)), ioas_id_(ioas_id) {}
  ~IommufdBackend() override { Release(); }

  const char* Kind() const override { return "iommufd"; }
  const char* MapOp() const override { return "IOMMU_IOAS_MAP"; }
  const char* UnmapOp() const override { return "IOMMU_IOAS_UNMAP"; }
  bool SupportsDma() const override { return true; }
  Expected<UniqueFd> OpenDevice(const DeviceOpenSpec& spec) override;
  Status DmaMap(uint64_t iova, uint64_t size, const void* hva, uint32_t flags) override;
  Expected<uint64_t> DmaUnmap(uint64_t iova, uint64_t size) override;
  Expected<std::vector<IovaRange>> IovaRanges() override;
  Expected<uint64_t> PageSizes() override;
  void Release() override;

 private:
  Status Closed(const char* op) const;
  Status QueryRanges(std::vector<IovaRange>* ranges, uint64_t* alignment);

  UniqueFd iommufd_;
  uint32_t ioas_id_;
};

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_VFIO_IOMMUFD_H_
