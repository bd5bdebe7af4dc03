// SPDX-License-Identifier: MIT
// uAPI layouts at runtime (uapi.h pins them at compile time too) and the capability-chain
// walker's bounds handling.
#include <cstddef>
#include <cstring>

#include "native/src/info_buffer.h"
#include "native/src/uapi.h"
#include "native/test/check.h"

namespace vfiobox {
namespace {

void TestSizesAndOffsets() {
  using namespace uapi;  // NOLINT
  CHECK_EQ(sizeof(vfio_device_bind_iommufd), 16u);
  CHECK_EQ(offsetof(vfio_device_bind_iommufd, out_devid), 12u);
  CHECK_EQ(sizeof(vfio_device_attach_iommufd_pt), 12u);
  CHECK_EQ(sizeof(iommu_ioas_alloc), 12u);
  CHECK_EQ(sizeof(iommu_ioas_iova_ranges), 32u);
  CHECK_EQ(offsetof(iommu_ioas_iova_ranges, allowed_iovas), 16u);
  CHECK_EQ(sizeof(iommu_ioas_map), 40u);
  CHECK_EQ(offsetof(iommu_ioas_map, iova), 32u);
  CHECK_EQ(sizeof(iommu_ioas_unmap), 24u);
  CHECK_EQ(sizeof(iommu_destroy), 8u);
  CHECK_EQ(kVfioDeviceBindIommufd, 0x3b76ul);
  CHECK_EQ(kVfioDeviceAttachIommufdPt, 0x3b77ul);
  CHECK_EQ(kVfioDeviceDetachIommufdPt, 0x3b78ul);
  CHECK_EQ(kIommuDestroy, 0x3b80ul);
  CHECK_EQ(kIommuIoasAlloc, 0x3b81ul);
  CHECK_EQ(kIommuIoasIovaRanges, 0x3b84ul);
  CHECK_EQ(kIommuIoasMap, 0x3b85ul);
  CHECK_EQ(kIommuIoasUnmap, 0x3b86ul);
  CHECK_EQ(sizeof(vfio_region_info), 32u);
  CHECK_EQ(offsetof(vfio_region_info, offset), 24u);
  CHECK_EQ(sizeof(vfio_irq_set), 20u);
  CHECK_EQ(offsetof(vfio_irq_set, data), 20u);
  CHECK_EQ(sizeof(vfio_iommu_type1_info), 24u);
  CHECK_EQ(sizeof(vfio_iommu_type1_dma_map), 32u);
  CHECK_EQ(sizeof(vfio_iommu_type1_dma_unmap), 24u);
  CHECK_EQ(sizeof(vfio_region_info_cap_sparse_mmap), 16u);
  CHECK_EQ(sizeof(vfio_iommu_type1_info_cap_iova_range), 16u);
}

void PutCap(InfoBuffer& buf, uint32_t off, uint16_t id, uint32_t next) {
  vfio_info_cap_header h = {id, 1, next};
  std::memcpy(buf.Bytes() + off, &h, sizeof(h));
}

void TestCapWalk() {
  InfoBuffer buf(128);
  PutCap(buf, 32, 1, 48);
  PutCap(buf, 48, 2, 0);
  int seen = 0;
  buf.ForEachCap(32, [&](const vfio_info_cap_header& h, const uint8_t*, size_t avail) {
    ++seen;
    CHECK(h.id == (seen == 1 ? 1 : 2));
    CHECK_EQ(avail, seen == 1 ? 96u : 80u);
  });
  CHECK_EQ(seen, 2);
  PutCap(buf, 48, 2, 32);  // a loop back to the first cap stops the walk
  seen = 0;
  buf.ForEachCap(32, [&](const vfio_info_cap_header&, const uint8_t*, size_t) { ++seen; });
  CHECK_EQ(seen, 2);
  PutCap(buf, 48, 2, 124);  // next header would run past the end: not visited
  seen = 0;
  buf.ForEachCap(32, [&](const vfio_info_cap_header&, const uint8_t*, size_t) { ++seen; });
  CHECK_EQ(seen, 2);
  seen = 0;
  buf.ForEachCap(4096, [&](const vfio_info_cap_header&, const uint8_t*, size_t) { ++seen; });
  CHECK_EQ(seen, 0);
  uint32_t argsz = 0;
  std::memcpy(&argsz, buf.Bytes(), 4);
  CHECK_EQ(argsz, 128u);  // argsz is preset to the buffer size
}

}  // namespace
}  // namespace vfiobox

int main() {
  vfiobox::TestSizesAndOffsets();
  vfiobox::TestCapWalk();
  return vfiobox::test::Finish("uapi_layout");
}
