// SPDX-License-Identifier: MIT
// JS class EventFd (NativeEventFd). wait() runs on the caller's event loop: one uv_poll on the
// fd per EventFd and one uv_timer per pending wait, so any number of waits cost no thread (an
// AsyncWorker would hold one of libuv's four pool threads per wait, and fs, dns and zlib with
// it). The fd is polled only while a wait is pending and never closed while polled: close()
// stops the poll first and resolves pending waits with 0n.
#include <uv.h>

#include <cerrno>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"

namespace vfiobox {

struct JsEventFd::Waiter {
  Waiter(Napi::Env env, JsEventFd* o) : deferred(Napi::Promise::Deferred::New(env)), owner(o) {}
  Napi::Promise::Deferred deferred;
  std::string stack;  // the caller's stack, for a rejection
  JsEventFd* owner;
  uv_timer_t* timer = nullptr;  // owned by libuv until its close callback

  void StopTimer() {
    if (timer == nullptr) return;
    timer->data = nullptr;
    // SAFETY: the handle is freed by its close callback, after libuv is done with it.
    uv_close(reinterpret_cast<uv_handle_t*>(timer),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer = nullptr;
  }
};

Napi::Function JsEventFd::Define(Napi::Env env) {
  return DefineClass(
      env, "EventFd",
      {InstanceAccessor<&JsEventFd::JsFdGetter>("fd"), InstanceMethod<&JsEventFd::JsRead>("read"),
       InstanceMethod<&JsEventFd::JsWrite>("write"), InstanceMethod<&JsEventFd::JsWait>("wait"),
       InstanceMethod<&JsEventFd::JsClose>("close")});
}

JsEventFd::JsEventFd(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<JsEventFd>(info), async_context_(info.Env(), "vfiobox:EventFd.wait") {
  int fd = sys::EventFd(0);
  if (fd < 0) ThrowErrno(info.Env(), "eventfd", -fd);
  fd_ = std::make_shared<UniqueFd>(fd);
}

int JsEventFd::Fd(Napi::Env env, const char* op) {
  if (!fd_) ThrowClosed(env, op, "the EventFd");
  return fd_->Get();
}

Napi::Value JsEventFd::JsFdGetter(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_ ? fd_->Get() : -1);
}

Napi::Value JsEventFd::JsRead(const Napi::CallbackInfo& info) {
  int fd = Fd(info.Env(), "read");
  uint64_t count = 0;
  ssize_t n = sys::Read(fd, &count, sizeof(count));  // the fd is O_NONBLOCK
  if (n == -EAGAIN) return Napi::BigInt::New(info.Env(), uint64_t{0});
  if (n < 0) ThrowErrno(info.Env(), "read", static_cast<int>(-n));
  return Napi::BigInt::New(info.Env(), count);
}

Napi::Value JsEventFd::JsWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t value = info[0].IsBigInt() ? ArgBigU64(info[0], "value") : ArgUint(info[0], "value");
  if (value == 0 || value == UINT64_MAX) {
    ThrowRangeError(env, "value", "a value in [1, 2^64 - 2]", info[0]);
  }
  int fd = Fd(env, "write");
  ssize_t n = sys::Write(fd, &value, sizeof(value));
  if (n < 0) ThrowErrno(env, "write", static_cast<int>(-n));  // EAGAIN: counter would overflow
  return env.Undefined();
}

Napi::Value JsEventFd::JsWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int timeout = static_cast<int>(ArgUint(info[0], "timeoutMs", 0x7fffffff));
  int fd = Fd(env, "poll");
  auto w = std::make_unique<Waiter>(env, this);
  Napi::Promise promise = w->deferred.Promise();
  // Already signalled (or the poll fails): settle now, as a wait that returned at once. This
  // poll is also where the fake kernel injects errors.
  int ready = sys::PollIn(fd, 0);
  if (ready != 0 || timeout == 0) {
    uint64_t count = 0;
    Status status;
    if (ready < 0) {
      status = Status("poll", -ready);
    } else if (ready > 0) {
      ssize_t n = sys::Read(fd, &count, sizeof(count));
      if (n < 0 && n != -EAGAIN) status = Status("read", static_cast<int>(-n));
      if (n < 0) count = 0;
    }
    if (status.ok()) {
      w->deferred.Resolve(Napi::BigInt::New(env, count));
    } else {
      w->deferred.Reject(MakeError(env, status));  // thrown here: the caller's stack is in it
    }
    return promise;
  }
  Napi::Value stack = Napi::Error::New(env, "").Value().Get("stack");
  if (stack.IsString()) w->stack = stack.As<Napi::String>().Utf8Value();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok)
    ThrowErrno(env, "napi_get_uv_event_loop", EINVAL);
  if (!poller_) {
    poller_ = std::make_unique<vfio_user::UvPoller>(loop, fd, &JsEventFd::OnPoll, this);
    if (!poller_->ok()) {
      poller_.reset();
      ThrowErrno(env, "uv_poll_init", EBADF);
    }
  }
  if (int r = poller_->Watch(UV_READABLE); r != 0) ThrowErrno(env, "uv_poll_start", -r);
  w->timer = new uv_timer_t;
  uv_timer_init(loop, w->timer);
  w->timer->data = w.get();
  uv_timer_start(
      w->timer,
      [](uv_timer_t* t) {
        auto* waiter = static_cast<Waiter*>(t->data);
        if (waiter == nullptr) return;
        JsEventFd* self = waiter->owner;
        Napi::HandleScope scope(self->Env());
        Napi::CallbackScope callback(self->Env(), self->async_context_);
        self->Settle(waiter, 0, Status());  // timed out
      },
      static_cast<uint64_t>(timeout), 0);
  waiters_.push_back(std::move(w));
  if (!hook_registered_) {
    napi_add_env_cleanup_hook(env, &JsEventFd::OnEnvCleanup, this);
    hook_registered_ = true;
  }
  UpdateRef();
  return promise;
}

