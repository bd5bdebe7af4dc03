// SPDX-License-Identifier: MIT
#include "native/src/dma_table.h"

#include <cerrno>

namespace vfiobox {

namespace {
// inclusive last byte; callers have checked that it does not wrap
uint64_t Last(uint64_t iova, uint64_t size) { return iova + (size - 1); }
}  // namespace

int DmaTable::CheckRange(uint64_t iova, uint64_t size) const {
  if (size == 0 || iova % page_size_ != 0 || size % page_size_ != 0) return -EINVAL;
  if (iova > UINT64_MAX - (size - 1)) return -EINVAL;  // iova + size - 1 wraps
  return 0;
}

std::map<uint64_t, DmaEntry>::const_iterator DmaTable::Find(uint64_t iova) const {
  auto it = entries_.upper_bound(iova);  // first entry starting after iova
  if (it == entries_.begin()) return entries_.end();
  --it;
  return iova <= Last(it->second.iova, it->second.size) ? it : entries_.end();
}

int DmaTable::CheckMap(uint64_t iova, uint64_t size) const {
  if (int r = CheckRange(iova, size); r < 0) return r;
  if (Find(iova) != entries_.end()) return -EEXIST;
  // an entry starting inside (iova, last] overlaps too
  auto next = entries_.upper_bound(iova);
  if (next != entries_.end() && next->first <= Last(iova, size)) return -EEXIST;
  return 0;
}

int DmaTable::Insert(DmaEntry entry) {
  if (int r = CheckMap(entry.iova, entry.size); r < 0) return r;
  uint64_t key = entry.iova;
  entries_.emplace(key, std::move(entry));
  return 0;
}

int DmaTable::CheckUnmap(uint64_t iova, uint64_t size, uint64_t* bytes) const {
  if (int r = CheckRange(iova, size); r < 0) return r;
  uint64_t last = Last(iova, size);
  auto first = Find(iova);
  if (first != entries_.end() && first->first < iova) return -EINVAL;  // straddles the start
  auto end_hit = Find(last);
  if (end_hit != entries_.end() && Last(end_hit->first, end_hit->second.size) > last) {
    return -EINVAL;  // straddles the end
  }
  uint64_t total = 0;
  for (auto it = entries_.lower_bound(iova); it != entries_.end() && it->first <= last; ++it) {
    total += it->second.size;
  }
  *bytes = total;
  return 0;
}

int DmaTable::Remove(uint64_t iova, uint64_t size, uint64_t* bytes) {
  if (int r = CheckUnmap(iova, size, bytes); r < 0) return r;
  uint64_t last = Last(iova, size);
  auto it = entries_.lower_bound(iova);
  while (it != entries_.end() && it->first <= last) it = entries_.erase(it);
  return 0;
}

int DmaTable::Translate(uint64_t iova, uint64_t len, uint32_t access, uint8_t** hva) const {
  if (len == 0 || iova > UINT64_MAX - (len - 1)) return -EINVAL;
  auto it = Find(iova);
  if (it == entries_.end()) return -EFAULT;
  const DmaEntry& e = it->second;
  if (Last(iova, len) > Last(e.iova, e.size)) return -EFAULT;
  if ((e.flags & access) != access) return -EACCES;
  // SAFETY: iova - e.iova < e.size (checked above), and e.hva points at e.size bytes kept
  // alive by e.owner, so the result stays inside the entry's memory.
  *hva = e.hva + (iova - e.iova);
  return 0;
}

int DmaTable::TranslateSpan(uint64_t iova, uint64_t len, uint32_t access, DmaSpan* span) const {
  if (len == 0 || iova > UINT64_MAX - (len - 1)) return -EINVAL;
  auto it = Find(iova);
  if (it == entries_.end()) return -EFAULT;
  const DmaEntry& e = it->second;
  if ((e.flags & access) != access) return -EACCES;
  uint64_t skip = iova - e.iova;  // < e.size: Find says iova lies inside e
  // SAFETY: skip < e.size and span->len <= e.size - skip, so [hva, hva + len) stays inside the
  // entry's memory, kept alive by e.owner.
  span->hva = e.hva + skip;
  span->len = len < e.size - skip ? len : e.size - skip;
  span->may_fault = e.may_fault;
  return 0;
}

std::vector<DmaEntry> DmaTable::List() const {
  std::vector<DmaEntry> out;
  out.reserve(entries_.size());
  for (const auto& kv : entries_) out.push_back(kv.second);
  return out;
}

uint64_t DmaTable::MappedBytes() const {
  uint64_t total = 0;
  for (const auto& kv : entries_) total += kv.second.size;
  return total;
}

}  // namespace vfiobox
