// SPDX-License-Identifier: MIT
// The fake sys layer: an in-memory VFIO + iommufd kernel (the rust-vmm fake-ioctl idea), so
// the native core and the JS addon are tested without /dev/vfio. Fake files get fd numbers
// from kFirstFakeFd up; eventfds and anonymous memory are real (so poll() really wakes up),
// but tracked here for leak accounting. Paths: /dev/vfio/vfio, /dev/iommu, /dev/vfio/<group>,
// /dev/vfio/noiommu-<group>, /dev/vfio/devices/vfio<N>.
#include <linux/vfio.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "native/src/anon_aligned.h"
#include "native/src/fake_kernel.h"
#include "native/src/sys.h"

namespace vfiobox {
namespace fake {

Kernel& K() {
  static Kernel* kernel = new Kernel();  // never destroyed: worker threads may outlive main
  return *kernel;
}

int TakeInjection(const std::string& op) {
  auto it = K().injections.find(op);
  if (it == K().injections.end() || it->second.count <= 0) return 0;
  int err = it->second.err;
  if (--it->second.count == 0) K().injections.erase(it);
  return -err;
}

int NewFile(File file) {
  int fd = K().next_fd++;
  K().files.emplace(fd, std::move(file));
  return fd;
}

File* FindFile(int fd) {
  auto it = K().files.find(fd);
  return it == K().files.end() ? nullptr : &it->second;
}

Ranges IntersectRanges(const std::vector<const Device*>& devices) {
  Ranges out = {{0, UINT64_MAX}};
  for (const Device* d : devices) {
    if (d->spec.iova_ranges.empty()) continue;
    Ranges next;
    for (auto [a0, a1] : out) {
      for (auto [b0, b1] : d->spec.iova_ranges) {
        uint64_t lo = std::max(a0, b0), hi = std::min(a1, b1);
        if (lo <= hi) next.emplace_back(lo, hi);
      }
    }
    out = std::move(next);
  }
  return out;
}

bool InsideRanges(const Ranges& ranges, uint64_t iova, uint64_t size) {
  uint64_t last = iova + size - 1;
  for (auto [start, end] : ranges) {
    if (iova >= start && last <= end) return true;
  }
  return false;
}

bool Overlaps(const AreaMap& areas, uint64_t iova, uint64_t size) {
  uint64_t last = iova + size - 1;
  for (auto [start, len] : areas) {
    if (start <= last && iova <= start + len - 1) return true;
  }
  return false;
}

int64_t UnmapAreas(AreaMap* areas, uint64_t iova, uint64_t size, bool* split) {
  uint64_t last = iova + size - 1;
  *split = false;
  for (auto [start, len] : *areas) {
    uint64_t end = start + len - 1;
    bool touches = start <= last && iova <= end;
    if (touches && (start < iova || end > last)) *split = true;
  }
  if (*split) return -EINVAL;
  int64_t bytes = 0;
  for (auto it = areas->begin(); it != areas->end();) {
    if (it->first >= iova && it->first <= last) {
      bytes += static_cast<int64_t>(it->second);
      it = areas->erase(it);
    } else {
      ++it;
    }
  }
  return bytes;
}

namespace {

bool ParseIndex(const char* s, int* out) {
  if (*s == '\0') return false;
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (*end != '\0' || v < 0 || v > 1 << 20) return false;
  *out = static_cast<int>(v);
  return true;
}

int OpenGroup(int id, bool noiommu) {
  auto it = K().groups.find(id);
  if (it == K().groups.end() || it->second.noiommu != noiommu) return -ENOENT;
  Group& g = it->second;
  if (g.open_fd >= 0) return -EBUSY;  // vfio_group_fops_open: one opener at a time
  for (const Device& d : K().devices) {
    if (d.spec.group == id && d.bound_file >= 0) return -EBUSY;  // a cdev user holds it
  }
  File f{FileKind::kGroup, nullptr, id, -1, false, nullptr};
  g.open_fd = NewFile(f);
  return g.open_fd;
}

int OpenPath(const std::string& path) {
  int n = 0;
  if (path == "/dev/vfio/vfio") {
    return NewFile({FileKind::kContainer, std::make_shared<Container>(), -1, -1, false, nullptr});
  }
  if (path == "/dev/iommu") {
    return NewFile({FileKind::kIommufd, nullptr, -1, -1, false, std::make_shared<Iommufd>()});
  }
  const std::string cdev = "/dev/vfio/devices/vfio", noiommu = "/dev/vfio/noiommu-";
  if (path.rfind(cdev, 0) == 0 && ParseIndex(path.c_str() + cdev.size(), &n)) {
    if (n >= static_cast<int>(K().devices.size()) || !K().devices[n].spec.cdev) return -ENOENT;
    return NewFile({FileKind::kDevice, nullptr, -1, n, true, nullptr});
  }
  if (path.rfind(noiommu, 0) == 0 && ParseIndex(path.c_str() + noiommu.size(), &n)) {
    return OpenGroup(n, true);
  }
  if (path.rfind("/dev/vfio/", 0) == 0 && ParseIndex(path.c_str() + 10, &n)) {
    return OpenGroup(n, false);
  }
  return -ENOENT;
}

void ReleaseFile(int fd, const File& file) {
  if (file.kind == FileKind::kDevice) ReleaseDeviceFile(file, fd);
  if (file.kind == FileKind::kGroup) ReleaseGroupFile(file);
  if (file.kind == FileKind::kEventfd) ::close(fd);
}

std::shared_ptr<Region> DeviceRegion(int fd, uint64_t offset, uint64_t* within) {
  File* f = FindFile(fd);
  if (f == nullptr || f->kind != FileKind::kDevice) return nullptr;
  Device& d = K().devices[f->device];
  if (f->via_cdev && d.bound_file != fd) return nullptr;  // unusable until BIND
  uint64_t index = offset >> 40;                          // VFIO_PCI_OFFSET_SHIFT
  if (index >= d.regions.size() || d.regions[index]->spec.size == 0) return nullptr;
  *within = offset & ((uint64_t{1} << 40) - 1);
  return d.regions[index];
}

ssize_t RegionRw(int fd, uint8_t* buf, const uint8_t* src, size_t count, uint64_t offset) {
  uint64_t pos = 0;
  auto region = DeviceRegion(fd, offset, &pos);
  if (!region) return FindFile(fd) ? -EINVAL : -EBADF;
  uint32_t need = buf ? VFIO_REGION_INFO_FLAG_READ : VFIO_REGION_INFO_FLAG_WRITE;
  if (!(region->spec.flags & need) || pos >= region->spec.size) return -EINVAL;
  size_t n = static_cast<size_t>(std::min<uint64_t>(count, region->spec.size - pos));
  // SAFETY: pos < spec.size <= alloc and n <= spec.size - pos: inside the region's memory.
  if (buf) std::memcpy(buf, region->mem.get() + pos, n);
  if (src) std::memcpy(region->mem.get() + pos, src, n);
  return static_cast<ssize_t>(n);
}

int MmapRegion(void** out, size_t length, int fd, uint64_t offset) {
  uint64_t pos = 0;
  auto region = DeviceRegion(fd, offset, &pos);
  if (!region) return FindFile(fd) ? -EINVAL : -EBADF;
  const RegionSpec& spec = region->spec;
  if (!(spec.flags & VFIO_REGION_INFO_FLAG_MMAP) || pos % kPage != 0 || length == 0) return -EINVAL;
  if (pos + length > region->alloc) return -EINVAL;
  if (!spec.sparse.empty()) {  // only inside one sparse area (vfio-pci refuses the MSI-X table)
    bool inside = false;
    for (auto [off, size] : spec.sparse) inside |= pos >= off && pos + length <= off + size;
    if (!inside) return -EINVAL;
  }
  // SAFETY: pos + length <= alloc, so the pointer and the length stay inside region memory,
  // which the MapRecord keeps alive until munmap.
  *out = region->mem.get() + pos;
  K().maps[*out] = MapRecord{length, false, region->mem};
  return 0;
}

}  // namespace

}  // namespace fake

// ---- the sys layer ----
namespace sys {

using fake::FileKind;
using fake::K;

const char* const kLayerName = "fake";

int Open(const char* path, int /*flags*/) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection("open"); r < 0) return r;
  return fake::OpenPath(path);
}

