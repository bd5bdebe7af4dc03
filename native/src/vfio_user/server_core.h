// SPDX-License-Identifier: MIT
// ServerCore: the vfio-user server's connection state machine and command dispatch, pure C++
// (no Napi, no event loop). The JS layer (native/src/js/vfio_user_server.cc) owns the listening
// socket and the uv_poll handles, hands an accepted socket to Attach(), and calls OnReadable /
// OnWritable. The device is behind DeviceHooks, called synchronously on the serving thread.
//
// Rules (the [SPEC] sections are QEMU docs/interop/vfio-user.rst):
//  - one client at a time [SPEC "Socket"]; Attach refuses a second with -EBUSY;
//  - VERSION first; requests are processed strictly in order [SPEC "Command Concurrency"];
//  - every command gets exactly one reply unless No_reply is set; a No_reply command is never
//    answered, even when it fails (the failure is counted) [SPEC "Header"];
//  - a malformed message gets an error reply and the connection stays up, unless the framing
//    is lost (msg_size below 16 or above the cap): then the connection is closed;
//  - on disconnect: unmap all client memory, close every client fd (IRQ eventfds too), tell
//    the device (detach), keep the device state [SPEC "Client Disconnection"];
//  - a hook that answers kAbandoned (its thread is going away: a terminated worker) leaves
//    its request in flight, unanswered, and the core stops dispatching; AnswerInFlight later
//    sends the fenced answer (server_host.h), and the next thread's hooks carry on in order.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_USER_SERVER_CORE_H_
#define VFIOBOX_NATIVE_SRC_VFIO_USER_SERVER_CORE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "native/src/dma_table.h"
#include "native/src/fd.h"
#include "native/src/vfio_user/protocol.h"
#include "native/src/vfio_user/region_memory.h"
#include "native/src/vfio_user/transport.h"

