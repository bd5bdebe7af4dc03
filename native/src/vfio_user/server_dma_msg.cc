// SPDX-License-Identifier: MIT
// DMA through messages, for client memory mapped without an fd [SPEC "VFIO_USER_DMA_READ",
// "VFIO_USER_DMA_WRITE"]: the server sends DMA_READ/DMA_WRITE on the client socket and waits
// for the reply there (no twin socket is negotiated). Commands the client sends meanwhile are
// queued in deferred_ and handled, in order, before anything read later; stray replies are
// counted and dropped. The wait blocks the serving thread, bounded by dma_reply_timeout_ms.
#include <poll.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "native/src/vfio_user/server_core.h"
#include "native/src/vfio_user/server_internal.h"

namespace vfiobox::vfio_user {

namespace {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

int ServerCore::DmaMessage(uint64_t iova, uint8_t* buf, uint64_t len, bool to_guest) {
  if (!conn_ || !conn_->negotiated || disconnect_pending_) return -EFAULT;
  if (len > conn_->max_xfer) return -E2BIG;  // the client's limit applies to what we send
  uint16_t id = next_dma_id_++;
  size_t size = kHeaderSize + sizeof(DmaAccess) + (to_guest ? len : 0);
  Header h{id, to_guest ? kCmdDmaWrite : kCmdDmaRead, static_cast<uint32_t>(size), kFlagTypeCommand,
           0};
  std::vector<uint8_t> out;
  AppendStruct(&out, h);
  AppendStruct(&out, DmaAccess{iova, len});
  if (to_guest) out.insert(out.end(), buf, buf + len);
  stats_.bytes_out += out.size();
  if (int r = conn_->transport.Send(std::move(out)); r < 0) {
    Disconnect("sendmsg: " + ErrnoName(-r));
    return -EFAULT;
  }
  // A disconnect seen while waiting is only recorded (as inside a request): the device is in
  // the middle of its DMA call and must not be detached under it. OnReadable finishes it.
  ++dispatch_depth_;
  Message reply;
  int r = AwaitDmaReply(id, &reply);
  --dispatch_depth_;
  return r < 0 ? r : DmaReplyResult(reply, iova, buf, len, to_guest);
}

int ServerCore::AwaitDmaReply(uint16_t msg_id, Message* reply) {
  int64_t deadline = NowMs() + options_.dma_reply_timeout_ms;
  while (conn_ && !disconnect_pending_) {
    Message msg;
    RecvStatus st = conn_->transport.Receive(&msg);
    if (st == RecvStatus::kMessage) {
      stats_.bytes_in += msg.size;
      const Header mh = msg.header();
      bool is_reply = (mh.flags & kFlagTypeMask) == kFlagTypeReply;
      if (is_reply && mh.msg_id == msg_id) {
        *reply = std::move(msg);
        return 0;
      }
      if (is_reply) {
        Fail(mh.command, EINVAL, "a reply nobody asked for");
      } else {
        deferred_.push_back(std::move(msg));  // handled after this DMA, in order
      }
      continue;
    }
    if (st == RecvStatus::kEof) return Disconnect("eof"), -EFAULT;
    if (st == RecvStatus::kBadFrame) return Disconnect("framing"), -EFAULT;
    if (st == RecvStatus::kError) return Disconnect("recvmsg"), -EFAULT;
    int64_t left = deadline - NowMs();
    if (left <= 0) return -ETIMEDOUT;
    if (conn_->transport.Flush() < 0) return Disconnect("sendmsg"), -EFAULT;
    short events = POLLIN | (conn_->transport.SendPending() ? POLLOUT : 0);
    pollfd p{conn_->transport.fd(), events, 0};
    ::poll(&p, 1, static_cast<int>(left));
  }
  return -EFAULT;
}

int ServerCore::DmaReplyResult(const Message& reply, uint64_t iova, uint8_t* buf, uint64_t len,
                               bool to_guest) {
  const Header h = reply.header();
  if (h.flags & kFlagError) return h.error != 0 ? -static_cast<int>(h.error) : -EIO;
  DmaAccess echo{};
  // [SPEC]: the DMA_WRITE reply's count may be 4 bytes wide; only addr is compared for it
  size_t head = to_guest ? sizeof(echo.addr) : sizeof(echo);
  if (reply.payload_size() < head) return -EIO;
  std::memcpy(&echo, reply.payload(), head);
  if (echo.addr != iova || (!to_guest && echo.count != len)) return -EIO;
  if (to_guest) return 0;
  if (reply.payload_size() != sizeof(echo) + len) return -EIO;
  std::memcpy(buf, reply.payload() + sizeof(echo), len);
  return 0;
}

}  // namespace vfiobox::vfio_user