int Close(int fd) {
  std::lock_guard<std::mutex> lock(K().mu);
  auto it = K().files.find(fd);
  if (it == K().files.end())
    return fd >= fake::kFirstFakeFd ? -EBADF : (::close(fd) < 0 ? -errno : 0);
  fake::File file = it->second;
  K().files.erase(it);
  fake::ReleaseFile(fd, file);
  return 0;
}

int Ioctl(int fd, unsigned long request, void* arg) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection(fake::IoctlName(request)); r < 0) return r;
  fake::File* f = fake::FindFile(fd);
  if (f == nullptr) return -EBADF;
  switch (f->kind) {
    case FileKind::kContainer:
      return fake::ContainerIoctl(*f, request, arg);
    case FileKind::kGroup:
      return fake::GroupIoctl(*f, fd, request, arg);
    case FileKind::kDevice:
      return fake::DeviceIoctl(*f, fd, request, arg);
    case FileKind::kIommufd:
      return fake::IommufdIoctl(*f, request, arg);
    default:
      return -ENOTTY;
  }
}

int IoctlValue(int fd, unsigned long request, unsigned long value) {
  // SAFETY: the fake's handlers for value-taking ioctls (CHECK_EXTENSION, SET_IOMMU) read the
  // value back from the pointer-sized argument; nothing dereferences it.
  return Ioctl(fd, request, reinterpret_cast<void*>(value));
}

