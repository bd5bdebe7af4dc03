// SPDX-License-Identifier: MIT
// JS class VfioUserServer (NativeVfioUserServer): argument checks, the listening socket, the
// uv_poll handles on the creating thread's loop, and the methods the device side calls
// (dmaRead/dmaWrite/triggerIrq). Requests are handled on that thread, synchronously, by
// vfio_user::ServerCore; the device is reached through JsServerHooks (vfio_user_hooks.cc).
#include "native/src/js/vfio_user_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"
#include "native/src/js/vfio_user_napi.h"
#include "native/src/vfio_user/transport.h"

namespace vfiobox {

namespace {

using vfio_user::DeviceLayout;
using vfio_user::IrqSpec;
using vfio_user::RegionSpec;
using vfio_user::SparseArea;

constexpr uint32_t kMaxRegions = 64;
constexpr uint32_t kMaxIrqIndices = 16;
constexpr uint32_t kMaxIrqCount = 2048;  // MSI-X's table size limit (PCI spec)
constexpr uint64_t kMinXfer = 4096;
constexpr uint64_t kMaxXfer = 64u << 20;

Napi::Array ArgArray(const Napi::Value& v, const char* name, uint32_t max) {
  if (!v.IsArray()) ThrowTypeError(v.Env(), name, "an array", v);
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > max) {
    ThrowRangeError(v.Env(), name, "at most " + std::to_string(max) + " entries",
                    Napi::Number::New(v.Env(), a.Length()));
  }
  return a;
}

Napi::Object ArgObject(const Napi::Value& v, const char* name) {
  if (!v.IsObject()) ThrowTypeError(v.Env(), name, "an object", v);
  return v.As<Napi::Object>();
}

RegionSpec ArgRegion(const Napi::Value& v) {
  Napi::Object o = ArgObject(v, "layout.regions[i]");
  RegionSpec spec;
  spec.size = ArgUint(o.Get("sizeBytes"), "layout.regions[i].sizeBytes");
  spec.flags = static_cast<uint32_t>(ArgUint(o.Get("flags"), "layout.regions[i].flags", 0xff));
  Napi::Value areas = o.Get("mmapAreas");
  if (areas.IsUndefined()) return spec;
  Napi::Array a = ArgArray(areas, "layout.regions[i].mmapAreas", 64);
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Object area = ArgObject(a.Get(i), "mmapAreas[i]");
    SparseArea s{ArgUint(area.Get("offset"), "mmapAreas[i].offset"),
                 ArgUint(area.Get("sizeBytes"), "mmapAreas[i].sizeBytes")};
    if (s.offset > spec.size || s.size > spec.size - s.offset) {
      ThrowRangeError(v.Env(), "mmapAreas[i]", "an area inside the region", a.Get(i));
    }
    spec.mmap_areas.push_back(s);
  }
  return spec;
}

DeviceLayout ArgLayout(const Napi::Value& v) {
  Napi::Object o = ArgObject(v, "layout");
  DeviceLayout layout;
  layout.flags = static_cast<uint32_t>(ArgUint(o.Get("flags"), "layout.flags", 0xffffffff));
  Napi::Array regions = ArgArray(o.Get("regions"), "layout.regions", kMaxRegions);
  for (uint32_t i = 0; i < regions.Length(); ++i) layout.regions.push_back(ArgRegion(regions[i]));
  Napi::Array irqs = ArgArray(o.Get("irqs"), "layout.irqs", kMaxIrqIndices);
  for (uint32_t i = 0; i < irqs.Length(); ++i) {
    Napi::Object irq = ArgObject(irqs.Get(i), "layout.irqs[i]");
    IrqSpec spec;
    spec.count = static_cast<uint32_t>(ArgUint(irq.Get("count"), "irqs[i].count", kMaxIrqCount));
    spec.flags = static_cast<uint32_t>(ArgUint(irq.Get("flags"), "irqs[i].flags", 0xff));
    layout.irqs.push_back(spec);
  }
  return layout;
}

Napi::FunctionReference ArgCallback(const Napi::Object& cbs, const char* name, bool required) {
  Napi::Value v = cbs.Get(name);
  if (!required && v.IsUndefined()) return {};
  if (!v.IsFunction()) ThrowTypeError(cbs.Env(), name, "a function", v);
  return Napi::Persistent(v.As<Napi::Function>());
}

