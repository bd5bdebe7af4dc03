// SPDX-License-Identifier: MIT
// Fake kernel: /dev/iommu ioctls (drivers/iommu/iommufd/ioas.c, io_pagetable.c) and the cdev
// BIND/ATTACH ioctls (drivers/vfio/device_cdev.c), see fake_kernel.h.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "native/src/fake_kernel.h"
#include "native/src/uapi.h"

namespace vfiobox::fake {

namespace {

uint32_t SizeField(const void* arg) {
  uint32_t size;
  std::memcpy(&size, arg, sizeof(size));
  return size;
}

std::vector<const Device*> AttachedTo(int iommufd_fd, uint32_t ioas) {
  std::vector<const Device*> out;
  for (const Device& d : K().devices) {
    if (d.iommufd == iommufd_fd && d.ioas == ioas) out.push_back(&d);
  }
  return out;
}

int IommufdFdOf(const Iommufd* ictx) {
  for (auto& [fd, f] : K().files) {
    if (f.iommufd.get() == ictx) return fd;
  }
  return -1;
}

int IovaRanges(Iommufd& ictx, void* arg) {
  uapi::iommu_ioas_iova_ranges q;
  if (SizeField(arg) < sizeof(q)) return -EINVAL;
  std::memcpy(&q, arg, sizeof(q));
  if (!ictx.ioas.count(q.ioas_id)) return -ENOENT;
  Ranges ranges = IntersectRanges(AttachedTo(IommufdFdOf(&ictx), q.ioas_id));
  // SAFETY: allowed_iovas is the caller's array of num_iovas entries (the uAPI contract);
  // at most that many are written.
  auto* out = reinterpret_cast<uapi::iommu_iova_range*>(static_cast<uintptr_t>(q.allowed_iovas));
  for (size_t i = 0; i < ranges.size() && i < q.num_iovas; ++i) {
    out[i] = {ranges[i].first, ranges[i].second};
  }
  bool fits = q.num_iovas >= ranges.size();
  q.num_iovas = static_cast<uint32_t>(ranges.size());
  q.out_iova_alignment = kPage;
  std::memcpy(arg, &q, sizeof(q));
  return fits ? 0 : -EMSGSIZE;
}

int IoasMap(Iommufd& ictx, void* arg) {
  uapi::iommu_ioas_map m;
  if (SizeField(arg) < sizeof(m)) return -EINVAL;
  std::memcpy(&m, arg, sizeof(m));
  constexpr uint32_t kKnown =
      uapi::kIommuIoasMapFixedIova | uapi::kIommuIoasMapReadable | uapi::kIommuIoasMapWriteable;
  if (m.flags & ~kKnown) return -EOPNOTSUPP;
  if (!(m.flags & uapi::kIommuIoasMapFixedIova)) return -EOPNOTSUPP;  // the fake never allocates
  auto it = ictx.ioas.find(m.ioas_id);
  if (it == ictx.ioas.end()) return -ENOENT;
  if (!m.length || m.length % kPage || m.iova % kPage || m.iova + m.length - 1 < m.iova) {
    return -EINVAL;
  }
  Ranges ranges = IntersectRanges(AttachedTo(IommufdFdOf(&ictx), m.ioas_id));
  if (!InsideRanges(ranges, m.iova, m.length)) return -EINVAL;
  if (Overlaps(it->second.areas, m.iova, m.length)) return -EEXIST;
  it->second.areas[m.iova] = m.length;
  return 0;
}

int IoasUnmap(Iommufd& ictx, void* arg) {
  uapi::iommu_ioas_unmap u;
  if (SizeField(arg) < sizeof(u)) return -EINVAL;
  std::memcpy(&u, arg, sizeof(u));
  auto it = ictx.ioas.find(u.ioas_id);
  if (it == ictx.ioas.end()) return -ENOENT;
  AreaMap& areas = it->second.areas;
  if (u.iova == 0 && u.length == UINT64_MAX) {  // "unmap everything"
    uint64_t total = 0;
    for (auto& kv : areas) total += kv.second;
    areas.clear();
    u.length = total;
  } else {
    if (!u.length || u.iova + u.length - 1 < u.iova) return -EINVAL;
    bool split = false;
    int64_t bytes = UnmapAreas(&areas, u.iova, u.length, &split);
    // iopt_unmap_iova_range: a straddling area and an empty range are both ENOENT
    if (split || bytes == 0) return -ENOENT;
    u.length = static_cast<uint64_t>(bytes);
  }
  std::memcpy(arg, &u, sizeof(u));
  return 0;
}

}  // namespace

int IommufdIoctl(File& file, unsigned long request, void* arg) {
  Iommufd& ictx = *file.iommufd;
  switch (request) {
    case uapi::kIommuIoasAlloc: {
      uapi::iommu_ioas_alloc a;
      if (SizeField(arg) < sizeof(a)) return -EINVAL;
      std::memcpy(&a, arg, sizeof(a));
      if (a.flags) return -EOPNOTSUPP;
      a.out_ioas_id = ictx.next_id++;
      ictx.ioas[a.out_ioas_id] = Ioas{};
      std::memcpy(arg, &a, sizeof(a));
      return 0;
    }
    case uapi::kIommuDestroy: {
      uapi::iommu_destroy d;
      if (SizeField(arg) < sizeof(d)) return -EINVAL;
      std::memcpy(&d, arg, sizeof(d));
      if (!ictx.ioas.count(d.id)) return -ENOENT;
      if (!AttachedTo(IommufdFdOf(&ictx), d.id).empty()) return -EBUSY;  // close devices first
      ictx.ioas.erase(d.id);
      return 0;
    }
    case uapi::kIommuIoasIovaRanges:
      return IovaRanges(ictx, arg);
    case uapi::kIommuIoasMap:
      return IoasMap(ictx, arg);
    case uapi::kIommuIoasUnmap:
      return IoasUnmap(ictx, arg);
    default:
      return -ENOTTY;
  }
}

int DeviceBind(File& file, int fd, void* arg) {
  uapi::vfio_device_bind_iommufd b;
  if (SizeField(arg) < sizeof(b)) return -EINVAL;
  std::memcpy(&b, arg, sizeof(b));
  if (b.flags) return -EINVAL;
  File* ifile = FindFile(b.iommufd);
  if (ifile == nullptr || ifile->kind != FileKind::kIommufd) return -EBADF;
  Device& d = K().devices[file.device];
  if (d.bound_file >= 0) return -EBUSY;  // another cdev fd already owns the device
  auto g = K().groups.find(d.spec.group);
  // vfio_device_block_group: a group opened through /dev/vfio/N blocks cdev use
  if (d.group_opens > 0 || (g != K().groups.end() && g->second.open_fd >= 0)) return -EBUSY;
  d.bound_file = fd;
  d.iommufd = b.iommufd;
  b.out_devid = static_cast<uint32_t>(file.device) + 1;
  std::memcpy(arg, &b, sizeof(b));
  return 0;
}

int DeviceAttach(File& file, void* arg) {
  uapi::vfio_device_attach_iommufd_pt a;
  if (SizeField(arg) < sizeof(a)) return -EINVAL;
  std::memcpy(&a, arg, sizeof(a));
  if (a.flags) return -EINVAL;
  Device& d = K().devices[file.device];
  File* ifile = FindFile(d.iommufd);
  if (ifile == nullptr || !ifile->iommufd->ioas.count(a.pt_id)) return -ENOENT;
  Ioas& ioas = ifile->iommufd->ioas[a.pt_id];
  // attaching must not leave existing mappings outside the device's allowed ranges
  for (auto& [iova, size] : ioas.areas) {
    if (!d.spec.iova_ranges.empty() && !InsideRanges(d.spec.iova_ranges, iova, size))
      return -EINVAL;
  }
  d.ioas = a.pt_id;
  std::memcpy(arg, &a, sizeof(a));
  return 0;
}

}  // namespace vfiobox::fake