namespace vfiobox::vfio_user {

struct RegionSpec {
  uint64_t size = 0;   // 0 = absent
  uint32_t flags = 0;  // kRegionFlagRead | Write | Mmap (Mmap is dropped without an fd)
  std::vector<SparseArea> mmap_areas;  // empty = all of it (if Mmap) or nothing
  std::shared_ptr<UniqueFd> fd;        // optional: sent with the region info reply
  uint64_t fd_offset = 0;              // where the region starts in fd (the reply's offset)
  /**
   * the mmap areas are plain memory (region_memory.h): the host creates fd (a sealed memfd)
   * and `memory` (its own mapping of it) when it binds; REGION_READ/WRITE inside an area are
   * served from `memory`, never by the hooks
   */
  bool memory_backed = false;
  std::shared_ptr<RegionMemory> memory;
};

struct IrqSpec {
  uint32_t count = 0;
  uint32_t flags = 0;  // kIrqInfo*
};

struct DeviceLayout {
  uint32_t flags = kDeviceFlagPci;  // kDeviceFlagReset when reset is supported
  std::vector<RegionSpec> regions;
  std::vector<IrqSpec> irqs;
};

struct ServerOptions {
  uint32_t max_data_xfer_size = kDefaultMaxDataXferSize;
  uint32_t max_dma_maps = kDefaultMaxDmaMaps;
  /** how long DMA through DMA_READ/WRITE messages waits for the client's reply */
  int dma_reply_timeout_ms = 5000;
};

/**
 * The device side. Errors are positive errnos (0 = ok), or kAbandoned; called on the serving
 * thread.
 */
class DeviceHooks {
 public:
  /** RegionRead/RegionWrite/Reset: the thread is going away; leave the request in flight */
  static constexpr int kAbandoned = -1;
  virtual ~DeviceHooks() = default;
  /** true once the serving thread is going away: the core dispatches nothing more */
  virtual bool Gone() const { return false; }
  virtual int RegionRead(uint32_t region, uint64_t offset, uint8_t* out, uint32_t count) = 0;
  virtual int RegionWrite(uint32_t region, uint64_t offset, const uint8_t* data,
                          uint32_t count) = 0;
  virtual int Reset() = 0;
  virtual void OnConnect() = 0;
  virtual void OnDisconnect(const std::string& reason) = 0;
  /** after a successful SET_IRQS: flags are the request's (data type | action). */
  virtual void OnIrqState(uint32_t index, uint32_t start, uint32_t count, uint32_t flags) = 0;
  virtual void OnDmaMap(uint64_t iova, uint64_t size, uint32_t flags, bool has_fd) = 0;
  virtual void OnDmaUnmap(uint64_t iova, uint64_t size) = 0;
  /** the client broke the protocol (an error reply was sent, or the connection dropped). */
  virtual void OnProtocolError(uint16_t command, int err, const std::string& what) = 0;
};

struct ServerStats {
  std::array<uint64_t, kCmdMax + 1> requests{};  // by command number; [0] = unknown commands
  std::map<int, uint64_t> errors;                // error replies (and failed posted writes)
  uint64_t connects = 0;
  uint64_t disconnects = 0;
  uint64_t rejected_connections = 0;  // a second client while one was active
  uint64_t dma_maps = 0;
  uint64_t dma_unmaps = 0;
  uint64_t dma_faults = 0;  // device DMA that hit client memory the client had shrunk (SIGBUS)
  uint64_t irqs_signalled = 0;
  uint64_t posted_errors = 0;  // No_reply commands that failed (never answered)
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t fenced_replies = 0;         // in-flight requests answered by AnswerInFlight
  std::vector<uint64_t> region_reads;  // accesses per region index
  std::vector<uint64_t> region_writes;
};

class ServerCore {
 public:
  ServerCore(DeviceLayout layout, ServerOptions options, DeviceHooks* hooks);
  ~ServerCore();
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  /** serves a connected socket; -EBUSY (and the socket is closed) while a client is active. */
  int Attach(UniqueFd sock);
  bool connected() const { return conn_ != nullptr; }
  /** the client socket to poll, or -1. */
  int client_fd() const;
  /**
   * handles whole messages that are waiting (at most a batch; call again while readable).
   * readable: the socket was reported readable (else only what is already buffered or
   * deferred is handled, without a syscall).
   */
  void OnReadable(bool readable = true);
  /** sends queued replies. */
  void OnWritable();
  /** true while replies wait for the socket to drain (poll for writability). */
  bool WantsWrite() const;
  /**
   * work left by a DMA exchange (queued commands, a disconnect it saw): call OnReadable soon
   * even if the socket is not readable.
   */
  bool HasDeferred() const;
  /** drops the client (deferred to the end of the current request when inside one). */
  void Disconnect(const std::string& reason);
  /**
   * after the final close (nobody serves this layout again): closes the memory-backed regions'
   * memfds and unmaps them now, not when the last handle to the core is collected
   */
  void ReleaseMemory();

