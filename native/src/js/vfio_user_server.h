// SPDX-License-Identifier: MIT
// JsVfioUserServer (NativeVfioUserServer): the ObjectWrap around vfio_user::ServerCore. Shared
// by vfio_user_server.cc (lifecycle, methods) and vfio_user_hooks.cc (the device hooks that
// call the JS callbacks). Real addon only.
#ifndef VFIOBOX_NATIVE_SRC_JS_VFIO_USER_SERVER_H_
#define VFIOBOX_NATIVE_SRC_JS_VFIO_USER_SERVER_H_

#include <napi.h>

#include <memory>
#include <string>

#include "native/src/fd.h"
#include "native/src/vfio_user/server_core.h"
#include "native/src/vfio_user/uv_poller.h"

namespace vfiobox {

/** the JS callbacks object, resolved once at construction (optional ones may be empty). */
struct JsServerCallbacks {
  Napi::FunctionReference region_read;   // (region, offset, count) -> errno; fills scratch
  Napi::FunctionReference region_write;  // (region, offset, count) -> errno; reads scratch
  Napi::FunctionReference reset;         // () -> errno | undefined
  Napi::FunctionReference on_connect;
  Napi::FunctionReference on_disconnect;      // (reason)
  Napi::FunctionReference on_irq_state;       // (index, start, count, flags)
  Napi::FunctionReference on_dma_map;         // (iova, sizeBytes: bigint, flags, hasFd)
  Napi::FunctionReference on_dma_unmap;       // (iova, sizeBytes: bigint)
  Napi::FunctionReference on_protocol_error;  // (command, errno, message)
};

class JsVfioUserServer;

/** DeviceHooks that call into JS; a throwing callback is answered with EIO and counted. */
class JsServerHooks : public vfio_user::DeviceHooks {
 public:
  explicit JsServerHooks(JsVfioUserServer* owner) : owner_(owner) {}
  int RegionRead(uint32_t region, uint64_t offset, uint8_t* out, uint32_t count) override;
  int RegionWrite(uint32_t region, uint64_t offset, const uint8_t* data, uint32_t count) override;
  int Reset() override;
  void OnConnect() override;
  void OnDisconnect(const std::string& reason) override;
  void OnIrqState(uint32_t index, uint32_t start, uint32_t count, uint32_t flags) override;
  void OnDmaMap(uint64_t iova, uint64_t size, uint32_t flags, bool has_fd) override;
  void OnDmaUnmap(uint64_t iova, uint64_t size) override;
  void OnProtocolError(uint16_t command, int err, const std::string& what) override;

 private:
  /** calls cb (if set); returns its errno result (0 for undefined), EIO when it threw. */
  int Call(const Napi::FunctionReference& cb, std::initializer_list<napi_value> args);
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

  Napi::Value JsListen(const Napi::CallbackInfo& info);
  Napi::Value JsClose(const Napi::CallbackInfo& info);
  Napi::Value JsConnected(const Napi::CallbackInfo& info);
  Napi::Value JsDisconnectClient(const Napi::CallbackInfo& info);
  Napi::Value JsDmaRead(const Napi::CallbackInfo& info);
  Napi::Value JsDmaWrite(const Napi::CallbackInfo& info);
  Napi::Value JsTriggerIrq(const Napi::CallbackInfo& info);
  Napi::Value JsStats(const Napi::CallbackInfo& info);

  static void OnListenPoll(void* arg, int status, int events);
  static void OnClientPoll(void* arg, int status, int events);
  static void OnEnvCleanup(void* arg);
  void AcceptAll();
  void UpdateClientWatch();
  /** stops listening, drops the client, unlinks the socket; JS callbacks only if call_js. */
  void Teardown(bool call_js);
  /** runs a pending close() once no callback is on the stack. */
  void FinishPendingClose();

  napi_env env_ = nullptr;
  std::string path_;
  JsServerCallbacks callbacks_;
  Napi::Reference<Napi::Uint8Array> scratch_;
  JsServerHooks hooks_{this};
  std::unique_ptr<vfio_user::ServerCore> core_;
  UniqueFd listen_fd_;
  uint64_t socket_inode_ = 0;  // unlink only the socket file we bound
  std::unique_ptr<vfio_user::UvPoller> listen_poller_;
  std::unique_ptr<vfio_user::UvPoller> client_poller_;
  uint64_t callback_errors_ = 0;
  int js_depth_ = 0;  // > 0 while a poll callback runs: close() is deferred to its end
  bool close_pending_ = false;
  bool closed_ = false;
  bool env_dying_ = false;  // inside the env cleanup hook: JS must not be called
  bool hook_registered_ = false;
  bool referenced_ = false;
};

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_JS_VFIO_USER_SERVER_H_
