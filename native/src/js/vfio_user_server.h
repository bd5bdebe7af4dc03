// SPDX-License-Identifier: MIT
// JsVfioUserServer (NativeVfioUserServer): the ObjectWrap that serves a vfio_user::ServerHost
// (native/src/vfio_user/server_host.h) on the creating thread's loop. Shared by
// vfio_user_server.cc (lifecycle, methods), vfio_user_hooks.cc (the device hooks that call the
// JS callbacks) and vfio_user_server_io.cc (dmaRead/dmaWrite/triggerIrq/stats, the host
// functions vfioUserFence/vfioUserClose). Real addon only.
//
// The host (listening socket, client, DMA maps, eventfds) belongs to the process. This object
// attaches to it at listen() (binding a new one, or adopting a detached one with the same
// layout when `adopt` is set) and detaches when its environment goes away if `persistent` is
// set; otherwise that closes the host, as close() always does.
#ifndef VFIOBOX_NATIVE_SRC_JS_VFIO_USER_SERVER_H_
#define VFIOBOX_NATIVE_SRC_JS_VFIO_USER_SERVER_H_

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "native/src/fd.h"
#include "native/src/vfio_user/server_core.h"
#include "native/src/vfio_user/server_host.h"
#include "native/src/vfio_user/uv_poller.h"
#include "native/src/wasm/host.h"

namespace vfiobox {

/** the JS callbacks object, resolved once at construction (optional ones may be empty). */
struct JsServerCallbacks {
  Napi::FunctionReference region_read;        // (region, offset, count) -> errno; fills scratch
  Napi::FunctionReference region_write;       // (region, offset, count) -> errno; reads scratch
  Napi::FunctionReference reset;              // () -> errno | undefined
  Napi::FunctionReference on_connect;         // (adopted: boolean)
  Napi::FunctionReference on_disconnect;      // (reason)
  Napi::FunctionReference on_irq_state;       // (index, start, count, flags)
  Napi::FunctionReference on_dma_map;         // (iova, sizeBytes: bigint, flags, hasFd)
  Napi::FunctionReference on_dma_unmap;       // (iova, sizeBytes: bigint)
  Napi::FunctionReference on_protocol_error;  // (command, errno, message)
  Napi::FunctionReference probe;              // a native no-op: can this thread still run JS?
};

class JsVfioUserServer;
struct LiveWasm;  // js/wasmtime.h (builds with wasmtime)
namespace wasm {
struct Outcome;  // wasm/instance.h
}

/** setDirect's route (vfio_user_direct.cc): BAR accesses a wasmtime instance answers, no JS. */
struct DirectRoute {
  struct Range {
    uint32_t region;
    uint64_t offset;
    uint64_t length;
  };
  /** the instance's DMA grant (host/plugins/grants.ts), for the native DMA port */
  struct DmaGrant {
    struct Window {
      uint64_t iova;
      uint64_t size;
      bool read;
      bool write;
    };
    bool all = false;             // dma: 'all'
    std::vector<Window> windows;  // otherwise ('none': empty)
    uint32_t max_bytes = 0;       // per call (DMA_MAX_TRANSFER_BYTES); 0: the port declines all
    /** [iova, iova + len) lies in one window that allows the direction, or the grant is all */
    bool Allows(uint64_t iova, uint64_t len, bool write) const;
  };
  std::shared_ptr<LiveWasm> target;  // empty: no route
  uint8_t bars = 0;                  // one bit per region 0..5
  std::vector<Range> exclude;        // accesses overlapping these go through JS
  DmaGrant dma;
  uint64_t reads = 0, writes = 0, errors = 0, fallbacks = 0;
  uint64_t dma_reads = 0, dma_writes = 0, dma_declined = 0;  // the DMA port's calls
  uint64_t windows_mapped = 0, windows_refused = 0;          // dma.map-window's answers
};

/**
 * The direct route's DMA port (wasm/host.h DmaPort): the live instance's dma.read/dma.write
 * copy between the server's mmapped client memory and the plugin's memory, no JS, when the
 * grant allows the range. Everything else it declines to the JS chain (vfio_user_direct.cc).
 */
class DirectDmaPort final : public wasm::DmaPort {
 public:
  explicit DirectDmaPort(JsVfioUserServer* owner) : owner_(owner) {}
  bool Read(uint64_t iova, uint32_t len, wasm::GuestBuffer& out, wasm::HostStatus* status) override;
  bool Write(uint64_t iova, const uint8_t* data, uint32_t len, wasm::HostStatus* status) override;
  /** a DMA window of the client's sealed memory fd, if the grant allows it (not-granted else) */
  wasm::HostStatus WindowSource(uint64_t iova, uint32_t len, bool writable,
                                wasm::WindowFile* file) override;

