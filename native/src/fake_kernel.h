// SPDX-License-Identifier: MIT
// Internal state of the fake kernel, shared by sys_fake.cc (fd table, mmap, control API),
// fake_vfio.cc (container, group and device ioctls) and fake_iommufd.cc (iommufd and the cdev
// BIND/ATTACH ioctls). Everything is guarded by Kernel::mu; handlers run with it held.
// The fake mirrors the kernel's checks that matter to our code (argsz minimums, EBUSY on
// exclusive opens, EINVAL before bind, the capability-chain argsz protocol), not all of them.
#ifndef VFIOBOX_NATIVE_SRC_FAKE_KERNEL_H_
#define VFIOBOX_NATIVE_SRC_FAKE_KERNEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "native/src/sys_fake.h"

namespace vfiobox::fake {

constexpr int kFirstFakeFd = 1 << 30;  // far above any real fd: the two never collide
constexpr uint64_t kPage = 4096;

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;  // (start, last)
using AreaMap = std::map<uint64_t, uint64_t>;               // iova -> size

struct Region {
  RegionSpec spec;
  std::shared_ptr<uint8_t> mem;  // page-aligned, spec.size rounded up to a page
  uint64_t alloc = 0;
};

struct Device {
  DeviceSpec spec;
  std::vector<std::shared_ptr<Region>> regions;
  int group_opens = 0;  // device fds from VFIO_GROUP_GET_DEVICE_FD
  int bound_file = -1;  // cdev fd that is bound (BIND_IOMMUFD), or -1
  uint32_t ioas = 0;    // attached IOAS id (0 = none)
  int iommufd = -1;     // the iommufd it is bound to
  std::map<std::pair<uint32_t, uint32_t>, int> triggers;  // (index, vector) -> dup'd eventfd
  std::map<std::pair<uint32_t, uint32_t>, bool> masked;
};

struct Container {
  unsigned long iommu_type = 0;  // 0 until VFIO_SET_IOMMU
  std::vector<int> groups;
  AreaMap dma;
};

struct Group {
  int id = 0;
  bool noiommu = false;
  int open_fd = -1;
  std::shared_ptr<Container> container;
};

struct Ioas {
  AreaMap areas;
};

struct Iommufd {
  std::map<uint32_t, Ioas> ioas;
  uint32_t next_id = 1;
};

enum class FileKind { kContainer, kGroup, kDevice, kIommufd, kEventfd };

struct File {
  FileKind kind;
  std::shared_ptr<Container> container;  // kContainer
  int group = -1;                        // kGroup
  int device = -1;                       // kDevice: index into Kernel::devices
  bool via_cdev = false;                 // kDevice opened through /dev/vfio/devices/vfioN
  std::shared_ptr<Iommufd> iommufd;      // kIommufd
};

struct MapRecord {
  size_t length = 0;
  bool anonymous = false;
  std::shared_ptr<uint8_t> keep;  // region memory stays alive while mapped
};

struct Injection {
  int err = 0;
  int count = 0;
};

struct Kernel {
  std::mutex mu;
  std::vector<Device> devices;  // index = cdev index
  std::map<int, Group> groups;
  std::map<int, File> files;
  std::map<void*, MapRecord> maps;
  std::map<std::string, Injection> injections;
  int next_fd = kFirstFakeFd;
};

Kernel& K();
/** -errno if an injected error for `op` is armed (and consumes one), else 0. mu held. */
int TakeInjection(const std::string& op);
/** a new fake fd for `file`. mu held. */
int NewFile(File file);
File* FindFile(int fd);
/** the intersection of the devices' allowed IOVA ranges (all of 2^64 when none narrow it). */
Ranges IntersectRanges(const std::vector<const Device*>& devices);
bool InsideRanges(const Ranges& ranges, uint64_t iova, uint64_t size);
/** type1v2 / iommufd unmap semantics over an AreaMap: -EINVAL (split) or bytes removed. */
int64_t UnmapAreas(AreaMap* areas, uint64_t iova, uint64_t size, bool* split);
bool Overlaps(const AreaMap& areas, uint64_t iova, uint64_t size);

// ioctl handlers (mu held); each returns >= 0 or -errno.
int ContainerIoctl(File& file, unsigned long request, void* arg);
int GroupIoctl(File& file, int fd, unsigned long request, void* arg);
int DeviceIoctl(File& file, int fd, unsigned long request, void* arg);
int IommufdIoctl(File& file, unsigned long request, void* arg);
int DeviceBind(File& file, int fd, void* arg);
int DeviceAttach(File& file, void* arg);
/** called when a device fd closes: unbind, drop eventfds when the last user goes. */
void ReleaseDeviceFile(const File& file, int fd);
void ReleaseGroupFile(const File& file);
/** the kernel name of an ioctl request ("VFIO_IOMMU_MAP_DMA"), for error injection. */
const char* IoctlName(unsigned long request);

}  // namespace vfiobox::fake

#endif  // VFIOBOX_NATIVE_SRC_FAKE_KERNEL_H_
