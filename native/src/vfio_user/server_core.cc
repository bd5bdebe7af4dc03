// SPDX-License-Identifier: MIT
// ServerCore: connection lifecycle, framing errors, dispatch, replies, VERSION and reset.
// The DMA, device/region and IRQ commands live in server_dma.cc, server_device.cc and
// server_irq.cc.
#include "native/src/vfio_user/server_core.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "native/src/vfio_user/server_internal.h"

namespace vfiobox::vfio_user {

namespace {

constexpr int kBatch =
    256;  // messages per readiness callback, so one client cannot starve the loop
// Request heads are at most a few hundred bytes (SET_IRQS bools, VERSION JSON) beyond the data.
constexpr uint32_t kHeadroom = 4096;
// [SPEC "VFIO_USER_VERSION"]: we speak 0.0 (what QEMU 11.1 and libvfio-user settle on [OBS]).
constexpr uint16_t kOurMajor = 0;
constexpr uint16_t kOurMinor = 0;

}  // namespace

ServerCore::ServerCore(DeviceLayout layout, ServerOptions options, DeviceHooks* hooks)
    : layout_(std::move(layout)),
      options_(options),
      hooks_(hooks),
      dma_(kPageSize4k),
      dma_msg_(kPageSize4k) {
  irqs_.resize(layout_.irqs.size());
  for (size_t i = 0; i < layout_.irqs.size(); ++i) irqs_[i].resize(layout_.irqs[i].count);
  stats_.region_reads.assign(layout_.regions.size(), 0);
  stats_.region_writes.assign(layout_.regions.size(), 0);
}

ServerCore::~ServerCore() = default;

int ServerCore::client_fd() const { return conn_ ? conn_->transport.fd() : -1; }

int ServerCore::Attach(UniqueFd sock) {
  if (conn_) {
    ++stats_.rejected_connections;  // one client per socket [SPEC "Socket"]; sock closes here
    return -EBUSY;
  }
  conn_ = std::make_unique<Connection>(std::move(sock),
                                       options_.max_data_xfer_size + kHeaderSize + kHeadroom);
  ++stats_.connects;
  hooks_->OnConnect();
  return 0;
}

bool ServerCore::HasDeferred() const {
  return !deferred_.empty() || disconnect_pending_ || (conn_ && conn_->transport.HasBuffered());
}

void ServerCore::OnReadable(bool readable) {
  if (disconnect_pending_ && dispatch_depth_ == 0) return FinishDisconnect();  // from a DMA wait
  if (conn_ && readable) conn_->transport.ArmRead();
  Message msg;  // reused: a view into the transport's buffer, or a deferred (owned) message
  for (int i = 0; i < kBatch && conn_ && !disconnect_pending_ && !stopped(); ++i) {
    if (!deferred_.empty()) {  // what came during a DMA exchange goes first, in order
      msg = std::move(deferred_.front());
      deferred_.pop_front();
      HandleMessage(msg);
      continue;
    }
    switch (conn_->transport.Next(&msg)) {
      case RecvStatus::kAgain:
        return;
      case RecvStatus::kEof:
        return Disconnect("eof");
      case RecvStatus::kError:
        return Disconnect("recvmsg: " + ErrnoName(conn_->transport.error()));
      case RecvStatus::kBadFrame:
        return BadFrame();
      case RecvStatus::kMessage:
        HandleMessage(msg);
        break;
    }
  }
}

void ServerCore::OnWritable() {
  if (!conn_) return;
  int r = conn_->transport.Flush();
  if (r < 0) Disconnect("sendmsg: " + ErrnoName(-r));
}

void ServerCore::ReleaseMemory() {
  for (RegionSpec& spec : layout_.regions) {
    if (!spec.memory_backed) continue;
    spec.memory.reset();  // AreaAccess and MemoryOf treat a region without memory as plain
    spec.fd.reset();      // and its region info as having no fd
  }
}

bool ServerCore::WantsWrite() const { return conn_ && conn_->transport.SendPending(); }

void ServerCore::BadFrame() {
  // The header is all we have; answer it (best effort) so the client learns why, then drop:
  // without a trustworthy msg_size the next message cannot be found.
  const Header h = conn_->transport.frame_header();
  int err = h.msg_size < kHeaderSize ? EINVAL : E2BIG;
  Fail(h.command, err, "msg_size " + std::to_string(h.msg_size) + " breaks the framing");
  SendReply(h, Reply::Error(err, nullptr));
  Disconnect("framing");
}

void ServerCore::HandleMessage(Message& msg) {
  ++dispatch_depth_;
  stats_.bytes_in += msg.size;
  const Header header = msg.header();
  stats_.requests[header.command <= kCmdMax ? header.command : 0]++;
  if ((header.flags & kFlagTypeMask) != kFlagTypeCommand) {
    Fail(header.command, EINVAL, "a reply nobody asked for");  // never answer a reply
  } else {
    Reply reply = Dispatch(msg);
    bool posted = (header.flags & kFlagNoReply) != 0;
    if (reply.err == DeviceHooks::kAbandoned) {
      // the serving thread is going away in the middle of this request: it stays in flight
      // for AnswerInFlight; the handlers validated the access before calling the hook
      abandoned_ = true;
      inflight_.valid = true;
      inflight_.header = header;
      inflight_.access = RegionAccess{};
      ReadHead(msg, &inflight_.access);
    } else if (reply.err != 0) {
      if (posted) ++stats_.posted_errors;
      Fail(header.command, reply.err, reply.why != nullptr ? reply.why : "request failed");
    }
    if (reply.err != DeviceHooks::kAbandoned && !posted) {
      SendReply(header, reply);  // No_reply: never answered, even on error [SPEC]
    }
  }
  --dispatch_depth_;
  if (dispatch_depth_ == 0 && disconnect_pending_) FinishDisconnect();
}

ServerCore::Reply ServerCore::Dispatch(Message& msg) {
  uint16_t command = msg.header().command;
  if (msg.fds_truncated) return Reply::Error(EINVAL, "more than 16 fds");
  bool takes_fds = command == kCmdDmaMap || command == kCmdDeviceSetIrqs;
  if (!takes_fds && !msg.fds.empty()) return Reply::Error(EINVAL, "fds on a command without");
  if (!conn_->negotiated && command != kCmdVersion) {
    return Reply::Error(EINVAL, "VERSION must come first");  // [LVU lib/tran.c] does the same
  }
  switch (command) {
    case kCmdVersion:
      return HandleVersion(msg);
    case kCmdDmaMap:
      return HandleDmaMap(msg);
    case kCmdDmaUnmap:
      return HandleDmaUnmap(msg);
    case kCmdDeviceGetInfo:
      return HandleDeviceInfo(msg);
    case kCmdDeviceGetRegionInfo:
      return HandleRegionInfo(msg);
    case kCmdDeviceGetIrqInfo:
      return HandleIrqInfo(msg);
    case kCmdDeviceSetIrqs:
      return HandleSetIrqs(msg);
    case kCmdRegionRead:
      return HandleRegionRead(msg);
    case kCmdRegionWrite:
      return HandleRegionWrite(msg);
    case kCmdDeviceReset:
      return HandleReset();
    case kCmdDmaRead:
    case kCmdDmaWrite:
      return Reply::Error(EINVAL, "DMA_READ/WRITE go from server to client");
    default:  // REGION_IO_FDS, WRITE_MULTI (not advertised), DEVICE_FEATURE, MIG_*, unknown
      return Reply::Error(ENOSYS, "command not supported");
  }
}

void ServerCore::SendReply(const Header& request, const Reply& reply) {
  if (!conn_ || disconnect_pending_) return;
  Header h{};
  h.msg_id = request.msg_id;
  h.command = request.command;
  h.flags = kFlagTypeReply | (reply.err != 0 ? kFlagError : 0);
  h.error = static_cast<uint32_t>(reply.err);
  iovec iov[4];
  int n = 0;
  iov[n++] = {&h, kHeaderSize};
  if (reply.err == 0) {  // an error reply is the header alone
    // SAFETY: the iovecs only lend the bytes to sendmsg (or the copy into the send queue).
    if (!reply.payload.empty()) {
      iov[n++] = {const_cast<uint8_t*>(reply.payload.data()), reply.payload.size()};
    }
    if (reply.has_head) iov[n++] = {const_cast<RegionAccess*>(&reply.head), sizeof(reply.head)};
    if (reply.data_size > 0) iov[n++] = {const_cast<uint8_t*>(reply.data), reply.data_size};
  }
  size_t total = 0;
  for (int i = 0; i < n; ++i) total += iov[i].iov_len;
  h.msg_size = static_cast<uint32_t>(total);
  stats_.bytes_out += total;
  bool with_fds = reply.err == 0 && !reply.fds.empty();
  int r = conn_->transport.SendV(iov, n, with_fds ? reply.fds.data() : nullptr,
                                 with_fds ? reply.fds.size() : 0);
  if (r < 0) Disconnect("sendmsg: " + ErrnoName(-r));
}

uint16_t ServerCore::AnswerInFlight() {
  if (!inflight_.valid) return 0;
  InFlight f = inflight_;
  inflight_ = InFlight{};
  if (!conn_) return 0;  // the client went meanwhile: nobody to answer
  bool posted = (f.header.flags & kFlagNoReply) != 0;
  Reply reply;
  if (f.header.command == kCmdRegionRead) {
    // a fenced device reads all-ones (model.ts: "reads all-ones from its BARs")
    if (io_buf_.size() < f.access.count) io_buf_.resize(f.access.count);
    std::memset(io_buf_.data(), 0xff, f.access.count);
    reply.head = f.access;
    reply.has_head = true;
    reply.data = io_buf_.data();
    reply.data_size = f.access.count;
  } else if (f.header.command == kCmdRegionWrite) {
    reply.head = f.access;  // the write is dropped, as a fenced device drops it
    reply.has_head = true;
  } else {
    reply = Reply::Error(EIO, "fenced");
    stats_.errors[EIO]++;
    if (posted) ++stats_.posted_errors;
  }
  ++stats_.fenced_replies;
  if (!posted) SendReply(f.header, reply);
  return f.header.command;
}

void ServerCore::Fail(uint16_t command, int err, const std::string& what) {
  stats_.errors[err]++;
  hooks_->OnProtocolError(command, err, what);
}

void ServerCore::Disconnect(const std::string& reason) {
  if (!conn_) return;
  if (dispatch_depth_ > 0) {
    if (!disconnect_pending_) disconnect_reason_ = reason;
    disconnect_pending_ = true;  // finished when the current request returns
    return;
  }
  disconnect_reason_ = reason;
  FinishDisconnect();
}

void ServerCore::FinishDisconnect() {
  disconnect_pending_ = false;
  inflight_ = InFlight{};  // nobody is left to answer
  if (!conn_) return;
  if (before_close_) before_close_(conn_->transport.fd());
  deferred_.clear();
  conn_->transport.Close();
  conn_.reset();
  ResetClientState();  // before the device hears of it: no DMA/IRQ after detach
  ++stats_.disconnects;
  hooks_->OnDisconnect(disconnect_reason_);
}

void ServerCore::ResetClientState() {
  dma_.Clear();  // munmaps every fd-backed map (the entries own their mappings)
  dma_msg_.Clear();
  for (auto& lines : irqs_) {
    for (IrqLine& line : lines) line = IrqLine{};  // closes the eventfds
  }
}

ServerCore::Reply ServerCore::HandleVersion(const Message& msg) {
  if (conn_->negotiated) return Reply::Error(EINVAL, "VERSION sent twice");
  Version v;
  if (!ReadHead(msg, &v)) return Reply::Error(EINVAL, "VERSION payload too short");
  if (v.major != kOurMajor) return Reply::Error(ENOTSUP, "unsupported major version");
  ClientCaps caps;
  if (msg.payload_size() > sizeof(v)) {
    const uint8_t* json = msg.payload() + sizeof(v);
    if (ParseClientCaps(json, msg.payload_size() - sizeof(v), &caps) < 0) {
      return Reply::Error(EINVAL, "malformed capabilities JSON");
    }
  }
  if ((caps.pgsizes & kPageSize4k) == 0) return Reply::Error(EINVAL, "pgsizes lacks 4 KiB");
  if (caps.max_data_xfer_size == 0) return Reply::Error(EINVAL, "max_data_xfer_size is 0");
  conn_->caps = caps;
  conn_->max_xfer = std::min(options_.max_data_xfer_size, caps.max_data_xfer_size);
  conn_->negotiated = true;
  // [SPEC]: the reply's minor is <= the proposed one and its capabilities a subset.
  Version ours{kOurMajor, std::min(v.minor, kOurMinor)};
  std::string json = "{\"capabilities\":{\"max_msg_fds\":" + std::to_string(kMaxFdsPerMessage) +
                     ",\"max_data_xfer_size\":" + std::to_string(options_.max_data_xfer_size) +
                     ",\"pgsizes\":" + std::to_string(kPageSize4k) +
                     ",\"max_dma_maps\":" + std::to_string(options_.max_dma_maps) + "}}";
  Reply reply;
  AppendStruct(&reply.payload, ours);
  reply.payload.insert(reply.payload.end(), json.begin(), json.end());
  reply.payload.push_back('\0');
  return reply;
}

ServerCore::Reply ServerCore::HandleReset() {
  int err = hooks_->Reset();
  return err != 0 ? Reply::Error(err, "device reset failed") : Reply{};
}

}  // namespace vfiobox::vfio_user
