// SPDX-License-Identifier: MIT
// UvPoller: a uv_poll_t on one fd of the event loop of the thread that made it (the loop of a
// Node environment, napi_get_uv_event_loop). The handle outlives this object until libuv's
// close callback, so destroying a UvPoller inside its own callback is safe. Stop (or destroy)
// the poller before closing its fd: epoll must not see a reused fd number.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_USER_UV_POLLER_H_
#define VFIOBOX_NATIVE_SRC_VFIO_USER_UV_POLLER_H_

#include <uv.h>

namespace vfiobox::vfio_user {

class UvPoller {
 public:
  /**
   * events: UV_READABLE/UV_WRITABLE; status < 0 is a libuv error (the fd is unusable). A plain
   * function pointer, so the callback may destroy this poller (nothing of it runs afterwards).
   */
  using Callback = void (*)(void* arg, int status, int events);

  UvPoller(uv_loop_t* loop, int fd, Callback cb, void* arg) : cb_(cb), arg_(arg) {
    handle_ = new uv_poll_t;
    if (uv_poll_init(loop, handle_, fd) != 0) {
      delete handle_;  // never registered with the loop
      handle_ = nullptr;
      return;
    }
    handle_->data = this;
  }
  UvPoller(const UvPoller&) = delete;
  UvPoller& operator=(const UvPoller&) = delete;
  ~UvPoller() {
    if (handle_ == nullptr) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    // SAFETY: libuv owns the handle until the close callback, which frees it.
    uv_close(reinterpret_cast<uv_handle_t*>(handle_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  }

  bool ok() const { return handle_ != nullptr; }
  /** (re)starts watching for `events`; 0 stops. Returns a libuv status (0 ok). */
  int Watch(int events) {
    if (handle_ == nullptr) return UV_EBADF;
    if (events == events_) return 0;
    events_ = events;
    if (events == 0) return uv_poll_stop(handle_);
    return uv_poll_start(handle_, events, &UvPoller::OnPoll);
  }
  int events() const { return events_; }

 private:
  static void OnPoll(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<UvPoller*>(h->data);
    if (self != nullptr) self->cb_(self->arg_, status, events);
  }

  Callback cb_;
  void* arg_;
  uv_poll_t* handle_ = nullptr;
  int events_ = 0;
};

}  // namespace vfiobox::vfio_user

#endif  // VFIOBOX_NATIVE_SRC_VFIO_USER_UV_POLLER_H_
