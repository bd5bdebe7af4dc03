// SPDX-License-Identifier: MIT
// Control surface of the fake kernel (sys_fake.cc): configure devices, inject errors, raise
// interrupts and count what is open. Used by js/fake.cc (the `fake` export of
// vfio_core_fake.node) and by the native tests. Not linked into vfio_core.node.
#ifndef VFIOBOX_NATIVE_SRC_SYS_FAKE_H_
#define VFIOBOX_NATIVE_SRC_SYS_FAKE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vfiobox::fake {

struct RegionSpec {
  uint64_t size = 0;  // 0 = region absent
  uint32_t flags = 0;
  std::vector<std::pair<uint64_t, uint64_t>> sparse;  // (offset, size) areas
  bool has_type = false;
  uint32_t type = 0;
  uint32_t subtype = 0;
  bool msix_mappable = false;
};

struct IrqSpec {
  uint32_t count = 0;
  uint32_t flags = 0;
};

struct DeviceSpec {
  std::string bdf;
  int group = 0;
  bool noiommu = false;
  bool cdev = true;  // forced false for noiommu devices, as in the kernel
  bool viable = true;
  bool reset_supported = true;
  std::vector<RegionSpec> regions;
  std::vector<IrqSpec> irqs;
  std::vector<std::pair<uint64_t, uint64_t>> iova_ranges;  // (start, last); empty = all
};

/** forgets every device, group, open fd and injected error (memory mappings stay valid). */
void Reset();
/** returns the cdev index N (/dev/vfio/devices/vfioN), or -errno (EEXIST for a dup bdf). */
int AddDevice(const DeviceSpec& spec);
/** the next `count` calls of `op` ('open', 'mmap', 'VFIO_IOMMU_MAP_DMA', ...) fail with err. */
void InjectError(const std::string& op, int err, int count);
/** writes 1 to the eventfd wired to (index, vector); false if none is wired or it is masked. */
bool RaiseIrq(const std::string& bdf, uint32_t index, uint32_t vector);
size_t OpenFds();
uint64_t MappedBytes();
/** live mmaps made through the fake (device regions and anonymous memory). */
size_t LiveMappings();

}  // namespace vfiobox::fake

#endif  // VFIOBOX_NATIVE_SRC_SYS_FAKE_H_
