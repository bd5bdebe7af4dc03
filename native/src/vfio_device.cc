// SPDX-License-Identifier: MIT
#include "native/src/vfio_device.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "native/src/info_buffer.h"
#include "native/src/sys.h"

namespace vfiobox {

namespace {

RegionCap ParseCap(const vfio_info_cap_header& hdr, const uint8_t* p, size_t avail) {
  RegionCap cap;
  cap.id = hdr.id;
  cap.version = hdr.version;
  if (hdr.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP &&
      avail >= sizeof(vfio_region_info_cap_sparse_mmap)) {
    vfio_region_info_cap_sparse_mmap sparse;
    std::memcpy(&sparse, p, sizeof(sparse));
    // SAFETY: FAM size calculation in 64-bit: nr_areas entries must fit in `avail`.
    if (sizeof(sparse) + uint64_t{sparse.nr_areas} * sizeof(vfio_region_sparse_mmap_area) <=
        avail) {
      cap.kind = RegionCap::Kind::kSparseMmap;
      for (uint32_t i = 0; i < sparse.nr_areas; ++i) {
        vfio_region_sparse_mmap_area area;
        std::memcpy(&area, p + sizeof(sparse) + i * sizeof(area), sizeof(area));
        cap.areas.emplace_back(area.offset, area.size);
      }
    }
  } else if (hdr.id == VFIO_REGION_INFO_CAP_TYPE && avail >= sizeof(vfio_region_info_cap_type)) {
    vfio_region_info_cap_type type;
    std::memcpy(&type, p, sizeof(type));
    cap.kind = RegionCap::Kind::kType;
    cap.type = type.type;
    cap.subtype = type.subtype;
  } else if (hdr.id == VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) {
    cap.kind = RegionCap::Kind::kMsixMappable;
  }
  return cap;
}

}  // namespace

// SAFETY (for MmioLoad and MmioStore): `p` points into a live mapping with at least `width`
// bytes left (the caller checked bounds and alignment); volatile keeps MMIO accesses at the
// requested width and stops the compiler from merging or eliding them.
uint64_t MmioLoad(const uint8_t* p, unsigned width) {
  switch (width) {
    case 1:
      return *reinterpret_cast<const volatile uint8_t*>(p);
    case 2:
      return *reinterpret_cast<const volatile uint16_t*>(p);
    case 4:
      return *reinterpret_cast<const volatile uint32_t*>(p);
    default:
      return *reinterpret_cast<const volatile uint64_t*>(p);
  }
}

void MmioStore(uint8_t* p, unsigned width, uint64_t value) {
  switch (width) {
    case 1:
      *reinterpret_cast<volatile uint8_t*>(p) = static_cast<uint8_t>(value);
      break;
    case 2:
      *reinterpret_cast<volatile uint16_t*>(p) = static_cast<uint16_t>(value);
      break;
    case 4:
      *reinterpret_cast<volatile uint32_t*>(p) = static_cast<uint32_t>(value);
      break;
    default:
      *reinterpret_cast<volatile uint64_t*>(p) = value;
      break;
  }
}

Status VfioDevice::ClosedStatus(const char* op) const {
  return Status::Custom(op, EBADF, "ERR_VFIO_CLOSED", "the device is closed",
                        {{"bdf", DetailValue::Str(bdf_)}});
}

Detail VfioDevice::RegionDetail(uint32_t index, uint64_t offset) const {
  return {{"bdf", DetailValue::Str(bdf_)},
          {"region", DetailValue::Num(index)},
          {"offset", DetailValue::Num(offset)}};
}

Expected<vfio_device_info> VfioDevice::Info() {
  if (Closed()) return ClosedStatus("VFIO_DEVICE_GET_INFO");
  vfio_device_info info = {};
  info.argsz = sizeof(info);
  int r = sys::Ioctl(fd_.Get(), VFIO_DEVICE_GET_INFO, &info);
  if (r < 0) return Status("VFIO_DEVICE_GET_INFO", -r, {{"bdf", DetailValue::Str(bdf_)}});
  return info;
}

Expected<RegionInfo> VfioDevice::GetRegionInfo(uint32_t index) {
  if (Closed()) return ClosedStatus("VFIO_DEVICE_GET_REGION_INFO");
  // Start with the bare struct: the kernel raises argsz when the chain needs more room.
  InfoBuffer buf(sizeof(vfio_region_info));
  int r = buf.IoctlWithRetry(fd_.Get(), VFIO_DEVICE_GET_REGION_INFO,
                             [&] { buf.As<vfio_region_info>()->index = index; });
  if (r < 0) {
    return Status("VFIO_DEVICE_GET_REGION_INFO", -r,
                  {{"bdf", DetailValue::Str(bdf_)}, {"region", DetailValue::Num(index)}});
  }
  const auto* raw = buf.As<vfio_region_info>();
  RegionInfo info{raw->index, raw->flags, raw->size, raw->offset, {}};
  if ((raw->flags & VFIO_REGION_INFO_FLAG_CAPS) && raw->cap_offset >= sizeof(vfio_region_info)) {
    buf.ForEachCap(raw->cap_offset,
                   [&](const vfio_info_cap_header& hdr, const uint8_t* p, size_t avail) {
                     info.caps.push_back(ParseCap(hdr, p, avail));
                   });
  }
  return info;
}

Expected<const RegionInfo*> VfioDevice::Region(uint32_t index) {
  if (index < regions_.size() && regions_[index].has_value()) return &*regions_[index];
  auto info = GetRegionInfo(index);
  if (!info.ok()) return info.status();
  if (regions_.size() <= index) regions_.resize(index + 1);
  regions_[index] = std::move(*info);
  return &*regions_[index];
}

Expected<vfio_irq_info> VfioDevice::IrqInfo(uint32_t index) {
  if (Closed()) return ClosedStatus("VFIO_DEVICE_GET_IRQ_INFO");
  vfio_irq_info info = {};
  info.argsz = sizeof(info);
  info.index = index;
  int r = sys::Ioctl(fd_.Get(), VFIO_DEVICE_GET_IRQ_INFO, &info);
  if (r < 0) {
    return Status("VFIO_DEVICE_GET_IRQ_INFO", -r,
                  {{"bdf", DetailValue::Str(bdf_)}, {"index", DetailValue::Num(index)}});
  }
  return info;
}

Status VfioDevice::SetIrqs(uint32_t index, uint32_t action, uint32_t start,
                           const IrqPayload& payload) {
  if (Closed()) return ClosedStatus("VFIO_DEVICE_SET_IRQS");
  size_t elem = payload.data_type == VFIO_IRQ_SET_DATA_BOOL      ? sizeof(uint8_t)
                : payload.data_type == VFIO_IRQ_SET_DATA_EVENTFD ? sizeof(int32_t)
                                                                 : 0;
  // SAFETY: FAM size calculation: header plus count elements of the payload type; count is
  // bounded by the JS array length (checked < 2^16 by the caller).
  InfoBuffer buf(sizeof(vfio_irq_set) + size_t{payload.count} * elem);
  auto* set = buf.As<vfio_irq_set>();
  set->flags = payload.data_type | action;
  set->index = index;
  set->start = start;
  set->count = payload.count;
  // SAFETY: the data[] area has exactly count * elem bytes (buffer sized above).
  if (elem == sizeof(uint8_t))
    std::memcpy(buf.Bytes() + sizeof(vfio_irq_set), payload.bools.data(), payload.count);
  if (elem == sizeof(int32_t)) {
    std::memcpy(buf.Bytes() + sizeof(vfio_irq_set), payload.fds.data(), payload.count * elem);
  }
  int r = sys::Ioctl(fd_.Get(), VFIO_DEVICE_SET_IRQS, buf.Bytes());
  return Status::FromRet("VFIO_DEVICE_SET_IRQS", r,
                         {{"bdf", DetailValue::Str(bdf_)},
                          {"index", DetailValue::Num(index)},
                          {"start", DetailValue::Num(start)},
                          {"count", DetailValue::Num(payload.count)}});
}

Status VfioDevice::Reset() {
  if (Closed()) return ClosedStatus("VFIO_DEVICE_RESET");
  int r = sys::Ioctl(fd_.Get(), VFIO_DEVICE_RESET, nullptr);
  return Status::FromRet("VFIO_DEVICE_RESET", r, {{"bdf", DetailValue::Str(bdf_)}});
}

Status VfioDevice::ReadBlock(uint32_t index, uint64_t offset, uint8_t* out, size_t length) {
  if (Closed()) return ClosedStatus("pread");
  auto region = Region(index);
  if (!region.ok()) return region.status();
  ssize_t r = sys::Pread(fd_.Get(), out, length, (*region)->fd_offset + offset);
  if (r < 0) return Status("pread", static_cast<int>(-r), RegionDetail(index, offset));
  if (static_cast<size_t>(r) != length) return Status("pread", EIO, RegionDetail(index, offset));
  return Status();
}

Status VfioDevice::WriteBlock(uint32_t index, uint64_t offset, const uint8_t* data, size_t length) {
  if (Closed()) return ClosedStatus("pwrite");
  auto region = Region(index);
  if (!region.ok()) return region.status();
  ssize_t r = sys::Pwrite(fd_.Get(), data, length, (*region)->fd_offset + offset);
  if (r < 0) return Status("pwrite", static_cast<int>(-r), RegionDetail(index, offset));
  if (static_cast<size_t>(r) != length) return Status("pwrite", EIO, RegionDetail(index, offset));
  return Status();
}

Status VfioDevice::Read(uint32_t index, uint64_t offset, unsigned width, uint64_t* value) {
  alignas(8) uint8_t bytes[8] = {};
  Status s = ReadBlock(index, offset, bytes, width);
  if (!s.ok()) return s;
  // One pread of exactly `width` bytes: vfio-pci turns it into one access of that width.
  // SAFETY: bytes holds 8 aligned-enough bytes; reading `width` <= 8 of them.
  *value = MmioLoad(bytes, width);
  return Status();
}

Status VfioDevice::Write(uint32_t index, uint64_t offset, unsigned width, uint64_t value) {
  alignas(8) uint8_t bytes[8] = {};
  MmioStore(bytes, width, value);
  return WriteBlock(index, offset, bytes, width);
}

Expected<std::shared_ptr<RegionMapping>> VfioDevice::Map(uint32_t index, uint64_t offset,
                                                         uint64_t size) {
  if (Closed()) return ClosedStatus("mmap");
  auto region = Region(index);
  if (!region.ok()) return region.status();
  // vfio_pci_core_mmap refuses PROT_WRITE on a region without the WRITE flag (and READ alike)
  int prot = ((*region)->flags & VFIO_REGION_INFO_FLAG_READ ? PROT_READ : 0) |
             ((*region)->flags & VFIO_REGION_INFO_FLAG_WRITE ? PROT_WRITE : 0);
  void* addr = nullptr;
  int r = sys::Mmap(&addr, size, prot, MAP_SHARED, fd_.Get(), (*region)->fd_offset + offset);
  if (r < 0) {
    Detail d = RegionDetail(index, offset);
    d.emplace_back("size", DetailValue::Num(size));
    return Status("mmap", -r, d);
  }
  auto mapping = std::make_shared<RegionMapping>(Mapping(addr, size), index, offset, prot);
  // forget mappings JS has already dropped (their destructor munmapped them)
  mappings_.erase(std::remove_if(mappings_.begin(), mappings_.end(),
                                 [](const std::weak_ptr<RegionMapping>& w) { return w.expired(); }),
                  mappings_.end());
  mappings_.push_back(mapping);
  return mapping;
}

void VfioDevice::Close() {
  for (auto& weak : mappings_) {
    if (auto m = weak.lock()) m->Kill();
  }
  mappings_.clear();
  fd_.Reset();
}

}  // namespace vfiobox
