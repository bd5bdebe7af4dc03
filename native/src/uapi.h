// SPDX-License-Identifier: MIT
// Kernel uAPI used by the native core. Legacy VFIO structs come from <linux/vfio.h>
// (bookworm ships the 6.1 header, which has them all). The cdev ioctls and the whole of
// iommufd are missing from 6.1, so they are declared here from Linux 6.12
// include/uapi/linux/vfio.h and include/uapi/linux/iommufd.h, in our namespace and without
// macros so that a newer system header can never clash. Every layout is pinned below with
// static_asserts on size and offsets (native/test/uapi_layout_test.cc repeats them at runtime).
#ifndef VFIOBOX_NATIVE_SRC_UAPI_H_
#define VFIOBOX_NATIVE_SRC_UAPI_H_

#include <linux/ioctl.h>
#include <linux/types.h>
#include <linux/vfio.h>

#include <cstddef>
#include <cstdint>

namespace vfiobox::uapi {

// ---- vfio cdev (6.12 include/uapi/linux/vfio.h, "VFIO_DEVICE_BIND_IOMMUFD" and next) ----
struct vfio_device_bind_iommufd {
  __u32 argsz;
  __u32 flags;
  __s32 iommufd;
  __u32 out_devid;
};
struct vfio_device_attach_iommufd_pt {
  __u32 argsz;
  __u32 flags;
  __u32 pt_id;
};
struct vfio_device_detach_iommufd_pt {
  __u32 argsz;
  __u32 flags;
};
constexpr unsigned long kVfioDeviceBindIommufd = _IO(VFIO_TYPE, VFIO_BASE + 18);
constexpr unsigned long kVfioDeviceAttachIommufdPt = _IO(VFIO_TYPE, VFIO_BASE + 19);
constexpr unsigned long kVfioDeviceDetachIommufdPt = _IO(VFIO_TYPE, VFIO_BASE + 20);

// ---- iommufd (6.12 include/uapi/linux/iommufd.h) ----
constexpr unsigned kIommufdType = ';';
struct iommu_destroy {
  __u32 size;
  __u32 id;
};
struct iommu_ioas_alloc {
  __u32 size;
  __u32 flags;
  __u32 out_ioas_id;
};
struct iommu_iova_range {
  __aligned_u64 start;
  __aligned_u64 last;  // inclusive
};
struct iommu_ioas_iova_ranges {
  __u32 size;
  __u32 ioas_id;
  __u32 num_iovas;
  __u32 reserved;
  __aligned_u64 allowed_iovas;  // user pointer to iommu_iova_range[num_iovas]
  __aligned_u64 out_iova_alignment;
};
constexpr __u32 kIommuIoasMapFixedIova = 1u << 0;
constexpr __u32 kIommuIoasMapWriteable = 1u << 1;
constexpr __u32 kIommuIoasMapReadable = 1u << 2;
struct iommu_ioas_map {
  __u32 size;
  __u32 flags;
  __u32 ioas_id;
  __u32 reserved;
  __aligned_u64 user_va;
  __aligned_u64 length;
  __aligned_u64 iova;
};
struct iommu_ioas_unmap {
  __u32 size;
  __u32 ioas_id;
  __aligned_u64 iova;
  __aligned_u64 length;
};
constexpr unsigned long kIommuDestroy = _IO(kIommufdType, 0x80);
constexpr unsigned long kIommuIoasAlloc = _IO(kIommufdType, 0x81);
constexpr unsigned long kIommuIoasIovaRanges = _IO(kIommufdType, 0x84);
constexpr unsigned long kIommuIoasMap = _IO(kIommufdType, 0x85);
constexpr unsigned long kIommuIoasUnmap = _IO(kIommufdType, 0x86);

// vfio-pci places region N at fd offset N << 40 (VFIO_PCI_OFFSET_SHIFT in
// drivers/vfio/pci/vfio_pci_core.c). Only the fake uses this; real code takes
// vfio_region_info.offset from the kernel.
constexpr unsigned kVfioPciOffsetShift = 40;

// ---- layout pins (sizes and offsets as in the 6.12 headers) ----
#define VFIOBOX_PIN(type, field, off) \
  static_assert(offsetof(type, field) == (off), #type "." #field " offset")
static_assert(kVfioDeviceBindIommufd == 0x3b76 && kVfioDeviceAttachIommufdPt == 0x3b77 &&
              kVfioDeviceDetachIommufdPt == 0x3b78);
static_assert(kIommuDestroy == 0x3b80 && kIommuIoasAlloc == 0x3b81 &&
              kIommuIoasIovaRanges == 0x3b84 && kIommuIoasMap == 0x3b85 &&
              kIommuIoasUnmap == 0x3b86);
static_assert(sizeof(vfio_device_bind_iommufd) == 16);
VFIOBOX_PIN(vfio_device_bind_iommufd, iommufd, 8);
VFIOBOX_PIN(vfio_device_bind_iommufd, out_devid, 12);
static_assert(sizeof(vfio_device_attach_iommufd_pt) == 12);
VFIOBOX_PIN(vfio_device_attach_iommufd_pt, pt_id, 8);
static_assert(sizeof(vfio_device_detach_iommufd_pt) == 8);
static_assert(sizeof(iommu_destroy) == 8);
static_assert(sizeof(iommu_ioas_alloc) == 12);
VFIOBOX_PIN(iommu_ioas_alloc, out_ioas_id, 8);
static_assert(sizeof(iommu_iova_range) == 16);
static_assert(sizeof(iommu_ioas_iova_ranges) == 32);
VFIOBOX_PIN(iommu_ioas_iova_ranges, num_iovas, 8);
VFIOBOX_PIN(iommu_ioas_iova_ranges, allowed_iovas, 16);
VFIOBOX_PIN(iommu_ioas_iova_ranges, out_iova_alignment, 24);
static_assert(sizeof(iommu_ioas_map) == 40);
VFIOBOX_PIN(iommu_ioas_map, user_va, 16);
VFIOBOX_PIN(iommu_ioas_map, length, 24);
VFIOBOX_PIN(iommu_ioas_map, iova, 32);
static_assert(sizeof(iommu_ioas_unmap) == 24);
VFIOBOX_PIN(iommu_ioas_unmap, iova, 8);
VFIOBOX_PIN(iommu_ioas_unmap, length, 16);
// Legacy structs from <linux/vfio.h>: pinned so that a header change cannot go unnoticed.
static_assert(sizeof(vfio_info_cap_header) == 8);
VFIOBOX_PIN(vfio_info_cap_header, next, 4);
static_assert(sizeof(vfio_group_status) == 8);
static_assert(sizeof(vfio_device_info) == 20);
VFIOBOX_PIN(vfio_device_info, num_regions, 8);
VFIOBOX_PIN(vfio_device_info, num_irqs, 12);
VFIOBOX_PIN(vfio_device_info, cap_offset, 16);
static_assert(sizeof(vfio_region_info) == 32);
VFIOBOX_PIN(vfio_region_info, index, 8);
VFIOBOX_PIN(vfio_region_info, cap_offset, 12);
VFIOBOX_PIN(vfio_region_info, size, 16);
VFIOBOX_PIN(vfio_region_info, offset, 24);
static_assert(sizeof(vfio_region_sparse_mmap_area) == 16);
static_assert(sizeof(vfio_region_info_cap_sparse_mmap) == 16);
VFIOBOX_PIN(vfio_region_info_cap_sparse_mmap, nr_areas, 8);
VFIOBOX_PIN(vfio_region_info_cap_sparse_mmap, areas, 16);
static_assert(sizeof(vfio_region_info_cap_type) == 16);
VFIOBOX_PIN(vfio_region_info_cap_type, type, 8);
VFIOBOX_PIN(vfio_region_info_cap_type, subtype, 12);
static_assert(sizeof(vfio_irq_info) == 16);
VFIOBOX_PIN(vfio_irq_info, count, 12);
static_assert(sizeof(vfio_irq_set) == 20);
VFIOBOX_PIN(vfio_irq_set, count, 16);
VFIOBOX_PIN(vfio_irq_set, data, 20);
static_assert(sizeof(vfio_iommu_type1_info) == 24);
VFIOBOX_PIN(vfio_iommu_type1_info, iova_pgsizes, 8);
VFIOBOX_PIN(vfio_iommu_type1_info, cap_offset, 16);
static_assert(sizeof(vfio_iova_range) == 16);
static_assert(sizeof(vfio_iommu_type1_info_cap_iova_range) == 16);
VFIOBOX_PIN(vfio_iommu_type1_info_cap_iova_range, nr_iovas, 8);
VFIOBOX_PIN(vfio_iommu_type1_info_cap_iova_range, iova_ranges, 16);
static_assert(sizeof(vfio_iommu_type1_dma_map) == 32);
VFIOBOX_PIN(vfio_iommu_type1_dma_map, vaddr, 8);
VFIOBOX_PIN(vfio_iommu_type1_dma_map, iova, 16);
VFIOBOX_PIN(vfio_iommu_type1_dma_map, size, 24);
static_assert(sizeof(vfio_iommu_type1_dma_unmap) == 24);
VFIOBOX_PIN(vfio_iommu_type1_dma_unmap, iova, 8);
VFIOBOX_PIN(vfio_iommu_type1_dma_unmap, size, 16);
static_assert(VFIO_GET_API_VERSION == 0x3b64 && VFIO_CHECK_EXTENSION == 0x3b65 &&
              VFIO_SET_IOMMU == 0x3b66 && VFIO_GROUP_GET_STATUS == 0x3b67 &&
              VFIO_GROUP_SET_CONTAINER == 0x3b68 && VFIO_GROUP_GET_DEVICE_FD == 0x3b6a &&
              VFIO_DEVICE_GET_INFO == 0x3b6b && VFIO_DEVICE_GET_REGION_INFO == 0x3b6c &&
              VFIO_DEVICE_GET_IRQ_INFO == 0x3b6d && VFIO_DEVICE_SET_IRQS == 0x3b6e &&
              VFIO_DEVICE_RESET == 0x3b6f && VFIO_IOMMU_GET_INFO == 0x3b70 &&
              VFIO_IOMMU_MAP_DMA == 0x3b71 && VFIO_IOMMU_UNMAP_DMA == 0x3b72);
static_assert(VFIO_TYPE1v2_IOMMU == 3 && VFIO_NOIOMMU_IOMMU == 8);
#undef VFIOBOX_PIN

}  // namespace vfiobox::uapi

#endif  // VFIOBOX_NATIVE_SRC_UAPI_H_
