// SPDX-License-Identifier: MIT
// Nonblocking AF_UNIX stream I/O for vfio-user [SPEC "Socket"]: framing by the header's
// msg_size, fds (SCM_RIGHTS) attached to the message they arrived with, and a send queue so
// that a full socket never blocks the event loop. Direct syscalls (not the sys layer): this
// code is only linked into the real addon and the ASan tests.
//
// Framing: the receiver reads the 16-byte header first and then exactly msg_size - 16 bytes,
// never more, so that a recvmsg never crosses into the next message and fds sent with message
// N are never seen with message N-1. A msg_size below 16 or above the cap loses the framing:
// Receive reports it and the caller closes the connection.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_USER_TRANSPORT_H_
#define VFIOBOX_NATIVE_SRC_VFIO_USER_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
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

struct Message {
  std::vector<uint8_t> bytes;  // the whole message, header included
  std::vector<UniqueFd> fds;
  bool fds_truncated = false;  // more than kMaxFdsPerMessage came; the kernel closed the rest

  const Header& header() const {
    // SAFETY: a received Message always holds at least kHeaderSize bytes, and Header is a
    // 16-byte POD with 2/4-byte members; vector storage is suitably aligned for it.
    return *reinterpret_cast<const Header*>(bytes.data());
  }
  const uint8_t* payload() const { return bytes.data() + kHeaderSize; }
  size_t payload_size() const { return bytes.size() - kHeaderSize; }
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

  RecvStatus Receive(Message* out);
  int error() const { return error_; }
  /** the header of the message whose msg_size broke the framing (kBadFrame). */
  const Header& frame_header() const { return header_; }

  /** queues one message (fds are dup'ed now and closed once sent) and sends what it can. */
  int Send(std::vector<uint8_t> bytes, const std::vector<int>& fds = {});
  /** sends queued bytes: 0 when all went out, 1 when the socket is full, -errno. */
  int Flush();
  bool SendPending() const { return !queue_.empty(); }
  size_t SendQueueBytes() const { return queued_bytes_; }
  /** closes the socket and drops everything queued (fds included). */
  void Close();

 private:
  struct Outgoing {
    std::vector<uint8_t> bytes;
    size_t sent = 0;
    std::vector<UniqueFd> fds;  // go with the first byte
  };
  /** one recvmsg of at most `len` bytes into `dst`; > 0 bytes, 0 EOF, -errno. */
  ssize_t RecvSome(uint8_t* dst, size_t len);
  ssize_t SendSome(Outgoing& out);

  UniqueFd sock_;
  uint32_t max_msg_size_;
  int error_ = 0;
  Header header_{};
  size_t header_got_ = 0;
  std::vector<uint8_t> body_;  // header + body of the message being received
  size_t body_got_ = 0;
  std::vector<UniqueFd> fds_;
  bool fds_truncated_ = false;
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
