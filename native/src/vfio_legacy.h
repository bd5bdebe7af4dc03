// SPDX-License-Identifier: MIT
// Legacy VFIO backend: one /dev/vfio/vfio container, groups attached to it, and the type1v2
// IOMMU (or VFIO_NOIOMMU_IOMMU for /dev/vfio/noiommu-N groups). Call sequence as in
// Documentation/driver-api/vfio.rst and test/lab's vfio_edu_test.c open_legacy():
// GET_API_VERSION, CHECK_EXTENSION, open group, GROUP_GET_STATUS (viable?),
// GROUP_SET_CONTAINER, SET_IOMMU (first group only), GROUP_GET_DEVICE_FD.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_LEGACY_H_
#define VFIOBOX_NATIVE_SRC_VFIO_LEGACY_H_

#include <linux/vfio.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "native/src/iommu_backend.h"

namespace vfiobox {

class LegacyBackend : public IommuBackend {
 public:
  LegacyBackend(UniqueFd container, bool noiommu)
      : container_(std::move(container)), noiommu_(noiommu) {}
  ~LegacyBackend() override { Release(); }

  const char* Kind() const override { return noiommu_ ? "noiommu" : "legacy"; }
  const char* MapOp() const override { return "VFIO_IOMMU_MAP_DMA"; }
  const char* UnmapOp() const override { return "VFIO_IOMMU_UNMAP_DMA"; }
  bool SupportsDma() const override { return !noiommu_; }
  Expected<UniqueFd> OpenDevice(const DeviceOpenSpec& spec) override;
  Status DmaMap(uint64_t iova, uint64_t size, const void* hva, uint32_t flags) override;
  Expected<uint64_t> DmaUnmap(uint64_t iova, uint64_t size) override;
  Expected<std::vector<IovaRange>> IovaRanges() override;
  Expected<uint64_t> PageSizes() override;
  void Release() override;

 private:
  unsigned long IommuType() const { return noiommu_ ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU; }
  /** the group fd for `path`, opening and attaching it on first use. */
  Expected<int> AttachGroup(const std::string& path);
  Status NotAttached(const char* op) const;
  Status GetInfo(std::vector<IovaRange>* ranges, uint64_t* pgsizes);

  UniqueFd container_;
  bool noiommu_;
  bool iommu_set_ = false;
  std::map<std::string, UniqueFd> groups_;  // by path, attached to container_
};

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_VFIO_LEGACY_H_
