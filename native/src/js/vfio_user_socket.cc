// SPDX-License-Identifier: MIT
// JS class VfioUserSocket (NativeVfioUserSocket): the client side of a vfio-user socket.
// Framing and fd attachment are the Transport's (native/src/vfio_user/transport.h); this file
// wires it to a uv_poll_t on the creating thread's loop and to the JS callbacks.
#include <napi.h>
#include <uv.h>

#include <cerrno>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"
#include "native/src/js/vfio_user_napi.h"
#include "native/src/vfio_user/transport.h"
#include "native/src/vfio_user/uv_poller.h"

namespace vfiobox {

namespace {

// Server-to-client messages are replies (REGION_READ data) and DMA_WRITE requests, each at
// most max_data_xfer_size plus a small head; a client may negotiate up to 64 MiB.
constexpr uint32_t kClientMaxMsgSize = (64u << 20) + 4096;

std::vector<int> ArgFds(const Napi::Value& v) {
  std::vector<int> fds;
  if (v.IsUndefined() || v.IsNull()) return fds;
  if (!v.IsArray()) ThrowTypeError(v.Env(), "fds", "an array of fd numbers", v);
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > vfio_user::kMaxFdsPerMessage) {
    ThrowRangeError(v.Env(), "fds", "at most 16 fds", Napi::Number::New(v.Env(), a.Length()));
  }
  for (uint32_t i = 0; i < a.Length(); ++i) {
    fds.push_back(static_cast<int>(ArgUint(a.Get(i), "fds[i]", 0x7fffffff)));
  }
  return fds;
}

}  // namespace

Napi::Function JsVfioUserSocket::Define(Napi::Env env) {
  return DefineClass(env, "VfioUserSocket",
                     {StaticMethod<&JsVfioUserSocket::JsConnect>("connect"),
                      InstanceMethod<&JsVfioUserSocket::JsSend>("send"),
                      InstanceMethod<&JsVfioUserSocket::JsOnMessage>("onMessage"),
                      InstanceMethod<&JsVfioUserSocket::JsOnClose>("onClose"),
                      InstanceMethod<&JsVfioUserSocket::JsClose>("close")});
}

JsVfioUserSocket::JsVfioUserSocket(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<JsVfioUserSocket>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(env, "VfioUserSocket is not constructible: use connect()");
  }
  // SAFETY: the External was made by JsConnect and transfers ownership of the socket fd.
  std::unique_ptr<UniqueFd> sock(info[0].As<Napi::External<UniqueFd>>().Data());
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    ThrowErrno(env, "uv_poll_init", EINVAL);
  }
  int fd = sock->Get();
  transport_ = std::make_unique<vfio_user::Transport>(std::move(*sock), kClientMaxMsgSize);
  poller_ = std::make_unique<vfio_user::UvPoller>(loop, fd, &JsVfioUserSocket::OnPoll, this);
  if (!poller_->ok()) ThrowErrno(env, "uv_poll_init", EINVAL);
  napi_add_env_cleanup_hook(env, &JsVfioUserSocket::OnEnvCleanup, this);
  hook_registered_ = true;
  Ref();  // open sockets stay alive without a JS reference, like net.Socket
  referenced_ = true;
}

JsVfioUserSocket::~JsVfioUserSocket() { ReleaseNative(); }

Napi::Value JsVfioUserSocket::JsConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info[0], "path");
  auto sock = vfio_user::ConnectUnix(path);
  if (!sock.ok()) ThrowErrno(env, sock.status());
  auto* owned = new UniqueFd(std::move(*sock));
  // SAFETY: the External carries ownership of `owned` into the constructor.
  return Data(env).vfio_user_socket_ctor.New({Napi::External<UniqueFd>::New(env, owned)});
}

Napi::Value JsVfioUserSocket::JsSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array bytes = ArgBytes(info[0], "bytes");
  std::vector<int> fds = ArgFds(info[1]);
  if (!transport_ || !transport_->open()) ThrowClosed(env, "sendmsg", "the VfioUserSocket");
  const uint8_t* p = bytes.Data();
  int r = transport_->Send(std::vector<uint8_t>(p, p + bytes.ElementLength()), fds);
  if (r < 0) ThrowErrno(env, "sendmsg", -r, {{"bytes", DetailValue::Num(bytes.ElementLength())}});
  UpdateWatch();
  return env.Undefined();
}

Napi::Value JsVfioUserSocket::JsOnMessage(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) ThrowTypeError(info.Env(), "cb", "a function", info[0]);
  on_message_ = Napi::Persistent(info[0].As<Napi::Function>());
  UpdateWatch();  // reading starts once someone listens: no message is dropped
  return info.Env().Undefined();
}

Napi::Value JsVfioUserSocket::JsOnClose(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) ThrowTypeError(info.Env(), "cb", "a function", info[0]);
  on_close_ = Napi::Persistent(info[0].As<Napi::Function>());
  UpdateWatch();
  return info.Env().Undefined();
}

