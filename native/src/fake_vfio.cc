// SPDX-License-Identifier: MIT
// Fake kernel: VFIO container, group and device ioctls (see fake_kernel.h). Argument checks
// follow drivers/vfio/{container,group}.c, vfio_iommu_type1.c and pci/vfio_pci_core.c.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "native/src/fake_kernel.h"
#include "native/src/uapi.h"

namespace vfiobox::fake {

namespace {

// Builds a capability chain the way vfio_info_add_capability does: 8-byte aligned entries
// whose `next` is an offset from the start of the whole info buffer (after the shift).
class CapChain {
 public:
  void Add(const void* cap, size_t len) {
    offsets_.push_back(bytes_.size());
    // SAFETY: `cap` points at a `len`-byte cap struct beginning with vfio_info_cap_header.
    const auto* p = static_cast<const uint8_t*>(cap);
    bytes_.insert(bytes_.end(), p, p + len);
    bytes_.resize((bytes_.size() + 7) / 8 * 8, 0);
  }
  size_t Size() const { return bytes_.size(); }
  /** copies the chain to dst, rebasing `next` fields to `base` (= where dst sits in the info). */
  void CopyTo(uint8_t* dst, uint32_t base) {
    for (size_t i = 0; i < offsets_.size(); ++i) {
      uint32_t next = i + 1 < offsets_.size() ? base + static_cast<uint32_t>(offsets_[i + 1]) : 0;
      std::memcpy(bytes_.data() + offsets_[i] + offsetof(vfio_info_cap_header, next), &next, 4);
    }
    std::memcpy(dst, bytes_.data(), bytes_.size());
  }

 private:
  std::vector<uint8_t> bytes_;
  std::vector<size_t> offsets_;
};

uint32_t ArgSz(const void* arg) {
  uint32_t argsz;
  std::memcpy(&argsz, arg, sizeof(argsz));
  return argsz;
}

std::vector<const Device*> GroupDevices(const std::vector<int>& groups) {
  std::vector<const Device*> out;
  for (const Device& d : K().devices) {
    if (std::find(groups.begin(), groups.end(), d.spec.group) != groups.end()) out.push_back(&d);
  }
  return out;
}

int Type1Info(Container& c, void* arg) {
  constexpr uint32_t kMinSz = offsetof(vfio_iommu_type1_info, cap_offset);
  if (c.iommu_type != VFIO_TYPE1v2_IOMMU) return -ENOTTY;  // no type1 driver behind it
  vfio_iommu_type1_info info = {};
  uint32_t argsz = ArgSz(arg);
  if (argsz < kMinSz) return -EINVAL;
  Ranges ranges = IntersectRanges(GroupDevices(c.groups));
  // SAFETY: FAM size calculation: header + nr_iovas ranges of 16 bytes each.
  std::vector<uint8_t> cap(sizeof(vfio_iommu_type1_info_cap_iova_range) +
                           ranges.size() * sizeof(vfio_iova_range));
  vfio_iommu_type1_info_cap_iova_range head = {};
  head.header = {VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 0};
  head.nr_iovas = static_cast<uint32_t>(ranges.size());
  std::memcpy(cap.data(), &head, sizeof(head));
  for (size_t i = 0; i < ranges.size(); ++i) {
    vfio_iova_range r = {ranges[i].first, ranges[i].second};
    std::memcpy(cap.data() + sizeof(head) + i * sizeof(r), &r, sizeof(r));
  }
  CapChain chain;
  chain.Add(cap.data(), cap.size());
  vfio_iommu_type1_info_dma_avail avail = {{VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, 0}, 65535};
  chain.Add(&avail, sizeof(avail));
  info.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
  info.iova_pgsizes = 0x40201000;  // 4 KiB | 2 MiB | 1 GiB, as on x86 VT-d
  info.argsz = argsz;
  if (argsz < sizeof(info) + chain.Size()) {
    info.argsz = static_cast<uint32_t>(sizeof(info) + chain.Size());
  } else {
    // SAFETY: argsz >= sizeof(info) + chain size: the caller's buffer has room for the chain.
    chain.CopyTo(static_cast<uint8_t*>(arg) + sizeof(info), sizeof(info));
    info.cap_offset = sizeof(info);
  }
  std::memcpy(arg, &info, std::min<size_t>(argsz, sizeof(info)));
  return 0;
}

int MapDma(Container& c, void* arg) {
  vfio_iommu_type1_dma_map m;
  if (ArgSz(arg) < sizeof(m)) return -EINVAL;
  std::memcpy(&m, arg, sizeof(m));
  if (c.iommu_type != VFIO_TYPE1v2_IOMMU) return -ENOTTY;
  if (m.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE) || !m.flags) return -EINVAL;
  if (!m.size || m.size % kPage || m.iova % kPage || m.vaddr % kPage) return -EINVAL;
  if (m.iova + m.size - 1 < m.iova || m.vaddr + m.size - 1 < m.vaddr) return -EINVAL;
  if (!InsideRanges(IntersectRanges(GroupDevices(c.groups)), m.iova, m.size)) return -EINVAL;
  if (Overlaps(c.dma, m.iova, m.size)) return -EEXIST;
  c.dma[m.iova] = m.size;
  return 0;
}

int UnmapDma(Container& c, void* arg) {
  vfio_iommu_type1_dma_unmap u;
  if (ArgSz(arg) < sizeof(u)) return -EINVAL;
  std::memcpy(&u, arg, sizeof(u));
  if (c.iommu_type != VFIO_TYPE1v2_IOMMU) return -ENOTTY;
  if (u.flags || !u.size || u.size % kPage || u.iova % kPage || u.iova + u.size - 1 < u.iova) {
    return -EINVAL;
  }
  bool split = false;
  int64_t bytes = UnmapAreas(&c.dma, u.iova, u.size, &split);  // type1v2 refuses to split
  if (bytes < 0) return static_cast<int>(bytes);
  u.size = static_cast<uint64_t>(bytes);
  std::memcpy(arg, &u, sizeof(u));
  return 0;
}

int SetIommu(Container& c, unsigned long type) {
  if (c.groups.empty()) return -EINVAL;
  if (c.iommu_type != 0) return -EBUSY;
  if (type != VFIO_TYPE1v2_IOMMU && type != VFIO_NOIOMMU_IOMMU) return -EINVAL;
  for (int id : c.groups) {
    if (K().groups[id].noiommu != (type == VFIO_NOIOMMU_IOMMU)) return -EINVAL;
  }
  c.iommu_type = type;
  return 0;
}

}  // namespace