  /**
   * device DMA: copies out of / into the client's mmapped memory; 0 or -errno (EFAULT not
   * mapped, or the client shrank the memory's fd under the map: counted in dma_faults; EACCES wrong
   * direction, E2BIG above max_data_xfer_size). A range mapped without an fd goes as a
   * DMA_READ/DMA_WRITE message; the call then blocks until the client answers (ETIMEDOUT after
   * dma_reply_timeout_ms), and commands that arrive meanwhile are queued (HasDeferred) to be
   * handled, in order, by the next OnReadable.
   */
  int DmaRead(uint64_t iova, uint8_t* out, uint64_t len);
  int DmaWrite(uint64_t iova, const uint8_t* data, uint64_t len);
  /**
   * what DmaRead/DmaWrite of the range would do, without doing it: 0 copy from mmapped client
   * memory (which fails later only if the client shrinks it meanwhile), 1 go by message, or
   * the -errno they would return.
   */
  int DmaCheck(uint64_t iova, uint64_t len, bool to_guest) const;
  /**
   * The fast path of DmaRead/DmaWrite (the direct route's DMA port): true when the whole of
   * [iova, iova + len) lies in one mmapped map with the access (and len is within
   * max_data_xfer_size), with *span its client memory; false for anything else, which
   * DmaCheck/DmaRead/DmaWrite then decide. The span is valid until this thread next handles a
   * DMA_UNMAP or a disconnect. len 0 is always true (an empty span, as DmaCheck says 0).
   */
  bool MappedSpan(uint64_t iova, uint64_t len, bool to_guest, DmaSpan* span) const;
  /**
   * For a DMA window (wasm DmaPort::WindowSource): the file and offset behind [iova, iova+len),
   * which must lie in one map mmapped from an fd sealed against shrinking (so that mapping it
   * again can never fault) with read access, and write access too when `write`. 0, or -EFAULT
   * (not inside one map), -EACCES (the map lacks the access), -ENOTSUP (a map without fd, an
   * fd that may shrink, or one the core did not keep: kMaxWindowFds). *fd is borrowed: valid
   * until this thread next handles a DMA_UNMAP or a disconnect.
   */
  int WindowFile(uint64_t iova, uint64_t len, bool write, int* fd, uint64_t* offset) const;
  /** copies between `buf` and a MappedSpan's memory: 0, or -EFAULT if its pages went (counted) */
  int CopyMapped(const DmaSpan& span, uint8_t* buf, bool to_guest);
  /** signals an IRQ: 1 signalled (or left pending while masked), 0 no eventfd, -errno. */
  int TriggerIrq(uint32_t index, uint32_t subindex);

  /**
   * called with the client fd just before the core closes it, so that the owner can stop
   * polling it first (epoll must not keep watching a number the kernel may hand out again).
   */
  void set_before_close(std::function<void(int fd)> cb) { before_close_ = std::move(cb); }

  /** the device side from now on (the thread serving the core changes: server_host.h) */
  void set_hooks(DeviceHooks* hooks) { hooks_ = hooks; }
  /** a hook answered kAbandoned (or Gone()): nothing is dispatched until Resume() */
  bool stopped() const { return abandoned_ || hooks_->Gone(); }
  void Resume() { abandoned_ = false; }
  /** a request whose hook was abandoned waits for its answer */
  bool HasInFlight() const { return inflight_.valid; }
  /**
   * answers the request in flight as a fenced device would: REGION_READ with all-ones data
   * of its count, REGION_WRITE with success (the write is dropped), anything else EIO; a
   * posted one gets nothing. Returns its command, or 0 when none was in flight (or the
   * client is gone). Calls no hook.
   */
  uint16_t AnswerInFlight();
  const DeviceLayout& layout() const { return layout_; }
  const ServerOptions& options() const { return options_; }

  const ServerStats& stats() const { return stats_; }
  uint32_t max_data_xfer_size() const { return options_.max_data_xfer_size; }
  size_t dma_map_count() const { return dma_.Count() + dma_msg_.Count(); }

 private:
  struct InFlight {
    bool valid = false;
    Header header{};
    RegionAccess access{};  // REGION_READ/WRITE
  };
  struct IrqLine {
    UniqueFd eventfd;
    bool masked = false;
    bool pending = false;
  };
  struct Connection;
  /**
   * what a handler wants sent back: a reply payload (+fds) or an errno. REGION_READ/WRITE
   * (the hot path) use `head` (the echoed access) and borrowed `data` instead of `payload`, so
   * that answering them allocates nothing.
   */
  struct Reply {
    int err = 0;
    const char* why = nullptr;  // for OnProtocolError
    std::vector<uint8_t> payload;
    RegionAccess head{};
    bool has_head = false;
    const uint8_t* data = nullptr;  // after head; borrowed until SendReply returns
    uint32_t data_size = 0;
    std::vector<int> fds;  // sent with the reply (dup'ed by the transport if queued)
    static Reply Error(int err, const char* why) {
      Reply r;
      r.err = err;
      r.why = why;
      return r;
    }
  };

