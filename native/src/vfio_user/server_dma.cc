// SPDX-License-Identifier: MIT
// DMA_MAP / DMA_UNMAP [SPEC "VFIO_USER_DMA_MAP", "VFIO_USER_DMA_UNMAP"] and the device's view
// of client memory (DmaRead/DmaWrite). Maps that come with an fd are mmapped MAP_SHARED into
// dma_ (the DmaTable owns each mapping through its entry); maps without an fd are recorded in
// dma_msg_ for DMA_READ/DMA_WRITE messages. The two tables never overlap.
//
// A client may shrink its fd after DMA_MAP; touching the lost pages raises SIGBUS. A map whose
// fd is sealed against shrinking (F_SEAL_SHRINK: QEMU's memory-backend-memfd seals by default)
// is copied with a plain memcpy; any other goes through GuardedCopy (guarded_copy.h), which
// turns that SIGBUS into -EFAULT for the device, counted in stats().dma_faults.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "native/src/guarded_copy.h"
#include "native/src/vfio_user/server_core.h"
#include "native/src/vfio_user/server_internal.h"

namespace vfiobox::vfio_user {

namespace {

constexpr uint32_t kDmaKnownFlags = kDmaFlagRead | kDmaFlagWrite;

/**
 * true when the file behind `fd` may shrink: no F_SEAL_SHRINK (files that are not memfds have
 * no seals, and F_GET_SEALS fails with EINVAL for them).
 */
bool MayShrink(int fd) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  return seals < 0 || (seals & F_SEAL_SHRINK) == 0;
}

/**
 * mmaps [offset, offset+size) of a client fd; the entry owns the mapping. A sealed fd is also
 * kept open (entry->fd, for DMA windows: WindowFile) while `kept` counts fewer than
 * kMaxWindowFds, so that a client sending many maps cannot make the host hold many fds.
 * 0 or -errno.
 */
int MapClientFd(int fd, uint64_t offset, DmaEntry* entry,
                const std::shared_ptr<std::atomic<int>>& kept) {
  struct stat st;
  if (::fstat(fd, &st) < 0) return -errno;
  // Only regular files (memfd, hugetlbfs, tmpfs) have a size to check: touching a mapping past
  // the end of the file raises SIGBUS, so a map larger than the file is refused up front.
  if (!S_ISREG(st.st_mode)) return -EINVAL;
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (offset % kPageSize4k != 0 || offset > file_size || entry->size > file_size - offset) {
    return -EINVAL;
  }
  entry->may_fault = MayShrink(fd);
  if (entry->may_fault) {
    if (int r = InstallCopyGuard(); r < 0) return r;  // no guard: refuse rather than risk SIGBUS
  }
  int prot = ((entry->flags & kDmaFlagRead) ? PROT_READ : 0) |
             ((entry->flags & kDmaFlagWrite) ? PROT_WRITE : 0);
  void* addr = ::mmap(nullptr, entry->size, prot, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (addr == MAP_FAILED) return -errno;
  size_t length = entry->size;
  int file = -1;
  if (!entry->may_fault && *kept < kMaxWindowFds) {
    file = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);  // -1 (EMFILE): no windows on this map, no error
    if (file >= 0) ++*kept;
  }
  entry->fd = file;
  entry->owner = std::shared_ptr<void>(addr, [length, file, kept](void* p) {
    ::munmap(p, length);
    if (file >= 0) {
      ::close(file);
      --*kept;
    }
  });
  // SAFETY: the mapping is entry->size bytes long and lives as long as entry->owner.
  entry->hva = static_cast<uint8_t*>(addr);
  return 0;
}

/** copies span.len bytes between `buf` and the span; -EFAULT when its pages went away. */
int CopySpan(const DmaSpan& span, uint8_t* buf, bool to_guest) {
  uint8_t* dst = to_guest ? span.hva : buf;
  const uint8_t* src = to_guest ? buf : span.hva;
  if (span.may_fault) return GuardedCopy(dst, src, span.len);
  // SAFETY: TranslateSpan bounded [hva, +len) by a live entry, and its fd cannot shrink.
  std::memcpy(dst, src, span.len);
  return 0;
}

/** removes exactly [iova, iova+size) from `table` if it is one entry: 1 removed, 0 absent. */
int RemoveExact(DmaTable& table, uint64_t iova, uint64_t size) {
  uint64_t bytes = 0;
  if (table.CheckUnmap(iova, size, &bytes) < 0 || bytes != size) return 0;
  uint8_t* unused = nullptr;
  if (table.Translate(iova, size, 0, &unused) < 0) return 0;  // spans several entries
  table.Remove(iova, size, &bytes);
  return 1;
}

/**
 * 0 if [iova, iova+len) lies inside one map of `table` that allows `access`, -EACCES if it
 * lies inside one without it, else -EFAULT. Maps without fd have no host address, so this
 * scans instead of translating (they are few: ROM and VRAM windows [OBS]).
 */
int FindMessageMap(const DmaTable& table, uint64_t iova, uint64_t len, uint32_t access) {
  for (const DmaEntry& e : table.List()) {
    if (iova < e.iova || iova - e.iova >= e.size || len > e.size - (iova - e.iova)) continue;
    return (e.flags & access) == access ? 0 : -EACCES;
  }
  return -EFAULT;
}

}  // namespace

