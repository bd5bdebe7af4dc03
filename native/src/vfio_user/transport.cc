// SPDX-License-Identifier: MIT
#include "native/src/vfio_user/transport.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
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
    : sock_(std::move(sock)), max_msg_size_(max_msg_size), rx_(kRecvChunk) {}

bool Transport::HasBuffered() const {
  size_t avail = rx_end_ - rx_begin_;
  if (avail < kHeaderSize) return false;
  Header h;
  std::memcpy(&h, rx_.data() + rx_begin_, sizeof(h));
  return h.msg_size < kHeaderSize || h.msg_size > max_msg_size_ || avail >= h.msg_size;
}

Transport::Take Transport::TakeBuffered(Message* out) {
  size_t avail = rx_end_ - rx_begin_;
  if (avail < kHeaderSize) return Take::kNone;
  std::memcpy(&header_, rx_.data() + rx_begin_, kHeaderSize);
  if (header_.msg_size < kHeaderSize || header_.msg_size > max_msg_size_) return Take::kBadFrame;
  if (avail < header_.msg_size) return Take::kNone;
  size_t start = rx_begin_;
  size_t end = start + header_.msg_size;
  out->view = rx_.data() + start;
  out->size = header_.msg_size;
  out->own.clear();
  out->fds.clear();
  out->fds_truncated = false;
  for (auto it = fd_groups_.begin(); it != fd_groups_.end();) {
    if (it->anchor < start || it->anchor >= end) {
      ++it;
      continue;
    }
    out->fds_truncated = out->fds_truncated || it->truncated;
    for (UniqueFd& fd : it->fds) {
      if (out->fds.size() < kMaxFdsPerMessage) {
        out->fds.push_back(std::move(fd));
      } else {
        out->fds_truncated = true;  // closed with the group below
      }
    }
    it = fd_groups_.erase(it);
  }
  rx_begin_ = end;
  return Take::kMessage;
}

void Transport::MakeRoom() {
  size_t avail = rx_end_ - rx_begin_;
  size_t need = kHeaderSize;  // the whole first message must fit once its header is known
  if (avail >= kHeaderSize) {
    Header h;
    std::memcpy(&h, rx_.data() + rx_begin_, sizeof(h));
    need = h.msg_size;  // validated by TakeBuffered before any read
  }
  need = std::max(need, avail + 1);
  if (rx_end_ < rx_.size() && rx_begin_ + need <= rx_.size()) return;
  size_t size = std::max(rx_.size(), need);
  if (pinned_) {
    // a view handed out by Next points before rx_begin_: move on to a fresh buffer and keep
    // this one alive until that view is released (only inside a DMA reply wait)
    std::vector<uint8_t> fresh(size);
    std::memcpy(fresh.data(), rx_.data() + rx_begin_, avail);
    retired_ = std::move(rx_);
    rx_ = std::move(fresh);
    pinned_ = false;
  } else {
    if (rx_begin_ > 0) std::memmove(rx_.data(), rx_.data() + rx_begin_, avail);
    if (size > rx_.size()) rx_.resize(size);
  }
  for (FdGroup& g : fd_groups_) g.anchor -= rx_begin_;
  rx_begin_ = 0;
  rx_end_ = avail;
}

ssize_t Transport::Fill() {
  if (rx_begin_ == rx_end_ && !pinned_) rx_begin_ = rx_end_ = 0;
  MakeRoom();
  alignas(cmsghdr) uint8_t control[kCmsgSpace];
  size_t space = rx_.size() - rx_end_;
  iovec iov{rx_.data() + rx_end_, space};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock_.Get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    may_read_ = false;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
  if (n == 0) return 0;
  bool got_fds = (msg.msg_flags & MSG_CTRUNC) != 0;
  FdGroup group;
  group.anchor = rx_end_ + static_cast<size_t>(n) - 1;  // the fds came with the last bytes
  group.truncated = got_fds;                            // the kernel dropped the excess fds
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      // SAFETY: CMSG_DATA holds `count` ints per cmsg_len; memcpy avoids unaligned reads.
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      got_fds = true;
      if (group.fds.size() < kMaxFdsPerMessage) {
        group.fds.emplace_back(fd);
      } else {
        ::close(fd);
        group.truncated = true;
      }
    }
  }
  if (got_fds) fd_groups_.push_back(std::move(group));
  // short and without fds: the socket was empty at that moment (the kernel stops early only
  // after an skb with fds), so the next read waits for the poll to say readable again
  may_read_ = static_cast<size_t>(n) == space || got_fds;
  rx_end_ += static_cast<size_t>(n);
  return n;
}