JsServerCallbacks ArgCallbacks(const Napi::Value& v) {
  Napi::Object o = ArgObject(v, "callbacks");
  JsServerCallbacks cb;
  cb.region_read = ArgCallback(o, "regionRead", true);
  cb.region_write = ArgCallback(o, "regionWrite", true);
  cb.reset = ArgCallback(o, "reset", false);
  cb.on_connect = ArgCallback(o, "onConnect", false);
  cb.on_disconnect = ArgCallback(o, "onDisconnect", false);
  cb.on_irq_state = ArgCallback(o, "onIrqState", false);
  cb.on_dma_map = ArgCallback(o, "onDmaMap", false);
  cb.on_dma_unmap = ArgCallback(o, "onDmaUnmap", false);
  cb.on_protocol_error = ArgCallback(o, "onProtocolError", false);
  return cb;
}

vfio_user::ServerOptions ArgOptions(const Napi::Value& v) {
  vfio_user::ServerOptions opts;
  if (v.IsUndefined()) return opts;
  Napi::Object o = ArgObject(v, "options");
  if (Napi::Value x = o.Get("maxDataXferSize"); !x.IsUndefined()) {
    opts.max_data_xfer_size = static_cast<uint32_t>(ArgUint(x, "maxDataXferSize", kMaxXfer));
    if (opts.max_data_xfer_size < kMinXfer) {
      ThrowRangeError(v.Env(), "maxDataXferSize", "at least 4096", x);
    }
  }
  if (Napi::Value x = o.Get("maxDmaMaps"); !x.IsUndefined()) {
    opts.max_dma_maps = static_cast<uint32_t>(ArgUint(x, "maxDmaMaps", 65535));
  }
  return opts;
}

}  // namespace

Napi::Function JsVfioUserServer::Define(Napi::Env env) {
  return DefineClass(env, "VfioUserServer",
                     {InstanceMethod<&JsVfioUserServer::JsListen>("listen"),
                      InstanceMethod<&JsVfioUserServer::JsClose>("close"),
                      InstanceAccessor<&JsVfioUserServer::JsConnected>("connected"),
                      InstanceMethod<&JsVfioUserServer::JsDisconnectClient>("disconnectClient"),
                      InstanceMethod<&JsVfioUserServer::JsDmaRead>("dmaRead"),
                      InstanceMethod<&JsVfioUserServer::JsDmaWrite>("dmaWrite"),
                      InstanceMethod<&JsVfioUserServer::JsTriggerIrq>("triggerIrq"),
                      InstanceMethod<&JsVfioUserServer::JsStats>("stats")});
}

JsVfioUserServer::JsVfioUserServer(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<JsVfioUserServer>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  path_ = ArgString(info[0], "socketPath");
  DeviceLayout layout = ArgLayout(info[1]);
  callbacks_ = ArgCallbacks(info[2]);
  Napi::Uint8Array scratch = ArgBytes(info[3], "scratch");
  vfio_user::ServerOptions opts = ArgOptions(info[4]);
  if (scratch.ElementLength() < opts.max_data_xfer_size) {
    ThrowRangeError(env, "scratch", "at least maxDataXferSize bytes", info[3]);
  }
  scratch_ = Napi::Persistent(scratch);
  core_ = std::make_unique<vfio_user::ServerCore>(std::move(layout), opts, &hooks_);
  core_->set_before_close([this](int) { client_poller_.reset(); });
  napi_add_env_cleanup_hook(env, &JsVfioUserServer::OnEnvCleanup, this);
  hook_registered_ = true;
}

JsVfioUserServer::~JsVfioUserServer() {
  env_dying_ = true;  // finalizers must not call JS
  Teardown(false);
}

Napi::Value JsVfioUserServer::JsListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) ThrowClosed(env, "listen", "the VfioUserServer");
  if (listen_fd_.Valid()) ThrowErrno(env, "listen", EALREADY);
  auto sock = vfio_user::ListenUnix(path_);
  if (!sock.ok()) ThrowErrno(env, sock.status());
  struct stat st;
  if (::stat(path_.c_str(), &st) == 0) socket_inode_ = st.st_ino;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) ThrowErrno(env, "uv_poll_init", EINVAL);
  listen_fd_ = std::move(*sock);
  listen_poller_ = std::make_unique<vfio_user::UvPoller>(loop, listen_fd_.Get(),
                                                         &JsVfioUserServer::OnListenPoll, this);
  if (!listen_poller_->ok() || listen_poller_->Watch(UV_READABLE) != 0) {
    Teardown(false);
    ThrowErrno(env, "uv_poll_start", EINVAL);
  }
  Ref();  // a listening server stays alive without a JS reference, like net.Server
  referenced_ = true;
  return env.Undefined();
}

