// SPDX-License-Identifier: MIT
// DmaTable: the IOVA interval map behind Iommu.dmaMap/dmaUnmap and (later) plugin DMA.
// Pure C++, no Napi, no syscalls; unit-tested in native/test/dma_table_test.cc.
//
// Semantics (the table and the kernel must never disagree, so these follow what BOTH the
// type1v2 backend (drivers/vfio/vfio_iommu_type1.c, vfio_dma_do_unmap) and iommufd
// (drivers/iommu/iommufd/io_pagetable.c, iopt_unmap_iova_range) accept):
//  - map: size > 0, iova and size multiples of the page size, and iova + size - 1 must not
//    wrap past 2^64 - 1 (a mapping may end exactly at 2^64): otherwise -EINVAL. A range that
//    overlaps any existing entry: -EEXIST. Nothing is merged; every map is its own entry.
//  - unmap of [iova, iova+size): same alignment/wrap/size rules (-EINVAL). Every entry wholly
//    inside the range is removed. An entry that straddles either boundary would have to be
//    split; type1v2 refuses that with EINVAL and iommufd with ENOENT, so the table refuses
//    it up front with -EINVAL and removes nothing. A range with nothing mapped removes 0 bytes
//    and succeeds (callers must not pass such a range to iommufd, which says ENOENT).
//  - translate(iova, len): the host pointer for a range lying wholly inside ONE entry whose
//    flags include the requested access; -EFAULT when not mapped (or spanning entries),
//    -EACCES when the entry lacks the access.
//  - TranslateSpan(iova, len): the same for the leading part of the range inside the entry
//    holding iova (a copy walks adjacent entries with it).
//  - entries hold a shared owner of the host memory, so a DmaBuffer's pages stay mapped while
//    any entry refers to them, even after the JS side closed the buffer.
#ifndef VFIOBOX_NATIVE_SRC_DMA_TABLE_H_
#define VFIOBOX_NATIVE_SRC_DMA_TABLE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace vfiobox {

struct DmaEntry {
  uint64_t iova = 0;
  uint64_t size = 0;
  uint8_t* hva = nullptr;       // host address of the entry's first byte
  std::shared_ptr<void> owner;  // keeps the memory behind hva mapped
  uint64_t buffer_offset = 0;   // offset of hva inside its buffer (reported to JS)
  uint32_t flags = 0;           // VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE
  bool may_fault = false;       // the memory may lose pages (a client fd that can shrink)
};

/** the part of a range that one entry holds (TranslateSpan). */
struct DmaSpan {
  uint8_t* hva = nullptr;
  uint64_t len = 0;
  bool may_fault = false;
};

class DmaTable {
 public:
  explicit DmaTable(uint64_t page_size = 4096) : page_size_(page_size) {}

  /** 0 if Insert would succeed, else -EINVAL or -EEXIST (see the header comment). */
  int CheckMap(uint64_t iova, uint64_t size) const;
  int Insert(DmaEntry entry);
  /** bytes Remove would unmap in *bytes (0 when nothing is mapped), or -EINVAL. */
  int CheckUnmap(uint64_t iova, uint64_t size, uint64_t* bytes) const;
  int Remove(uint64_t iova, uint64_t size, uint64_t* bytes);
  /** access: VFIO_DMA_MAP_FLAG_READ and/or _WRITE bits that the entry must have. */
  int Translate(uint64_t iova, uint64_t len, uint32_t access, uint8_t** hva) const;
  /**
   * the leading part of [iova, iova+len) that the entry holding `iova` covers (span->len is
   * at most len), so that a copy over adjacent entries looks each one up once. -EFAULT when
   * `iova` is not mapped, -EACCES when its entry lacks the access, -EINVAL for len 0 or wrap.
   */
  int TranslateSpan(uint64_t iova, uint64_t len, uint32_t access, DmaSpan* span) const;
  std::vector<DmaEntry> List() const;
  uint64_t MappedBytes() const;
  size_t Count() const { return entries_.size(); }
  void Clear() { entries_.clear(); }
  uint64_t page_size() const { return page_size_; }

 private:
  int CheckRange(uint64_t iova, uint64_t size) const;
  /** the entry containing `iova`, or end(). */
  std::map<uint64_t, DmaEntry>::const_iterator Find(uint64_t iova) const;

  uint64_t page_size_;
  std::map<uint64_t, DmaEntry> entries_;  // keyed by iova; entries never overlap
};

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_DMA_TABLE_H_
