// SPDX-License-Identifier: MIT
#include "native/src/dma_table.h"

#include <cerrno>

namespace vfiobox {

namespace {
// inclusive last byte; callers have checked that it does not wrap
uint64_t Last(uint64_t iova, uint64_t size) { return iova + (size - 1); }
uint64_t Last(const DmaEntry& e) { return Last(e.iova, e.size); }
}  // namespace

int DmaTable::CheckRange(uint64_t iova, uint64_t size) const {
  if (size == 0 || ((iova | size) & page_mask_) != 0) return -EINVAL;
  if (iova > UINT64_MAX - (size - 1)) return -EINVAL;  // iova + size - 1 wraps
  return 0;
}

size_t DmaTable::UpperBound(uint64_t iova) const {
  size_t lo = 0, hi = entries_.size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (entries_[mid].iova <= iova) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

int DmaTable::FindSlot(uint64_t iova, uint64_t size, size_t* slot) const {
  if (int r = CheckRange(iova, size); r < 0) return r;
  size_t n = entries_.size();
  // rising IOVAs (a VMM's RAM layout, a batch) append: one comparison, no search
  size_t at = n == 0 || entries_[n - 1].iova < iova ? n : UpperBound(iova);
  if (at > 0 && Last(entries_[at - 1]) >= iova) return -EEXIST;  // the entry before covers iova
  if (at < n && entries_[at].iova <= Last(iova, size))
    return -EEXIST;  // the next one starts inside
  *slot = at;
  return 0;
}

int DmaTable::CheckMap(uint64_t iova, uint64_t size) const {
  size_t slot = 0;
  return FindSlot(iova, size, &slot);
}

int DmaTable::InsertAt(size_t slot, DmaEntry entry) {
  size_t n = entries_.size();
  // the neighbours FindSlot checked: refuses a stale slot instead of breaking the order
  if (slot > n || entry.size == 0) return -EEXIST;
  if (slot > 0 && Last(entries_[slot - 1]) >= entry.iova) return -EEXIST;
  if (slot < n && entries_[slot].iova <= Last(entry)) return -EEXIST;
  entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(slot), std::move(entry));
  return 0;
}

int DmaTable::Insert(DmaEntry entry) {
  size_t slot = 0;
  if (int r = FindSlot(entry.iova, entry.size, &slot); r < 0) return r;
  return InsertAt(slot, std::move(entry));
}

int DmaTable::FindUnmap(uint64_t iova, uint64_t size, Span* span) const {
  if (int r = CheckRange(iova, size); r < 0) return r;
  uint64_t last = Last(iova, size);
  size_t n = entries_.size();
  size_t first = UpperBound(iova);
  if (first > 0 && entries_[first - 1].iova == iova) {
    --first;  // an entry starting exactly at iova
  } else if (first > 0 && Last(entries_[first - 1]) >= iova) {
    return -EINVAL;  // straddles the start
  }
  uint64_t total = 0;
  size_t end = first;
  for (; end < n && entries_[end].iova <= last; ++end) {
    if (Last(entries_[end]) > last) return -EINVAL;  // straddles the end
    total += entries_[end].size;
  }
  *span = Span{first, end, total};
  return 0;
}

int DmaTable::CheckUnmap(uint64_t iova, uint64_t size, uint64_t* bytes) const {
  Span span;
  if (int r = FindUnmap(iova, size, &span); r < 0) return r;
  *bytes = span.bytes;
  return 0;
}

void DmaTable::Erase(const Span& span) {
  if (span.first >= span.end || span.end > entries_.size()) return;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(span.first),
                 entries_.begin() + static_cast<std::ptrdiff_t>(span.end));
}

int DmaTable::Remove(uint64_t iova, uint64_t size, uint64_t* bytes) {
  Span span;
  if (int r = FindUnmap(iova, size, &span); r < 0) return r;
  Erase(span);
  *bytes = span.bytes;
  return 0;
}

int DmaTable::Translate(uint64_t iova, uint64_t len, uint32_t access, uint8_t** hva) const {
  if (len == 0 || iova > UINT64_MAX - (len - 1)) return -EINVAL;
  const DmaEntry* held = Holding(iova);
  if (held == nullptr) return -EFAULT;
  const DmaEntry& e = *held;
  if (Last(iova, len) > Last(e)) return -EFAULT;  // not inside it
  if ((e.flags & access) != access) return -EACCES;
  // SAFETY: e.iova <= iova and iova + len - 1 <= e's last byte (checked above), and e.hva
  // points at e.size bytes kept alive by e.owner, so the result stays inside the entry.
  *hva = e.hva + (iova - e.iova);
  return 0;
}

int DmaTable::TranslateSpan(uint64_t iova, uint64_t len, uint32_t access, DmaSpan* span) const {
  if (len == 0 || iova > UINT64_MAX - (len - 1)) return -EINVAL;
  const DmaEntry* held = Holding(iova);
  if (held == nullptr) return -EFAULT;
  const DmaEntry& e = *held;
  uint64_t skip = iova - e.iova;  // < e.size (Holding)
  if ((e.flags & access) != access) return -EACCES;
  // SAFETY: skip < e.size and span->len <= e.size - skip, so [hva, hva + len) stays inside the
  // entry's memory, kept alive by e.owner.
  span->hva = e.hva + skip;
  span->len = len < e.size - skip ? len : e.size - skip;
  span->may_fault = e.may_fault;
  return 0;
}

const DmaEntry* DmaTable::Holding(uint64_t iova) const {
  size_t at = UpperBound(iova);
  if (at == 0) return nullptr;
  const DmaEntry& e = entries_[at - 1];  // the last entry starting at or below iova
  return iova - e.iova < e.size ? &e : nullptr;
}

uint64_t DmaTable::MappedBytes() const {
  uint64_t total = 0;
  for (const DmaEntry& e : entries_) total += e.size;
  return total;
}

}  // namespace vfiobox
