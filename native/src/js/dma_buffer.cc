// SPDX-License-Identifier: MIT
// JS class DmaBuffer (NativeDmaBuffer): anonymous page-aligned memory for DMA. close() drops
// the JS reference only; DMA table entries share ownership, so pages the IOMMU still maps are
// never unmapped under the device.
#include <sys/mman.h>

#include <cstring>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"

namespace vfiobox {

// random, fixed: identifies objects made by this constructor (napi_type_tag, Node-API 8)
const napi_type_tag kDmaBufferTypeTag = {0x8f3c1a2be4d54e07ULL, 0xb61d2c9a7e0f4a53ULL};

namespace {
constexpr uint64_t kHugeAlign = uint64_t{2} << 20;  // a PMD-sized (x86-64) transparent huge page
}  // namespace

Napi::Function JsDmaBuffer::Define(Napi::Env env) {
  return DefineClass(
      env, "DmaBuffer",
      {InstanceAccessor<&JsDmaBuffer::JsSizeBytes>("sizeBytes"),
       InstanceMethod<&JsDmaBuffer::JsRead>("read"), InstanceMethod<&JsDmaBuffer::JsWrite>("write"),
       InstanceMethod<&JsDmaBuffer::JsFill>("fill"), InstanceMethod<&JsDmaBuffer::JsLock>("lock"),
       InstanceMethod<&JsDmaBuffer::JsPhysAddr>("physAddr"),
       InstanceMethod<&JsDmaBuffer::JsClose>("close")});
}

JsDmaBuffer::JsDmaBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsDmaBuffer>(info) {
  uint64_t requested = ArgUint(info[0], "sizeBytes", uint64_t{1} << 40);
  if (requested == 0) ThrowRangeError(info.Env(), "sizeBytes", "a size > 0", info[0]);
  uint64_t page = static_cast<uint64_t>(sys::PageSize());
  size_ = (requested + page - 1) / page * page;  // whole pages: the IOMMU maps pages
  void* addr = nullptr;
  // From 2 MiB up the buffer starts 2 MiB-aligned, like the C baseline's (bench/README.md):
  // with THP its pages can be huge pages, which the IOMMU then maps with 2 MiB entries.
  int r = size_ >= kHugeAlign ? sys::MmapAnonAligned(&addr, size_, kHugeAlign)
                              : sys::Mmap(&addr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1, 0);
  if (r < 0) ThrowErrno(info.Env(), "mmap", -r, {{"size", DetailValue::Num(size_)}});
  memory_ = std::make_shared<DmaMemory>();
  memory_->map = Mapping(addr, size_);
  info.This().As<Napi::Object>().TypeTag(&kDmaBufferTypeTag);
}

const std::shared_ptr<DmaMemory>& JsDmaBuffer::Memory(Napi::Env env, const char* op) {
  if (!memory_) ThrowClosed(env, op, "the DmaBuffer");
  return memory_;
}

uint8_t* JsDmaBuffer::Range(const Napi::CallbackInfo& info, const char* op, uint64_t offset,
                            uint64_t length) {
  const auto& mem = Memory(info.Env(), op);
  if (offset > size_ || length > size_ - offset) {
    ThrowRangeError(info.Env(), "offset", "offset + length <= " + std::to_string(size_), info[0]);
  }
  // SAFETY: offset + length <= size_, the length of the live anonymous mapping.
  return mem->map.Data() + offset;
}

Napi::Value JsDmaBuffer::JsSizeBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(size_));
}

Napi::Value JsDmaBuffer::JsRead(const Napi::CallbackInfo& info) {
  uint64_t offset = ArgUint(info[0], "offset");
  uint64_t length = ArgUint(info[1], "length");
  uint8_t* p = Range(info, "DmaBuffer.read", offset, length);
  return Napi::Buffer<uint8_t>::Copy(info.Env(), p, length);
}

Napi::Value JsDmaBuffer::JsWrite(const Napi::CallbackInfo& info) {
  uint64_t offset = ArgUint(info[0], "offset");
  Napi::Uint8Array data = ArgBytes(info[1], "data");
  uint8_t* p = Range(info, "DmaBuffer.write", offset, data.ElementLength());
  std::memcpy(p, data.Data(), data.ElementLength());
  return info.Env().Undefined();
}

Napi::Value JsDmaBuffer::JsFill(const Napi::CallbackInfo& info) {
  uint64_t offset = ArgUint(info[0], "offset");
  uint64_t length = ArgUint(info[1], "length");
  uint64_t byte = ArgUint(info[2], "byte", 255);
  uint8_t* p = Range(info, "DmaBuffer.fill", offset, length);
  std::memset(p, static_cast<int>(byte), length);
  return info.Env().Undefined();
}

Napi::Value JsDmaBuffer::JsLock(const Napi::CallbackInfo& info) {
  const auto& mem = Memory(info.Env(), "mlock");
  if (mem->locked) return info.Env().Undefined();
  int r = sys::Mlock(mem->map.Data(), mem->map.Length());
  if (r < 0) ThrowErrno(info.Env(), "mlock", -r, {{"size", DetailValue::Num(size_)}});
  mem->locked = true;
  return info.Env().Undefined();
}

Napi::Value JsDmaBuffer::JsPhysAddr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t offset = ArgUint(info[0], "offset");
  uint8_t* p = Range(info, "pagemap", offset, 1);
  uint64_t entry = 0;
  // SAFETY: the address is only used as a number (the pagemap index), never dereferenced.
  uintptr_t hva = reinterpret_cast<uintptr_t>(p);
  if (int r = sys::PagemapEntry(hva, &entry); r < 0) {
    ThrowErrno(env, "pagemap", -r, {{"offset", DetailValue::Num(offset)}});
  }
  uint64_t pfn = entry & ((uint64_t{1} << 55) - 1);  // Documentation/admin-guide/mm/pagemap.rst
  if (!(entry >> 63)) {
    ThrowErrno(env, Status::Custom("pagemap", EFAULT, "ERR_VFIO_PAGE_NOT_PRESENT",
                                   "page not present: call lock() first",
                                   {{"offset", DetailValue::Num(offset)}}));
  }
  if (pfn == 0) {
    ThrowErrno(env, Status::Custom("pagemap", EPERM, "ERR_VFIO_PAGEMAP_HIDDEN",
                                   "the kernel hides PFNs: reading physical addresses needs "
                                   "CAP_SYS_ADMIN",
                                   {{"offset", DetailValue::Num(offset)}}));
  }
  uint64_t page = static_cast<uint64_t>(sys::PageSize());
  return Napi::BigInt::New(env, pfn * page + hva % page);
}

Napi::Value JsDmaBuffer::JsClose(const Napi::CallbackInfo& info) {
  if (memory_) memory_->closed = true;  // an Iommu's selectDmaBuffer sees it through its weak_ptr
  memory_.reset();  // the memory goes when no DMA table entry refers to it any more
  return info.Env().Undefined();
}

}  // namespace vfiobox
