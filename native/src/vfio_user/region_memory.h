// SPDX-License-Identifier: MIT
// Memory-backed regions: the BAR areas a device declares as plain memory (WIT 0.1.1
// `memory-areas`). Each such region gets one sealed memfd, sized to the region rounded up to
// whole pages, that the server owns (RegionSpec::fd, handed to the client with
// GET_REGION_INFO so the VMM mmaps the sparse areas) and maps once for itself (RegionMemory):
// the plugin's `shared-memory` calls and REGION_READ/WRITE inside an area are copies from and
// into that mapping, never a plugin call.
//
// The memfd is sealed against shrinking and growing (F_SEAL_SHRINK | F_SEAL_GROW, then
// F_SEAL_SEAL), so no holder of the fd, the VMM included, can truncate it under the server's
// mapping (a SIGBUS in the server). Writes stay allowed: the memory is shared by design, and
// the guest may change it at any time, also during a copy.
//
// Lifetime: the memory belongs to the DeviceLayout of a ServerHost (server_host.h), which
// outlives the thread serving it, so a worker restarted by the watchdog (and its plugin)
// finds the same bytes. It is zeroed when created and never cleared by the server.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_USER_REGION_MEMORY_H_
#define VFIOBOX_NATIVE_SRC_VFIO_USER_REGION_MEMORY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "native/src/errors.h"
#include "native/src/fd.h"

namespace vfiobox::vfio_user {

struct RegionSpec;
struct DeviceLayout;

class RegionMemory {
 public:
  /** memfd_create + ftruncate(size rounded up to 4 KiB) + seals + mmap; the fd goes to *fd */
  static Expected<std::shared_ptr<RegionMemory>> Create(const std::string& name,
                                                        uint64_t size_bytes, UniqueFd* fd);
  RegionMemory(const RegionMemory&) = delete;
  RegionMemory& operator=(const RegionMemory&) = delete;
  ~RegionMemory();

  uint64_t size() const { return size_; }
  /** copies [offset, offset + len) out; EINVAL (positive) when it is not inside, else 0 */
  int Read(uint64_t offset, uint8_t* out, uint64_t len) const;
  /** copies data to [offset, offset + len); EINVAL when it is not inside, else 0 */
  int Write(uint64_t offset, const uint8_t* data, uint64_t len);

 private:
  RegionMemory(uint8_t* data, uint64_t size, uint64_t mapped)
      : data_(data), size_(size), mapped_(mapped) {}
  bool Inside(uint64_t offset, uint64_t len) const {
    return offset <= size_ && len <= size_ - offset;
  }

  uint8_t* data_;
  uint64_t size_;    // the region's size (what accesses are checked against)
  uint64_t mapped_;  // size_ rounded up to pages (what is mapped)
};

/**
 * Creates the memfd and mapping of every region marked memory_backed that has none yet (an
 * adopted host already has them). A region without mmap areas is refused (EINVAL).
 */
Status BackRegionsWithMemory(DeviceLayout* layout, const std::string& name);

/**
 * Where [offset, offset + count) of a region falls: 1 inside one of spec's mmap areas (and
 * spec has memory), 0 in none of them, -EINVAL across an area's edge.
 */
int AreaAccess(const RegionSpec& spec, uint64_t offset, uint64_t count);

}  // namespace vfiobox::vfio_user

#endif  // VFIOBOX_NATIVE_SRC_VFIO_USER_REGION_MEMORY_H_