 private:
  /**
   * the core and the client span when the port copies [iova, iova+len) itself (the grant
   * allows it, within the per-call limit, inside one mmapped map), else nullptr: declined and
   * counted, and the JS chain answers
   */
  vfio_user::ServerCore* Claim(uint64_t iova, uint32_t len, bool to_guest, DmaSpan* span);
  JsVfioUserServer* owner_;
};

/**
 * DeviceHooks that call into JS (raw Node-API, vfio_user_napi.h: never throws). A callback
 * that throws is answered with EIO and counted; when JS can no longer run at all (the worker
 * is being terminated) the request is abandoned instead: it stays in flight for the fence.
 */
class JsServerHooks : public vfio_user::DeviceHooks {
 public:
  explicit JsServerHooks(JsVfioUserServer* owner) : owner_(owner) {}
  int RegionRead(uint32_t region, uint64_t offset, uint8_t* out, uint32_t count) override;
  int RegionWrite(uint32_t region, uint64_t offset, const uint8_t* data, uint32_t count) override;
  int Reset() override;
  bool Gone() const override;
  void OnConnect() override;
  /** the client of an adopted host: the device attaches to it (onConnect(true)) */
  void OnAdopt();
  void OnDisconnect(const std::string& reason) override;
  void OnIrqState(uint32_t index, uint32_t start, uint32_t count, uint32_t flags) override;
  void OnDmaMap(uint64_t iova, uint64_t size, uint32_t flags, bool has_fd) override;
  void OnDmaUnmap(uint64_t iova, uint64_t size) override;
  void OnProtocolError(uint16_t command, int err, const std::string& what) override;

 private:
  /**
   * cb(...args) (if set): its errno result (0 for undefined), EIO when it threw or returned
   * something else, kAbandoned when this thread can no longer run JS.
   */
  int Call(const Napi::FunctionReference& cb, size_t argc, const napi_value* argv);
  /** the scratch bytes, or nullptr when the JS side detached its buffer or it is too small. */
  uint8_t* Scratch(uint32_t count);

  JsVfioUserServer* owner_;
};

class JsVfioUserServer : public Napi::ObjectWrap<JsVfioUserServer> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit JsVfioUserServer(const Napi::CallbackInfo& info);
  ~JsVfioUserServer() override;

 private:
  friend class JsServerHooks;
  friend class DirectDmaPort;

  Napi::Value JsListen(const Napi::CallbackInfo& info);
  Napi::Value JsClose(const Napi::CallbackInfo& info);
  Napi::Value JsConnected(const Napi::CallbackInfo& info);
  Napi::Value JsDisconnectClient(const Napi::CallbackInfo& info);
  Napi::Value JsDmaRead(const Napi::CallbackInfo& info);
  Napi::Value JsDmaWrite(const Napi::CallbackInfo& info);
  Napi::Value JsDmaCheck(const Napi::CallbackInfo& info);
  Napi::Value JsDmaReadInto(const Napi::CallbackInfo& info);
  Napi::Value JsDmaWriteFrom(const Napi::CallbackInfo& info);
  Napi::Value JsTriggerIrq(const Napi::CallbackInfo& info);
  Napi::Value JsMemoryRead(const Napi::CallbackInfo& info);
  Napi::Value JsMemoryWrite(const Napi::CallbackInfo& info);
  /** the memory of region info[0] (throws when not attached or not memory-backed) */
  vfio_user::RegionMemory* MemoryOf(const Napi::CallbackInfo& info, const char* op);
  Napi::Value JsStats(const Napi::CallbackInfo& info);
  Napi::Value JsSetDirect(const Napi::CallbackInfo& info);
  bool DirectEligible(uint32_t region, uint64_t offset, uint32_t count) const;
  /** drops the route and takes the DMA port off its instance (before either goes) */
  void ClearDirect();
  /** the core when a client's DMA can be served natively, else nullptr */
  vfio_user::ServerCore* DirectCore();
  /**
   * the client unmapped [iova, iova + size) (size 0: all, a disconnect): the route's instance
   * drops its DMA windows over it, before the JS hook runs and before the next request
   */
  void DropWindows(uint64_t iova, uint64_t size);
#ifdef VFIOBOX_WASMTIME
  /** a direct call's outcome as DirectRead/DirectWrite return it, counted */
  int DirectAnswer(const wasm::Outcome& o, uint64_t* served);
#endif
  /** the direct route's answer: 0 or a positive errno; -1: not answered, use the JS hook */
  int DirectRead(uint32_t region, uint64_t offset, uint8_t* out, uint32_t count);
  int DirectWrite(uint32_t region, uint64_t offset, const uint8_t* data, uint32_t count);

