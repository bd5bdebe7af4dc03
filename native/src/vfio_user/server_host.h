// SPDX-License-Identifier: MIT
// ServerHost: a vfio-user server core (listening socket, client connection, DMA maps, IRQ
// eventfds, the request in flight) that belongs to the process, not to the thread serving it.
// Hosts are registered by socket path. A thread serves a host by attaching its DeviceHooks
// (and polling the host's fds on its own loop); when that thread goes away (a worker
// terminated by the watchdog, host/serve/supervisor.ts) it detaches and the core stays with
// every fd open: the VMM keeps its connection. Another thread may then fence the host (the
// request in flight gets the answer of a fenced device) and a fresh thread attaches to it;
// what the client sent meanwhile waits in the socket (or the core's buffer), in order.
// Memory-backed regions (region_memory.h) are created by Listen and live in the core's layout,
// so the device's memory areas keep their bytes across such a restart.
//
// Threads: the core is used by the one attached thread, without locking (the per-request
// path takes no lock). mu_ orders attach, detach, fence and close, which a detached host may
// see from any thread. Hooks are never called with mu_ held.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_USER_SERVER_HOST_H_
#define VFIOBOX_NATIVE_SRC_VFIO_USER_SERVER_HOST_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "native/src/errors.h"
#include "native/src/fd.h"
#include "native/src/vfio_user/server_core.h"

namespace vfiobox::vfio_user {

/** What Fence found. */
struct FenceResult {
  bool found = false;     // a host is registered for the path
  bool attached = false;  // a thread serves it: nothing was done
  uint16_t answered = 0;  // the command of the in-flight request that got its answer, or 0
};

class ServerHost {
 public:
  /**
   * binds `path` (transport.h ListenUnix: a live socket is EADDRINUSE, a stale one is
   * replaced) and registers the host. A path registered in this process: EADDRINUSE.
   */
  static Expected<std::shared_ptr<ServerHost>> Listen(const std::string& path, DeviceLayout layout,
                                                      ServerOptions options);
  /** the host registered for `path`, or nullptr */
  static std::shared_ptr<ServerHost> Find(const std::string& path);
  /** AnswerInFlight on the detached host of `path` (server_core.h) */
  static FenceResult Fence(const std::string& path);
  /** closes the detached host of `path`: 1 closed, 0 none registered, -EBUSY attached */
  static int CloseDetached(const std::string& path);

  ServerHost(const ServerHost&) = delete;
  ServerHost& operator=(const ServerHost&) = delete;
  ~ServerHost();

  /**
   * the calling thread serves the core from now on. A request left in flight is answered
   * first (fenced), if nobody fenced it. -EBUSY: another thread serves it; -ENOENT: closed.
   * before_close: called with the client fd before the core closes it (stop polling it).
   */
  int AttachThread(DeviceHooks* hooks, std::function<void(int fd)> before_close);
  /** the calling (attached) thread stops serving; the core and its fds stay */
  void DetachThread();
  /**
   * by the attached thread (its hooks hear OnDisconnect) or on a detached host: unregisters,
   * answers a request in flight, drops the client, closes the listening socket and unlinks
   * the socket file if it is still the one bound here. Idempotent.
   */
  void Close();
  bool closed() const;
  /** the same device layout and limits (what an adopting server must present) */
  bool Matches(const DeviceLayout& layout, const ServerOptions& options) const;

  ServerCore& core() { return *core_; }
  int listen_fd() const { return listen_fd_.Get(); }
  const std::string& path() const { return path_; }

 private:
  /** the hooks of a detached core: nothing reaches a device */
  class NullHooks : public DeviceHooks {
   public:
    int RegionRead(uint32_t, uint64_t, uint8_t*, uint32_t) override { return kAbandoned; }
    int RegionWrite(uint32_t, uint64_t, const uint8_t*, uint32_t) override { return kAbandoned; }
    int Reset() override { return kAbandoned; }
    bool Gone() const override { return true; }
    void OnConnect() override {}
    void OnDisconnect(const std::string&) override {}
    void OnIrqState(uint32_t, uint32_t, uint32_t, uint32_t) override {}
    void OnDmaMap(uint64_t, uint64_t, uint32_t, bool) override {}
    void OnDmaUnmap(uint64_t, uint64_t) override {}
    void OnProtocolError(uint16_t, int, const std::string&) override {}
  };

  ServerHost(std::string path, UniqueFd listen_fd, uint64_t inode, DeviceLayout layout,
             ServerOptions options);
  void Teardown();

  const std::string path_;
  UniqueFd listen_fd_;
  const uint64_t inode_;  // unlink only the socket file bound here
  NullHooks null_hooks_;
  std::unique_ptr<ServerCore> core_;
  mutable std::mutex mu_;
  bool attached_ = false;
  bool closed_ = false;
};

}  // namespace vfiobox::vfio_user

#endif  // VFIOBOX_NATIVE_SRC_VFIO_USER_SERVER_HOST_H_
