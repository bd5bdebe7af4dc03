// SPDX-License-Identifier: MIT
// DMA windows (WIT 0.1.2 dma.map-window / unmap-window): guest memory mapped over a page-aligned
// range of the plugin's own linear memory, so that its loads and stores reach the guest with
// no host call. The instance owns the windows because it owns the memory they live in; the DMA
// port (host.h) only says which file backs a granted range. A linear memory never moves
// (SharedEngine: memory_may_move off), so a window stays where it was put.
//
// Why this cannot fault the host: the port offers only files sealed against shrinking, whose
// pages therefore never go (no SIGBUS), and every window page is mapped read-write (a window
// that is not writable is a private copy-on-write mapping), so neither the plugin's code, nor
// wasmtime's memory.copy, nor the host writing a result into the plugin's memory can meet a
// page it may not touch. A window that goes is replaced by fresh zeroed anonymous pages, which
// is what wasmtime's own memory is.
#include <sys/mman.h>

#include <cerrno>

#include "native/src/wasm/instance.h"

namespace vfiobox::wasm {

namespace {

constexpr uint64_t kWindowPage = 4096;

HostStatus WindowErr(WindowError e) { return HostStatus::Err(static_cast<uint8_t>(e)); }

bool Overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
  return a < b + b_len && b < a + a_len;
}

}  // namespace

bool Instance::ZeroFill(uint32_t at, uint32_t len) {
  uint8_t* target = GuestRange(at, len, kWindowPage);
  if (target == nullptr) return false;
  // SAFETY: [target, + len) lies inside the linear memory's accessible part (GuestRange, and
  // windows are only made there); MAP_FIXED replaces just those pages of it.
  void* p =
      ::mmap(target, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p != MAP_FAILED;
}

HostStatus Instance::MapWindow(uint64_t iova, uint32_t len, uint32_t at, bool writable) {
  if (len == 0 || len % kWindowPage != 0 || iova % kWindowPage != 0) {
    return WindowErr(WindowError::kInvalidRange);
  }
  uint8_t* target = GuestRange(at, len, kWindowPage);  // also: `at` page-aligned
  if (target == nullptr) return WindowErr(WindowError::kInvalidRange);
  for (const Window& w : windows_) {
    if (Overlaps(at, len, w.at, w.len)) return WindowErr(WindowError::kBusy);
  }
  if (windows_.size() >= kMaxWindows) return WindowErr(WindowError::kTooMany);
  if (dma_port_ == nullptr) return WindowErr(WindowError::kUnsupported);
  WindowFile file;
  HostStatus s = dma_port_->WindowSource(iova, len, writable, &file);
  if (s.kind != HostStatus::kOk) return s;
  // Map it elsewhere first: a refusal (a write-sealed file, no memory) then leaves the plugin's
  // pages as they were; the move below replaces them whole.
  // SAFETY: file.fd is a regular file of at least file.offset + len bytes that cannot shrink
  // (WindowSource); the new mapping is ours until mremap moves it into the linear memory.
  void* tmp = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, writable ? MAP_SHARED : MAP_PRIVATE,
                     file.fd, static_cast<off_t>(file.offset));
  if (tmp == MAP_FAILED) {
    return WindowErr(errno == EACCES || errno == EPERM ? WindowError::kAccessDenied
                                                       : WindowError::kUnsupported);
  }
  // SAFETY: [target, + len) is inside the accessible linear memory and in no window (both
  // checked above); MREMAP_FIXED unmaps what was there and puts the window in its place.
  void* moved = ::mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (moved == MAP_FAILED) {
    ::munmap(tmp, len);
    // the kernel may have unmapped the target before it failed: make it memory again
    if (!ZeroFill(at, len)) return HostStatus::Fault("dma.map-window: cannot restore memory");
    return WindowErr(WindowError::kUnsupported);
  }
  windows_.push_back({at, len, iova});
  return HostStatus::Ok();
}

HostStatus Instance::UnmapWindow(uint32_t at) {
  for (size_t i = 0; i < windows_.size(); i++) {
    if (windows_[i].at != at) continue;
    const uint32_t len = windows_[i].len;
    windows_.erase(windows_.begin() + static_cast<std::ptrdiff_t>(i));
    if (!ZeroFill(at, len)) return HostStatus::Fault("dma.unmap-window: cannot restore memory");
    return HostStatus::Ok();
  }
  // no window there; and where no port can make one, none could ever be: unsupported, as map
  return WindowErr(dma_port_ != nullptr ? WindowError::kInvalidRange : WindowError::kUnsupported);
}

void Instance::DropWindows(uint64_t iova, uint64_t size) {
  for (size_t i = 0; i < windows_.size();) {
    const Window w = windows_[i];
    if (size != 0 && !Overlaps(w.iova, w.len, iova, size)) {
      i++;
      continue;
    }
    windows_.erase(windows_.begin() + static_cast<std::ptrdiff_t>(i));
    if (!ZeroFill(w.at, w.len) && state_ == State::kLive) {
      // the guest's memory stays mapped in the plugin: it must never run again
      state_ = State::kPoisoned;
      poisoned_by_ = "a DMA window could not be unmapped";
    }
  }
}

}  // namespace vfiobox::wasm
