// SPDX-License-Identifier: MIT
#include "native/src/iommu_context.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "native/src/sys.h"

namespace vfiobox {

namespace {
Detail RangeDetail(uint64_t iova, uint64_t size) {
  return {{"iova", DetailValue::Big(iova)}, {"size", DetailValue::Num(size)}};
}
}  // namespace

std::string FormatRanges(const std::vector<IovaRange>& ranges) {
  std::string out = "[";
  char buf[64];
  for (size_t i = 0; i < ranges.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%s0x%llx-0x%llx", i ? "," : "",
                  static_cast<unsigned long long>(ranges[i].start),
                  static_cast<unsigned long long>(ranges[i].last));
    out += buf;
  }
  return out + "]";
}

Expected<std::shared_ptr<IommuContext>> IommuContext::Create(const std::string& kind) {
  Expected<std::unique_ptr<IommuBackend>> backend =
      kind == "iommufd" ? CreateIommufdBackend() : CreateLegacyBackend(kind == "noiommu");
  if (!backend.ok()) return backend.status();
  return std::make_shared<IommuContext>(std::move(*backend), kind);
}

IommuContext::IommuContext(std::unique_ptr<IommuBackend> backend, std::string kind)
    : backend_(std::move(backend)),
      kind_(std::move(kind)),
      table_(static_cast<uint64_t>(sys::PageSize())) {}

Status IommuContext::ClosedStatus(const char* op) const {
  return Status::Custom(op, EBADF, "ERR_VFIO_CLOSED", "the Iommu is closed");
}

Expected<std::shared_ptr<VfioDevice>> IommuContext::OpenDevice(const DeviceOpenSpec& spec) {
  if (Closed()) return ClosedStatus("open");
  auto fd = backend_->OpenDevice(spec);
  if (!fd.ok()) return fd.status();
  ranges_.reset();  // a new device's reserved regions can shrink the valid ranges
  auto device = std::make_shared<VfioDevice>(std::move(*fd), spec.bdf);
  devices_.erase(std::remove_if(devices_.begin(), devices_.end(),
                                [](const std::weak_ptr<VfioDevice>& w) { return w.expired(); }),
                 devices_.end());
  devices_.push_back(device);
  return device;
}

Status IommuContext::LoadRanges() {
  if (Closed())
    return ClosedStatus(kind_ == "iommufd" ? "IOMMU_IOAS_IOVA_RANGES" : "VFIO_IOMMU_GET_INFO");
  if (!ranges_) {
    auto ranges = backend_->IovaRanges();
    if (!ranges.ok()) return ranges.status();
    ranges_ = std::move(*ranges);
  }
  return Status();
}

Expected<std::vector<IovaRange>> IommuContext::IovaRanges() {
  if (Status s = LoadRanges(); !s.ok()) return s;
  return *ranges_;
}

Expected<uint64_t> IommuContext::PageSizes() {
  if (Closed())
    return ClosedStatus(kind_ == "iommufd" ? "IOMMU_IOAS_IOVA_RANGES" : "VFIO_IOMMU_GET_INFO");
  return backend_->PageSizes();
}

Status IommuContext::CheckIovaRanges(uint64_t iova, uint64_t size) {
  // per map: the cached ranges by reference, no copy (bench/README.md, the profile); the
  // caller checked Closed(), so only the first map asks the kernel
  if (!ranges_) {
    if (Status s = LoadRanges(); !s.ok()) return s;
  }
  uint64_t last = iova + (size - 1);  // the table already refused wrapping ranges
  for (const IovaRange& r : *ranges_) {
    if (iova >= r.start && last <= r.last) return Status();
  }
  Detail d = RangeDetail(iova, size);
  d.emplace_back("valid", DetailValue::Str(FormatRanges(*ranges_)));
  return Status::Custom(backend_->MapOp(), ERANGE, "ERR_VFIO_IOVA_RANGE",
                        "IOVA range is outside the IOMMU's valid IOVA ranges", d);
}