void JsVfioUserServer::OnListenPoll(void* arg, int status, int /*events*/) {
  auto* self = static_cast<JsVfioUserServer*>(arg);
  if (status < 0) return;  // spurious; the next accept reports real errors
  rawjs::Scope scope(self->env_);
  ++self->js_depth_;
  self->AcceptAll();
  --self->js_depth_;
  self->FinishPendingClose();
}

void JsVfioUserServer::AcceptAll() {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env_, &loop);
  while (listen_fd_.Valid() && !close_pending_) {
    int fd = vfio_user::AcceptUnix(listen_fd_.Get());
    if (fd < 0) return;  // EAGAIN, or a transient error (EMFILE): retried on the next event
    // one client per socket: a second one is accepted and closed at once [SPEC "Socket"]
    if (core_->Attach(UniqueFd(fd)) < 0) continue;
    if (!core_->connected()) continue;  // onConnect already dropped it
    client_poller_ = std::make_unique<vfio_user::UvPoller>(loop, core_->client_fd(),
                                                           &JsVfioUserServer::OnClientPoll, this);
    UpdateClientWatch();
  }
}

void JsVfioUserServer::OnClientPoll(void* arg, int status, int events) {
  auto* self = static_cast<JsVfioUserServer*>(arg);
  rawjs::Scope scope(self->env_);
  ++self->js_depth_;
  if (status < 0) {
    self->core_->Disconnect("poll: " + ErrnoName(EIO));
  } else {
    if (events & UV_WRITABLE) self->core_->OnWritable();
    // HasDeferred: commands queued during a DMA exchange, which no readiness event announces
    if ((events & UV_READABLE) || self->core_->HasDeferred()) self->core_->OnReadable();
  }
  self->UpdateClientWatch();
  --self->js_depth_;
  self->FinishPendingClose();
}

void JsVfioUserServer::UpdateClientWatch() {
  if (!client_poller_) return;
  if (!client_poller_->ok() || !core_->connected()) {
    client_poller_.reset();
    return;
  }
  // writable fires at once on an idle socket: that is how deferred work gets its turn
  bool write = core_->WantsWrite() || core_->HasDeferred();
  client_poller_->Watch(UV_READABLE | (write ? UV_WRITABLE : 0));
}

Napi::Value JsVfioUserServer::JsClose(const Napi::CallbackInfo& info) {
  if (js_depth_ > 0) {
    close_pending_ = true;  // inside a request: finish it first, then close
    core_->Disconnect("server closed");
  } else {
    Teardown(true);
  }
  return info.Env().Undefined();
}

void JsVfioUserServer::FinishPendingClose() {
  if (js_depth_ == 0 && close_pending_) Teardown(true);
}

void JsVfioUserServer::Teardown(bool call_js) {
  if (closed_) return;
  closed_ = true;
  close_pending_ = false;
  listen_poller_.reset();
  if (listen_fd_.Valid()) {
    listen_fd_.Reset();
    struct stat st;  // unlink only the socket we bound, not one a successor bound since
    if (::stat(path_.c_str(), &st) == 0 && st.st_ino == socket_inode_) ::unlink(path_.c_str());
  }
  if (!call_js) env_dying_ = true;
  if (core_) core_->Disconnect("server closed");  // hooks skip JS when env_dying_
  client_poller_.reset();
  if (hook_registered_) {
    hook_registered_ = false;
    napi_remove_env_cleanup_hook(env_, &JsVfioUserServer::OnEnvCleanup, this);
  }
  if (call_js) {
    // the callbacks close over the facade, which holds this object: drop them so the cycle
    // does not stay rooted by these strong references once the server is closed
    callbacks_ = JsServerCallbacks{};
    scratch_.Reset();
  }
  if (referenced_ && call_js) {
    referenced_ = false;
    uint32_t count = 0;
    napi_reference_unref(env_, static_cast<napi_ref>(*this), &count);  // raw: never throws
  }
}

void JsVfioUserServer::OnEnvCleanup(void* arg) {
  auto* self = static_cast<JsVfioUserServer*>(arg);
  self->hook_registered_ = false;  // a terminated worker: release everything, call no JS
  self->Teardown(false);
}

Napi::Value JsVfioUserServer::JsConnected(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !closed_ && core_->connected());
}

Napi::Value JsVfioUserServer::JsDisconnectClient(const Napi::CallbackInfo& info) {
  bool had = !closed_ && core_->connected();
  if (had) core_->Disconnect("disconnected by the server");
  return Napi::Boolean::New(info.Env(), had);
}

}  // namespace vfiobox