  void HandleMessage(Message& msg);
  Reply Dispatch(Message& msg);
  void SendReply(const Header& request, const Reply& reply);
  void Fail(uint16_t command, int err, const std::string& what);
  void FinishDisconnect();
  void BadFrame();

  Reply HandleVersion(const Message& msg);
  Reply HandleDmaMap(Message& msg);
  Reply HandleDmaUnmap(const Message& msg);
  Reply HandleDeviceInfo(const Message& msg);
  Reply HandleRegionInfo(const Message& msg);
  Reply HandleIrqInfo(const Message& msg);
  Reply HandleSetIrqs(Message& msg);
  Reply HandleRegionRead(const Message& msg);
  Reply HandleRegionWrite(const Message& msg);
  Reply HandleReset();
  int CheckRegionAccess(const RegionAccess& access, uint32_t need_flag) const;
  int SetIrqEventfds(uint32_t index, uint32_t start, uint32_t count, std::vector<UniqueFd>& fds);
  int SetIrqBools(const IrqSet& set, const uint8_t* bools);
  void SignalLine(IrqLine& line);
  int DmaCopy(uint64_t iova, uint8_t* buf, uint64_t len, bool to_guest);
  /** the DMA_READ/DMA_WRITE exchange with the client (server_dma_msg.cc). */
  int DmaMessage(uint64_t iova, uint8_t* buf, uint64_t len, bool to_guest);
  int AwaitDmaReply(uint16_t msg_id, Message* reply);
  int DmaReplyResult(const Message& reply, uint64_t iova, uint8_t* buf, uint64_t len,
                     bool to_guest);
  void ResetClientState();

  DeviceLayout layout_;
  ServerOptions options_;
  DeviceHooks* hooks_;
  std::unique_ptr<Connection> conn_;
  // sealed DmaEntry::fd kept open (shared with the entries' deleters: kMaxWindowFds)
  std::shared_ptr<std::atomic<int>> window_fds_ = std::make_shared<std::atomic<int>>(0);
  DmaTable dma_;                            // maps with an fd, mmapped
  DmaTable dma_msg_;                        // maps without an fd (DMA_READ/WRITE messages)
  std::vector<std::vector<IrqLine>> irqs_;  // [index][subindex]
  ServerStats stats_;
  std::function<void(int fd)> before_close_;
  std::deque<Message> deferred_;  // commands that came while a DMA reply was awaited
  std::vector<uint8_t> io_buf_;   // REGION_READ data; grows to the largest count seen
  InFlight inflight_;
  bool abandoned_ = false;
  uint16_t next_dma_id_ = 1;
  int dispatch_depth_ = 0;
  bool disconnect_pending_ = false;
  std::string disconnect_reason_;
};

/** the negotiated limits of one connection (from the client's VERSION JSON). */
struct ClientCaps {
  uint32_t max_msg_fds = kDefaultMaxMsgFds;
  uint32_t max_data_xfer_size = kDefaultMaxDataXferSize;
  uint32_t max_dma_maps = kDefaultMaxDmaMaps;
  uint64_t pgsizes = kPageSize4k;
};

/**
 * Parses the client's NUL-terminated JSON `{"capabilities": {...}}` strictly [SPEC
 * "VFIO_USER_VERSION"]: malformed JSON, a known key of the wrong type, or a missing NUL is
 * -EINVAL. Unknown keys are ignored.
 */
int ParseClientCaps(const uint8_t* json, size_t len, ClientCaps* caps);

}  // namespace vfiobox::vfio_user

#endif  // VFIOBOX_NATIVE_SRC_VFIO_USER_SERVER_CORE_H_