Status IommuContext::DmaMap(std::shared_ptr<void> owner, uint8_t* hva, uint64_t buffer_offset,
                            uint64_t iova, uint64_t size, uint32_t flags) {
  if (Closed()) return ClosedStatus(kind_ == "iommufd" ? "IOMMU_IOAS_MAP" : "VFIO_IOMMU_MAP_DMA");
  const char* op = backend_->MapOp();
  if (!backend_->SupportsDma()) {
    return Status::Custom(op, ENOTSUP, "ERR_VFIO_NOIOMMU_DMA",
                          "no-IOMMU mode cannot map DMA: the device sees physical addresses; "
                          "lock a DmaBuffer and give the device DmaBuffer.physAddr()",
                          RangeDetail(iova, size));
  }
  // one interval check: the slot found here is committed after the kernel said yes
  size_t slot = 0;
  if (int r = table_.FindSlot(iova, size, &slot); r < 0) {
    return Status(op, -r, RangeDetail(iova, size));  // detail only on failure
  }
  if (Status s = CheckIovaRanges(iova, size); !s.ok()) return s;
  if (Status s = backend_->DmaMap(iova, size, hva, flags); !s.ok()) return s;
  // cannot fail (nothing changed the table since FindSlot); if it did, undo the kernel's map
  DmaEntry entry{iova, size, hva, std::move(owner), buffer_offset, flags};
  if (int r = table_.InsertAt(slot, std::move(entry)); r < 0) {
    backend_->DmaUnmap(iova, size);
    return Status(op, -r, RangeDetail(iova, size));
  }
  return Status();
}

Expected<uint64_t> IommuContext::DmaUnmap(uint64_t iova, uint64_t size) {
  if (Closed()) {
    return ClosedStatus(kind_ == "iommufd" ? "IOMMU_IOAS_UNMAP" : "VFIO_IOMMU_UNMAP_DMA");
  }
  const char* op = backend_->UnmapOp();
  DmaTable::Span span;  // one interval check; the span is erased after the kernel's unmap
  if (int r = table_.FindUnmap(iova, size, &span); r < 0) {
    Detail d = RangeDetail(iova, size);
    if (r == -EINVAL && size != 0) d.emplace_back("reason", DetailValue::Str("would-split-entry"));
    return Status(op, -r, d);
  }
  if (span.bytes == 0) return uint64_t{0};  // nothing mapped there (iommufd would say ENOENT)
  auto unmapped = backend_->DmaUnmap(iova, size);
  if (!unmapped.ok()) return unmapped.status();
  table_.Erase(span);
  if (*unmapped != span.bytes) {
    Detail d = RangeDetail(iova, size);
    d.emplace_back("kernelBytes", DetailValue::Num(*unmapped));
    d.emplace_back("tableBytes", DetailValue::Num(span.bytes));
    return Status::Custom(op, EIO, "ERR_VFIO_TABLE_MISMATCH",
                          "the kernel unmapped a different byte count than the DMA table held", d);
  }
  return span.bytes;
}

Status IommuContext::DmaMapUnmapLoop(const std::shared_ptr<void>& owner, uint8_t* hva,
                                     uint64_t buffer_offset, uint64_t iova, uint64_t size,
                                     uint32_t flags, uint64_t n, bool through_table) {
  if (through_table) {
    for (uint64_t i = 0; i < n; ++i) {
      if (Status s = DmaMap(owner, hva, buffer_offset, iova, size, flags); !s.ok()) return s;
      auto bytes = DmaUnmap(iova, size);
      if (!bytes.ok()) return bytes.status();
    }
    return Status();
  }
  if (Closed()) return ClosedStatus(kind_ == "iommufd" ? "IOMMU_IOAS_MAP" : "VFIO_IOMMU_MAP_DMA");
  const char* op = backend_->MapOp();
  if (!backend_->SupportsDma())
    return Status::Custom(op, ENOTSUP, "ERR_VFIO_NOIOMMU_DMA", "no-IOMMU mode cannot map DMA");
  if (int r = table_.CheckMap(iova, size); r < 0) return Status(op, -r, RangeDetail(iova, size));
  if (Status s = CheckIovaRanges(iova, size); !s.ok()) return s;
  for (uint64_t i = 0; i < n; ++i) {
    if (Status s = backend_->DmaMap(iova, size, hva, flags); !s.ok()) return s;
    auto unmapped = backend_->DmaUnmap(iova, size);
    if (!unmapped.ok()) return unmapped.status();
    if (*unmapped != size) {
      return Status::Custom(backend_->UnmapOp(), EIO, "ERR_VFIO_TABLE_MISMATCH",
                            "the kernel unmapped a different byte count than was mapped",
                            RangeDetail(iova, size));
    }
  }
  return Status();
}

void IommuContext::Close() {
  if (Closed()) return;
  for (auto& weak : devices_) {
    if (auto device = weak.lock()) device->Close();
  }
  devices_.clear();
  for (const DmaEntry& e : table_.List()) backend_->DmaUnmap(e.iova, e.size);  // best effort
  backend_->Release();
  backend_.reset();
  table_.Clear();  // only now may DmaBuffer memory go away: the kernel no longer pins it
  ranges_.reset();
}

}  // namespace vfiobox