void JsEventFd::OnPoll(void* arg, int status, int /*events*/) {
  auto* self = static_cast<JsEventFd*>(arg);
  if (self->env_gone_ || self->waiters_.empty() || !self->fd_) return;
  Napi::HandleScope scope(self->Env());
  Napi::CallbackScope callback(self->Env(), self->async_context_);
  Waiter* oldest = self->waiters_.front().get();
  if (status < 0) {
    self->Settle(oldest, 0, Status("poll", -status));
    return;
  }
  uint64_t count = 0;
  ssize_t n = sys::Read(self->fd_->Get(), &count, sizeof(count));
  if (n == -EAGAIN) return;  // someone read() it first: keep waiting
  if (n < 0) {
    self->Settle(oldest, 0, Status("read", static_cast<int>(-n)));
    return;
  }
  self->Settle(oldest, count, Status());  // later waits wait for the next signal
}

void JsEventFd::Settle(Waiter* w, uint64_t count, const Status& status) {
  std::unique_ptr<Waiter> owned;
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->get() == w) {
      owned = std::move(*it);
      waiters_.erase(it);
      break;
    }
  }
  if (!owned) return;
  owned->StopTimer();
  if (waiters_.empty() && poller_) poller_->Watch(0);
  Napi::Env env = Env();
  if (status.ok()) {
    owned->deferred.Resolve(Napi::BigInt::New(env, count));
  } else {
    Napi::Value error = MakeError(env, status);
    if (error.IsObject() && !owned->stack.empty()) {
      std::string head = error.ToString().Utf8Value();
      size_t nl = owned->stack.find('\n');
      error.As<Napi::Object>().Set("stack",
                                   head + (nl == std::string::npos ? "" : owned->stack.substr(nl)));
    }
    owned->deferred.Reject(error);
  }
  UpdateRef();
}

void JsEventFd::DropWaiters(bool resolve_js) {
  poller_.reset();  // before the fd may close: epoll must not watch a reused number
  std::list<std::unique_ptr<Waiter>> waiters;
  waiters.swap(waiters_);
  for (auto& w : waiters) {
    w->StopTimer();
    if (resolve_js) w->deferred.Resolve(Napi::BigInt::New(Env(), uint64_t{0}));
  }
  if (resolve_js) UpdateRef();
}

void JsEventFd::UpdateRef() {
  bool want = !waiters_.empty();
  if (want == referenced_ || env_gone_) return;
  referenced_ = want;
  if (want) {
    Ref();
  } else {
    Unref();
  }
}

void JsEventFd::OnEnvCleanup(void* arg) {
  auto* self = static_cast<JsEventFd*>(arg);
  self->hook_registered_ = false;
  self->env_gone_ = true;  // a terminating worker: release the handles, call no JS
  self->DropWaiters(false);
}

Napi::Value JsEventFd::JsClose(const Napi::CallbackInfo& info) {
  DropWaiters(true);  // pending waits resolve 0n, as at a timeout
  fd_.reset();
  return info.Env().Undefined();
}

JsEventFd::~JsEventFd() {
  env_gone_ = true;  // finalizer: no JS (waits keep the object alive, so none is pending)
  DropWaiters(false);
  if (hook_registered_) napi_remove_env_cleanup_hook(Env(), &JsEventFd::OnEnvCleanup, this);
}

}  // namespace vfiobox
