// SPDX-License-Identifier: MIT
// Fake kernel: VFIO device fd ioctls (drivers/vfio/pci/vfio_pci_core.c and
// drivers/vfio/vfio_main.c vfio_set_irqs_validate_and_prepare), see fake_kernel.h.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "native/src/fake_kernel.h"
#include "native/src/uapi.h"

namespace vfiobox::fake {

namespace {

uint32_t ArgSz(const void* arg) {
  uint32_t argsz;
  std::memcpy(&argsz, arg, sizeof(argsz));
  return argsz;
}

// Appends one cap (header + body) to `chain` 8-byte aligned, linking the previous one.
void AddCap(std::vector<uint8_t>* chain, uint32_t base, const void* cap, size_t len, size_t* prev) {
  size_t off = chain->size();
  if (*prev != SIZE_MAX) {
    uint32_t next = base + static_cast<uint32_t>(off);
    std::memcpy(chain->data() + *prev + offsetof(vfio_info_cap_header, next), &next, 4);
  }
  // SAFETY: `cap` points at `len` bytes of a cap struct starting with its header.
  const auto* p = static_cast<const uint8_t*>(cap);
  chain->insert(chain->end(), p, p + len);
  chain->resize((chain->size() + 7) / 8 * 8, 0);
  *prev = off;
}

std::vector<uint8_t> RegionCaps(const RegionSpec& spec, uint32_t base) {
  std::vector<uint8_t> chain;
  size_t prev = SIZE_MAX;
  if (!spec.sparse.empty()) {
    vfio_region_info_cap_sparse_mmap head = {};
    head.header = {VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, 0};
    head.nr_areas = static_cast<uint32_t>(spec.sparse.size());
    // SAFETY: FAM size calculation: fixed part + nr_areas areas of 16 bytes.
    std::vector<uint8_t> cap(sizeof(head) +
                             spec.sparse.size() * sizeof(vfio_region_sparse_mmap_area));
    std::memcpy(cap.data(), &head, sizeof(head));
    for (size_t i = 0; i < spec.sparse.size(); ++i) {
      vfio_region_sparse_mmap_area a = {spec.sparse[i].first, spec.sparse[i].second};
      std::memcpy(cap.data() + sizeof(head) + i * sizeof(a), &a, sizeof(a));
    }
    AddCap(&chain, base, cap.data(), cap.size(), &prev);
  }
  if (spec.has_type) {
    vfio_region_info_cap_type t = {{VFIO_REGION_INFO_CAP_TYPE, 1, 0}, spec.type, spec.subtype};
    AddCap(&chain, base, &t, sizeof(t), &prev);
  }
  if (spec.msix_mappable) {
    vfio_info_cap_header h = {VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1, 0};
    AddCap(&chain, base, &h, sizeof(h), &prev);
  }
  return chain;
}

int RegionInfo(Device& d, void* arg) {
  vfio_region_info info;
  uint32_t argsz = ArgSz(arg);
  if (argsz < sizeof(info)) return -EINVAL;  // minsz = offsetofend(offset) = 32
  std::memcpy(&info, arg, sizeof(info));
  if (info.index >= d.regions.size()) return -EINVAL;
  const RegionSpec& spec = d.regions[info.index]->spec;
  info.flags = spec.size ? spec.flags & ~VFIO_REGION_INFO_FLAG_CAPS : 0;
  info.size = spec.size;
  info.offset = uint64_t{info.index} << uapi::kVfioPciOffsetShift;
  info.cap_offset = 0;
  std::vector<uint8_t> caps = spec.size ? RegionCaps(spec, sizeof(info)) : std::vector<uint8_t>{};
  if (!caps.empty()) {
    info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
    if (argsz < sizeof(info) + caps.size()) {
      info.argsz = static_cast<uint32_t>(sizeof(info) + caps.size());  // "retry with this"
    } else {
      // SAFETY: argsz >= sizeof(info) + caps.size(): the caller's buffer holds the chain.
      std::memcpy(static_cast<uint8_t*>(arg) + sizeof(info), caps.data(), caps.size());
      info.cap_offset = sizeof(info);
    }
  }
  std::memcpy(arg, &info, sizeof(info));
  return 0;
}

int IrqInfo(Device& d, void* arg) {
  vfio_irq_info info;
  if (ArgSz(arg) < sizeof(info)) return -EINVAL;
  std::memcpy(&info, arg, sizeof(info));
  if (info.index >= d.spec.irqs.size()) return -EINVAL;
  info.flags = d.spec.irqs[info.index].flags;
  info.count = d.spec.irqs[info.index].count;
  std::memcpy(arg, &info, sizeof(info));
  return 0;
}

void Signal(Device& d, uint32_t index, uint32_t vector) {
  auto it = d.triggers.find({index, vector});
  uint64_t one = 1;
  if (it != d.triggers.end() && ::write(it->second, &one, sizeof(one)) < 0) return;
}

int SetTriggers(Device& d, const vfio_irq_set& s, const uint8_t* data) {
  uint32_t type = s.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
  if (type == VFIO_IRQ_SET_DATA_NONE && s.count == 0) {  // disable the whole index
    for (auto it = d.triggers.begin(); it != d.triggers.end();) {
      if (it->first.first == s.index) {
        ::close(it->second);
        it = d.triggers.erase(it);
      } else {
        ++it;
      }
    }
    return 0;
  }
  for (uint32_t i = 0; i < s.count; ++i) {
    uint32_t v = s.start + i;
    if (type == VFIO_IRQ_SET_DATA_NONE || (type == VFIO_IRQ_SET_DATA_BOOL && data[i])) {
      Signal(d, s.index, v);  // loopback trigger, as the kernel does
    } else if (type == VFIO_IRQ_SET_DATA_EVENTFD) {
      int32_t efd;
      std::memcpy(&efd, data + i * sizeof(efd), sizeof(efd));
      auto old = d.triggers.find({s.index, v});
      if (old != d.triggers.end()) {
        ::close(old->second);
        d.triggers.erase(old);
      }
      if (efd == -1) continue;
      // The kernel takes its own eventfd reference (eventfd_ctx_fdget); a dup does the same.
      int dup = efd >= kFirstFakeFd ? -1 : ::fcntl(efd, F_DUPFD_CLOEXEC, 0);
      if (dup < 0) return -EBADF;
      d.triggers[{s.index, v}] = dup;
    }
  }
  return 0;
}

int SetIrqs(Device& d, void* arg) {
  vfio_irq_set s;
  uint32_t argsz = ArgSz(arg);
  if (argsz < sizeof(s)) return -EINVAL;
  std::memcpy(&s, arg, sizeof(s));
  uint32_t type = s.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
  uint32_t action = s.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
  if (__builtin_popcount(type) != 1 || __builtin_popcount(action) != 1) return -EINVAL;
  if (s.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) return -EINVAL;
  if (s.index >= d.spec.irqs.size()) return -EINVAL;
  const IrqSpec& irq = d.spec.irqs[s.index];
  if (s.count == 0 && type != VFIO_IRQ_SET_DATA_NONE) return -EINVAL;
  if (s.count && (s.start >= irq.count || uint64_t{s.start} + s.count > irq.count)) return -EINVAL;
  size_t elem = type == VFIO_IRQ_SET_DATA_BOOL ? 1 : type == VFIO_IRQ_SET_DATA_EVENTFD ? 4 : 0;
  // SAFETY: FAM size calculation in 64-bit; the data must fit in argsz.
  if (argsz - sizeof(s) < uint64_t{s.count} * elem) return -EINVAL;
  const uint8_t* data = static_cast<const uint8_t*>(arg) + sizeof(s);
  if (action == VFIO_IRQ_SET_ACTION_TRIGGER) return SetTriggers(d, s, data);
  if (type == VFIO_IRQ_SET_DATA_EVENTFD) return -EINVAL;  // irqfd-style unmask: not faked
  if (!(irq.flags & VFIO_IRQ_INFO_MASKABLE)) return -EINVAL;
  for (uint32_t i = 0; i < s.count; ++i) {
    if (type == VFIO_IRQ_SET_DATA_NONE || data[i]) {
      d.masked[{s.index, s.start + i}] = action == VFIO_IRQ_SET_ACTION_MASK;
    }
  }
  return 0;
}

}  // namespace

int DeviceIoctl(File& file, int fd, unsigned long request, void* arg) {
  Device& d = K().devices[file.device];
  if (file.via_cdev && d.bound_file != fd) {
    // vfio_device_fops_unl_ioctl: a cdev fd accepts only BIND until bound
    return request == uapi::kVfioDeviceBindIommufd ? DeviceBind(file, fd, arg) : -EINVAL;
  }
  switch (request) {
    case VFIO_DEVICE_GET_INFO: {
      vfio_device_info info = {};
      if (ArgSz(arg) < offsetof(vfio_device_info, cap_offset)) return -EINVAL;
      info.argsz = ArgSz(arg);
      info.flags = VFIO_DEVICE_FLAGS_PCI | (d.spec.reset_supported ? VFIO_DEVICE_FLAGS_RESET : 0);
      info.num_regions = static_cast<uint32_t>(d.regions.size());
      info.num_irqs = static_cast<uint32_t>(d.spec.irqs.size());
      std::memcpy(arg, &info, offsetof(vfio_device_info, cap_offset));
      return 0;
    }
    case VFIO_DEVICE_GET_REGION_INFO:
      return RegionInfo(d, arg);
    case VFIO_DEVICE_GET_IRQ_INFO:
      return IrqInfo(d, arg);
    case VFIO_DEVICE_SET_IRQS:
      return SetIrqs(d, arg);
    case VFIO_DEVICE_RESET:
      return d.spec.reset_supported ? 0 : -EINVAL;
    case uapi::kVfioDeviceBindIommufd:
      return file.via_cdev ? -EINVAL : -ENOTTY;  // bound already
    case uapi::kVfioDeviceAttachIommufdPt:
      return file.via_cdev ? DeviceAttach(file, arg) : -ENOTTY;
    default:
      return -ENOTTY;
  }
}

}  // namespace vfiobox::fake