ssize_t Pread(int fd, void* buf, size_t count, uint64_t offset) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection("pread"); r < 0) return r;
  return fake::RegionRw(fd, static_cast<uint8_t*>(buf), nullptr, count, offset);
}

ssize_t Pwrite(int fd, const void* buf, size_t count, uint64_t offset) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection("pwrite"); r < 0) return r;
  return fake::RegionRw(fd, nullptr, static_cast<const uint8_t*>(buf), count, offset);
}

int Mmap(void** out, size_t length, int prot, int flags, int fd, uint64_t offset) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection("mmap"); r < 0) return r;
  if (fd >= 0) return fake::MmapRegion(out, length, fd, offset);
  void* p = ::mmap(nullptr, length, prot, flags | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  K().maps[p] = fake::MapRecord{length, true, nullptr};
  *out = p;
  return 0;
}

int MmapAnonAligned(void** out, size_t length, size_t align) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection("mmap"); r < 0) return r;
  if (int r = MapAnonAligned(out, length, align); r < 0) return r;
  K().maps[*out] = fake::MapRecord{length, true, nullptr};
  return 0;
}

int Munmap(void* addr, size_t length) {
  std::lock_guard<std::mutex> lock(K().mu);
  auto it = K().maps.find(addr);
  if (it == K().maps.end()) return -EINVAL;  // every mapping must have come from Mmap
  bool anonymous = it->second.anonymous;
  K().maps.erase(it);
  return anonymous && ::munmap(addr, length) < 0 ? -errno : 0;
}

int EventFd(unsigned initval) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection("eventfd"); r < 0) return r;
  int fd = ::eventfd(initval, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return -errno;
  K().files[fd] = fake::File{FileKind::kEventfd, nullptr, -1, -1, false, nullptr};
  return fd;
}

namespace {
// real fds only (eventfds); fake VFIO fds cannot be read, written or polled
int RealFd(int fd, const char* op) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection(op); r < 0) return r;
  return fd >= fake::kFirstFakeFd ? -EINVAL : 0;
}
}  // namespace

ssize_t Read(int fd, void* buf, size_t count) {
  if (int r = RealFd(fd, "read"); r < 0) return r;
  ssize_t n = ::read(fd, buf, count);
  return n < 0 ? -errno : n;
}

ssize_t Write(int fd, const void* buf, size_t count) {
  if (int r = RealFd(fd, "write"); r < 0) return r;
  ssize_t n = ::write(fd, buf, count);
  return n < 0 ? -errno : n;
}

int PollIn(int fd, int timeout_ms) {
  if (int r = RealFd(fd, "poll"); r < 0) return r;
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (r > 0 && (p.revents & POLLNVAL)) return -EBADF;
  return r > 0 && (p.revents & POLLIN) ? 1 : 0;
}

int Mlock(const void* addr, size_t /*length*/) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection("mlock"); r < 0) return r;
  return K().maps.count(const_cast<void*>(addr)) ? 0 : -ENOMEM;  // no RLIMIT_MEMLOCK here
}

int Munlock(const void* /*addr*/, size_t /*length*/) { return 0; }

int PagemapEntry(uintptr_t hva, uint64_t* entry) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (int r = fake::TakeInjection("pagemap"); r < 0) return r;
  // fake "physical" address = the virtual one: bit 63 present, bits 0-54 the PFN
  *entry = (uint64_t{1} << 63) | ((hva / fake::kPage) & ((uint64_t{1} << 55) - 1));
  return 0;
}

long PageSize() { return static_cast<long>(fake::kPage); }

}  // namespace sys
}  // namespace vfiobox