ServerCore::Reply ServerCore::HandleDmaMap(Message& msg) {
  DmaMap m;
  if (!ReadHead(msg, &m) || m.argsz < sizeof(m)) return Reply::Error(EINVAL, "short DMA_MAP");
  if (m.flags & ~kDmaKnownFlags) return Reply::Error(EINVAL, "unknown DMA_MAP flags");
  if (msg.fds.size() > 1) return Reply::Error(EINVAL, "DMA_MAP takes at most one fd");
  if (dma_.Count() + dma_msg_.Count() >= options_.max_dma_maps) {
    return Reply::Error(ENOSPC, "max_dma_maps reached");
  }
  // unaligned, empty or wrapping: EINVAL; overlapping: EEXIST [SPEC]
  int r = dma_.CheckMap(m.addr, m.size);
  if (r == 0) r = dma_msg_.CheckMap(m.addr, m.size);
  if (r < 0) return Reply::Error(-r, r == -EEXIST ? "DMA range overlaps a map" : "bad DMA range");
  DmaEntry entry;
  entry.iova = m.addr;
  entry.size = m.size;
  entry.buffer_offset = m.offset;
  entry.flags = m.flags;
  bool has_fd = !msg.fds.empty();
  if (has_fd) {
    if (int e = MapClientFd(msg.fds[0].Get(), m.offset, &entry, window_fds_); e < 0) {
      return Reply::Error(-e, "cannot mmap the DMA fd");
    }
    dma_.Insert(std::move(entry));  // the fd closes with the message; the mapping stays
  } else {
    dma_msg_.Insert(std::move(entry));
  }
  ++stats_.dma_maps;
  hooks_->OnDmaMap(m.addr, m.size, m.flags, has_fd);
  return Reply{};
}

ServerCore::Reply ServerCore::HandleDmaUnmap(const Message& msg) {
  DmaUnmap u;
  if (!ReadHead(msg, &u) || u.argsz < sizeof(u)) return Reply::Error(EINVAL, "short DMA_UNMAP");
  if (u.flags & ~kDmaUnmapFlagAll) return Reply::Error(EINVAL, "unknown DMA_UNMAP flags");
  if (u.flags & kDmaUnmapFlagAll) {
    if (u.addr != 0 || u.size != 0) return Reply::Error(EINVAL, "UNMAP_ALL with a range");
    std::vector<DmaEntry> all = dma_.List();
    for (DmaEntry& e : dma_msg_.List()) all.push_back(std::move(e));
    dma_.Clear();
    dma_msg_.Clear();
    for (const DmaEntry& e : all) hooks_->OnDmaUnmap(e.iova, e.size);
    stats_.dma_unmaps += all.size();
  } else {
    // the range must exactly match one earlier map [SPEC]; removing the entry munmaps it
    // before the reply, so no reference to the client's memory survives.
    if (RemoveExact(dma_, u.addr, u.size) == 0 && RemoveExact(dma_msg_, u.addr, u.size) == 0) {
      return Reply::Error(ENOENT, "DMA_UNMAP matches no map");
    }
    ++stats_.dma_unmaps;
    hooks_->OnDmaUnmap(u.addr, u.size);
  }
  Reply reply;
  AppendStruct(&reply.payload, u);  // the reply echoes the request [SPEC]
  return reply;
}

