// SPDX-License-Identifier: MIT
// Test support for the vfio-user native tests: a ServerCore on one end of a socketpair, a
// hand-written client (blocking sendmsg/recvmsg with SCM_RIGHTS) on the other, and a RAM-backed
// device behind DeviceHooks.
#ifndef VFIOBOX_NATIVE_TEST_VFIO_USER_PEER_H_
#define VFIOBOX_NATIVE_TEST_VFIO_USER_PEER_H_

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "native/src/vfio_user/server_core.h"
#include "native/test/check.h"

namespace vfiobox::test {

using namespace vfiobox::vfio_user;  // NOLINT: test brevity

inline int OpenFdCount() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

/** little-endian byte builder for payloads */
class Bytes {
 public:
  template <typename T>
  Bytes& Put(T v) {
    // SAFETY: T is an integer or a trivially copyable wire struct.
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
    data_.insert(data_.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& Raw(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    data_.insert(data_.end(), b, b + n);
    return *this;
  }
  Bytes& Str(const std::string& s) { return Raw(s.data(), s.size()); }
  const std::vector<uint8_t>& data() const { return data_; }

 private:
  std::vector<uint8_t> data_;
};

struct Received {
  Header header{};
  std::vector<uint8_t> payload;
  std::vector<int> fds;
  bool ok = false;  // a whole message arrived
  bool error() const { return (header.flags & kFlagError) != 0; }
  template <typename T>
  T At(size_t offset) const {
    T v{};
    if (offset + sizeof(T) <= payload.size()) std::memcpy(&v, payload.data() + offset, sizeof(T));
    return v;
  }
  void CloseFds() {
    for (int fd : fds) close(fd);
    fds.clear();
  }
};

class RamDevice : public DeviceHooks {
 public:
  std::vector<uint8_t> bar0 = std::vector<uint8_t>(0x4000);
  int resets = 0, connects = 0, disconnects = 0, irq_states = 0, maps = 0, unmaps = 0;
  int protocol_errors = 0;
  int read_error = 0;  // returned by the next RegionRead when set
  std::string last_reason;
  ServerCore* core = nullptr;
  bool disconnect_in_read = false;

  int RegionRead(uint32_t, uint64_t offset, uint8_t* out, uint32_t count) override {
    if (disconnect_in_read) core->Disconnect("from a hook");
    if (int e = read_error; e != 0) return read_error = 0, e;
    std::memcpy(out, bar0.data() + offset, count);
    return 0;
  }
  int RegionWrite(uint32_t, uint64_t offset, const uint8_t* data, uint32_t count) override {
    std::memcpy(bar0.data() + offset, data, count);
    return 0;
  }
  int Reset() override { return ++resets, 0; }
  void OnConnect() override { ++connects; }
  void OnDisconnect(const std::string& reason) override { ++disconnects, last_reason = reason; }
  void OnIrqState(uint32_t, uint32_t, uint32_t, uint32_t) override { ++irq_states; }
  void OnDmaMap(uint64_t, uint64_t, uint32_t, bool) override { ++maps; }
  void OnDmaUnmap(uint64_t, uint64_t) override { ++unmaps; }
  void OnProtocolError(uint16_t, int, const std::string&) override { ++protocol_errors; }
};

/** BAR0 16 KiB rw (sparse areas given later), BAR1 4 KiB read-only, CONFIG 256; INTx + 4 MSI. */
inline DeviceLayout TestLayout() {
  DeviceLayout layout;
  layout.flags = kDeviceFlagPci | kDeviceFlagReset;
  layout.regions.resize(kPciNumRegions);
  layout.regions[0].size = 0x4000;
  layout.regions[0].flags = kRegionFlagRead | kRegionFlagWrite;
  layout.regions[1].size = 0x1000;
  layout.regions[1].flags = kRegionFlagRead;
  layout.regions[7].size = 256;
  layout.regions[7].flags = kRegionFlagRead | kRegionFlagWrite;
  layout.irqs.resize(kPciNumIrqs);
  layout.irqs[0] = {1, kIrqInfoEventfd | kIrqInfoMaskable};
  layout.irqs[1] = {4, kIrqInfoEventfd};
  return layout;
}

class Peer {
 public:
  explicit Peer(DeviceLayout layout = TestLayout(), ServerOptions opts = {}) {
    device.core = nullptr;
    core = std::make_unique<ServerCore>(std::move(layout), opts, &device);
    device.core = core.get();
    Connect();
  }
  ~Peer() {
    if (fd_ >= 0) close(fd_);
  }

  void Connect() {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    if (fd_ >= 0) close(fd_);
    fd_ = sv[1];
    CHECK_EQ(core->Attach(UniqueFd(sv[0])), 0);
  }
  void Hangup() {
    close(fd_);
    fd_ = -1;
    core->OnReadable();
  }

  void SendBytes(const std::vector<uint8_t>& bytes, const std::vector<int>& fds = {}) {
    iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<uint8_t> control(CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())));
    if (!fds.empty()) {
      msg.msg_control = control.data();
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    CHECK_EQ(sendmsg(fd_, &msg, MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }

  /** sends one command (msg_size computed unless given) and lets the core handle it. */
  void Send(uint16_t cmd, const Bytes& payload, const std::vector<int>& fds = {},
            uint32_t flags = 0, uint32_t msg_size = 0) {
    Header h{next_id_++, cmd, msg_size ? msg_size : uint32_t(16 + payload.data().size()), flags, 0};
    Bytes all;
    all.Put(h).Raw(payload.data().data(), payload.data().size());
    SendBytes(all.data(), fds);
    core->OnReadable();
  }

  /**
   * the next message, or ok=false when none arrives (the core sent nothing). drive_core =
   * false for a client thread: then the core is not touched and the wait is up to 2 s.
   */
  Received Recv(bool drive_core = true) {
    Received r;
    if (!ReadExact(&r.header, sizeof(r.header), &r.fds, drive_core)) return r;
    if (r.header.msg_size < 16) return r;
    r.payload.resize(r.header.msg_size - 16);
    r.ok = ReadExact(r.payload.data(), r.payload.size(), &r.fds, drive_core);
    return r;
  }
  /** closes the client end without letting the core see it (a client thread hanging up). */
  void CloseClientEnd() {
    close(fd_);
    fd_ = -1;
  }

  Received Call(uint16_t cmd, const Bytes& payload, const std::vector<int>& fds = {}) {
    Send(cmd, payload, fds);
    return Recv();
  }

  /** nothing is waiting on the client end */
  bool Quiet() {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
  }

  void Negotiate() {
    std::string json = "{\"capabilities\":{\"max_msg_fds\":8}}";
    Bytes b;
    b.Put(uint16_t{0}).Put(uint16_t{0}).Str(json).Put(uint8_t{0});
    Received r = Call(kCmdVersion, b);
    CHECK(r.ok && !r.error());
  }

  int fd() const { return fd_; }

  RamDevice device;
  std::unique_ptr<ServerCore> core;

 private:
  bool ReadExact(void* dst, size_t len, std::vector<int>* fds, bool drive_core) {
    size_t got = 0;
    while (got < len) {
      pollfd p{fd_, POLLIN, 0};
      if (!drive_core) {
        if (poll(&p, 1, 2000) != 1) return false;
      } else if (poll(&p, 1, 0) != 1) {  // no wait: the core has already done its work
        core->OnWritable();              // queued replies (a full socket) go out now
        if (poll(&p, 1, 100) != 1) return false;
      }
      char control[CMSG_SPACE(sizeof(int) * 32)];
      iovec iov{static_cast<uint8_t*>(dst) + got, len - got};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t n = recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
      if (n <= 0) return false;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          fds->push_back(fd);
        }
      }
      got += static_cast<size_t>(n);
    }
    return true;
  }

  int fd_ = -1;
  uint16_t next_id_ = 1;
};

}  // namespace vfiobox::test

#endif  // VFIOBOX_NATIVE_TEST_VFIO_USER_PEER_H_
