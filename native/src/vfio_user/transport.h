// SPDX-License-Identifier: MIT
// Transport: UNIX stream I/O for vfio-user [SPEC "Socket"]: framing by the header's msg_size,
// fds (SCM_RIGHTS) attached to the message they arrived with, and a send queue so that a full
// socket never blocks the event loop. Direct syscalls (not the sys layer): this code is only
// linked into the real addon and the ASan tests.
//
// Receiving is greedy: one recvmsg takes whatever is waiting (up to the free buffer space), so
// a burst of posted writes costs one syscall, not two per message. Whole messages are handed
// out as views into the buffer (Next) or as copies (Receive).
//
// Fds: a unix stream recvmsg stops right after the first skb that carried fds (linux
// net/unix/af_unix.c unix_stream_read_generic: `if (scm.fp) break;`), so the fds of one read
// came with its LAST bytes. They are attached to the message that holds the last byte of that
// read. A client that sends each message with its fds in one sendmsg (QEMU's vfio-user client,
// libvfio-user, host/vfio-user/client.ts), or splits one message over several sendmsg calls,
// gets exactly the message it sent them with; only a single sendmsg that carries fds AND bytes
// of two messages is ambiguous, and its fds then go to the later message.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_USER_TRANSPORT_H_
#define VFIOBOX_NATIVE_SRC_VFIO_USER_TRANSPORT_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "native/src/errors.h"
#include "native/src/fd.h"
#include "native/src/vfio_user/protocol.h"

namespace vfiobox::vfio_user {

/** Most fds accepted with one message (what we advertise as max_msg_fds). */
constexpr size_t kMaxFdsPerMessage = 16;
/** Most bytes queued for sending before the peer is considered stuck. */
constexpr size_t kMaxSendQueueBytes = size_t{64} << 20;
/** The receive buffer's initial size: many small messages per recvmsg. */
constexpr size_t kRecvChunk = 64 * 1024;

/**
 * One whole message, header included: borrowed from the Transport's buffer (Next: valid until
 * the next Next call) or owned (Receive, or after Own()).
 */
struct Message {
  const uint8_t* view = nullptr;
  size_t size = 0;
  std::vector<uint8_t> own;  // the bytes, when owned
  std::vector<UniqueFd> fds;
  bool fds_truncated = false;  // more than kMaxFdsPerMessage came; the excess is closed

  const uint8_t* data() const { return own.empty() ? view : own.data(); }
  /** by value: a view may sit at any alignment in the buffer */
  Header header() const {
    Header h;
    std::memcpy(&h, data(), sizeof(h));
    return h;
  }
  const uint8_t* payload() const { return data() + kHeaderSize; }
  size_t payload_size() const { return size - kHeaderSize; }
  /** copies borrowed bytes, so the message outlives the Transport's buffer */
  void Own() {
    if (!own.empty() || view == nullptr) return;
    own.assign(view, view + size);
    view = nullptr;
  }
};

enum class RecvStatus {
  kMessage,   // *out holds one whole message
  kAgain,     // nothing more to read now: wait for POLLIN
  kEof,       // the peer closed the connection
  kBadFrame,  // msg_size < 16 or > cap: framing is lost; frame_header() says what came
  kError,     // recvmsg failed: error() is the errno
};

class Transport {
 public:
  Transport(UniqueFd sock, uint32_t max_msg_size);
  int fd() const { return sock_.Get(); }
  bool open() const { return sock_.Valid(); }
  void set_max_msg_size(uint32_t max) { max_msg_size_ = max; }
  uint32_t max_msg_size() const { return max_msg_size_; }

  /**
   * the socket was reported readable: the next Next() may call recvmsg. A short read (less
   * than the free space, no fds) disarms it again: the socket was empty then, and a
   * level-triggered poll reports what comes later.
   */
  void ArmRead() { may_read_ = true; }
  /**
   * the next whole message as a view into the buffer, valid until the next call of Next (the
   * bytes are never moved or overwritten before that, even by Receive). kAgain when no whole
   * message is buffered and reading is disarmed or the socket is empty.
   */
  RecvStatus Next(Message* out);
  /** like Next but always reads if needed, and the message is a copy (owned). */
  RecvStatus Receive(Message* out);
  /** a whole message (or a broken frame) waits in the buffer: Next() returns it without I/O */
  bool HasBuffered() const;
  int error() const { return error_; }
  /** the header of the message whose msg_size broke the framing (kBadFrame). */
  const Header& frame_header() const { return header_; }

  /** queues one message (fds are dup'ed now and closed once sent) and sends what it can. */
  int Send(std::vector<uint8_t> bytes, const std::vector<int>& fds = {});
  /**
   * sends the concatenation of iov at once when nothing is queued (no copy, no allocation);
   * whatever the socket does not take is queued (copied, fds dup'ed). 0 or -errno.
   */
  int SendV(const iovec* iov, int iovcnt, const int* fds = nullptr, size_t nfds = 0);
  /** sends queued bytes: 0 when all went out, 1 when the socket is full, -errno. */
  int Flush();
  bool SendPending() const { return !queue_.empty(); }
  size_t SendQueueBytes() const { return queued_bytes_; }
  /** closes the socket and drops everything queued or buffered (fds included). */
  void Close();

 private:
  struct Outgoing {
    std::vector<uint8_t> bytes;
    size_t sent = 0;
    std::vector<UniqueFd> fds;  // go with the first byte
  };
  /** fds of one recvmsg; `anchor` = buffer offset of the last byte that read returned */
  struct FdGroup {
    size_t anchor = 0;
    std::vector<UniqueFd> fds;
    bool truncated = false;
  };
  enum class Take { kNone, kMessage, kBadFrame };
  Take TakeBuffered(Message* out);
  /** makes room for the message at rx_begin_ (compacting or growing); -E2BIG never: capped */
  void MakeRoom();
  /** one recvmsg into the free space: > 0 bytes, 0 EOF, -errno */
  ssize_t Fill();
  ssize_t SendSome(Outgoing& out);

  UniqueFd sock_;
  uint32_t max_msg_size_;
  int error_ = 0;
  Header header_{};
  std::vector<uint8_t> rx_;  // [rx_begin_, rx_end_) unparsed
  size_t rx_begin_ = 0;
  size_t rx_end_ = 0;
  // bytes before rx_begin_ back a view handed out by Next: MakeRoom must not move them
  bool pinned_ = false;
  std::vector<uint8_t> retired_;  // an earlier rx_ that a view still points into
  std::vector<FdGroup> fd_groups_;
  bool may_read_ = true;
  std::deque<Outgoing> queue_;
  size_t queued_bytes_ = 0;
};

/** connect(2) to a UNIX socket path (blocking connect, then O_NONBLOCK); op "connect". */
Expected<UniqueFd> ConnectUnix(const std::string& path);
/**
 * bind + listen on `path`. A live server answering on it: EADDRINUSE; a stale socket file
 * (nobody listens) is removed first. op "bind"/"listen".
 */
Expected<UniqueFd> ListenUnix(const std::string& path);
/** accept4 (nonblocking, cloexec): an fd, -EAGAIN when none is waiting, or -errno. */
int AcceptUnix(int listen_fd);

}  // namespace vfiobox::vfio_user

#endif  // VFIOBOX_NATIVE_SRC_VFIO_USER_TRANSPORT_H_