RecvStatus Transport::Next(Message* out) {
  pinned_ = false;  // the previous view is released
  if (!retired_.empty()) std::vector<uint8_t>().swap(retired_);
  if (!sock_.Valid()) {
    error_ = EBADF;
    return RecvStatus::kError;
  }
  for (;;) {
    Take t = TakeBuffered(out);
    if (t == Take::kMessage) {
      pinned_ = true;
      return RecvStatus::kMessage;
    }
    if (t == Take::kBadFrame) return RecvStatus::kBadFrame;
    if (!may_read_) return RecvStatus::kAgain;
    ssize_t n = Fill();
    if (n == -EAGAIN) return RecvStatus::kAgain;
    if (n == 0) return RecvStatus::kEof;
    if (n < 0) {
      error_ = static_cast<int>(-n);
      return RecvStatus::kError;
    }
  }
}

RecvStatus Transport::Receive(Message* out) {
  if (!sock_.Valid()) {
    error_ = EBADF;
    return RecvStatus::kError;
  }
  for (;;) {
    Take t = TakeBuffered(out);
    if (t == Take::kMessage) {
      out->Own();
      return RecvStatus::kMessage;
    }
    if (t == Take::kBadFrame) return RecvStatus::kBadFrame;
    ssize_t n = Fill();
    if (n == -EAGAIN) return RecvStatus::kAgain;
    if (n == 0) return RecvStatus::kEof;
    if (n < 0) {
      error_ = static_cast<int>(-n);
      return RecvStatus::kError;
    }
  }
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

int Transport::SendV(const iovec* iov, int iovcnt, const int* fds, size_t nfds) {
  if (!sock_.Valid()) return -EBADF;
  if (nfds > kMaxFdsPerMessage) return -EINVAL;
  size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  size_t sent = 0;
  if (queue_.empty()) {
    alignas(cmsghdr) uint8_t control[kCmsgSpace];
    msghdr msg{};
    // SAFETY: sendmsg only reads the iovecs; the const_cast is for the msghdr field's type.
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    if (nfds > 0) {
      // SAFETY: SCM_RIGHTS passes the caller's fds; the kernel takes its own references.
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do {
      n = ::sendmsg(sock_.Get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EWOULDBLOCK) return -errno;
    if (n > 0) sent = static_cast<size_t>(n);
    if (sent == total) return 0;
  }
  // the rest waits in the queue, in order behind what is already there
  if (queued_bytes_ + (total - sent) > kMaxSendQueueBytes) return -ENOBUFS;
  Outgoing out;
  if (sent == 0) {
    for (size_t i = 0; i < nfds; ++i) {
      int copy = ::fcntl(fds[i], F_DUPFD_CLOEXEC, 0);  // the caller may close its own now
      if (copy < 0) return -errno;
      out.fds.emplace_back(copy);
    }
  }
  out.bytes.reserve(total - sent);
  size_t skip = sent;
  for (int i = 0; i < iovcnt; ++i) {
    const uint8_t* base = static_cast<const uint8_t*>(iov[i].iov_base);
    size_t len = iov[i].iov_len;
    size_t from = std::min(skip, len);
    skip -= from;
    out.bytes.insert(out.bytes.end(), base + from, base + len);
  }
  queued_bytes_ += out.bytes.size();
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
  fd_groups_.clear();
  rx_begin_ = rx_end_ = 0;
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
