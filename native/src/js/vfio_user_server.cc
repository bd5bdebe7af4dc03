// SPDX-License-Identifier: MIT
// JS class VfioUserServer (NativeVfioUserServer): argument checks, attaching to a ServerHost
// (bound here or adopted), the uv_poll handles on the creating thread's loop, and detaching or
// closing when the server or its environment goes. Requests are handled on that thread,
// synchronously, by vfio_user::ServerCore; the device is reached through JsServerHooks
// (vfio_user_hooks.cc), one callback scope per poll wakeup (microtasks run once per batch).
#include "native/src/js/vfio_user_server.h"
#ifdef VFIOBOX_WASMTIME
#include "native/src/js/wasmtime.h"  // LiveWasm, for direct_'s destructor
#endif

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
  Napi::Value memory = o.Get("memory");
  if (!memory.IsUndefined() && !memory.IsBoolean()) {
    ThrowTypeError(v.Env(), "layout.regions[i].memory", "a boolean", memory);
  }
  spec.memory_backed = memory.IsBoolean() && memory.As<Napi::Boolean>().Value();
  // MMAP only with an fd: for now the host creates one only for memory-backed regions
  if (spec.memory_backed) {
    spec.flags |= vfio_user::kRegionFlagMmap;
  } else {
    spec.flags &= ~vfio_user::kRegionFlagMmap;
  }
  Napi::Value areas = o.Get("mmapAreas");
  if (spec.memory_backed && areas.IsUndefined()) {
    ThrowTypeError(v.Env(), "layout.regions[i].mmapAreas", "the areas of a memory region", areas);
  }
  if (areas.IsUndefined()) return spec;
  Napi::Array a = ArgArray(areas, "layout.regions[i].mmapAreas", 64);
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Object area = ArgObject(a.Get(i), "mmapAreas[i]");
    SparseArea s{ArgUint(area.Get("offset"), "mmapAreas[i].offset"),
                 ArgUint(area.Get("sizeBytes"), "mmapAreas[i].sizeBytes")};
    if (s.offset > spec.size || s.size > spec.size - s.offset) {
      ThrowRangeError(v.Env(), "mmapAreas[i]", "an area inside the region", a.Get(i));
    }
    // the client mmaps them and the core serves accesses by area: pages, in order, disjoint
    bool pages = s.size > 0 && s.offset % vfio_user::kPageSize4k == 0 &&
                 s.size % vfio_user::kPageSize4k == 0;
    bool ordered = spec.mmap_areas.empty() ||
                   s.offset >= spec.mmap_areas.back().offset + spec.mmap_areas.back().size;
    if (spec.memory_backed && (!pages || !ordered)) {
      ThrowRangeError(v.Env(), "mmapAreas[i]", "whole pages, ascending and disjoint", a.Get(i));
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

bool ArgFlag(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) ThrowTypeError(o.Env(), name, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
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
                      InstanceMethod<&JsVfioUserServer::JsDmaCheck>("dmaCheck"),
                      InstanceMethod<&JsVfioUserServer::JsDmaReadInto>("dmaReadInto"),
                      InstanceMethod<&JsVfioUserServer::JsDmaWriteFrom>("dmaWriteFrom"),
                      InstanceMethod<&JsVfioUserServer::JsTriggerIrq>("triggerIrq"),
                      InstanceMethod<&JsVfioUserServer::JsMemoryRead>("memoryRead"),
                      InstanceMethod<&JsVfioUserServer::JsMemoryWrite>("memoryWrite"),
                      InstanceMethod<&JsVfioUserServer::JsStats>("stats"),
                      InstanceMethod<&JsVfioUserServer::JsSetDirect>("setDirect")});
}