int ServerCore::DmaCheck(uint64_t iova, uint64_t len, bool to_guest) const {
  if (len == 0) return 0;
  if (len > options_.max_data_xfer_size) return -E2BIG;
  if (iova > UINT64_MAX - (len - 1)) return -EFAULT;
  uint32_t access = to_guest ? kDmaFlagWrite : kDmaFlagRead;
  // Map by map, so that a copy may span adjacent maps (QEMU splits RAM at 0xa0000 [OBS]).
  for (uint64_t done = 0; done < len;) {
    DmaSpan span;
    int r = dma_.TranslateSpan(iova + done, len - done, access, &span);
    if (r == -EFAULT && done == 0) {
      // not mmapped: a range wholly inside one map without fd goes by message [SPEC]
      int m = FindMessageMap(dma_msg_, iova, len, access);
      if (m == 0) return 1;
      if (m == -EACCES) return m;
    }
    if (r < 0) return r;
    done += span.len;
  }
  return 0;
}

int ServerCore::DmaCopy(uint64_t iova, uint8_t* buf, uint64_t len, bool to_guest) {
  // First check every map, then copy: a failed check moves no byte (a SIGBUS mid-copy may
  // leave a prefix copied).
  int r = DmaCheck(iova, len, to_guest);
  if (r == 1) return DmaMessage(iova, buf, len, to_guest);
  if (r < 0 || len == 0) return r;
  uint32_t access = to_guest ? kDmaFlagWrite : kDmaFlagRead;
  for (uint64_t done = 0; done < len;) {
    DmaSpan span;
    if (dma_.TranslateSpan(iova + done, len - done, access, &span) < 0) return -EFAULT;
    if ((r = CopySpan(span, buf + done, to_guest)) < 0) {
      ++stats_.dma_faults;
      return r;
    }
    done += span.len;
  }
  return 0;
}

bool ServerCore::MappedSpan(uint64_t iova, uint64_t len, bool to_guest, DmaSpan* span) const {
  if (len == 0) {
    *span = {};
    return true;
  }
  if (len > options_.max_data_xfer_size) return false;
  uint32_t access = to_guest ? kDmaFlagWrite : kDmaFlagRead;
  return dma_.TranslateSpan(iova, len, access, span) == 0 && span->len == len;
}

int ServerCore::WindowFile(uint64_t iova, uint64_t len, bool write, int* fd,
                           uint64_t* offset) const {
  const DmaEntry* e = dma_.Holding(iova);
  if (e == nullptr) {
    // inside a map without fd: there is no memory to map, only DMA_READ/DMA_WRITE messages
    return FindMessageMap(dma_msg_, iova, len, kDmaFlagRead) == -EFAULT ? -EFAULT : -ENOTSUP;
  }
  uint64_t skip = iova - e->iova;
  if (len == 0 || len > e->size - skip) return -EFAULT;  // runs past its map
  uint32_t access = kDmaFlagRead | (write ? kDmaFlagWrite : 0);
  if ((e->flags & access) != access) return -EACCES;
  if (e->may_fault || e->fd < 0) return -ENOTSUP;  // shrinkable, or over kMaxWindowFds
  *fd = e->fd;
  *offset = e->buffer_offset + skip;
  return 0;
}

int ServerCore::CopyMapped(const DmaSpan& span, uint8_t* buf, bool to_guest) {
  if (span.len == 0) return 0;
  int r = CopySpan(span, buf, to_guest);
  if (r < 0) ++stats_.dma_faults;
  return r;
}

int ServerCore::DmaRead(uint64_t iova, uint8_t* out, uint64_t len) {
  return DmaCopy(iova, out, len, false);
}

int ServerCore::DmaWrite(uint64_t iova, const uint8_t* data, uint64_t len) {
  // SAFETY: DmaCopy only reads from `buf` when to_guest is true.
  return DmaCopy(iova, const_cast<uint8_t*>(data), len, true);
}

}  // namespace vfiobox::vfio_user
