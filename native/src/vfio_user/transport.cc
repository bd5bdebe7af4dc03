// SPDX-License-Identifier: MIT
#include "native/src/vfio_user/transport.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vfiobox::vfio_user {

namespace {

constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage);

int SockaddrFor(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return -ENAMETOOLONG;
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return 0;
}

Detail PathDetail(const std::string& path) { return {{"path", DetailValue::Str(path)}}; }

/** a connectable socket on `path`? 1 yes, 0 nobody listens (stale), -errno otherwise. */
int ProbeLive(const sockaddr_un& addr) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.Valid()) return -errno;
  // SAFETY: sockaddr_un is the sockaddr variant for AF_UNIX, as connect(2) expects.
  if (::connect(probe.Get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    return 1;
  }
  return errno == ECONNREFUSED ? 0 : -errno;
}

}  // namespace

Transport::Transport(UniqueFd sock, uint32_t max_msg_size)
    : sock_(std::move(sock)), max_msg_size_(max_msg_size) {}

ssize_t Transport::RecvSome(uint8_t* dst, size_t len) {
  alignas(cmsghdr) uint8_t control[kCmsgSpace];
  iovec iov{dst, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock_.Get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  if (msg.msg_flags & MSG_CTRUNC) fds_truncated_ = true;  // the kernel dropped the excess fds
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      // SAFETY: CMSG_DATA holds `count` ints per cmsg_len; memcpy avoids unaligned reads.
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (fds_.size() < kMaxFdsPerMessage) {
        fds_.emplace_back(fd);
      } else {
        ::close(fd);
        fds_truncated_ = true;
      }
    }
  }
  return n;
}

RecvStatus Transport::Receive(Message* out) {
  if (!sock_.Valid()) {
    error_ = EBADF;
    return RecvStatus::kError;
  }
  while (header_got_ < kHeaderSize || body_got_ < body_.size()) {
    bool in_header = header_got_ < kHeaderSize;
    // SAFETY: header_ is a 16-byte POD filled from its first unread byte; body_ has
    // body_.size() bytes and body_got_ < body_.size() here.
    uint8_t* dst =
        in_header ? reinterpret_cast<uint8_t*>(&header_) + header_got_ : body_.data() + body_got_;
    size_t want = in_header ? kHeaderSize - header_got_ : body_.size() - body_got_;
    ssize_t n = RecvSome(dst, want);
    if (n == -EAGAIN) return RecvStatus::kAgain;
    if (n == 0) return RecvStatus::kEof;
    if (n < 0) {
      error_ = static_cast<int>(-n);
      return RecvStatus::kError;
    }
    if (!in_header) {
      body_got_ += static_cast<size_t>(n);
      continue;
    }
    header_got_ += static_cast<size_t>(n);
    if (header_got_ < kHeaderSize) continue;
    if (header_.msg_size < kHeaderSize || header_.msg_size > max_msg_size_) {
      fds_.clear();
      return RecvStatus::kBadFrame;
    }
    body_.resize(header_.msg_size);
    std::memcpy(body_.data(), &header_, kHeaderSize);
    body_got_ = kHeaderSize;
  }
  out->bytes = std::move(body_);
  out->fds = std::move(fds_);
  out->fds_truncated = fds_truncated_;
  body_ = {};
  fds_.clear();
  body_got_ = header_got_ = 0;
  fds_truncated_ = false;
  return RecvStatus::kMessage;
}

int Transport::Send(std::vector<uint8_t> bytes, const std::vector<int>& fds) {
  if (!sock_.Valid()) return -EBADF;
  if (fds.size() > kMaxFdsPerMessage) return -EINVAL;
  if (queued_bytes_ + bytes.size() > kMaxSendQueueBytes) return -ENOBUFS;
  Outgoing out;
  for (int fd : fds) {
    // a dup, so the caller may close its fd before the message leaves the queue
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return -errno;
    out.fds.emplace_back(copy);
  }
  queued_bytes_ += bytes.size();
  out.bytes = std::move(bytes);
  queue_.push_back(std::move(out));
  int r = Flush();
  return r < 0 ? r : 0;
}

ssize_t Transport::SendSome(Outgoing& out) {
  alignas(cmsghdr) uint8_t control[kCmsgSpace];
  iovec iov{out.bytes.data() + out.sent, out.bytes.size() - out.sent};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!out.fds.empty()) {
    // SAFETY: SCM_RIGHTS passes our dup'ed fds; the kernel dups them into the peer.
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * out.fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * out.fds.size());
    for (size_t i = 0; i < out.fds.size(); ++i) {
      int fd = out.fds[i].Get();
      std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
    }
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock_.Get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  out.fds.clear();  // they went with the first byte
  return n;
}

int Transport::Flush() {
  while (!queue_.empty()) {
    Outgoing& out = queue_.front();
    ssize_t n = SendSome(out);
    if (n == -EAGAIN) return 1;
    if (n < 0) return static_cast<int>(n);
    out.sent += static_cast<size_t>(n);
    if (out.sent < out.bytes.size()) continue;
    queued_bytes_ -= out.bytes.size();
    queue_.pop_front();
  }
  return 0;
}

void Transport::Close() {
  queue_.clear();
  queued_bytes_ = 0;
  fds_.clear();
  body_ = {};
  body_got_ = header_got_ = 0;
  sock_.Reset();
}

Expected<UniqueFd> ConnectUnix(const std::string& path) {
  sockaddr_un addr;
  if (int r = SockaddrFor(path, &addr); r < 0) return Status("connect", -r, PathDetail(path));
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.Valid()) return Status("socket", errno, PathDetail(path));
  int r;
  do {
    // SAFETY: sockaddr_un is the sockaddr variant for AF_UNIX, as connect(2) expects.
    r = ::connect(sock.Get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Status("connect", errno, PathDetail(path));
  int flags = ::fcntl(sock.Get(), F_GETFL);
  if (flags < 0 || ::fcntl(sock.Get(), F_SETFL, flags | O_NONBLOCK) < 0) {
    return Status("fcntl", errno, PathDetail(path));
  }
  return sock;
}

Expected<UniqueFd> ListenUnix(const std::string& path) {
  sockaddr_un addr;
  if (int r = SockaddrFor(path, &addr); r < 0) return Status("bind", -r, PathDetail(path));
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock.Valid()) return Status("socket", errno, PathDetail(path));
  // SAFETY: sockaddr_un is the sockaddr variant for AF_UNIX, as bind(2) expects.
  const sockaddr* sa = reinterpret_cast<const sockaddr*>(&addr);
  if (::bind(sock.Get(), sa, sizeof(addr)) < 0) {
    if (errno != EADDRINUSE) return Status("bind", errno, PathDetail(path));
    struct stat st;
    int live = ProbeLive(addr);
    if (live != 0 || ::lstat(path.c_str(), &st) < 0 || !S_ISSOCK(st.st_mode)) {
      return Status("bind", EADDRINUSE, PathDetail(path));  // live, or not a socket file
    }
    if (::unlink(path.c_str()) < 0) return Status("unlink", errno, PathDetail(path));
    if (::bind(sock.Get(), sa, sizeof(addr)) < 0) return Status("bind", errno, PathDetail(path));
  }
  if (::listen(sock.Get(), 4) < 0) return Status("listen", errno, PathDetail(path));
  return sock;
}

int AcceptUnix(int listen_fd) {
  int fd;
  do {
    fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  return fd;
}

}  // namespace vfiobox::vfio_user