JsVfioUserServer::JsVfioUserServer(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<JsVfioUserServer>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  path_ = ArgString(info[0], "socketPath");
  layout_ = ArgLayout(info[1]);
  callbacks_ = ArgCallbacks(info[2]);
  Napi::Uint8Array scratch = ArgBytes(info[3], "scratch");
  options_ = ArgOptions(info[4]);
  if (info[4].IsObject()) {
    adopt_ = ArgFlag(info[4].As<Napi::Object>(), "adopt");
    persistent_ = ArgFlag(info[4].As<Napi::Object>(), "persistent");
  }
  if (scratch.ElementLength() < options_.max_data_xfer_size) {
    ThrowRangeError(env, "scratch", "at least maxDataXferSize bytes", info[3]);
  }
  scratch_ = Napi::Persistent(scratch);
  callbacks_.probe = Napi::Persistent(Napi::Function::New(
      env, [](const Napi::CallbackInfo& i) { return i.Env().Undefined(); }, "probe"));
  napi_value name = nullptr;
  napi_create_string_utf8(env, "vfiobox:VfioUserServer", NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, nullptr, name, &async_context_) != napi_ok) async_context_ = nullptr;
  napi_add_env_cleanup_hook(env, &JsVfioUserServer::OnEnvCleanup, this);
  hook_registered_ = true;
}

JsVfioUserServer::~JsVfioUserServer() {
  env_dying_ = true;  // finalizers must not call JS
  ClearDirect();      // the instance may outlive us: it must not keep our DMA port
  if (persistent_) Detach();
  Teardown(false);
}

Napi::Value JsVfioUserServer::JsListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) ThrowClosed(env, "listen", "the VfioUserServer");
  if (host_) ThrowErrno(env, "listen", EALREADY);
  Detail where{{"path", DetailValue::Str(path_)}};
  std::shared_ptr<vfio_user::ServerHost> host;
  if (adopt_) {
    host = vfio_user::ServerHost::Find(path_);
    if (host && host->closed()) host = nullptr;
    // a successor must present what the client negotiated and enumerated
    if (host && !host->Matches(layout_, options_)) ThrowErrno(env, "adopt", EINVAL, where);
  }
  bool adopted = host != nullptr;
  if (!host) {
    auto bound = vfio_user::ServerHost::Listen(path_, layout_, options_);
    if (!bound.ok()) ThrowErrno(env, bound.status());
    host = *bound;
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) ThrowErrno(env, "uv_poll_init", EINVAL);
  int r = host->AttachThread(&hooks_, [this](int) { client_poller_.reset(); });
  if (r < 0) ThrowErrno(env, "adopt", -r, where);  // EBUSY: another thread serves it
  host_ = std::move(host);
  attached_ = true;
  listen_poller_ = std::make_unique<vfio_user::UvPoller>(loop, host_->listen_fd(),
                                                         &JsVfioUserServer::OnListenPoll, this);
  if (!listen_poller_->ok() || listen_poller_->Watch(UV_READABLE) != 0) {
    if (adopted) {
      Detach();  // the host stays for someone else
    } else {
      Teardown(false);
    }
    ThrowErrno(env, "uv_poll_start", EINVAL);
  }
  Ref();  // a listening server stays alive without a JS reference, like net.Server
  referenced_ = true;
  if (adopted && core().connected()) {
    WatchClient();
    hooks_.OnAdopt();  // the device attaches to the client it inherits
    UpdateClientWatch();
  }
  return env.Undefined();
}

napi_value JsVfioUserServer::Resource() {
  napi_value obj = nullptr;
  if (napi_get_reference_value(env_, static_cast<napi_ref>(*this), &obj) != napi_ok) return nullptr;
  return obj;
}

void JsVfioUserServer::OnListenPoll(void* arg, int status, int /*events*/) {
  auto* self = static_cast<JsVfioUserServer*>(arg);
  if (status < 0 || !self->attached_) return;  // spurious; the next accept reports real errors
  ++self->js_depth_;
  {
    rawjs::Scope scope(self->env_);
    rawjs::CallbackScope callback(self->env_, self->Resource(), self->async_context_);
    self->AcceptAll();
  }
  --self->js_depth_;
  self->FinishPendingClose();
}