Napi::Value JsVfioUserSocket::JsClose(const Napi::CallbackInfo& info) {
  Shutdown(0, false);
  return info.Env().Undefined();
}

void JsVfioUserSocket::UpdateWatch() {
  if (!poller_ || !transport_ || !transport_->open()) return;
  int events = 0;
  // Without onMessage nothing is read (messages wait in the socket, and EOF is only seen by
  // reading, so onClose fires once onMessage is set too); a level-triggered poll on unread
  // bytes would spin.
  if (!on_message_.IsEmpty()) events |= UV_READABLE;
  if (transport_->SendPending()) events |= UV_WRITABLE;
  poller_->Watch(events);
}

void JsVfioUserSocket::OnPoll(void* arg, int status, int events) {
  auto* self = static_cast<JsVfioUserSocket*>(arg);
  rawjs::Scope scope(self->env_);
  if (status < 0) return self->Shutdown(EIO, true);
  if (events & UV_WRITABLE) {
    int r = self->transport_->Flush();
    if (r < 0) return self->Shutdown(-r, true);
  }
  if (events & UV_READABLE) return self->OnReadable();  // may close `self`'s socket
  self->UpdateWatch();
}

namespace {

/** the message as a Buffer and its fds as numbers (ownership passes to JS); false on failure. */
bool MessageToJs(napi_env env, vfio_user::Message& msg, napi_value* bytes, napi_value* fds) {
  void* data = nullptr;
  if (napi_create_buffer_copy(env, msg.size, msg.data(), &data, bytes) != napi_ok ||
      napi_create_array_with_length(env, msg.fds.size(), fds) != napi_ok) {
    return false;
  }
  for (size_t i = 0; i < msg.fds.size(); ++i) {
    napi_value n = rawjs::Number(env, msg.fds[i].Get());
    if (n == nullptr || napi_set_element(env, *fds, static_cast<uint32_t>(i), n) != napi_ok) {
      return false;
    }
  }
  for (UniqueFd& fd : msg.fds) fd.Release();  // the fds now belong to JS (closeFd)
  return true;
}

}  // namespace

void JsVfioUserSocket::OnReadable() {
  for (;;) {
    if (!transport_ || !transport_->open() || on_message_.IsEmpty()) break;
    vfio_user::Message msg;
    vfio_user::RecvStatus st = transport_->Receive(&msg);
    if (st == vfio_user::RecvStatus::kAgain) break;
    if (st == vfio_user::RecvStatus::kEof) return Shutdown(0, true);
    if (st == vfio_user::RecvStatus::kBadFrame) return Shutdown(EPROTO, true);
    if (st == vfio_user::RecvStatus::kError) return Shutdown(transport_->error(), true);
    rawjs::Scope scope(env_);
    napi_value bytes = nullptr;
    napi_value fds = nullptr;
    // the environment is going away (a terminated worker): the message's fds close with it
    if (!scope.ok() || !MessageToJs(env_, msg, &bytes, &fds)) return ReleaseNative();
    Deliver(on_message_, {bytes, fds});
  }
  UpdateWatch();
}

void JsVfioUserSocket::Deliver(const Napi::FunctionReference& cb,
                               std::initializer_list<napi_value> args) {
  napi_value result = nullptr;
  napi_value thrown = nullptr;
  if (!rawjs::Call(env_, cb, args, &result, &thrown) && thrown != nullptr) {
    // a throwing listener is the application's bug: surface it as an uncaught exception
    napi_fatal_exception(env_, thrown);
  }
}

void JsVfioUserSocket::Shutdown(int err, bool notify) {
  if (!transport_ || !transport_->open()) return;
  ReleaseNative();
  if (referenced_) {
    referenced_ = false;
    uint32_t count = 0;
    napi_reference_unref(env_, static_cast<napi_ref>(*this), &count);  // may be GC'd now
  }
  if (notify && !on_close_.IsEmpty()) {
    rawjs::Scope scope(env_);
    Deliver(on_close_, {rawjs::Number(env_, err)});
  }
  on_message_.Reset();
  on_close_.Reset();
}

void JsVfioUserSocket::ReleaseNative() {
  poller_.reset();  // stop watching before the fd number can be reused
  if (transport_) transport_->Close();
  if (hook_registered_) {
    hook_registered_ = false;
    napi_remove_env_cleanup_hook(env_, &JsVfioUserSocket::OnEnvCleanup, this);
  }
}

void JsVfioUserSocket::OnEnvCleanup(void* arg) {
  auto* self = static_cast<JsVfioUserSocket*>(arg);
  self->hook_registered_ = false;  // the environment is going: release natives, no JS calls
  self->ReleaseNative();
}

}  // namespace vfiobox
