// SPDX-License-Identifier: MIT
// DmaTable: the IOVA interval map behind Iommu.dmaMap/dmaUnmap and the vfio-user server's DMA.
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
//
// Layout: one vector sorted by iova (entries never overlap), so a map allocates nothing once
// the vector has grown, lookups are a binary search, and the common patterns (maps at rising
// IOVAs, unmaps of the newest entries) touch only the end of the vector. An insert or erase in
// the middle moves the entries behind it: O(n) with n bounded by the callers (the vfio-user
// server's max_dma_maps; the kernel's own dma_entry_limit, 65535 by default, for an Iommu).
// The two-step calls (FindSlot + InsertAt, FindUnmap + Erase) let a caller check once, ask
// the kernel in between, and then commit without checking the range again.
#ifndef VFIOBOX_NATIVE_SRC_DMA_TABLE_H_
#define VFIOBOX_NATIVE_SRC_DMA_TABLE_H_

#include <cstddef>
#include <cstdint>
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
  int fd = -1;  // the memory's file, kept open by `owner` (-1: not kept), for DMA windows
};

/** the part of a range that one entry holds (TranslateSpan). */
struct DmaSpan {
  uint8_t* hva = nullptr;
  uint64_t len = 0;
  bool may_fault = false;
};

class DmaTable {
 public:
  /** page_size must be a power of two. */
  explicit DmaTable(uint64_t page_size = 4096) : page_mask_(page_size - 1) {}

  /** The entries [first, end) an unmap removes, and their total size. */
  struct Span {
    size_t first = 0;
    size_t end = 0;
    uint64_t bytes = 0;
  };

  /** 0 if Insert would succeed, else -EINVAL or -EEXIST (see the header comment). */
  int CheckMap(uint64_t iova, uint64_t size) const;
  /** the position a map of [iova, iova+size) goes to in *slot, or -EINVAL / -EEXIST. */
  int FindSlot(uint64_t iova, uint64_t size, size_t* slot) const;
  /** commits a FindSlot result: O(1) neighbour check (-EEXIST if the table changed since). */
  int InsertAt(size_t slot, DmaEntry entry);
  int Insert(DmaEntry entry);
  /** bytes Remove would unmap in *bytes (0 when nothing is mapped), or -EINVAL. */
  int CheckUnmap(uint64_t iova, uint64_t size, uint64_t* bytes) const;
  /** the entries an unmap of [iova, iova+size) removes, or -EINVAL (a split, a bad range). */
  int FindUnmap(uint64_t iova, uint64_t size, Span* span) const;
  /** removes a FindUnmap result; the table must not have changed since. */
  void Erase(const Span& span);
  int Remove(uint64_t iova, uint64_t size, uint64_t* bytes);
  /** access: VFIO_DMA_MAP_FLAG_READ and/or _WRITE bits that the entry must have. */
  int Translate(uint64_t iova, uint64_t len, uint32_t access, uint8_t** hva) const;
  /**
   * the leading part of [iova, iova+len) that the entry holding `iova` covers (span->len is
   * at most len), so that a copy over adjacent entries looks each one up once. -EFAULT when
   * `iova` is not mapped, -EACCES when its entry lacks the access, -EINVAL for len 0 or wrap.
   */
  int TranslateSpan(uint64_t iova, uint64_t len, uint32_t access, DmaSpan* span) const;
  /** the entry holding `iova`, or nullptr; valid until the table next changes */
  const DmaEntry* Holding(uint64_t iova) const;
  std::vector<DmaEntry> List() const { return entries_; }
  uint64_t MappedBytes() const;
  size_t Count() const { return entries_.size(); }
  void Clear() { entries_.clear(); }
  uint64_t page_size() const { return page_mask_ + 1; }

 private:
  int CheckRange(uint64_t iova, uint64_t size) const;
  /** index of the first entry whose iova is > `iova` (entries_.size() if none). */
  size_t UpperBound(uint64_t iova) const;

  uint64_t page_mask_;
  std::vector<DmaEntry> entries_;  // sorted by iova; entries never overlap
};

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_DMA_TABLE_H_