void JsVfioUserServer::AcceptAll() {
  while (attached_ && host_->listen_fd() >= 0 && !close_pending_ && !core().stopped()) {
    int fd = vfio_user::AcceptUnix(host_->listen_fd());
    if (fd < 0) return;  // EAGAIN, or a transient error (EMFILE): retried on the next event
    // one client per socket: a second one is accepted and closed at once [SPEC "Socket"]
    if (core().Attach(UniqueFd(fd)) < 0) continue;
    if (!core().connected()) continue;  // onConnect already dropped it
    WatchClient();
    UpdateClientWatch();
  }
}

void JsVfioUserServer::WatchClient() {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env_, &loop);
  client_poller_ = std::make_unique<vfio_user::UvPoller>(loop, core().client_fd(),
                                                         &JsVfioUserServer::OnClientPoll, this);
}

void JsVfioUserServer::OnClientPoll(void* arg, int status, int events) {
  auto* self = static_cast<JsVfioUserServer*>(arg);
  if (!self->attached_) return;
  ++self->js_depth_;
  {
    rawjs::Scope scope(self->env_);
    rawjs::CallbackScope callback(self->env_, self->Resource(), self->async_context_);
    self->ServeClient(status, events);
    // A client that waits for each reply (a vCPU trapped on a BAR access) sends the next
    // request soon after: wait for it here and serve it in the same scopes, without a trip
    // through the event loop. Bounded: the loop's I/O ends the wait at once and its timers
    // bound it; microtasks run when the scope closes, after at most kInlineBurst requests or
    // kInlineWaitMs of a quiet client.
    for (int i = 0; i < kInlineBurst && self->WaitForNextRequest(); ++i) {
      ++self->inline_served_;
      self->ServeClient(0, UV_READABLE);
    }
  }
  --self->js_depth_;
  self->FinishPendingClose();
}

void JsVfioUserServer::ServeClient(int status, int events) {
  vfio_user::ServerCore& core = this->core();
  if (status < 0) {
    core.Disconnect("poll: " + ErrnoName(EIO));
  } else {
    if (events & UV_WRITABLE) core.OnWritable();
    // HasDeferred: commands queued during a DMA exchange or already buffered, which no
    // readiness event announces
    bool readable = (events & UV_READABLE) != 0;
    if (readable || core.HasDeferred()) core.OnReadable(readable);
  }
  UpdateClientWatch();
}

bool JsVfioUserServer::WaitForNextRequest() {
  if (!attached_ || close_pending_ || js_gone_ || env_dying_ || !client_poller_ ||
      !core().connected() || core().stopped() || core().WantsWrite() || core().HasDeferred()) {
    return false;  // the normal path (a writable watch, the fence, close) takes it from here
  }
  if (inline_skip_ > 0) {  // recent waits found nothing: leave it to the loop for a while
    --inline_skip_;
    return false;
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) return false;
  // What the loop would wait for next: 0 = it has work now (a due timer, an immediate, a
  // closing handle, uv_stop); otherwise -1 (no timer) or the milliseconds to its next timer,
  // which bound the wait.
  uv_update_time(loop);
  int next_timer = uv_backend_timeout(loop);
  if (next_timer == 0) return false;
  int wait_ms = next_timer < 0 ? kInlineWaitMs : std::min(next_timer, kInlineWaitMs);
  // The client's socket, and the loop's own epoll fd: it polls readable as soon as anything
  // the loop watches is ready (a worker message, a signal, another socket, or a client on
  // this very loop that our reply just reached), and the wait then yields to the loop at once.
  // The timeout is kInlineWaitMs rather than 1 ms because a timeout shorter than the
  // scheduler tick (4 ms at HZ=250) arms the earliest hrtimer, and reprogramming the timer
  // twice per wait cost 5 to 6 us per round trip in a VM (bench/README.md, session 10).
  pollfd fds[2] = {{core().client_fd(), POLLIN, 0}, {uv_backend_fd(loop), POLLIN, 0}};
  int n = ::poll(fds, 2, wait_ms);
  if (n == 0) {
    // a quiet client (an idle guest): wait less often, 1 in 2, 4, ... 64 wakeups
    inline_misses_ = std::min(inline_misses_ + 1, kInlineMaxBackoff);
    inline_skip_ = (1 << inline_misses_) - 1;
    ++inline_timeouts_;
    return false;
  }
  inline_misses_ = 0;
  if (n < 0) return false;  // EINTR: the loop handles the signal
  if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) return true;
  ++inline_yields_;  // only the loop's own work is ready: let it run
  return false;
}

