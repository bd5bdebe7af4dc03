// SPDX-License-Identifier: MIT
// Memory-backed regions (native/src/vfio_user/region_memory.h) through a socketpair: the sealed
// memfd, GET_REGION_INFO with the sparse mmap capability and the fd (argsz retry first),
// REGION_READ/WRITE inside an area served from the memory and never by the hooks, accesses
// across an area's edge refused, and the memory staying with a ServerHost across a change of
// serving thread. Built with ASan + UBSan by native/test/run.sh.
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstdlib>

#include "native/src/vfio_user/server_host.h"
#include "native/test/vfio_user_peer.h"

namespace vfiobox::test {
namespace {

constexpr uint32_t kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

/** TestLayout plus BAR2: 8 KiB, its first page memory-backed (the rest trapped). */
DeviceLayout MemoryLayout() {
  DeviceLayout layout = TestLayout();
  RegionSpec& bar2 = layout.regions[2];
  bar2.size = 0x2000;
  bar2.flags = kRegionFlagRead | kRegionFlagWrite | kRegionFlagMmap;
  bar2.memory_backed = true;
  bar2.mmap_areas = {{0, 0x1000}};
  return layout;
}

Bytes RegionInfoRequest(uint32_t index, uint32_t argsz) {
  Bytes b;
  b.Put(RegionInfo{argsz, 0, index, 0, 0, 0});
  return b;
}

Bytes Access(uint32_t region, uint64_t offset, uint32_t count) {
  Bytes b;
  b.Put(RegionAccess{offset, region, count});
  return b;
}

void TestRegionInfoAndFd() {
  DeviceLayout layout = MemoryLayout();
  CHECK(BackRegionsWithMemory(&layout, "test").ok());
  Peer p(std::move(layout));
  p.Negotiate();
  // too small a buffer: the struct alone, with the argsz needed, and no fd
  Received small = p.Call(kCmdDeviceGetRegionInfo, RegionInfoRequest(2, sizeof(RegionInfo)));
  CHECK(small.ok && !small.error() && small.payload.size() == sizeof(RegionInfo));
  auto head = small.At<RegionInfo>(0);
  CHECK_EQ(head.argsz, sizeof(RegionInfo) + sizeof(SparseMmap) + sizeof(SparseArea));
  CHECK((head.flags & (kRegionFlagMmap | kRegionFlagCaps)) == kRegionFlagMmap);  // no chain yet
  CHECK(small.fds.empty());
  Received full = p.Call(kCmdDeviceGetRegionInfo, RegionInfoRequest(2, head.argsz));
  CHECK(full.ok && full.payload.size() == head.argsz && full.fds.size() == 1);
  auto info = full.At<RegionInfo>(0);
  CHECK_EQ(info.cap_offset, sizeof(RegionInfo));
  CHECK_EQ(info.size, 0x2000u);
  auto cap = full.At<SparseMmap>(info.cap_offset);
  CHECK(cap.header.id == kCapSparseMmap && cap.header.version == 1 && cap.header.next == 0);
  CHECK_EQ(cap.nr_areas, 1u);
  auto area = full.At<SparseArea>(info.cap_offset + sizeof(SparseMmap));
  CHECK(area.offset == 0 && area.size == 0x1000);
  if (full.fds.size() != 1) return;
  int fd = full.fds[0];
  struct stat st;
  CHECK(fstat(fd, &st) == 0 && st.st_size == 0x2000);
  CHECK_EQ(fcntl(fd, F_GET_SEALS), static_cast<int>(kSeals));
  CHECK(ftruncate(fd, 0) < 0 && errno == EPERM);  // sealed: the server's mapping stays backed
  void* addr = mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, info.offset);
  CHECK(addr != MAP_FAILED);
  auto* page = static_cast<uint8_t*>(addr);
  std::memset(p.device.bar0.data(), 0xee, 0x2000);  // what the hooks would answer
  uint32_t magic = 0x1234abcd;
  std::memcpy(page + 0x10, &magic, 4);
  // inside the area: the client's bytes, not the hooks'
  Received rd = p.Call(kCmdRegionRead, Access(2, 0x10, 4));
  CHECK(rd.ok && !rd.error() && rd.At<uint32_t>(sizeof(RegionAccess)) == magic);
  Bytes wr = Access(2, 0x20, 4);
  wr.Put(uint32_t{0x55667788});
  Received wrote = p.Call(kCmdRegionWrite, wr);
  CHECK(wrote.ok && !wrote.error());
  uint32_t seen = 0;
  std::memcpy(&seen, page + 0x20, 4);
  CHECK_EQ(seen, 0x55667788u);
  CHECK_EQ(p.device.bar0[0x20], 0xee);  // the hooks saw nothing
  // across the area's edge: refused; past it: the hooks (trapped registers)
  Received edge = p.Call(kCmdRegionRead, Access(2, 0xffc, 8));
  CHECK(edge.ok && edge.error() && edge.header.error == EINVAL);
  Received trapped = p.Call(kCmdRegionRead, Access(2, 0x1000, 4));
  CHECK(trapped.ok && !trapped.error() &&
        trapped.At<uint32_t>(sizeof(RegionAccess)) == 0xeeeeeeeeu);
  munmap(addr, 0x1000);
  close(fd);
}

void TestMemoryRules() {
  UniqueFd fd;
  CHECK(!RegionMemory::Create("zero", 0, &fd).ok());
  auto made = RegionMemory::Create("odd", 100, &fd);  // rounded up to a page in the memfd
  CHECK(made.ok() && fd.Valid());
  struct stat st;
  CHECK(fstat(fd.Get(), &st) == 0 && st.st_size == 4096);
  uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK_EQ((*made)->Write(92, buf, 8), 0);
  CHECK_EQ((*made)->Write(93, buf, 8), EINVAL);  // past the region's size, not the page's
  CHECK_EQ((*made)->Read(~uint64_t{0}, buf, 2), EINVAL);
  DeviceLayout no_areas = TestLayout();
  no_areas.regions[0].memory_backed = true;  // but no mmap areas
  CHECK(!BackRegionsWithMemory(&no_areas, "x").ok());
}

void TestMemoryOutlivesTheThread() {
  char tmpl[] = "/tmp/vfiobox-mem-XXXXXX";
  CHECK(mkdtemp(tmpl) != nullptr);
  std::string path = std::string(tmpl) + "/s.sock";
  auto made = ServerHost::Listen(path, MemoryLayout(), ServerOptions{});
  CHECK(made.ok());
  if (!made.ok()) return;
  std::shared_ptr<ServerHost> host = *made;
  RamDevice first;
  CHECK_EQ(host->AttachThread(&first, nullptr), 0);
  RegionMemory* memory = host->core().layout().regions[2].memory.get();
  CHECK(memory != nullptr);
  uint8_t bytes[4] = {9, 8, 7, 6};
  CHECK_EQ(memory->Write(0x100, bytes, 4), 0);
  host->DetachThread();  // the worker goes away
  CHECK(host->Matches(MemoryLayout(), ServerOptions{}));
  DeviceLayout trapped = MemoryLayout();
  trapped.regions[2].memory_backed = false;
  CHECK(!host->Matches(trapped, ServerOptions{}));
  RamDevice successor;
  CHECK_EQ(host->AttachThread(&successor, nullptr), 0);
  uint8_t seen[4] = {};
  CHECK(host->core().layout().regions[2].memory.get() == memory);
  CHECK_EQ(memory->Read(0x100, seen, 4), 0);
  CHECK(std::memcmp(seen, bytes, 4) == 0);
  host->DetachThread();
  CHECK_EQ(ServerHost::CloseDetached(path), 1);
  rmdir(tmpl);
}

}  // namespace
}  // namespace vfiobox::test

int main() {
  using namespace vfiobox::test;  // NOLINT
  int base = OpenFdCount();
  TestRegionInfoAndFd();
  TestMemoryRules();
  TestMemoryOutlivesTheThread();
  CHECK_EQ(OpenFdCount(), base);  // no memfd, client fd or socket left behind
  return Finish("vfio_user_memory");
}
