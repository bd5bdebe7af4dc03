// SPDX-License-Identifier: MIT
// JS class EventFd (NativeEventFd). wait() polls on a libuv worker thread (AsyncWorker), never
// on the main thread; the worker shares ownership of the fd, so close() during a wait cannot
// close (and let the kernel reuse) an fd that is being polled.
#include <cerrno>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"

namespace vfiobox {

namespace {

class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, std::shared_ptr<UniqueFd> fd, int timeout_ms)
      : Napi::AsyncWorker(env, "vfiobox:EventFd.wait"),
        deferred_(Napi::Promise::Deferred::New(env)),
        fd_(std::move(fd)),
        timeout_ms_(timeout_ms) {
    // capture the caller's stack now; the native error gets it on rejection (sharp's habit)
    Napi::Value stack = Napi::Error::New(env, "").Value().Get("stack");
    if (stack.IsString()) stack_ = stack.As<Napi::String>().Utf8Value();
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {  // worker thread: sys calls only, no Napi
    int r = sys::PollIn(fd_->Get(), timeout_ms_);
    if (r < 0) {
      status_ = Status("poll", -r);
      return;
    }
    if (r == 0) return;  // timeout: resolve 0n
    ssize_t n = sys::Read(fd_->Get(), &count_, sizeof(count_));
    if (n < 0 && n != -EAGAIN) status_ = Status("read", static_cast<int>(-n));
    if (n < 0) count_ = 0;  // another reader took it
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (status_.ok()) {
      deferred_.Resolve(Napi::BigInt::New(env, count_));
      return;
    }
    Napi::Value error = MakeError(env, status_);
    if (error.IsObject() && !stack_.empty()) {
      std::string head = error.ToString().Utf8Value();
      size_t nl = stack_.find('\n');
      error.As<Napi::Object>().Set("stack",
                                   head + (nl == std::string::npos ? "" : stack_.substr(nl)));
    }
    deferred_.Reject(error);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string stack_;  // the caller's stack, captured on the main thread
  std::shared_ptr<UniqueFd> fd_;
  int timeout_ms_;
  uint64_t count_ = 0;
  Status status_;
};

}  // namespace

Napi::Function JsEventFd::Define(Napi::Env env) {
  return DefineClass(
      env, "EventFd",
      {InstanceAccessor<&JsEventFd::JsFdGetter>("fd"), InstanceMethod<&JsEventFd::JsRead>("read"),
       InstanceMethod<&JsEventFd::JsWrite>("write"), InstanceMethod<&JsEventFd::JsWait>("wait"),
       InstanceMethod<&JsEventFd::JsClose>("close")});
}

JsEventFd::JsEventFd(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsEventFd>(info) {
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
  Fd(env, "poll");
  auto* worker = new WaitWorker(env, fd_, timeout);  // AsyncWorker deletes itself when done
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value JsEventFd::JsClose(const Napi::CallbackInfo& info) {
  fd_.reset();  // closes now, or when the last in-flight wait() finishes
  return info.Env().Undefined();
}

}  // namespace vfiobox
