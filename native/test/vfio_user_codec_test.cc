// SPDX-License-Identifier: MIT
// ServerCore through a socketpair, part 1: framing, VERSION/JSON, malformed messages, fds on
// commands that take none, device/region info (argsz retry, sparse mmap) and region access.
// Built with ASan + UBSan by native/test/run.sh.
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "native/test/vfio_user_peer.h"

namespace vfiobox::test {
namespace {

Bytes VersionPayload(uint16_t major, uint16_t minor, const std::string& json, bool nul = true) {
  Bytes b;
  b.Put(major).Put(minor).Str(json);
  if (nul) b.Put(uint8_t{0});
  return b;
}

bool IsError(const Received& r, int err) {
  return r.ok && r.error() && r.header.error == static_cast<uint32_t>(err) && r.payload.empty();
}

void TestVersion() {
  Peer p;
  Received r = p.Call(kCmdVersion, VersionPayload(0, 3, "{\"capabilities\":{\"pgsizes\":4096}}"));
  CHECK(r.ok && !r.error());
  CHECK_EQ(r.header.flags, kFlagTypeReply);
  CHECK_EQ(r.At<uint16_t>(0), 0);
  CHECK_EQ(r.At<uint16_t>(2), 0);  // min(client 3, ours 0)
  std::string json(r.payload.begin() + 4, r.payload.end());
  CHECK(json.back() == '\0');
  CHECK(json.find("\"max_msg_fds\":16") != std::string::npos);
  CHECK(json.find("\"max_data_xfer_size\":1048576") != std::string::npos);
  CHECK(json.find("\"pgsizes\":4096") != std::string::npos);
  CHECK(IsError(p.Call(kCmdVersion, VersionPayload(0, 0, "{}")), EINVAL));  // twice
}

void TestVersionRefusals() {
  const char* bad_json[] = {"{",
                            "[]",
                            "{\"capabilities\":1}",
                            "{\"capabilities\":{\"max_msg_fds\":\"8\"}}",
                            "{\"capabilities\":{\"max_msg_fds\":-1}}",
                            "{\"capabilities\":{\"max_msg_fds\":1.5}}",
                            "{\"capabilities\":{\"pgsizes\":8192}}",
                            "{} x",
                            "{\"a\":01}",
                            "{\"a\":\"\\q\"}",
                            "{\"a\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}",
                            "{\"capabilities\":{\"max_dma_maps\":4294967296}}"};
  for (const char* json : bad_json) {
    Peer p;
    Received r = p.Call(kCmdVersion, VersionPayload(0, 0, json));
    CHECK(IsError(r, EINVAL));
  }
  Peer p;
  CHECK(IsError(p.Call(kCmdVersion, VersionPayload(0, 0, "{}", false)), EINVAL));  // no NUL
  CHECK(IsError(p.Call(kCmdVersion, Bytes().Put(uint16_t{0})), EINVAL));           // short
  CHECK(IsError(p.Call(kCmdVersion, VersionPayload(1, 0, "{}")), ENOTSUP));
  std::string inner("{}\0{}", 5);
  CHECK(IsError(p.Call(kCmdVersion, VersionPayload(0, 0, inner)), EINVAL));  // inner NUL
  int efd = eventfd(0, EFD_CLOEXEC);
  CHECK(IsError(p.Call(kCmdVersion, VersionPayload(0, 0, "{}"), {efd}), EINVAL));  // fds
  close(efd);
  // accepted: unknown keys, nested objects, escapes, no JSON at all
  Peer q;
  CHECK(!q.Call(kCmdVersion,
                VersionPayload(0, 0,
                               "{\"capabilities\":{\"migration\":{\"pgsize\":4096},"
                               "\"x\":[true,null,\"\\u00e9\"],\"write_multiple\":true}}"))
             .error());
  Peer none;
  CHECK(!none.Call(kCmdVersion, Bytes().Put(uint16_t{0}).Put(uint16_t{0})).error());
}

void TestCommandBeforeVersion() {
  Peer p;
  CHECK(IsError(p.Call(kCmdDeviceGetInfo, Bytes().Put(DeviceInfo{16, 0, 0, 0})), EINVAL));
  p.Negotiate();  // still connected
  CHECK(p.core->connected());
}

void TestFraming() {
  {  // msg_size below the header: error reply, then the connection is dropped
    Peer p;
    p.Negotiate();
    p.Send(kCmdDeviceGetInfo, Bytes(), {}, 0, 8);
    CHECK(IsError(p.Recv(), EINVAL));
    CHECK(!p.core->connected());
    CHECK_EQ(p.device.last_reason, std::string("framing"));
  }
  {  // msg_size above the cap
    Peer p;
    p.Negotiate();
    p.Send(kCmdRegionWrite, Bytes(), {}, 0, 0x10000000);
    CHECK(IsError(p.Recv(), E2BIG));
    CHECK(!p.core->connected());
  }
  {  // a truncated header, then EOF: a clean disconnect
    Peer p;
    p.Negotiate();
    std::vector<uint8_t> half(10, 0);
    p.SendBytes(half);
    p.core->OnReadable();
    CHECK(p.core->connected());  // waits for the rest
    p.Hangup();
    CHECK(!p.core->connected());
    CHECK_EQ(p.device.last_reason, std::string("eof"));
  }
  {  // a msg_size that stops short of the struct: EINVAL, framing intact
    Peer p;
    p.Negotiate();
    CHECK(IsError(p.Call(kCmdDmaMap, Bytes().Put(uint64_t{32})), EINVAL));
    CHECK(IsError(p.Call(kCmdRegionRead, Bytes().Put(uint64_t{0})), EINVAL));
    CHECK(!p.Call(kCmdDeviceReset, Bytes()).error());
  }
}

void TestMalformed() {
  Peer p;
  p.Negotiate();
  CHECK(IsError(p.Call(200, Bytes()), ENOSYS));
  CHECK(IsError(p.Call(kCmdRegionWriteMulti, Bytes().Put(uint64_t{0})), ENOSYS));
  CHECK(IsError(p.Call(kCmdDeviceFeature, Bytes().Put(uint64_t{0})), ENOSYS));
  CHECK(IsError(p.Call(kCmdMigDataRead, Bytes().Put(uint64_t{0})), ENOSYS));
  CHECK(IsError(p.Call(kCmdDmaRead, Bytes().Put(DmaAccess{0, 8})), EINVAL));
  CHECK(IsError(p.Call(kCmdDeviceGetInfo, Bytes().Put(DeviceInfo{8, 0, 0, 0})), EINVAL));
  CHECK(IsError(p.Call(kCmdDeviceGetIrqInfo, Bytes().Put(IrqInfo{16, 0, 5, 0})), EINVAL));
  // a reply from the client that nobody asked for: never answered
  p.Send(kCmdDeviceReset, Bytes(), {}, kFlagTypeReply);
  CHECK(p.Quiet());
  CHECK(p.core->connected());
  CHECK_EQ(p.core->stats().errors.at(EINVAL), 4u);  // the stray reply counts too
}

void TestFdsOnCommandsWithout() {
  Peer p;
  p.Negotiate();
  int base = OpenFdCount();
  int efd = eventfd(0, EFD_CLOEXEC);
  CHECK(IsError(p.Call(kCmdDeviceGetInfo, Bytes().Put(DeviceInfo{16, 0, 0, 0}), {efd}), EINVAL));
  CHECK(IsError(p.Call(kCmdRegionRead, Bytes().Put(RegionAccess{0, 0, 4}), {efd, efd}), EINVAL));
  std::vector<int> many(17, efd);  // more than max_msg_fds: the kernel drops the excess
  CHECK(IsError(p.Call(kCmdDmaMap, Bytes().Put(DmaMap{32, 3, 0, 0, 4096}), many), EINVAL));
  close(efd);
  CHECK_EQ(OpenFdCount(), base);
}

void TestDeviceAndIrqInfo() {
  Peer p;
  p.Negotiate();
  Received r = p.Call(kCmdDeviceGetInfo, Bytes().Put(DeviceInfo{16, 0, 0, 0}));
  CHECK_EQ(r.At<uint32_t>(4), kDeviceFlagPci | kDeviceFlagReset);
  CHECK_EQ(r.At<uint32_t>(8), 9u);
  CHECK_EQ(r.At<uint32_t>(12), 5u);
  r = p.Call(kCmdDeviceGetIrqInfo, Bytes().Put(IrqInfo{16, 0, 1, 0}));
  CHECK_EQ(r.At<uint32_t>(4), kIrqInfoEventfd);
  CHECK_EQ(r.At<uint32_t>(8), 1u);
  CHECK_EQ(r.At<uint32_t>(12), 4u);
}

void TestRegionInfoArgszRetry() {
  DeviceLayout layout = TestLayout();
  int memfd = memfd_create("bar0", MFD_CLOEXEC);
  CHECK_EQ(ftruncate(memfd, 0x4000), 0);
  layout.regions[0].flags |= kRegionFlagMmap;
  layout.regions[0].fd = std::make_shared<UniqueFd>(memfd);
  layout.regions[0].fd_offset = 0x10000;
  layout.regions[0].mmap_areas = {{0, 0x1000}, {0x2000, 0x1000}};
  Peer p(std::move(layout));
  p.Negotiate();
  Received r = p.Call(kCmdDeviceGetRegionInfo, Bytes().Put(RegionInfo{32, 0, 0, 0, 0, 0}));
  CHECK(r.ok && !r.error());
  CHECK_EQ(r.payload.size(), 32u);
  CHECK_EQ(r.At<uint32_t>(0), 80u);  // the size it needs [OBS: 32 -> 80]
  // no chain in this reply, so no CAPS flag and no cap_offset (QEMU refuses CAPS without one)
  CHECK_EQ(r.At<uint32_t>(4), kRegionFlagRead | kRegionFlagWrite | kRegionFlagMmap);
  CHECK_EQ(r.At<uint32_t>(12), 0u);
  CHECK(r.fds.empty());
  r = p.Call(kCmdDeviceGetRegionInfo, Bytes().Put(RegionInfo{80, 0, 0, 0, 0, 0}));
  CHECK_EQ(r.payload.size(), 80u);
  CHECK_EQ(r.At<uint32_t>(4),
           kRegionFlagRead | kRegionFlagWrite | kRegionFlagMmap | kRegionFlagCaps);
  CHECK_EQ(r.At<uint32_t>(12), 32u);       // cap_offset
  CHECK_EQ(r.At<uint64_t>(16), 0x4000u);   // size
  CHECK_EQ(r.At<uint64_t>(24), 0x10000u);  // mmap offset
  CHECK_EQ(r.At<uint16_t>(32), kCapSparseMmap);
  CHECK_EQ(r.At<uint32_t>(36), 0u);  // next: end of chain
  CHECK_EQ(r.At<uint32_t>(40), 2u);  // nr_areas
  CHECK_EQ(r.At<uint64_t>(64), 0x2000u);
  CHECK_EQ(r.fds.size(), 1u);
  r.CloseFds();
  r = p.Call(kCmdDeviceGetRegionInfo, Bytes().Put(RegionInfo{32, 0, 1, 0, 0, 0}));
  CHECK_EQ(r.At<uint32_t>(4), kRegionFlagRead);  // no fd: no MMAP, no caps
  CHECK(r.fds.empty());
  CHECK(
      IsError(p.Call(kCmdDeviceGetRegionInfo, Bytes().Put(RegionInfo{32, 0, 9, 0, 0, 0})), EINVAL));
  CHECK(
      IsError(p.Call(kCmdDeviceGetRegionInfo, Bytes().Put(RegionInfo{16, 0, 0, 0, 0, 0})), EINVAL));
}

void TestRegionAccess() {
  Peer p;
  p.Negotiate();
  Bytes w;
  w.Put(RegionAccess{0x100, 0, 4}).Put(uint32_t{0xdeadbeef});
  Received r = p.Call(kCmdRegionWrite, w);
  CHECK(r.ok && !r.error() && r.payload.size() == 16);
  r = p.Call(kCmdRegionRead, Bytes().Put(RegionAccess{0x100, 0, 4}));
  CHECK_EQ(r.At<uint32_t>(16), 0xdeadbeefu);
  CHECK(IsError(p.Call(kCmdRegionRead, Bytes().Put(RegionAccess{UINT64_MAX, 0, 4})), EINVAL));
  CHECK(IsError(p.Call(kCmdRegionRead, Bytes().Put(RegionAccess{0x3ffe, 0, 4})), EINVAL));
  CHECK(IsError(p.Call(kCmdRegionRead, Bytes().Put(RegionAccess{0, 0, 0})), EINVAL));
  CHECK(IsError(p.Call(kCmdRegionRead, Bytes().Put(RegionAccess{0, 2, 4})), EINVAL));  // absent
  CHECK(IsError(p.Call(kCmdRegionRead, Bytes().Put(RegionAccess{0, 0, 0x200000})), E2BIG));
  Bytes ro;
  ro.Put(RegionAccess{0, 1, 1}).Put(uint8_t{1});
  CHECK(IsError(p.Call(kCmdRegionWrite, ro), EACCES));  // BAR1 is read-only
  Bytes lie;
  lie.Put(RegionAccess{0, 0, 8}).Put(uint32_t{1});  // count 8, 4 data bytes
  CHECK(IsError(p.Call(kCmdRegionWrite, lie), EINVAL));
  p.device.read_error = EIO;
  CHECK(IsError(p.Call(kCmdRegionRead, Bytes().Put(RegionAccess{0, 0, 4})), EIO));
  // posted: applied, never answered, failures counted
  Bytes posted;
  posted.Put(RegionAccess{0x200, 0, 1}).Put(uint8_t{0x5a});
  p.Send(kCmdRegionWrite, posted, {}, kFlagNoReply);
  p.Send(kCmdRegionWrite, lie, {}, kFlagNoReply);
  CHECK(p.Quiet());
  CHECK_EQ(p.device.bar0[0x200], 0x5a);
  CHECK_EQ(p.core->stats().posted_errors, 1u);
}

void TestHookDisconnectsDuringRequest() {
  Peer p;
  p.Negotiate();
  p.device.disconnect_in_read = true;
  p.Send(kCmdRegionRead, Bytes().Put(RegionAccess{0, 0, 4}));
  CHECK(!p.core->connected());  // finished after the request, which got no reply
  CHECK_EQ(p.device.last_reason, std::string("from a hook"));
  CHECK_EQ(p.device.disconnects, 1);
}

}  // namespace
}  // namespace vfiobox::test

int main() {
  using namespace vfiobox::test;  // NOLINT
  int base = OpenFdCount();
  TestVersion();
  TestVersionRefusals();
  TestCommandBeforeVersion();
  TestFraming();
  TestMalformed();
  TestFdsOnCommandsWithout();
  TestDeviceAndIrqInfo();
  TestRegionInfoArgszRetry();
  TestRegionAccess();
  TestHookDisconnectsDuringRequest();
  CHECK_EQ(OpenFdCount(), base);  // every Peer, socket and client fd is gone
  return Finish("vfio_user_codec");
}