int ContainerIoctl(File& file, unsigned long request, void* arg) {
  Container& c = *file.container;
  // SAFETY: value-taking ioctls get their integer through the pointer-sized argument.
  unsigned long value = reinterpret_cast<unsigned long>(arg);
  switch (request) {
    case VFIO_GET_API_VERSION:
      return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION: {
      bool any_noiommu = false;
      for (const Device& d : K().devices) any_noiommu |= d.spec.noiommu;
      if (value == VFIO_NOIOMMU_IOMMU) return any_noiommu ? 1 : 0;
      return value == VFIO_TYPE1v2_IOMMU || value == VFIO_TYPE1_IOMMU ? 1 : 0;
    }
    case VFIO_SET_IOMMU:
      return SetIommu(c, value);
    case VFIO_IOMMU_GET_INFO:
      return Type1Info(c, arg);
    case VFIO_IOMMU_MAP_DMA:
      return MapDma(c, arg);
    case VFIO_IOMMU_UNMAP_DMA:
      return UnmapDma(c, arg);
    default:
      return -ENOTTY;
  }
}

int GroupIoctl(File& file, int /*fd*/, unsigned long request, void* arg) {
  Group& g = K().groups[file.group];
  switch (request) {
    case VFIO_GROUP_GET_STATUS: {
      vfio_group_status st = {};
      if (ArgSz(arg) < sizeof(st)) return -EINVAL;
      bool viable = true;
      for (const Device& d : K().devices) viable &= d.spec.group != g.id || d.spec.viable;
      st.argsz = sizeof(st);
      st.flags = (viable ? VFIO_GROUP_FLAGS_VIABLE : 0) |
                 (g.container ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
      std::memcpy(arg, &st, sizeof(st));
      return 0;
    }
    case VFIO_GROUP_SET_CONTAINER: {
      int cfd;
      std::memcpy(&cfd, arg, sizeof(cfd));
      File* cf = FindFile(cfd);
      if (cf == nullptr || cf->kind != FileKind::kContainer) return -EBADF;
      if (g.container) return -EINVAL;
      for (const Device& d : K().devices) {
        if (d.spec.group == g.id && !d.spec.viable) return -EPERM;
      }
      Container& c = *cf->container;
      if (c.iommu_type && (c.iommu_type == VFIO_NOIOMMU_IOMMU) != g.noiommu) return -EPERM;
      g.container = cf->container;
      c.groups.push_back(g.id);
      return 0;
    }
    case VFIO_GROUP_GET_DEVICE_FD: {
      if (!g.container || !g.container->iommu_type) return -EINVAL;
      const char* name = static_cast<const char*>(arg);
      for (size_t i = 0; i < K().devices.size(); ++i) {
        Device& d = K().devices[i];
        if (d.spec.group != g.id || d.spec.bdf != name) continue;
        d.group_opens++;
        return NewFile({FileKind::kDevice, nullptr, -1, static_cast<int>(i), false, nullptr});
      }
      return -ENODEV;
    }
    default:
      return -ENOTTY;
  }
}

void ReleaseGroupFile(const File& file) {
  auto it = K().groups.find(file.group);
  if (it == K().groups.end()) return;
  Group& g = it->second;
  g.open_fd = -1;
  if (g.container) {
    auto& groups = g.container->groups;
    groups.erase(std::remove(groups.begin(), groups.end(), g.id), groups.end());
    if (groups.empty()) {  // the last group left: the IOMMU driver and its mappings go
      g.container->iommu_type = 0;
      g.container->dma.clear();
    }
    g.container = nullptr;
  }
}

void ReleaseDeviceFile(const File& file, int fd) {
  if (file.device < 0 || file.device >= static_cast<int>(K().devices.size())) return;
  Device& d = K().devices[file.device];
  if (file.via_cdev && d.bound_file == fd) {
    d.bound_file = -1;
    d.ioas = 0;
    d.iommufd = -1;
  } else if (!file.via_cdev && d.group_opens > 0) {
    d.group_opens--;
  }
  if (d.bound_file < 0 && d.group_opens == 0) {  // last user: interrupts are torn down
    for (auto& kv : d.triggers) ::close(kv.second);
    d.triggers.clear();
    d.masked.clear();
  }
}

const char* IoctlName(unsigned long request) {
  switch (request) {
    case VFIO_GET_API_VERSION:
      return "VFIO_GET_API_VERSION";
    case VFIO_CHECK_EXTENSION:
      return "VFIO_CHECK_EXTENSION";
    case VFIO_SET_IOMMU:
      return "VFIO_SET_IOMMU";
    case VFIO_GROUP_GET_STATUS:
      return "VFIO_GROUP_GET_STATUS";
    case VFIO_GROUP_SET_CONTAINER:
      return "VFIO_GROUP_SET_CONTAINER";
    case VFIO_GROUP_GET_DEVICE_FD:
      return "VFIO_GROUP_GET_DEVICE_FD";
    case VFIO_DEVICE_GET_INFO:
      return "VFIO_DEVICE_GET_INFO";
    case VFIO_DEVICE_GET_REGION_INFO:
      return "VFIO_DEVICE_GET_REGION_INFO";
    case VFIO_DEVICE_GET_IRQ_INFO:
      return "VFIO_DEVICE_GET_IRQ_INFO";
    case VFIO_DEVICE_SET_IRQS:
      return "VFIO_DEVICE_SET_IRQS";
    case VFIO_DEVICE_RESET:
      return "VFIO_DEVICE_RESET";
    case VFIO_IOMMU_GET_INFO:
      return "VFIO_IOMMU_GET_INFO";
    case VFIO_IOMMU_MAP_DMA:
      return "VFIO_IOMMU_MAP_DMA";
    case VFIO_IOMMU_UNMAP_DMA:
      return "VFIO_IOMMU_UNMAP_DMA";
    case uapi::kVfioDeviceBindIommufd:
      return "VFIO_DEVICE_BIND_IOMMUFD";
    case uapi::kVfioDeviceAttachIommufdPt:
      return "VFIO_DEVICE_ATTACH_IOMMUFD_PT";
    case uapi::kVfioDeviceDetachIommufdPt:
      return "VFIO_DEVICE_DETACH_IOMMUFD_PT";
    case uapi::kIommuDestroy:
      return "IOMMU_DESTROY";
    case uapi::kIommuIoasAlloc:
      return "IOMMU_IOAS_ALLOC";
    case uapi::kIommuIoasIovaRanges:
      return "IOMMU_IOAS_IOVA_RANGES";
    case uapi::kIommuIoasMap:
      return "IOMMU_IOAS_MAP";
    case uapi::kIommuIoasUnmap:
      return "IOMMU_IOAS_UNMAP";
    default:
      return "ioctl";
  }
}

}  // namespace vfiobox::fake
