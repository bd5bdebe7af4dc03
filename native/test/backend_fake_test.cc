// SPDX-License-Identifier: MIT
// The legacy, no-IOMMU and iommufd backends driven through IommuContext over the fake kernel:
// open -> device -> region info -> mmap -> DMA map/unmap -> close, then every fd, mapping and
// IOMMU byte the fake counted must be gone.
#include <linux/vfio.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "native/src/iommu_context.h"
#include "native/src/sys.h"
#include "native/src/sys_fake.h"
#include "native/test/check.h"

namespace vfiobox {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint32_t kRw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

fake::DeviceSpec EduSpec(const char* bdf, int group, bool noiommu = false) {
  fake::DeviceSpec s;
  s.bdf = bdf;
  s.group = group;
  s.noiommu = noiommu;
  constexpr uint32_t kRwMmap =
      VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;
  fake::RegionSpec bar0{0x100000, kRwMmap, {{0, 0x10000}, {0x20000, 0xe0000}}, false, 0, 0, true};
  s.regions.push_back(bar0);
  s.regions.resize(7);
  s.regions.push_back(
      {256, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, {}, false, 0, 0, false});
  s.irqs = {{1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE}, {1, VFIO_IRQ_INFO_EVENTFD}};
  s.iova_ranges = {{0, 0xfedfffff}, {0xfef00000, UINT64_MAX}};
  return s;
}

std::shared_ptr<void> AnonMemory(size_t size, uint8_t** data) {
  void* p = nullptr;
  CHECK_EQ(sys::Mmap(&p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1, 0), 0);
  *data = static_cast<uint8_t*>(p);
  return std::shared_ptr<void>(p, [size](void* q) { sys::Munmap(q, size); });
}

void ExerciseDevice(VfioDevice& dev) {
  auto info = dev.Info();
  CHECK(info.ok() && info->num_regions == 8 && info->num_irqs == 2);
  auto bar0 = dev.GetRegionInfo(0);  // caps need more than 32 bytes: the argsz retry path
  CHECK(bar0.ok());
  CHECK(bar0.ok() && bar0->caps.size() == 2);
  if (bar0.ok() && bar0->caps.size() == 2) {
    CHECK(bar0->caps[0].kind == RegionCap::Kind::kSparseMmap);
    CHECK_EQ(bar0->caps[0].areas.size(), 2u);
    CHECK(bar0->caps[0].areas[1] == std::make_pair(uint64_t{0x20000}, uint64_t{0xe0000}));
    CHECK(bar0->caps[1].kind == RegionCap::Kind::kMsixMappable);
  }
  CHECK(dev.Write(7, 4, 2, 0x0006).ok());
  uint64_t v = 0;
  CHECK(dev.Read(7, 4, 2, &v).ok() && v == 6);
  auto map = dev.Map(0, 0, 0x10000);
  CHECK(map.ok());
  if (map.ok()) {
    MmioStore((*map)->Data() + 8, 4, 0xdeadbeef);
    CHECK(dev.Read(0, 8, 4, &v).ok() && v == 0xdeadbeef);  // same memory through pread
  }
  CHECK(!dev.Map(0, 0x10000, 0x1000).ok());  // outside every sparse area
  size_t live = fake::LiveMappings();        // the BAR mapping, plus DMA memory still mapped
  dev.Close();
  CHECK(map.ok() && !(*map)->Alive());  // the device's close killed its mapping
  CHECK_EQ(fake::LiveMappings(), live - 1);
  CHECK_EQ(dev.Info().status().code(), std::string("ERR_VFIO_CLOSED"));
}

void ExerciseDma(IommuContext& ctx) {
  uint8_t* data = nullptr;
  auto mem = AnonMemory(8 * kPage, &data);
  CHECK(ctx.DmaMap(mem, data, 0, 0x100000, 4 * kPage, kRw).ok());
  CHECK_EQ(ctx.DmaMap(mem, data, 0, 0x102000, kPage, kRw).err(), EEXIST);
  Status out = ctx.DmaMap(mem, data, 0, 0xfee00000, kPage, kRw);
  CHECK_EQ(out.code(), std::string("ERR_VFIO_IOVA_RANGE"));
  CHECK_EQ(fake::MappedBytes(), 4 * kPage);
  CHECK_EQ(ctx.DmaUnmap(0x100000, kPage).status().err(), EINVAL);  // would split
  CHECK(ctx.DmaUnmap(0x200000, kPage).ok() && *ctx.DmaUnmap(0x200000, kPage) == 0);
  auto bytes = ctx.DmaUnmap(0x100000, 4 * kPage);
  CHECK(bytes.ok() && *bytes == 4 * kPage);
  CHECK_EQ(fake::MappedBytes(), 0u);
  CHECK(ctx.DmaMap(mem, data + kPage, kPage, 0x300000, kPage, kRw).ok());  // left for Close
  fake::InjectError(ctx.kind() == "iommufd" ? "IOMMU_IOAS_MAP" : "VFIO_IOMMU_MAP_DMA", EFAULT, 1);
  Status injected = ctx.DmaMap(mem, data, 0, 0x400000, kPage, kRw);
  CHECK_EQ(injected.err(), EFAULT);
  CHECK_EQ(ctx.DmaList().size(), 1u);  // the failed map left no entry
}

void RunBackend(const char* kind) {
  fake::Reset();
  bool noiommu = std::string(kind) == "noiommu";
  int n = fake::AddDevice(EduSpec("0000:00:03.0", 5, noiommu));
  CHECK(n >= 0);
  auto ctx = IommuContext::Create(kind);
  CHECK(ctx.ok());
  if (!ctx.ok()) return;
  DeviceOpenSpec spec{"0000:00:03.0", noiommu ? "/dev/vfio/noiommu-5" : "/dev/vfio/5",
                      "/dev/vfio/devices/vfio" + std::to_string(n)};
  auto dev = (*ctx)->OpenDevice(spec);
  CHECK(dev.ok());
  if (!dev.ok()) return;
  if (noiommu) {
    uint8_t* data = nullptr;
    auto mem = AnonMemory(kPage, &data);
    CHECK_EQ((*ctx)->DmaMap(mem, data, 0, 0x100000, kPage, kRw).code(),
             std::string("ERR_VFIO_NOIOMMU_DMA"));
  } else {
    auto ranges = (*ctx)->IovaRanges();
    CHECK(ranges.ok() && ranges->size() == 2 && (*ranges)[0].last == 0xfedfffff);
    ExerciseDma(**ctx);
  }
  ExerciseDevice(**dev);
  (*ctx)->Close();
  CHECK_EQ(fake::OpenFds(), 0u);
  CHECK_EQ(fake::MappedBytes(), 0u);
  CHECK_EQ(fake::LiveMappings(), 0u);  // DMA memory freed once the table let go
}

void TestExclusiveOpens() {
  fake::Reset();
  int n = fake::AddDevice(EduSpec("0000:00:04.0", 6));
  auto a = IommuContext::Create("legacy");
  auto b = IommuContext::Create("legacy");
  auto c = IommuContext::Create("iommufd");
  CHECK(a.ok() && b.ok() && c.ok());
  DeviceOpenSpec spec{"0000:00:04.0", "/dev/vfio/6", "/dev/vfio/devices/vfio" + std::to_string(n)};
  CHECK((*a)->OpenDevice(spec).ok());
  auto second = (*b)->OpenDevice(spec);
  CHECK_EQ(second.status().err(), EBUSY);
  CHECK_EQ(second.status().op(), std::string("open"));
  auto cdev = (*c)->OpenDevice(spec);
  CHECK_EQ(cdev.status().err(), EBUSY);
  CHECK_EQ(cdev.status().op(), std::string("VFIO_DEVICE_BIND_IOMMUFD"));
  (*a)->Close();
  auto bound = (*c)->OpenDevice(spec);  // group released: the cdev may bind now
  CHECK(bound.ok());
  auto blocked = (*b)->OpenDevice(spec);
  CHECK_EQ(blocked.status().err(), EBUSY);  // and now the group is blocked
  (*b)->Close();
  (*c)->Close();
  // a cdev refuses everything but BIND until bound (vfio_edu_test.c open_cdev)
  int raw = sys::Open(spec.cdev_path.c_str(), 0);
  vfio_device_info pre = {};
  pre.argsz = sizeof(pre);
  CHECK_EQ(sys::Ioctl(raw, VFIO_DEVICE_GET_INFO, &pre), -EINVAL);
  CHECK_EQ(sys::Close(raw), 0);
  CHECK_EQ(fake::OpenFds(), 0u);
}

// DmaBuffer memory from 2 MiB up (sys::MmapAnonAligned): aligned, usable, released whole
void TestAlignedAnonymousMemory() {
  constexpr size_t kTwoMib = size_t{2} << 20;
  size_t before = fake::LiveMappings();
  for (size_t length : {kTwoMib, 3 * kTwoMib + kPage}) {
    void* p = nullptr;
    CHECK_EQ(sys::MmapAnonAligned(&p, length, kTwoMib), 0);
    CHECK(reinterpret_cast<uintptr_t>(p) % kTwoMib == 0);
    std::memset(p, 0x5a, length);  // every byte of it is mapped and writable
    CHECK_EQ(fake::LiveMappings(), before + 1);
    CHECK_EQ(sys::Munmap(p, length), 0);
  }
  void* p = nullptr;
  CHECK_EQ(sys::MmapAnonAligned(&p, kTwoMib, 3 * kPage), -EINVAL);  // not a power of two
  CHECK_EQ(sys::MmapAnonAligned(&p, 0, kTwoMib), -EINVAL);
  CHECK_EQ(fake::LiveMappings(), before);
}

}  // namespace
}  // namespace vfiobox

int main() {
  vfiobox::RunBackend("legacy");
  vfiobox::RunBackend("iommufd");
  vfiobox::RunBackend("noiommu");
  vfiobox::TestExclusiveOpens();
  vfiobox::TestAlignedAnonymousMemory();
  return vfiobox::test::Finish("backend_fake");
}
