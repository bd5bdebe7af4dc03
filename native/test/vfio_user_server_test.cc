// SPDX-License-Identifier: MIT
// ServerCore through a socketpair, part 2: DMA_MAP/UNMAP and device DMA, SET_IRQS and IRQ
// signalling, pipelining, a full socket, disconnect and reconnect, fd-leak checks.
// Built with ASan + UBSan by native/test/run.sh.
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <thread>

#include "native/test/vfio_user_peer.h"

// ASan ignores sigaction(SIGBUS) from the program unless told otherwise; the core installs its
// SIGBUS guard (guarded_copy.h) at the first DMA_MAP of a shrinkable fd.
extern "C" const char* __asan_default_options() { return "allow_user_segv_handler=1"; }

namespace vfiobox::test {
namespace {

constexpr uint32_t kRW = kDmaFlagRead | kDmaFlagWrite;

bool IsError(const Received& r, int err) {
  return r.ok && r.error() && r.header.error == static_cast<uint32_t>(err) && r.payload.empty();
}

int Memfd(size_t size) {
  int fd = memfd_create("guest", MFD_CLOEXEC);
  CHECK_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
  return fd;
}

Received Map(Peer& p, uint64_t iova, uint64_t size, uint32_t flags, int fd, uint64_t off = 0) {
  std::vector<int> fds;
  if (fd >= 0) fds.push_back(fd);
  return p.Call(kCmdDmaMap, Bytes().Put(DmaMap{32, flags, off, iova, size}), fds);
}

Received Unmap(Peer& p, uint64_t iova, uint64_t size, uint32_t flags = 0) {
  return p.Call(kCmdDmaUnmap, Bytes().Put(DmaUnmap{24, flags, iova, size}));
}

void TestDmaMapValidation() {
  Peer p;
  p.Negotiate();
  int fd = Memfd(0x4000);
  CHECK(!Map(p, 0x10000, 0x2000, kRW, fd).error());
  CHECK(IsError(Map(p, 0x11000, 0x2000, kRW, fd), EEXIST));             // overlaps
  CHECK(IsError(Map(p, 0x10000, 0x1000, kRW, -1), EEXIST));             // overlaps, no fd
  CHECK(IsError(Map(p, 0x20001, 0x1000, kRW, fd), EINVAL));             // unaligned iova
  CHECK(IsError(Map(p, 0x20000, 0x1001, kRW, fd), EINVAL));             // unaligned size
  CHECK(IsError(Map(p, 0x20000, 0, kRW, fd), EINVAL));                  // empty
  CHECK(IsError(Map(p, UINT64_MAX - 0xfff, 0x2000, kRW, -1), EINVAL));  // wraps
  CHECK(IsError(Map(p, 0x20000, 0x8000, kRW, fd), EINVAL));             // larger than the file
  CHECK(IsError(Map(p, 0x20000, 0x1000, kRW, fd, 0x800), EINVAL));      // unaligned file offset
  CHECK(IsError(Map(p, 0x20000, 0x1000, kRW | 4, fd), EINVAL));         // unknown flag
  int efd = eventfd(0, EFD_CLOEXEC);
  CHECK(IsError(Map(p, 0x20000, 0x1000, kRW, efd), EINVAL));  // not a regular file
  CHECK(IsError(p.Call(kCmdDmaMap, Bytes().Put(DmaMap{32, kRW, 0, 0x20000, 0x1000}), {fd, fd}),
                EINVAL));  // two fds
  CHECK(IsError(p.Call(kCmdDmaMap, Bytes().Put(DmaMap{16, kRW, 0, 0x20000, 0x1000}), {fd}),
                EINVAL));                                                // argsz too small
  CHECK(!Map(p, UINT64_MAX - 0xfff, 0x1000, kDmaFlagRead, -1).error());  // ends at 2^64
  close(efd);
  close(fd);
  CHECK_EQ(p.core->dma_map_count(), 2u);
}

void TestDeviceDma() {
  Peer p;
  p.Negotiate();
  int fd = Memfd(0x3000);
  const char hello[] = "hello";
  CHECK_EQ(pwrite(fd, hello, 5, 0x1ffe), 5);
  CHECK(!Map(p, 0x0, 0x2000, kRW, fd).error());
  CHECK(!Map(p, 0x2000, 0x1000, kDmaFlagRead, fd, 0x2000).error());  // adjacent, read-only
  CHECK(!Map(p, 0x8000, 0x1000, kRW, -1).error());                   // no fd
  uint8_t buf[8] = {};
  CHECK_EQ(p.core->DmaCheck(0x1ffe, 5, false), 0);  // mmapped, spans the two maps
  CHECK_EQ(p.core->DmaCheck(0x8000, 16, true), 1);  // by message
  CHECK_EQ(p.core->DmaCheck(0x1fff, 2, true), -EACCES);
  CHECK_EQ(p.core->DmaCheck(0x3000, 1, false), -EFAULT);
  CHECK_EQ(p.core->DmaCheck(0, kDefaultMaxDataXferSize + 1, false), -E2BIG);
  CHECK_EQ(p.core->DmaRead(0x1ffe, buf, 5), 0);  // spans the two maps
  CHECK(std::memcmp(buf, hello, 5) == 0);
  const uint8_t data[3] = {1, 2, 3};
  CHECK_EQ(p.core->DmaWrite(0x10, data, 3), 0);
  uint8_t back[3] = {};
  CHECK_EQ(pread(fd, back, 3, 0x10), 3);
  CHECK(std::memcmp(back, data, 3) == 0);
  CHECK_EQ(p.core->DmaWrite(0x2000, data, 1), -EACCES);
  CHECK_EQ(p.core->DmaWrite(0x1fff, data, 2), -EACCES);  // half in the read-only map
  CHECK_EQ(pread(fd, back, 1, 0x1fff), 1);
  CHECK_EQ(back[0], 'e');  // still hello's: a failed DMA moved no byte
  CHECK_EQ(p.core->DmaRead(0x3000, buf, 1), -EFAULT);
  CHECK_EQ(p.core->DmaRead(UINT64_MAX, buf, 2), -EFAULT);
  std::vector<uint8_t> big(kDefaultMaxDataXferSize + 1);
  CHECK_EQ(p.core->DmaRead(0, big.data(), big.size()), -E2BIG);
  close(fd);
}

void TestShrunkMemoryFailsDma() {
  Peer p;
  p.Negotiate();
  int fd = Memfd(0x4000);
  CHECK(!Map(p, 0x10000, 0x4000, kRW, fd).error());
  CHECK_EQ(ftruncate(fd, 0x1000), 0);  // the client shrinks its memory under the map
  uint8_t buf[0x2000] = {};
  CHECK_EQ(p.core->DmaRead(0x10000, buf, 0x1000), 0);  // the page still backed
  CHECK_EQ(p.core->DmaRead(0x10800, buf, 0x1000), -EFAULT);
  CHECK_EQ(p.core->DmaWrite(0x13000, buf, 4), -EFAULT);
  CHECK_EQ(p.core->stats().dma_faults, 2u);
  CHECK(!p.Call(kCmdDeviceGetInfo, Bytes().Put(DeviceInfo{16, 0, 0, 0})).error());  // serving
  close(fd);
  // sealed against shrinking (as QEMU's memfd backend is): the plain copy path
  int sealed = memfd_create("sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  CHECK_EQ(ftruncate(sealed, 0x1000), 0);
  CHECK_EQ(fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  CHECK(!Map(p, 0x20000, 0x1000, kRW, sealed).error());
  CHECK_EQ(ftruncate(sealed, 0), -1);
  CHECK_EQ(p.core->DmaWrite(0x20000, buf, 0x1000), 0);
  CHECK_EQ(p.core->stats().dma_faults, 2u);
  close(sealed);
}

void TestDmaUnmap() {
  Peer p;
  p.Negotiate();
  int fd = Memfd(0x4000);
  CHECK(!Map(p, 0x0, 0x2000, kRW, fd).error());
  CHECK(!Map(p, 0x2000, 0x2000, kRW, fd, 0x2000).error());
  CHECK(!Map(p, 0x10000, 0x1000, kRW, -1).error());
  CHECK(IsError(Unmap(p, 0x0, 0x1000), ENOENT));     // part of a map
  CHECK(IsError(Unmap(p, 0x0, 0x4000), ENOENT));     // two maps: not an exact match
  CHECK(IsError(Unmap(p, 0x0, 0x2000, 1), EINVAL));  // unknown flag
  Received r = Unmap(p, 0x2000, 0x2000);
  CHECK(r.ok && !r.error() && r.payload.size() == 24);
  CHECK_EQ(r.At<uint64_t>(8), 0x2000u);  // echoes the request
  uint8_t b;
  CHECK_EQ(p.core->DmaRead(0x2000, &b, 1), -EFAULT);
  CHECK(!Unmap(p, 0x10000, 0x1000).error());
  CHECK(IsError(Unmap(p, 0x0, 0x2000, kDmaUnmapFlagAll), EINVAL));  // ALL with a range
  CHECK(!Unmap(p, 0, 0, kDmaUnmapFlagAll).error());
  CHECK_EQ(p.core->dma_map_count(), 0u);
  CHECK_EQ(p.device.unmaps, 3);
  close(fd);
}

/** a client thread: answers one DMA message, first sending a command the server must queue. */
void AnswerDma(Peer* p, bool with_error, std::vector<uint8_t>* written) {
  Received req = p->Recv(false);
  if (!req.ok) return;
  Bytes cmd;
  cmd.Put(Header{500, kCmdRegionWrite, 33, 0, 0}).Put(RegionAccess{0x40, 0, 1}).Put(uint8_t{7});
  p->SendBytes(cmd.data());
  DmaAccess a = req.At<DmaAccess>(0);
  bool read = req.header.command == kCmdDmaRead;
  if (!read) written->assign(req.payload.begin() + 16, req.payload.end());
  uint64_t data_len = read && !with_error ? a.count : 0;
  Bytes reply;
  reply.Put(Header{req.header.msg_id, req.header.command, uint32_t(with_error ? 16 : 32 + data_len),
                   kFlagTypeReply | (with_error ? kFlagError : 0u), with_error ? 14u : 0u});
  if (!with_error) reply.Put(a);
  for (uint64_t i = 0; i < data_len; ++i) reply.Put(uint8_t(0xa0 + i));
  p->SendBytes(reply.data());
}

void TestDmaByMessage() {
  Peer p;
  p.Negotiate();
  CHECK(!Map(p, 0x10000, 0x2000, kRW, -1).error());
  CHECK(!Map(p, 0x20000, 0x1000, kDmaFlagRead, -1).error());
  uint8_t buf[4] = {};
  std::vector<uint8_t> written;
  std::thread t1(AnswerDma, &p, false, &written);
  CHECK_EQ(p.core->DmaRead(0x10ffe, buf, 4), 0);  // spans pages, inside one map
  t1.join();
  CHECK(buf[0] == 0xa0 && buf[3] == 0xa3);
  CHECK(p.core->HasDeferred());  // the REGION_WRITE that came meanwhile
  p.core->OnReadable();
  CHECK_EQ(p.device.bar0[0x40], 7);
  CHECK_EQ(p.Recv().header.msg_id, 500);
  const uint8_t data[2] = {0x11, 0x22};
  std::thread t2(AnswerDma, &p, false, &written);
  CHECK_EQ(p.core->DmaWrite(0x11000, data, 2), 0);
  t2.join();
  CHECK(written.size() == 2 && written[1] == 0x22);
  p.core->OnReadable();
  p.Recv();
  std::thread t3(AnswerDma, &p, true, &written);
  CHECK_EQ(p.core->DmaRead(0x10000, buf, 1), -EFAULT);  // the client's error reply
  t3.join();
  p.core->OnReadable();
  p.Recv();
  CHECK_EQ(p.core->DmaWrite(0x20000, data, 1), -EACCES);  // read-only: no message sent
  CHECK(p.Quiet());
}

void TestDmaByMessageFailures() {
  ServerOptions opts;
  opts.dma_reply_timeout_ms = 20;
  Peer p(TestLayout(), opts);
  p.Negotiate();
  CHECK(!Map(p, 0x10000, 0x1000, kRW, -1).error());
  uint8_t b = 0;
  CHECK_EQ(p.core->DmaRead(0x10000, &b, 1), -ETIMEDOUT);  // nobody answers
  CHECK(p.Recv().header.command == kCmdDmaRead);
  std::thread t([&p] {
    p.Recv(false);
    p.CloseClientEnd();  // hangs up instead of answering
  });
  CHECK_EQ(p.core->DmaRead(0x10000, &b, 1), -EFAULT);
  t.join();
  CHECK(p.core->connected());  // the device is inside its DMA call: detached afterwards
  CHECK(p.core->HasDeferred());
  p.core->OnReadable();
  CHECK(!p.core->connected());
  CHECK_EQ(p.device.disconnects, 1);
}

void TestMaxDmaMaps() {
  ServerOptions opts;
  opts.max_dma_maps = 2;
  Peer p(TestLayout(), opts);
  p.Negotiate();
  CHECK(!Map(p, 0x0, 0x1000, kRW, -1).error());
  CHECK(!Map(p, 0x1000, 0x1000, kRW, -1).error());
  CHECK(IsError(Map(p, 0x2000, 0x1000, kRW, -1), ENOSPC));
}

void TestPipelinedMaps() {
  Peer p;
  p.Negotiate();
  Bytes all;  // three DMA_MAPs in one write, handled by one OnReadable
  for (uint16_t i = 0; i < 3; ++i) {
    all.Put(Header{uint16_t(100 + i), kCmdDmaMap, 48, 0, 0})
        .Put(DmaMap{32, kRW, 0, uint64_t{i} * 0x1000, 0x1000});
  }
  p.SendBytes(all.data());
  p.core->OnReadable();
  for (uint16_t i = 0; i < 3; ++i) {
    Received r = p.Recv();
    CHECK(r.ok && !r.error());
    CHECK_EQ(r.header.msg_id, 100 + i);
  }
  CHECK_EQ(p.core->dma_map_count(), 3u);
}

uint64_t ReadEventfd(int fd) {
  uint64_t v = 0;
  return read(fd, &v, sizeof(v)) == sizeof(v) ? v : 0;
}

Received SetIrqs(Peer& p, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
                 const std::vector<int>& fds = {}, const Bytes& extra = Bytes()) {
  Bytes b;
  b.Put(IrqSet{uint32_t(20 + extra.data().size()), flags, index, start, count})
      .Raw(extra.data().data(), extra.data().size());
  return p.Call(kCmdDeviceSetIrqs, b, fds);
}

void TestSetIrqsValidation() {
  Peer p;
  p.Negotiate();
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int memfd = Memfd(4096);
  uint32_t eventfd_trigger = kIrqDataEventfd | kIrqActionTrigger;
  CHECK(IsError(SetIrqs(p, kIrqDataNone | kIrqDataBool | kIrqActionTrigger, 0, 0, 1), EINVAL));
  CHECK(IsError(SetIrqs(p, kIrqDataNone, 0, 0, 1), EINVAL));  // no action
  CHECK(IsError(SetIrqs(p, kIrqDataNone | kIrqActionTrigger | 0x40, 0, 0, 1), EINVAL));
  CHECK(IsError(SetIrqs(p, eventfd_trigger, 5, 0, 1, {efd}), EINVAL));           // index
  CHECK(IsError(SetIrqs(p, eventfd_trigger, 1, 1, 0xffffffff, {efd}), EINVAL));  // wraps
  CHECK(IsError(SetIrqs(p, eventfd_trigger, 1, 3, 2, {efd, efd}), EINVAL));      // past count
  CHECK(IsError(SetIrqs(p, eventfd_trigger, 1, 0, 2, {efd}), EINVAL));           // 1 fd for 2
  CHECK(IsError(SetIrqs(p, eventfd_trigger, 1, 0, 1, {memfd}), EINVAL));         // not an eventfd
  CHECK(IsError(SetIrqs(p, kIrqDataNone | kIrqActionTrigger, 1, 0, 1, {efd}), EINVAL));
  CHECK(IsError(SetIrqs(p, kIrqDataNone | kIrqActionMask, 1, 0, 1), EINVAL));     // MSI: no mask
  CHECK(IsError(SetIrqs(p, kIrqDataBool | kIrqActionTrigger, 1, 0, 2), EINVAL));  // no bools
  CHECK(IsError(SetIrqs(p, kIrqDataEventfd | kIrqActionMask, 0, 0, 1, {efd}), EINVAL));
  CHECK(IsError(SetIrqs(p, kIrqDataBool | kIrqActionTrigger, 0, 0, 0), EINVAL));  // count 0
  CHECK_EQ(p.device.irq_states, 0);
  close(efd);
  close(memfd);
}

void TestIrqSignalling() {
  Peer p;
  p.Negotiate();
  int intx = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int msi0 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int msi1 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  uint32_t eventfd_trigger = kIrqDataEventfd | kIrqActionTrigger;
  CHECK_EQ(p.core->TriggerIrq(1, 0), 0);  // nothing armed
  CHECK_EQ(p.core->TriggerIrq(1, 4), -EINVAL);
  CHECK(!SetIrqs(p, eventfd_trigger, 0, 0, 1, {intx}).error());
  CHECK(!SetIrqs(p, eventfd_trigger, 1, 2, 2, {msi0, msi1}).error());
  CHECK_EQ(p.core->TriggerIrq(1, 3), 1);
  CHECK_EQ(ReadEventfd(msi1), 1u);
  CHECK_EQ(ReadEventfd(msi0), 0u);
  // INTx masked: the trigger is held pending and delivered on unmask
  CHECK(!SetIrqs(p, kIrqDataNone | kIrqActionMask, 0, 0, 1).error());
  CHECK_EQ(p.core->TriggerIrq(0, 0), 1);
  CHECK_EQ(ReadEventfd(intx), 0u);
  CHECK(!SetIrqs(p, kIrqDataBool | kIrqActionUnmask, 0, 0, 1, {}, Bytes().Put(uint8_t{1})).error());
  CHECK_EQ(ReadEventfd(intx), 1u);
  // the client triggers through DATA_BOOL (only true entries)
  Bytes bools;
  bools.Put(uint8_t{1}).Put(uint8_t{0});
  CHECK(!SetIrqs(p, kIrqDataBool | kIrqActionTrigger, 1, 2, 2, {}, bools).error());
  CHECK_EQ(ReadEventfd(msi0), 1u);
  CHECK_EQ(ReadEventfd(msi1), 0u);
  // de-assign with no fds; count 0 + DATA_NONE disables the index
  CHECK(!SetIrqs(p, eventfd_trigger, 1, 3, 1).error());
  CHECK_EQ(p.core->TriggerIrq(1, 3), 0);
  CHECK(!SetIrqs(p, kIrqDataNone | kIrqActionTrigger, 1, 0, 0).error());
  CHECK_EQ(p.core->TriggerIrq(1, 2), 0);
  CHECK_EQ(p.core->stats().irqs_signalled, 3u);
  close(intx);
  close(msi0);
  close(msi1);
}

void TestFullSocketQueuesReplies() {
  Peer p;
  p.Negotiate();
  int sndbuf = 4096;  // a small socket buffer so a 64 KiB reply must wait in the queue
  setsockopt(p.core->client_fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  p.Send(kCmdRegionRead, Bytes().Put(RegionAccess{0, 0, 0x4000}));
  p.Send(kCmdRegionRead, Bytes().Put(RegionAccess{0, 0, 0x4000}));
  CHECK(p.core->WantsWrite());
  for (int i = 0; i < 2; ++i) {
    Received r = p.Recv();  // Recv drives OnWritable while it waits
    CHECK(r.ok && r.payload.size() == 16 + 0x4000);
  }
  CHECK(!p.core->WantsWrite());
}

void TestDisconnectReleasesEverything() {
  int base = OpenFdCount();
  Peer p;
  p.Negotiate();
  int fd = Memfd(0x2000);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  CHECK(!Map(p, 0, 0x2000, kRW, fd).error());
  CHECK(!SetIrqs(p, kIrqDataEventfd | kIrqActionTrigger, 0, 0, 1, {efd}).error());
  close(fd);
  close(efd);
  CHECK_EQ(p.core->Attach(UniqueFd(eventfd(0, EFD_CLOEXEC))), -EBUSY);  // one client at a time
  CHECK_EQ(p.core->stats().rejected_connections, 1u);
  p.Hangup();
  CHECK(!p.core->connected());
  CHECK_EQ(p.device.disconnects, 1);
  CHECK_EQ(p.core->dma_map_count(), 0u);
  CHECK_EQ(p.core->TriggerIrq(0, 0), 0);
  uint8_t b;
  CHECK_EQ(p.core->DmaRead(0, &b, 1), -EFAULT);
  CHECK_EQ(OpenFdCount(), base);  // socket, memfd mapping's fd, eventfd: all closed
  p.Connect();                    // the next client: device state (BAR contents) kept
  p.Negotiate();
  CHECK_EQ(p.device.connects, 2);
  CHECK(p.core->connected());
}

}  // namespace
}  // namespace vfiobox::test

int main() {
  using namespace vfiobox::test;  // NOLINT
  int base = OpenFdCount();
  TestDmaMapValidation();
  TestDeviceDma();
  TestShrunkMemoryFailsDma();
  TestDmaUnmap();
  TestDmaByMessage();
  TestDmaByMessageFailures();
  TestMaxDmaMaps();
  TestPipelinedMaps();
  TestSetIrqsValidation();
  TestIrqSignalling();
  TestFullSocketQueuesReplies();
  TestDisconnectReleasesEverything();
  CHECK_EQ(OpenFdCount(), base);
  return Finish("vfio_user_server");
}
