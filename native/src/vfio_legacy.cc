// SPDX-License-Identifier: MIT
#include "native/src/vfio_legacy.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "native/src/info_buffer.h"

namespace vfiobox {

namespace {
Detail PathDetail(const std::string& path) { return {{"path", DetailValue::Str(path)}}; }
}  // namespace

Expected<std::unique_ptr<IommuBackend>> CreateLegacyBackend(bool noiommu) {
  const char* path = "/dev/vfio/vfio";
  int fd = sys::Open(path, O_RDWR);
  if (fd < 0) return Status("open", -fd, PathDetail(path));
  UniqueFd container(fd);
  int api = sys::IoctlValue(fd, VFIO_GET_API_VERSION, 0);
  if (api < 0) return Status("VFIO_GET_API_VERSION", -api, PathDetail(path));
  if (api != VFIO_API_VERSION) {
    return Status::Custom("VFIO_GET_API_VERSION", EINVAL, "ERR_VFIO_API_VERSION",
                          "unexpected VFIO API version " + std::to_string(api) + " (want " +
                              std::to_string(VFIO_API_VERSION) + ")",
                          PathDetail(path));
  }
  unsigned long type = noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU;
  int ext = sys::IoctlValue(fd, VFIO_CHECK_EXTENSION, type);
  if (ext < 0) return Status("VFIO_CHECK_EXTENSION", -ext, PathDetail(path));
  if (ext == 0) {
    return Status::Custom("VFIO_CHECK_EXTENSION", ENODEV, "ERR_VFIO_EXTENSION",
                          std::string(noiommu ? "VFIO_NOIOMMU_IOMMU" : "VFIO_TYPE1v2_IOMMU") +
                              " is not supported by this kernel" +
                              (noiommu ? " (load vfio with enable_unsafe_noiommu_mode=1)" : ""),
                          PathDetail(path));
  }
  return std::unique_ptr<IommuBackend>(new LegacyBackend(std::move(container), noiommu));
}

Expected<int> LegacyBackend::AttachGroup(const std::string& path) {
  if (auto it = groups_.find(path); it != groups_.end()) return it->second.Get();
  int fd = sys::Open(path.c_str(), O_RDWR);
  if (fd < 0) return Status("open", -fd, PathDetail(path));
  UniqueFd group(fd);
  vfio_group_status status = {sizeof(status), 0};
  if (int r = sys::Ioctl(fd, VFIO_GROUP_GET_STATUS, &status); r < 0) {
    return Status("VFIO_GROUP_GET_STATUS", -r, PathDetail(path));
  }
  if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
    return Status::Custom("VFIO_GROUP_GET_STATUS", EINVAL, "ERR_VFIO_GROUP_NOT_VIABLE",
                          "group is not viable: every device in the IOMMU group must be bound "
                          "to vfio-pci (or to no driver)",
                          PathDetail(path));
  }
  int container_fd = container_.Get();
  if (int r = sys::Ioctl(fd, VFIO_GROUP_SET_CONTAINER, &container_fd); r < 0) {
    return Status("VFIO_GROUP_SET_CONTAINER", -r, PathDetail(path));
  }
  if (!iommu_set_) {
    // The IOMMU model is chosen once, after the first group joined the container.
    if (int r = sys::IoctlValue(container_.Get(), VFIO_SET_IOMMU, IommuType()); r < 0) {
      return Status("VFIO_SET_IOMMU", -r, PathDetail(path));  // group fd closes: detached
    }
    iommu_set_ = true;
  }
  return groups_.emplace(path, std::move(group)).first->second.Get();
}

Expected<UniqueFd> LegacyBackend::OpenDevice(const DeviceOpenSpec& spec) {
  if (!container_.Valid()) {
    return Status::Custom("VFIO_GROUP_GET_DEVICE_FD", EBADF, "ERR_VFIO_CLOSED",
                          "the Iommu is closed");
  }
  auto group = AttachGroup(spec.group_path);
  if (!group.ok()) return group.status();
  // SAFETY: VFIO_GROUP_GET_DEVICE_FD takes a NUL-terminated device name; the kernel only
  // reads it, so casting away const is sound.
  int fd = sys::Ioctl(*group, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(spec.bdf.c_str()));
  if (fd < 0) {
    return Status(
        "VFIO_GROUP_GET_DEVICE_FD", -fd,
        {{"path", DetailValue::Str(spec.group_path)}, {"bdf", DetailValue::Str(spec.bdf)}});
  }
  return UniqueFd(fd);
}

