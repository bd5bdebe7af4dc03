// SPDX-License-Identifier: MIT
// Memory-backed regions (region_memory.h). Direct syscalls, like server_dma.cc.
#include "native/src/vfio_user/region_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "native/src/vfio_user/server_core.h"

namespace vfiobox::vfio_user {

namespace {

constexpr unsigned kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

uint64_t RoundUpToPage(uint64_t n) { return (n + kPageSize4k - 1) & ~(kPageSize4k - 1); }

}  // namespace

Expected<std::shared_ptr<RegionMemory>> RegionMemory::Create(const std::string& name,
                                                             uint64_t size_bytes, UniqueFd* fd) {
  Detail where{{"name", DetailValue::Str(name)}, {"size", DetailValue::Num(size_bytes)}};
  if (size_bytes == 0 || size_bytes > (uint64_t{1} << 40))
    return Status("memfd_create", EINVAL, where);
  uint64_t mapped = RoundUpToPage(size_bytes);
  UniqueFd memfd(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!memfd.Valid()) return Status("memfd_create", errno, where);
  if (::ftruncate(memfd.Get(), static_cast<off_t>(mapped)) < 0) {
    return Status("ftruncate", errno, where);
  }
  if (::fcntl(memfd.Get(), F_ADD_SEALS, kSeals) < 0) return Status("F_ADD_SEALS", errno, where);
  void* addr = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.Get(), 0);
  if (addr == MAP_FAILED) return Status("mmap", errno, where);
  *fd = std::move(memfd);
  // SAFETY: addr is a fresh MAP_SHARED mapping of `mapped` bytes of a file sealed against
  // shrinking, so every byte below `mapped` stays backed until the destructor unmaps it.
  return std::shared_ptr<RegionMemory>(
      new RegionMemory(static_cast<uint8_t*>(addr), size_bytes, mapped));
}

RegionMemory::~RegionMemory() { ::munmap(data_, mapped_); }

int RegionMemory::Read(uint64_t offset, uint8_t* out, uint64_t len) const {
  if (!Inside(offset, len)) return EINVAL;
  // SAFETY: [offset, offset + len) is inside the mapping (checked above). The guest may write
  // the same bytes concurrently through its own mapping; a copy then sees some mix, as a CPU
  // reading device memory would, and nothing here depends on the values.
  std::memcpy(out, data_ + offset, len);
  return 0;
}

int RegionMemory::Write(uint64_t offset, const uint8_t* data, uint64_t len) {
  if (!Inside(offset, len)) return EINVAL;
  // SAFETY: as for Read; the destination is inside the mapping.
  std::memcpy(data_ + offset, data, len);
  return 0;
}

Status BackRegionsWithMemory(DeviceLayout* layout, const std::string& name) {
  for (size_t i = 0; i < layout->regions.size(); ++i) {
    RegionSpec& spec = layout->regions[i];
    if (!spec.memory_backed || spec.memory) continue;
    if (spec.mmap_areas.empty() || spec.size == 0) {
      return Status("memfd_create", EINVAL, {{"region", DetailValue::Num(i)}});
    }
    auto fd = std::make_shared<UniqueFd>();
    auto memory = RegionMemory::Create(name + ":region" + std::to_string(i), spec.size, fd.get());
    if (!memory.ok()) return memory.status();
    spec.memory = *memory;
    spec.fd = std::move(fd);
    spec.fd_offset = 0;
    spec.flags |= kRegionFlagMmap;
  }
  return Status();
}

int AreaAccess(const RegionSpec& spec, uint64_t offset, uint64_t count) {
  if (!spec.memory) return 0;
  uint64_t end = offset + count;  // no overflow: CheckRegionAccess bounded it by spec.size
  for (const SparseArea& area : spec.mmap_areas) {
    uint64_t area_end = area.offset + area.size;
    if (offset >= area.offset && end <= area_end) return 1;
    if (offset < area_end && end > area.offset) return -EINVAL;
  }
  return 0;
}

}  // namespace vfiobox::vfio_user
