// SPDX-License-Identifier: MIT
#include "native/src/vfio_iommufd.h"

#include <fcntl.h>

#include <cerrno>

#include "native/src/uapi.h"

namespace vfiobox {

namespace {
Detail PathDetail(const std::string& path) { return {{"path", DetailValue::Str(path)}}; }
Detail RangeDetail(uint64_t iova, uint64_t size) {
  return {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(size)}};
}
}  // namespace

Expected<std::unique_ptr<IommuBackend>> CreateIommufdBackend() {
  const char* path = "/dev/iommu";
  int fd = sys::Open(path, O_RDWR);
  if (fd < 0) return Status("open", -fd, PathDetail(path));
  UniqueFd iommufd(fd);
  uapi::iommu_ioas_alloc alloc = {};
  alloc.size = sizeof(alloc);
  if (int r = sys::Ioctl(fd, uapi::kIommuIoasAlloc, &alloc); r < 0) {
    return Status("IOMMU_IOAS_ALLOC", -r, PathDetail(path));
  }
  return std::unique_ptr<IommuBackend>(new IommufdBackend(std::move(iommufd), alloc.out_ioas_id));
}

Status IommufdBackend::Closed(const char* op) const {
  return Status::Custom(op, EBADF, "ERR_VFIO_CLOSED", "the Iommu is closed");
}

Expected<UniqueFd> IommufdBackend::OpenDevice(const DeviceOpenSpec& spec) {
  if (!iommufd_.Valid()) return Closed("VFIO_DEVICE_BIND_IOMMUFD");
  Detail detail = {{"path", DetailValue::Str(spec.cdev_path)}, {"bdf", DetailValue::Str(spec.bdf)}};
  int fd = sys::Open(spec.cdev_path.c_str(), O_RDWR);
  if (fd < 0) return Status("open", -fd, detail);
  UniqueFd device(fd);
  uapi::vfio_device_bind_iommufd bind = {};
  bind.argsz = sizeof(bind);
  bind.iommufd = iommufd_.Get();
  if (int r = sys::Ioctl(fd, uapi::kVfioDeviceBindIommufd, &bind); r < 0) {
    return Status("VFIO_DEVICE_BIND_IOMMUFD", -r, detail);
  }
  uapi::vfio_device_attach_iommufd_pt attach = {};
  attach.argsz = sizeof(attach);
  attach.pt_id = ioas_id_;
  if (int r = sys::Ioctl(fd, uapi::kVfioDeviceAttachIommufdPt, &attach); r < 0) {
    detail.emplace_back("ioasId", DetailValue::Num(ioas_id_));
    return Status("VFIO_DEVICE_ATTACH_IOMMUFD_PT", -r, detail);  // closing the fd unbinds
  }
  return device;
}

Status IommufdBackend::DmaMap(uint64_t iova, uint64_t size, const void* hva, uint32_t flags) {
  if (!iommufd_.Valid()) return Closed("IOMMU_IOAS_MAP");
  uapi::iommu_ioas_map map = {};
  map.size = sizeof(map);
  map.flags = uapi::kIommuIoasMapFixedIova;
  if (flags & VFIO_DMA_MAP_FLAG_READ) map.flags |= uapi::kIommuIoasMapReadable;
  if (flags & VFIO_DMA_MAP_FLAG_WRITE) map.flags |= uapi::kIommuIoasMapWriteable;
  map.ioas_id = ioas_id_;
  // SAFETY: the kernel pins the pages behind hva; the caller keeps them mapped until unmap.
  map.user_va = reinterpret_cast<uintptr_t>(hva);
  map.length = size;
  map.iova = iova;
  int r = sys::Ioctl(iommufd_.Get(), uapi::kIommuIoasMap, &map);
  // the detail is built on failure only: no allocation on the success path
  if (r < 0) return Status("IOMMU_IOAS_MAP", -r, RangeDetail(iova, size));
  return Status();
}

Expected<uint64_t> IommufdBackend::DmaUnmap(uint64_t iova, uint64_t size) {
  if (!iommufd_.Valid()) return Closed("IOMMU_IOAS_UNMAP");
  uapi::iommu_ioas_unmap unmap = {};
  unmap.size = sizeof(unmap);
  unmap.ioas_id = ioas_id_;
  unmap.iova = iova;
  unmap.length = size;
  int r = sys::Ioctl(iommufd_.Get(), uapi::kIommuIoasUnmap, &unmap);
  if (r < 0) return Status("IOMMU_IOAS_UNMAP", -r, RangeDetail(iova, size));
  return static_cast<uint64_t>(unmap.length);  // the kernel writes back the unmapped bytes
}

Status IommufdBackend::QueryRanges(std::vector<IovaRange>* ranges, uint64_t* alignment) {
  if (!iommufd_.Valid()) return Closed("IOMMU_IOAS_IOVA_RANGES");
  std::vector<uapi::iommu_iova_range> buf(8);
  // The kernel copies what fits, sets num_iovas to the total and fails with EMSGSIZE when the
  // array was too small; the list can also grow between calls as devices attach: retry.
  for (int attempt = 0; attempt < 4; ++attempt) {
    uapi::iommu_ioas_iova_ranges query = {};
    query.size = sizeof(query);
    query.ioas_id = ioas_id_;
    query.num_iovas = static_cast<uint32_t>(buf.size());
    // SAFETY: allowed_iovas points at buf, which holds num_iovas entries.
    query.allowed_iovas = reinterpret_cast<uintptr_t>(buf.data());
    int r = sys::Ioctl(iommufd_.Get(), uapi::kIommuIoasIovaRanges, &query);
    if (r == -EMSGSIZE && query.num_iovas > buf.size() && query.num_iovas < 65536) {
      buf.resize(query.num_iovas);
      continue;
    }
    if (r < 0) return Status("IOMMU_IOAS_IOVA_RANGES", -r);
    ranges->clear();
    for (uint32_t i = 0; i < query.num_iovas && i < buf.size(); ++i) {
      ranges->push_back({buf[i].start, buf[i].last});
    }
    *alignment = query.out_iova_alignment;
    return Status();
  }
  return Status("IOMMU_IOAS_IOVA_RANGES", EMSGSIZE);
}

Expected<std::vector<IovaRange>> IommufdBackend::IovaRanges() {
  std::vector<IovaRange> ranges;
  uint64_t alignment = 0;
  if (Status s = QueryRanges(&ranges, &alignment); !s.ok()) return s;
  return ranges;
}

Expected<uint64_t> IommufdBackend::PageSizes() {
  std::vector<IovaRange> ranges;
  uint64_t alignment = 0;
  if (Status s = QueryRanges(&ranges, &alignment); !s.ok()) return s;
  // The IOAS maps any multiple of out_iova_alignment; expressed as a type1-style bitmap that
  // is every power of two >= the alignment.
  if (alignment == 0) alignment = static_cast<uint64_t>(sys::PageSize());
  return ~(alignment - 1);
}

void IommufdBackend::Release() {
  if (!iommufd_.Valid()) return;
  // Devices are closed first (IommuContext::Close), else DESTROY says EBUSY; closing the
  // iommufd frees the IOAS anyway, so the result is ignored.
  uapi::iommu_destroy destroy = {sizeof(destroy), ioas_id_};
  sys::Ioctl(iommufd_.Get(), uapi::kIommuDestroy, &destroy);
  iommufd_.Reset();
}

}  // namespace vfiobox