Status LegacyBackend::NotAttached(const char* op) const {
  if (!container_.Valid())
    return Status::Custom(op, EBADF, "ERR_VFIO_CLOSED", "the Iommu is closed");
  return Status::Custom(op, EINVAL, "ERR_VFIO_NOT_ATTACHED",
                        "the container has no IOMMU until the first device is opened");
}

Status LegacyBackend::DmaMap(uint64_t iova, uint64_t size, const void* hva, uint32_t flags) {
  if (!iommu_set_ || !container_.Valid()) return NotAttached("VFIO_IOMMU_MAP_DMA");
  vfio_iommu_type1_dma_map map = {};
  map.argsz = sizeof(map);
  map.flags = flags;
  // SAFETY: the kernel pins the pages behind hva; the caller keeps them mapped until unmap.
  map.vaddr = reinterpret_cast<uintptr_t>(hva);
  map.iova = iova;
  map.size = size;
  int r = sys::Ioctl(container_.Get(), VFIO_IOMMU_MAP_DMA, &map);
  if (r < 0) {  // the detail is built on failure only: no allocation on the success path
    return Status("VFIO_IOMMU_MAP_DMA", -r,
                  {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(size)}});
  }
  return Status();
}

Expected<uint64_t> LegacyBackend::DmaUnmap(uint64_t iova, uint64_t size) {
  if (!iommu_set_ || !container_.Valid()) return NotAttached("VFIO_IOMMU_UNMAP_DMA");
  vfio_iommu_type1_dma_unmap unmap = {};
  unmap.argsz = sizeof(unmap);
  unmap.iova = iova;
  unmap.size = size;
  int r = sys::Ioctl(container_.Get(), VFIO_IOMMU_UNMAP_DMA, &unmap);
  if (r < 0) {
    return Status("VFIO_IOMMU_UNMAP_DMA", -r,
                  {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(size)}});
  }
  return static_cast<uint64_t>(unmap.size);  // the kernel writes back the unmapped bytes
}

Status LegacyBackend::GetInfo(std::vector<IovaRange>* ranges, uint64_t* pgsizes) {
  if (!iommu_set_ || !container_.Valid()) return NotAttached("VFIO_IOMMU_GET_INFO");
  InfoBuffer buf(sizeof(vfio_iommu_type1_info) + 256);
  int r = buf.IoctlWithRetry(container_.Get(), VFIO_IOMMU_GET_INFO, [] {});
  if (r < 0) return Status("VFIO_IOMMU_GET_INFO", -r);
  auto* info = buf.As<vfio_iommu_type1_info>();
  *pgsizes = (info->flags & VFIO_IOMMU_INFO_PGSIZES) ? info->iova_pgsizes : 0;
  bool found = false;
  if (info->flags & VFIO_IOMMU_INFO_CAPS) {
    buf.ForEachCap(info->cap_offset,
                   [&](const vfio_info_cap_header& hdr, const uint8_t* p, size_t avail) {
                     if (hdr.id != VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE || found) return;
                     vfio_iommu_type1_info_cap_iova_range cap;
                     if (avail < sizeof(cap)) return;
                     std::memcpy(&cap, p, sizeof(cap));
                     // SAFETY: FAM size calculation: nr_iovas entries of 16 bytes after the fixed
                     // part, all within `avail`; compared in 64-bit so it cannot overflow.
                     if (sizeof(cap) + uint64_t{cap.nr_iovas} * sizeof(vfio_iova_range) > avail)
                       return;
                     for (uint32_t i = 0; i < cap.nr_iovas; ++i) {
                       vfio_iova_range range;
                       std::memcpy(&range, p + sizeof(cap) + i * sizeof(range), sizeof(range));
                       ranges->push_back({range.start, range.end});
                     }
                     found = true;
                   });
  }
  if (!found) ranges->push_back({0, UINT64_MAX});  // pre-5.4 kernels report no ranges
  return Status();
}

Expected<std::vector<IovaRange>> LegacyBackend::IovaRanges() {
  if (noiommu_) return std::vector<IovaRange>{};  // no translation: no IOVA space at all
  std::vector<IovaRange> ranges;
  uint64_t pgsizes = 0;
  if (Status s = GetInfo(&ranges, &pgsizes); !s.ok()) return s;
  return ranges;
}

Expected<uint64_t> LegacyBackend::PageSizes() {
  if (noiommu_) return static_cast<uint64_t>(sys::PageSize());
  std::vector<IovaRange> ranges;
  uint64_t pgsizes = 0;
  if (Status s = GetInfo(&ranges, &pgsizes); !s.ok()) return s;
  return pgsizes;
}

void LegacyBackend::Release() {
  groups_.clear();  // closing a group fd detaches it from the container
  container_.Reset();
  iommu_set_ = false;
}

}  // namespace vfiobox
