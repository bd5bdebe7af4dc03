// SPDX-License-Identifier: MIT
// DEVICE_GET_IRQ_INFO and DEVICE_SET_IRQS [SPEC "VFIO_USER_DEVICE_SET_IRQS"; flag values and
// semantics from linux/vfio.h struct vfio_irq_set], and signalling an IRQ: writing a u64 1 to
// the eventfd the client armed for (index, subindex).
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "native/src/vfio_user/server_core.h"
#include "native/src/vfio_user/server_internal.h"

namespace vfiobox::vfio_user {

namespace {

bool OneBit(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

/** only real eventfds are armed: a pipe or socket could make a trigger block the loop. */
bool IsEventFd(int fd) {
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  char target[64] = {};
  ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
  return n > 0 && std::strcmp(target, "anon_inode:[eventfd]") == 0;
}

}  // namespace

ServerCore::Reply ServerCore::HandleIrqInfo(const Message& msg) {
  IrqInfo in;
  if (!ReadHead(msg, &in) || in.argsz < sizeof(in)) return Reply::Error(EINVAL, "short IRQ_INFO");
  if (in.index >= layout_.irqs.size()) return Reply::Error(EINVAL, "no such IRQ index");
  IrqInfo out{};
  out.argsz = sizeof(out);
  out.flags = layout_.irqs[in.index].flags;
  out.index = in.index;
  out.count = layout_.irqs[in.index].count;
  Reply reply;
  AppendStruct(&reply.payload, out);
  return reply;
}

ServerCore::Reply ServerCore::HandleSetIrqs(Message& msg) {
  IrqSet s;
  if (!ReadHead(msg, &s) || s.argsz < sizeof(s)) return Reply::Error(EINVAL, "short SET_IRQS");
  uint32_t data = s.flags & kIrqDataMask;
  uint32_t action = s.flags & kIrqActionMaskAll;
  if ((s.flags & ~(kIrqDataMask | kIrqActionMaskAll)) || !OneBit(data) || !OneBit(action)) {
    return Reply::Error(EINVAL, "SET_IRQS needs exactly one DATA and one ACTION flag");
  }
  if (s.index >= layout_.irqs.size()) return Reply::Error(EINVAL, "no such IRQ index");
  const IrqSpec& spec = layout_.irqs[s.index];
  if (!msg.fds.empty() && data != kIrqDataEventfd) {
    return Reply::Error(EINVAL, "fds without DATA_EVENTFD");
  }
  if (s.count == 0) {
    // count 0 + DATA_NONE + ACTION_TRIGGER disables the whole index (vfio semantics) [SPEC]
    if (data != kIrqDataNone || action != kIrqActionTrigger) {
      return Reply::Error(EINVAL, "count 0 is only valid with DATA_NONE|ACTION_TRIGGER");
    }
    for (IrqLine& line : irqs_[s.index]) line = IrqLine{};
    hooks_->OnIrqState(s.index, 0, 0, s.flags);
    return Reply{};
  }
  if (s.start > spec.count || s.count > spec.count - s.start) {
    return Reply::Error(EINVAL, "start + count beyond the IRQ count");
  }
  if (action != kIrqActionTrigger && !(spec.flags & kIrqInfoMaskable)) {
    return Reply::Error(EINVAL, "the IRQ index is not maskable");
  }
  int err = 0;
  if (data == kIrqDataEventfd) {
    if (action != kIrqActionTrigger || !(spec.flags & kIrqInfoEventfd)) {
      return Reply::Error(EINVAL, "eventfds are only for ACTION_TRIGGER on an EVENTFD index");
    }
    err = SetIrqEventfds(s.index, s.start, s.count, msg.fds);
  } else if (data == kIrqDataBool) {
    if (msg.payload_size() < sizeof(s) + static_cast<size_t>(s.count)) {
      return Reply::Error(EINVAL, "DATA_BOOL needs count bytes");
    }
    err = SetIrqBools(s, msg.payload() + sizeof(s));
  } else {
    std::vector<uint8_t> all(s.count, 1);
    err = SetIrqBools(s, all.data());
  }
  if (err != 0) return Reply::Error(err, "bad SET_IRQS eventfds");
  hooks_->OnIrqState(s.index, s.start, s.count, s.flags);
  return Reply{};
}

int ServerCore::SetIrqEventfds(uint32_t index, uint32_t start, uint32_t count,
                               std::vector<UniqueFd>& fds) {
  std::vector<IrqLine>& lines = irqs_[index];
  if (fds.empty()) {  // no fds: de-assign [start, start+count) [SPEC; QEMU-SRC sends -1 slots so]
    for (uint32_t i = 0; i < count; ++i) lines[start + i].eventfd.Reset();
    return 0;
  }
  if (fds.size() != count) return EINVAL;
  for (const UniqueFd& fd : fds) {
    if (!IsEventFd(fd.Get())) return EINVAL;  // checked before any is taken: all or nothing
  }
  for (uint32_t i = 0; i < count; ++i) lines[start + i].eventfd = std::move(fds[i]);
  return 0;
}

int ServerCore::SetIrqBools(const IrqSet& s, const uint8_t* bools) {
  uint32_t action = s.flags & kIrqActionMaskAll;
  for (uint32_t i = 0; i < s.count; ++i) {
    if (bools[i] == 0) continue;
    IrqLine& line = irqs_[s.index][s.start + i];
    if (action == kIrqActionMask) {
      line.masked = true;
    } else if (action == kIrqActionUnmask) {
      line.masked = false;
      if (line.pending) SignalLine(line);  // a trigger that came while masked
    } else {
      SignalLine(line);  // the client asked for a trigger (loopback) [SPEC]
    }
  }
  return 0;
}

void ServerCore::SignalLine(IrqLine& line) {
  if (!line.eventfd.Valid()) return;
  if (line.masked) {
    line.pending = true;
    return;
  }
  line.pending = false;
  // An eventfd write blocks only when the counter would overflow, which a hostile client can
  // arrange; poll first so the trigger is dropped instead of stalling the loop.
  pollfd p{line.eventfd.Get(), POLLOUT, 0};
  if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) return;
  uint64_t one = 1;
  if (::write(line.eventfd.Get(), &one, sizeof(one)) == sizeof(one)) ++stats_.irqs_signalled;
}

int ServerCore::TriggerIrq(uint32_t index, uint32_t subindex) {
  if (index >= irqs_.size() || subindex >= irqs_[index].size()) return -EINVAL;
  IrqLine& line = irqs_[index][subindex];
  if (!line.eventfd.Valid()) return 0;
  SignalLine(line);
  return 1;
}

}  // namespace vfiobox::vfio_user
