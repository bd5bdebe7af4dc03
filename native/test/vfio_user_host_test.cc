// SPDX-License-Identifier: MIT
// ServerCore through a socketpair, part 3: greedy receiving (many messages per recvmsg, fds
// kept with their message, messages larger than the receive buffer), a request abandoned by
// its thread and answered by AnswerInFlight, and ServerHost (the registry, attach/detach,
// fence, close). Built with ASan + UBSan by native/test/run.sh.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstdlib>
#include <thread>

#include "native/src/vfio_user/server_host.h"
#include "native/src/vfio_user/transport.h"
#include "native/test/vfio_user_peer.h"

namespace vfiobox::test {
namespace {

constexpr uint32_t kRW = kDmaFlagRead | kDmaFlagWrite;

bool IsError(const Received& r, int err) {
  return r.ok && r.error() && r.header.error == static_cast<uint32_t>(err) && r.payload.empty();
}

/** one whole message: header (msg_size computed) + payload */
std::vector<uint8_t> Msg(uint16_t id, uint16_t cmd, const Bytes& payload, uint32_t flags = 0) {
  Header h{id, cmd, static_cast<uint32_t>(16 + payload.data().size()), flags, 0};
  Bytes all;
  all.Put(h).Raw(payload.data().data(), payload.data().size());
  return all.data();
}

Bytes Write32(uint64_t offset, uint32_t value) {
  Bytes b;
  b.Put(RegionAccess{offset, 0, 4}).Put(value);
  return b;
}

int Memfd(size_t size) {
  int fd = memfd_create("guest", MFD_CLOEXEC);
  CHECK_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
  return fd;
}

void TestManyMessagesPerRead() {
  Peer p;
  p.Negotiate();
  std::vector<uint8_t> burst;
  for (uint32_t i = 0; i < 100; ++i) {
    std::vector<uint8_t> m = Msg(static_cast<uint16_t>(10 + i), kCmdRegionWrite,
                                 Write32(0x100 + 4 * i, 0xa0000000u + i), kFlagNoReply);
    burst.insert(burst.end(), m.begin(), m.end());
  }
  std::vector<uint8_t> read =
      Msg(200, kCmdRegionRead, Bytes().Put(RegionAccess{0x100 + 4 * 99, 0, 4}));
  burst.insert(burst.end(), read.begin(), read.end());
  p.SendBytes(burst);  // one sendmsg: 101 messages
  p.core->OnReadable();
  Received r = p.Recv();
  CHECK(r.ok && !r.error() && r.header.msg_id == 200);
  CHECK_EQ(r.At<uint32_t>(16), 0xa0000000u + 99);  // every posted write was applied first
  CHECK_EQ(p.core->stats().requests[kCmdRegionWrite], 100u);
  CHECK(p.Quiet());
}

void TestFdsStayWithTheirMessage() {
  Peer p;
  p.Negotiate();
  int base = OpenFdCount();
  // [REGION_READ][DMA_MAP + memfd] as two sendmsg calls, read by one recvmsg: the fd belongs
  // to the DMA_MAP (else the read would be refused and the map would have no fd)
  int fd = Memfd(0x1000);
  p.SendBytes(Msg(1, kCmdRegionRead, Bytes().Put(RegionAccess{0, 0, 4})));
  p.SendBytes(Msg(2, kCmdDmaMap, Bytes().Put(DmaMap{32, kRW, 0, 0x10000, 0x1000})), {fd});
  p.core->OnReadable();
  Received read = p.Recv();
  CHECK(read.ok && !read.error() && read.header.msg_id == 1);
  Received map = p.Recv();
  CHECK(map.ok && !map.error() && map.header.msg_id == 2);
  uint8_t byte = 0;
  CHECK_EQ(p.core->DmaRead(0x10000, &byte, 1), 0);  // mmapped: it came with its fd
  // [SET_IRQS + eventfd][REGION_READ]: the kernel stops after the fds, the read is clean
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  Bytes irqs;
  irqs.Put(IrqSet{20, kIrqDataEventfd | kIrqActionTrigger, 1, 0, 1});
  p.SendBytes(Msg(3, kCmdDeviceSetIrqs, irqs), {efd});
  p.SendBytes(Msg(4, kCmdRegionRead, Bytes().Put(RegionAccess{0, 0, 4})));
  p.core->OnReadable();
  p.core->OnReadable();
  CHECK(!p.Recv().error());
  CHECK(!p.Recv().error());
  CHECK_EQ(p.core->TriggerIrq(1, 0), 1);
  // one message in two sendmsg calls, the fd with the second half: still that message's
  std::vector<uint8_t> whole = Msg(5, kCmdDmaMap, Bytes().Put(DmaMap{32, kRW, 0, 0x20000, 0x1000}));
  std::vector<uint8_t> head(whole.begin(), whole.begin() + 10);
  std::vector<uint8_t> tail(whole.begin() + 10, whole.end());
  p.SendBytes(head);
  p.core->OnReadable();
  p.SendBytes(tail, {fd});
  p.core->OnReadable();
  CHECK(!p.Recv().error());
  CHECK_EQ(p.core->DmaRead(0x20000, &byte, 1), 0);
  close(fd);
  close(efd);
  CHECK_EQ(OpenFdCount(), base + 1);  // the core holds the eventfd; mappings hold no fd
  p.Hangup();
  CHECK_EQ(OpenFdCount(), base - 2);  // the eventfd and both socket ends are gone
}

void TestMessagesLargerThanTheBuffer() {
  Peer p;
  p.Negotiate();
  // fill most of the 64 KiB buffer, then a 16 KiB write that straddles its end
  std::vector<uint8_t> burst;
  for (uint32_t i = 0; i < 1500; ++i) {
    std::vector<uint8_t> m = Msg(1, kCmdRegionWrite, Write32(0, i), kFlagNoReply);
    burst.insert(burst.end(), m.begin(), m.end());
  }
  Bytes big;
  big.Put(RegionAccess{0, 0, 0x4000});
  std::vector<uint8_t> fill(0x4000, 0x77);
  big.Raw(fill.data(), fill.size());
  std::vector<uint8_t> m = Msg(2, kCmdRegionWrite, big);
  burst.insert(burst.end(), m.begin(), m.end());
  // and one of 100 KiB (above the region: EINVAL, but it must be framed whole)
  Bytes huge;
  huge.Put(RegionAccess{0, 0, 100 * 1024});
  std::vector<uint8_t> more(100 * 1024, 0x11);
  huge.Raw(more.data(), more.size());
  m = Msg(3, kCmdRegionWrite, huge);
  burst.insert(burst.end(), m.begin(), m.end());
  m = Msg(4, kCmdRegionRead, Bytes().Put(RegionAccess{0x3ffc, 0, 4}));
  burst.insert(burst.end(), m.begin(), m.end());
  std::thread sender([&] { p.SendBytes(burst); });  // more than the socket buffer holds
  for (int i = 0; i < 1000 && p.core->stats().requests[kCmdRegionRead] == 0; ++i) {
    pollfd q{p.core->client_fd(), POLLIN, 0};
    poll(&q, 1, 10);
    p.core->OnReadable();
  }
  sender.join();
  Received r2 = p.Recv();
  Received r3 = p.Recv();
  Received r4 = p.Recv();
  CHECK(r2.ok && !r2.error() && r2.header.msg_id == 2);
  CHECK(IsError(r3, EINVAL) && r3.header.msg_id == 3);
  CHECK(r4.ok && r4.header.msg_id == 4 && r4.At<uint32_t>(16) == 0x77777777u);
  CHECK(p.core->connected());
}

void TestAbandonedRequestWaitsForItsAnswer() {
  Peer p;
  p.Negotiate();
  // the hook's thread goes away in the middle of a read: no answer, nothing more dispatched
  p.device.read_error = DeviceHooks::kAbandoned;
  p.SendBytes(Msg(7, kCmdRegionRead, Bytes().Put(RegionAccess{0x10, 0, 4})));
  p.SendBytes(Msg(8, kCmdRegionRead, Bytes().Put(RegionAccess{0x20, 0, 4})));
  p.core->OnReadable();
  CHECK(p.Quiet());
  CHECK(p.core->stopped() && p.core->HasInFlight());
  CHECK(p.core->HasDeferred());  // the second read waits in the buffer
  CHECK_EQ(p.core->AnswerInFlight(), uint16_t{kCmdRegionRead});
  Received fenced = p.Recv();
  CHECK(fenced.ok && !fenced.error() && fenced.header.msg_id == 7);
  CHECK_EQ(fenced.payload.size(), 20u);
  CHECK_EQ(fenced.At<uint32_t>(16), 0xffffffffu);
  CHECK_EQ(p.core->AnswerInFlight(), uint16_t{0});  // answered once
  p.core->Resume();
  p.device.bar0[0x20] = 0x42;
  p.core->OnReadable(false);  // buffered: no readiness needed
  Received next = p.Recv();
  CHECK(next.ok && next.header.msg_id == 8 && next.At<uint8_t>(16) == 0x42);
  CHECK_EQ(p.core->stats().fenced_replies, 1u);
}

class AbandoningDevice : public RamDevice {
 public:
  int RegionWrite(uint32_t, uint64_t, const uint8_t*, uint32_t) override { return kAbandoned; }
  int Reset() override { return kAbandoned; }
};

void TestFencedAnswersByCommand() {
  Peer p;
  AbandoningDevice dev;
  p.core->set_hooks(&dev);
  p.Negotiate();
  p.Send(kCmdRegionWrite, Write32(0, 1));  // a write: success, the data dropped
  CHECK(p.Quiet());
  CHECK_EQ(p.core->AnswerInFlight(), uint16_t{kCmdRegionWrite});
  Received w = p.Recv();
  CHECK(w.ok && !w.error() && w.payload.size() == 16);
  p.core->Resume();
  p.Send(kCmdRegionWrite, Write32(0, 2), {}, kFlagNoReply);  // posted: nothing, ever
  CHECK_EQ(p.core->AnswerInFlight(), uint16_t{kCmdRegionWrite});
  CHECK(p.Quiet());
  p.core->Resume();
  p.Send(kCmdDeviceReset, Bytes());  // anything else: EIO
  CHECK_EQ(p.core->AnswerInFlight(), uint16_t{kCmdDeviceReset});
  CHECK(IsError(p.Recv(), EIO));
  p.core->Resume();
  p.Send(kCmdDeviceReset, Bytes());  // in flight, then the client goes: the answer is lost
  p.CloseClientEnd();
  CHECK_EQ(p.core->AnswerInFlight(), uint16_t{kCmdDeviceReset});
  CHECK(!p.core->connected());  // the send failed: disconnected
  CHECK_EQ(p.core->AnswerInFlight(), uint16_t{0});
  p.core->set_hooks(&p.device);
}

std::string TempPath() {
  char tmpl[] = "/tmp/vfiobox-host-XXXXXX";
  CHECK(mkdtemp(tmpl) != nullptr);
  return std::string(tmpl) + "/s.sock";
}

void TestServerHost() {
  std::string path = TempPath();
  auto made = ServerHost::Listen(path, TestLayout(), ServerOptions{});
  CHECK(made.ok());
  std::shared_ptr<ServerHost> host = *made;
  CHECK(ServerHost::Find(path) == host);
  auto again = ServerHost::Listen(path, TestLayout(), ServerOptions{});
  CHECK(!again.ok() && again.status().err() == EADDRINUSE);  // registered in this process
  RamDevice dev;
  CHECK_EQ(host->AttachThread(&dev, nullptr), 0);
  CHECK_EQ(host->AttachThread(&dev, nullptr), -EBUSY);
  // a client, accepted as the serving thread would
  auto client = ConnectUnix(path);
  CHECK(client.ok());
  int fd = -1;
  for (int i = 0; i < 100 && fd < 0; ++i) fd = AcceptUnix(host->listen_fd());
  CHECK(fd >= 0);
  CHECK_EQ(host->core().Attach(UniqueFd(fd)), 0);
  CHECK_EQ(dev.connects, 1);
  FenceResult busy = ServerHost::Fence(path);
  CHECK(busy.found && busy.attached && busy.answered == 0);  // a thread serves it: hands off
  CHECK_EQ(ServerHost::CloseDetached(path), -EBUSY);
  host->DetachThread();
  FenceResult idle = ServerHost::Fence(path);
  CHECK(idle.found && !idle.attached && idle.answered == 0);
  DeviceLayout other = TestLayout();
  other.regions[0].size = 0x8000;
  CHECK(!host->Matches(other, ServerOptions{}));
  CHECK(host->Matches(TestLayout(), ServerOptions{}));
  RamDevice successor;
  CHECK_EQ(host->AttachThread(&successor, nullptr), 0);
  CHECK(host->core().connected());  // the same client
  host->DetachThread();
  CHECK_EQ(ServerHost::CloseDetached(path), 1);
  CHECK(ServerHost::Find(path) == nullptr);
  CHECK_EQ(successor.disconnects, 0);  // detached: no device hears of it
  struct stat st;
  CHECK_EQ(::stat(path.c_str(), &st), -1);  // the socket file is gone
  CHECK_EQ(host->AttachThread(&successor, nullptr), -ENOENT);
  CHECK_EQ(ServerHost::CloseDetached(path), 0);
  FenceResult gone = ServerHost::Fence(path);
  CHECK(!gone.found);
  char byte;
  CHECK_EQ(read(client->Get(), &byte, 1), 0);  // the client sees the end
  rmdir(path.substr(0, path.rfind('/')).c_str());
}

}  // namespace
}  // namespace vfiobox::test

int main() {
  using namespace vfiobox::test;  // NOLINT
  int base = OpenFdCount();
  TestManyMessagesPerRead();
  TestFdsStayWithTheirMessage();
  TestMessagesLargerThanTheBuffer();
  TestAbandonedRequestWaitsForItsAnswer();
  TestFencedAnswersByCommand();
  TestServerHost();
  CHECK_EQ(OpenFdCount(), base);
  return Finish("vfio_user_host");
}
