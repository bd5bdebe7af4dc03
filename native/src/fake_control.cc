// SPDX-License-Identifier: MIT
// Fake kernel: the control API of sys_fake.h (configure devices, inject errors, raise
// interrupts, count open fds, IOMMU bytes and mappings).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "native/src/fake_kernel.h"

namespace vfiobox::fake {

void Reset() {
  std::lock_guard<std::mutex> lock(K().mu);
  for (Device& d : K().devices) {
    for (auto& kv : d.triggers) ::close(kv.second);
  }
  K().devices.clear();
  K().groups.clear();
  K().files.clear();  // real eventfds stay open: their owners close them (sys::Close)
  K().injections.clear();
}

int AddDevice(const DeviceSpec& spec) {
  std::lock_guard<std::mutex> lock(K().mu);
  for (const Device& d : K().devices) {
    if (d.spec.bdf == spec.bdf) return -EEXIST;
  }
  auto git = K().groups.find(spec.group);
  if (git != K().groups.end() && git->second.noiommu != spec.noiommu) return -EINVAL;
  Device d;
  d.spec = spec;
  if (spec.noiommu) d.spec.cdev = false;  // the kernel has no cdev for no-IOMMU devices
  for (const RegionSpec& rs : spec.regions) {
    auto r = std::make_shared<Region>();
    r->spec = rs;
    r->alloc = std::max<uint64_t>(kPage, (rs.size + kPage - 1) / kPage * kPage);
    // SAFETY: aligned_alloc with a page-multiple size; zeroed below; freed by the deleter.
    r->mem = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(std::aligned_alloc(kPage, r->alloc)),
                                      [](uint8_t* p) { std::free(p); });
    if (!r->mem) return -ENOMEM;
    std::memset(r->mem.get(), 0, r->alloc);
    d.regions.push_back(std::move(r));
  }
  K().devices.push_back(std::move(d));
  if (git == K().groups.end()) {
    K().groups[spec.group] = Group{spec.group, spec.noiommu, -1, nullptr};
  }
  return static_cast<int>(K().devices.size() - 1);
}

void InjectError(const std::string& op, int err, int count) {
  std::lock_guard<std::mutex> lock(K().mu);
  if (count <= 0) {
    K().injections.erase(op);
  } else {
    K().injections[op] = Injection{err, count};
  }
}

bool RaiseIrq(const std::string& bdf, uint32_t index, uint32_t vector) {
  std::lock_guard<std::mutex> lock(K().mu);
  for (Device& d : K().devices) {
    if (d.spec.bdf != bdf) continue;
    auto it = d.triggers.find({index, vector});
    if (it == d.triggers.end() || d.masked[{index, vector}]) return false;
    uint64_t one = 1;
    return ::write(it->second, &one, sizeof(one)) == sizeof(one);
  }
  return false;
}

size_t OpenFds() {
  std::lock_guard<std::mutex> lock(K().mu);
  return K().files.size();
}

uint64_t MappedBytes() {
  std::lock_guard<std::mutex> lock(K().mu);
  std::set<const Container*> containers;
  uint64_t total = 0;
  for (auto& [fd, f] : K().files) {
    if (f.container) containers.insert(f.container.get());
    if (f.iommufd) {
      for (auto& [id, ioas] : f.iommufd->ioas) {
        for (auto& [iova, size] : ioas.areas) total += size;
      }
    }
  }
  for (auto& [id, g] : K().groups) {
    if (g.container) containers.insert(g.container.get());
  }
  for (const Container* c : containers) {
    for (auto& [iova, size] : c->dma) total += size;
  }
  return total;
}

size_t LiveMappings() {
  std::lock_guard<std::mutex> lock(K().mu);
  return K().maps.size();
}

}  // namespace vfiobox::fake
