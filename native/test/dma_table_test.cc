// SPDX-License-Identifier: MIT
// DmaTable semantics (see dma_table.h): overlap, wrap, alignment, split refusal, multi-entry
// unmap, translate bounds and shared ownership of the host memory.
#include "native/src/dma_table.h"

#include <linux/vfio.h>

#include <cerrno>
#include <vector>

#include "native/test/check.h"

namespace vfiobox {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint32_t kRw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

struct Buffer {
  std::shared_ptr<std::vector<uint8_t>> bytes = std::make_shared<std::vector<uint8_t>>(16 * kPage);
};

DmaEntry Entry(Buffer& b, uint64_t iova, uint64_t size, uint64_t off = 0, uint32_t flags = kRw) {
  return DmaEntry{iova, size, b.bytes->data() + off, b.bytes, off, flags};
}

void TestOverlap() {
  DmaTable t(kPage);
  Buffer b;
  CHECK_EQ(t.Insert(Entry(b, 0x10000, 2 * kPage)), 0);
  CHECK_EQ(t.Insert(Entry(b, 0x10000, kPage)), -EEXIST);     // same start
  CHECK_EQ(t.Insert(Entry(b, 0x11000, kPage)), -EEXIST);     // inside
  CHECK_EQ(t.Insert(Entry(b, 0xf000, 2 * kPage)), -EEXIST);  // straddles the start
  CHECK_EQ(t.Insert(Entry(b, 0xf000, 4 * kPage)), -EEXIST);  // covers it
  CHECK_EQ(t.Insert(Entry(b, 0xf000, kPage)), 0);            // adjacent below
  CHECK_EQ(t.Insert(Entry(b, 0x12000, kPage)), 0);           // adjacent above
  CHECK_EQ(t.Count(), 3u);
  CHECK_EQ(t.MappedBytes(), 4 * kPage);
}

void TestArgumentRules() {
  DmaTable t(kPage);
  Buffer b;
  CHECK_EQ(t.CheckMap(0x1000, 0), -EINVAL);                          // size 0
  CHECK_EQ(t.CheckMap(0x1001, kPage), -EINVAL);                      // unaligned iova
  CHECK_EQ(t.CheckMap(0x1000, 100), -EINVAL);                        // unaligned size
  CHECK_EQ(t.CheckMap(UINT64_MAX - kPage + 1, 2 * kPage), -EINVAL);  // wraps
  CHECK_EQ(t.Insert(Entry(b, UINT64_MAX - kPage + 1, kPage)), 0);    // ends exactly at 2^64
  uint64_t bytes = 7;
  CHECK_EQ(t.CheckUnmap(0x1000, 0, &bytes), -EINVAL);
  CHECK_EQ(t.CheckUnmap(UINT64_MAX - kPage + 1, 2 * kPage, &bytes), -EINVAL);
  CHECK_EQ(t.Remove(UINT64_MAX - kPage + 1, kPage, &bytes), 0);
  CHECK_EQ(bytes, kPage);
}

void TestPartialUnmapRefused() {
  DmaTable t(kPage);
  Buffer b;
  CHECK_EQ(t.Insert(Entry(b, 0x10000, 4 * kPage)), 0);
  uint64_t bytes = 0;
  CHECK_EQ(t.Remove(0x10000, kPage, &bytes), -EINVAL);      // would split at the end
  CHECK_EQ(t.Remove(0x11000, 3 * kPage, &bytes), -EINVAL);  // would split at the start
  CHECK_EQ(t.Remove(0x11000, kPage, &bytes), -EINVAL);      // a hole in the middle
  CHECK_EQ(t.Remove(0xf000, 2 * kPage, &bytes), -EINVAL);   // straddles the start
  CHECK_EQ(t.Count(), 1u);                                  // nothing removed
  CHECK_EQ(t.MappedBytes(), 4 * kPage);
}

void TestFullUnmapOfSeveral() {
  DmaTable t(kPage);
  Buffer b;
  CHECK_EQ(t.Insert(Entry(b, 0x10000, kPage)), 0);
  CHECK_EQ(t.Insert(Entry(b, 0x12000, 2 * kPage, kPage)), 0);
  CHECK_EQ(t.Insert(Entry(b, 0x20000, kPage)), 0);
  uint64_t bytes = 0;
  CHECK_EQ(t.Remove(0x10000, 0x8000, &bytes), 0);  // first two, gap included
  CHECK_EQ(bytes, 3 * kPage);
  CHECK_EQ(t.Count(), 1u);
  CHECK_EQ(t.Remove(0x30000, kPage, &bytes), 0);  // nothing there: 0 bytes
  CHECK_EQ(bytes, 0u);
  CHECK_EQ(t.Remove(0, UINT64_MAX - kPage + 1, &bytes), 0);  // everything
  CHECK_EQ(bytes, kPage);
  CHECK_EQ(t.Count(), 0u);
}

void TestTranslate() {
  DmaTable t(kPage);
  Buffer b;
  CHECK_EQ(t.Insert(Entry(b, 0x10000, 2 * kPage, kPage)), 0);
  CHECK_EQ(t.Insert(Entry(b, 0x40000, kPage, 0, VFIO_DMA_MAP_FLAG_READ)), 0);
  uint8_t* hva = nullptr;
  CHECK_EQ(t.Translate(0x10010, 16, VFIO_DMA_MAP_FLAG_READ, &hva), 0);
  CHECK(hva == b.bytes->data() + kPage + 0x10);
  CHECK_EQ(t.Translate(0x11ff0, 16, VFIO_DMA_MAP_FLAG_WRITE, &hva), 0);         // last 16 bytes
  CHECK_EQ(t.Translate(0x11ff0, 17, VFIO_DMA_MAP_FLAG_READ, &hva), -EFAULT);    // one past
  CHECK_EQ(t.Translate(0xfff0, 32, VFIO_DMA_MAP_FLAG_READ, &hva), -EFAULT);     // before
  CHECK_EQ(t.Translate(0x30000, 1, VFIO_DMA_MAP_FLAG_READ, &hva), -EFAULT);     // unmapped
  CHECK_EQ(t.Translate(0x10000, 0, VFIO_DMA_MAP_FLAG_READ, &hva), -EINVAL);     // empty
  CHECK_EQ(t.Translate(UINT64_MAX, 2, VFIO_DMA_MAP_FLAG_READ, &hva), -EINVAL);  // wraps
  CHECK_EQ(t.Translate(0x40000, 4, VFIO_DMA_MAP_FLAG_WRITE, &hva), -EACCES);    // read-only
}

void TestTranslateSpan() {
  DmaTable t(kPage);
  Buffer b;
  DmaEntry shrinkable = Entry(b, 0x10000, 2 * kPage, 0, VFIO_DMA_MAP_FLAG_READ);
  shrinkable.may_fault = true;
  CHECK_EQ(t.Insert(std::move(shrinkable)), 0);
  CHECK_EQ(t.Insert(Entry(b, 0x12000, kPage, 4 * kPage)), 0);  // adjacent
  DmaSpan s;
  CHECK_EQ(t.TranslateSpan(0x11ff0, 0x20, VFIO_DMA_MAP_FLAG_READ, &s), 0);
  CHECK(s.hva == b.bytes->data() + 0x1ff0);
  CHECK_EQ(s.len, 0x10u);  // the rest is in the next entry
  CHECK(s.may_fault);
  CHECK_EQ(t.TranslateSpan(0x12000, 0x10, VFIO_DMA_MAP_FLAG_READ, &s), 0);
  CHECK(s.hva == b.bytes->data() + 4 * kPage);
  CHECK_EQ(s.len, 0x10u);
  CHECK(!s.may_fault);
  CHECK_EQ(t.TranslateSpan(0x12ff0, 0x100, VFIO_DMA_MAP_FLAG_READ, &s), 0);
  CHECK_EQ(s.len, 0x10u);  // ends with the entry; the caller finds nothing after it
  CHECK_EQ(t.TranslateSpan(0x13000, 1, VFIO_DMA_MAP_FLAG_READ, &s), -EFAULT);
  CHECK_EQ(t.TranslateSpan(0x10000, 1, VFIO_DMA_MAP_FLAG_WRITE, &s), -EACCES);
  CHECK_EQ(t.TranslateSpan(0x10000, 0, VFIO_DMA_MAP_FLAG_READ, &s), -EINVAL);
  CHECK_EQ(t.TranslateSpan(UINT64_MAX, 2, VFIO_DMA_MAP_FLAG_READ, &s), -EINVAL);
}

void TestSharedOwnership() {
  DmaTable t(kPage);
  std::weak_ptr<std::vector<uint8_t>> weak;
  {
    Buffer b;
    weak = b.bytes;
    CHECK_EQ(t.Insert(Entry(b, 0x10000, kPage)), 0);
  }                        // the "JS" reference is gone
  CHECK(!weak.expired());  // the table keeps the memory alive
  uint64_t bytes = 0;
  CHECK_EQ(t.Remove(0x10000, kPage, &bytes), 0);
  CHECK(weak.expired());
}

void TestOrderAcrossInsertsAndErases() {
  DmaTable t(kPage);
  Buffer b;
  for (uint64_t iova : {0x50000, 0x10000, 0x30000, 0x70000, 0x20000}) {
    CHECK_EQ(t.Insert(Entry(b, iova, kPage)), 0);
  }
  CHECK_EQ(t.Insert(Entry(b, 0x2f000, 2 * kPage)), -EEXIST);  // ends inside 0x30000
  std::vector<uint64_t> iovas;
  for (const DmaEntry& e : t.List()) iovas.push_back(e.iova);
  CHECK(iovas == (std::vector<uint64_t>{0x10000, 0x20000, 0x30000, 0x50000, 0x70000}));
  uint64_t bytes = 0;
  CHECK_EQ(t.Remove(0x20000, 0x20000, &bytes), 0);  // the middle two
  CHECK_EQ(bytes, 2 * kPage);
  uint8_t* hva = nullptr;
  CHECK_EQ(t.Translate(0x50000, 8, VFIO_DMA_MAP_FLAG_READ, &hva), 0);
  CHECK_EQ(t.Translate(0x30000, 8, VFIO_DMA_MAP_FLAG_READ, &hva), -EFAULT);
  CHECK_EQ(t.Count(), 3u);
}

void TestTwoStepCalls() {
  DmaTable t(kPage);
  Buffer b;
  size_t slot = 99;
  CHECK_EQ(t.FindSlot(0x10000, kPage, &slot), 0);
  CHECK_EQ(slot, 0u);
  CHECK_EQ(t.FindSlot(0x10001, kPage, &slot), -EINVAL);
  CHECK_EQ(t.InsertAt(0, Entry(b, 0x10000, kPage)), 0);
  CHECK_EQ(t.FindSlot(0x12000, kPage, &slot), 0);
  CHECK_EQ(slot, 1u);
  CHECK_EQ(t.InsertAt(0, Entry(b, 0x12000, kPage)), -EEXIST);  // stale slot: order kept
  CHECK_EQ(t.InsertAt(5, Entry(b, 0x12000, kPage)), -EEXIST);  // past the end
  CHECK_EQ(t.InsertAt(1, Entry(b, 0x10000, kPage)), -EEXIST);  // overlaps its neighbour
  CHECK_EQ(t.InsertAt(1, Entry(b, 0x12000, kPage)), 0);
  DmaTable::Span span;
  CHECK_EQ(t.FindUnmap(0x11000, 2 * kPage, &span), 0);  // a gap, then the second entry
  CHECK_EQ(span.first, 1u);
  CHECK_EQ(span.end, 2u);
  CHECK_EQ(span.bytes, kPage);
  CHECK_EQ(t.FindUnmap(0x10000, 0x1000, &span), 0);
  CHECK_EQ(span.first, 0u);
  CHECK_EQ(span.end, 1u);
  t.Erase(span);
  CHECK_EQ(t.Count(), 1u);
  CHECK_EQ(t.FindUnmap(0x40000, kPage, &span), 0);  // nothing there
  CHECK_EQ(span.bytes, 0u);
  t.Erase(span);  // an empty span removes nothing
  CHECK_EQ(t.Count(), 1u);
}

}  // namespace
}  // namespace vfiobox

int main() {
  vfiobox::TestOverlap();
  vfiobox::TestArgumentRules();
  vfiobox::TestPartialUnmapRefused();
  vfiobox::TestFullUnmapOfSeveral();
  vfiobox::TestTranslate();
  vfiobox::TestTranslateSpan();
  vfiobox::TestSharedOwnership();
  vfiobox::TestOrderAcrossInsertsAndErases();
  vfiobox::TestTwoStepCalls();
  return vfiobox::test::Finish("dma_table");
}