void JsVfioUserServer::UpdateClientWatch() {
  if (!client_poller_) return;
  if (!attached_ || !client_poller_->ok() || !core().connected()) {
    client_poller_.reset();
    return;
  }
  if (core().stopped()) {  // this thread is going away: leave everything to the successor
    client_poller_->Watch(0);
    if (listen_poller_) listen_poller_->Watch(0);
    return;
  }
  // writable fires at once on an idle socket: that is how deferred work gets its turn
  bool write = core().WantsWrite() || core().HasDeferred();
  client_poller_->Watch(UV_READABLE | (write ? UV_WRITABLE : 0));
}

Napi::Value JsVfioUserServer::JsClose(const Napi::CallbackInfo& info) {
  if (js_depth_ > 0) {
    close_pending_ = true;  // inside a request: finish it first, then close
    if (attached_) core().Disconnect("server closed");
  } else {
    Teardown(true);
  }
  return info.Env().Undefined();
}

void JsVfioUserServer::FinishPendingClose() {
  if (js_depth_ == 0 && close_pending_) Teardown(true);
}

void JsVfioUserServer::Detach() {
  if (closed_) return;
  closed_ = true;  // this object serves no more; the host goes on without it
  env_dying_ = true;
  ClearDirect();
  listen_poller_.reset();
  client_poller_.reset();  // before another thread may poll (and close) the same fds
  if (attached_) {
    attached_ = false;
    host_->DetachThread();
  }
  if (hook_registered_) {
    hook_registered_ = false;
    napi_remove_env_cleanup_hook(env_, &JsVfioUserServer::OnEnvCleanup, this);
  }
}

void JsVfioUserServer::Teardown(bool call_js) {
  if (closed_) return;
  closed_ = true;
  close_pending_ = false;
  listen_poller_.reset();
  if (!call_js) env_dying_ = true;
  if (attached_) {
    host_->Close();  // drops the client: onDisconnect (skipped when env_dying_), unlinks
    attached_ = false;
    host_->DetachThread();
  }
  client_poller_.reset();
  ClearDirect();  // the plugin instance is not ours to keep
  if (hook_registered_) {
    hook_registered_ = false;
    napi_remove_env_cleanup_hook(env_, &JsVfioUserServer::OnEnvCleanup, this);
  }
  if (call_js) {
    // the callbacks close over the facade, which holds this object: drop them so the cycle
    // does not stay rooted by these strong references once the server is closed
    callbacks_ = JsServerCallbacks{};
    scratch_.Reset();
    if (async_context_ != nullptr) napi_async_destroy(env_, async_context_);
    async_context_ = nullptr;
  }
  if (referenced_ && call_js) {
    referenced_ = false;
    uint32_t count = 0;
    napi_reference_unref(env_, static_cast<napi_ref>(*this), &count);  // raw: never throws
  }
}

void JsVfioUserServer::OnEnvCleanup(void* arg) {
  auto* self = static_cast<JsVfioUserServer*>(arg);
  self->hook_registered_ = false;  // a terminated worker: call no JS
  if (self->persistent_) {
    self->Detach();  // the host and its client wait for a successor (vfioUserFence, adopt)
  } else {
    self->Teardown(false);
  }
}

Napi::Value JsVfioUserServer::JsConnected(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), attached_ && core().connected());
}

Napi::Value JsVfioUserServer::JsDisconnectClient(const Napi::CallbackInfo& info) {
  bool had = attached_ && core().connected();
  if (had) core().Disconnect("disconnected by the server");
  return Napi::Boolean::New(info.Env(), had);
}

}  // namespace vfiobox