  static void OnListenPoll(void* arg, int status, int events);
  static void OnClientPoll(void* arg, int status, int events);
  /** one poll wakeup's worth of serving, in its own handle and callback scope */
  void ServeClient(int status, int events);
  /**
   * blocks until the client's next request (true) or until the loop has other work or its
   * next timer is due (false); never past kInlineWaitMs.
   */
  bool WaitForNextRequest();
  static void OnEnvCleanup(void* arg);
  /** the attached host's core; only while attached_ */
  vfio_user::ServerCore& core() { return host_->core(); }
  void AcceptAll();
  void WatchClient();
  void UpdateClientWatch();
  /** stops serving and closes the host (JS callbacks only if call_js). */
  void Teardown(bool call_js);
  /** stops serving and leaves the host to a successor (a persistent server's env goes). */
  void Detach();
  /** runs a pending close() once no callback is on the stack. */
  void FinishPendingClose();
  /** the object to open callback scopes with (this wrapper), or nullptr */
  napi_value Resource();

  napi_env env_ = nullptr;
  std::string path_;
  vfio_user::DeviceLayout layout_;  // what listen() binds or must find in an adopted host
  vfio_user::ServerOptions options_;
  bool adopt_ = false;
  bool persistent_ = false;
  JsServerCallbacks callbacks_;
  Napi::Reference<Napi::Uint8Array> scratch_;
  JsServerHooks hooks_{this};
  std::shared_ptr<vfio_user::ServerHost> host_;
  bool attached_ = false;  // host_ is served by this object, on this thread
  std::unique_ptr<vfio_user::UvPoller> listen_poller_;
  std::unique_ptr<vfio_user::UvPoller> client_poller_;
  napi_async_context async_context_ = nullptr;  // one callback scope per poll wakeup
  /** requests served inline per poll wakeup at most, and the longest wait for one */
  static constexpr int kInlineBurst = 32;
  static constexpr int kInlineWaitMs = 10;     // longer than a 4 ms tick: see WaitForNextRequest
  static constexpr int kInlineMaxBackoff = 6;  // after misses, wait in 1 of at most 64 wakeups
  DirectRoute direct_;
  DirectDmaPort direct_dma_{this};
  uint64_t callback_errors_ = 0;
  uint64_t inline_served_ = 0;    // requests served by WaitForNextRequest's wait
  uint64_t inline_timeouts_ = 0;  // waits that saw no request
  uint64_t inline_yields_ = 0;    // waits the loop's own work ended first
  int inline_misses_ = 0;
  int inline_skip_ = 0;
  int js_depth_ = 0;  // > 0 while a poll callback runs: close() is deferred to its end
  bool close_pending_ = false;
  bool closed_ = false;
  bool env_dying_ = false;  // inside the env cleanup hook: JS must not be called
  bool js_gone_ = false;    // JS cannot run on this thread any more (terminating)
  bool hook_registered_ = false;
  bool referenced_ = false;
};

/** vfioUserFence(socketPath), vfioUserClose(socketPath) (vfio_user_server_io.cc). */
void DefineVfioUserHostFunctions(Napi::Env env, Napi::Object exports);
/** class FdMapping: a client's mmap of a region fd (fd_mapping.cc). */
void DefineFdMapping(Napi::Env env, Napi::Object exports);

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_JS_VFIO_USER_SERVER_H_
