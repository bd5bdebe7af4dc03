// SPDX-License-Identifier: MIT
// The ObjectWrap classes of the addon (declared in host/native/types.ts). They check and
// convert arguments and call the core; no logic lives here. Ownership, so that no GC order can
// crash: Device -> IommuContext (shared), Mapping -> VfioDevice + RegionMapping (shared),
// IommuContext -> devices (weak, to close them), DMA table entries -> DmaMemory (shared).
// Finalizers only drop references; the last owner closes fds / munmaps in its destructor.
#ifndef VFIOBOX_NATIVE_SRC_JS_CLASSES_H_
#define VFIOBOX_NATIVE_SRC_JS_CLASSES_H_

#include <napi.h>

#include <list>
#include <memory>

#include "native/src/fd.h"
#include "native/src/iommu_context.h"
#include "native/src/vfio_device.h"
#include "native/src/vfio_user/uv_poller.h"

namespace vfiobox {

namespace vfio_user {
class Transport;
class UvPoller;
}  // namespace vfio_user

/** Tags every DmaBuffer object (napi_type_tag_object): argument checks test the tag instead of
 *  InstanceOf, which goes through @@hasInstance in the V8 runtime (bench/README.md, profile). */
extern const napi_type_tag kDmaBufferTypeTag;

/** The memory of one DmaBuffer: anonymous, page-aligned, shared with DMA table entries. */
struct DmaMemory {
  Mapping map;
  bool locked = false;
  bool closed = false;  // the DmaBuffer was closed: no new maps (entries may still hold it)
  ~DmaMemory() {
    if (locked) sys::Munlock(map.Data(), map.Length());
  }
};

/**
 * What the two hottest Iommu functions (dmaMapSelected, dmaUnmap) need. They are own
 * properties of each Iommu object, made with this as their callback data, so a call reaches
 * it without node-addon-api's napi_unwrap of `this` (a private-property lookup costing about
 * as much as the rest of the addon's work per call; bench/README.md). Shared by the JsIommu
 * and both functions: whichever goes last frees it, so no call can see it freed.
 */
struct IommuFastPath {
  std::shared_ptr<IommuContext> ctx;
  const char* map_op = "VFIO_IOMMU_MAP_DMA";  // op named by errors before the kernel is asked
  // selectDmaBuffer's buffer: weak, so selecting never keeps memory alive
  std::weak_ptr<DmaMemory> selected;
  bool has_selected = false;
};

class JsIommu : public Napi::ObjectWrap<JsIommu> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit JsIommu(const Napi::CallbackInfo& info);
  /** benchDmaLoop(iommu, buffer, bufferOffset, iova, sizeBytes, n, mode): elapsed ns. */
  static Napi::Value JsBenchDmaLoop(const Napi::CallbackInfo& info);

 private:
  Napi::Value JsKind(const Napi::CallbackInfo& info);
  Napi::Value JsOpenDevice(const Napi::CallbackInfo& info);
  Napi::Value JsIovaRanges(const Napi::CallbackInfo& info);
  Napi::Value JsPageSizes(const Napi::CallbackInfo& info);
  Napi::Value JsDmaMap(const Napi::CallbackInfo& info);
  Napi::Value JsSelectDmaBuffer(const Napi::CallbackInfo& info);
  /** own functions of each Iommu object; info.Data() is its IommuFastPath */
  static Napi::Value JsDmaMapSelected(const Napi::CallbackInfo& info);
  /** dmaMapBatch of the selected buffer from two BigUint64Arrays (the facade's typed form) */
  static Napi::Value JsDmaMapBatchSelected(const Napi::CallbackInfo& info);
  static Napi::Value JsDmaUnmapFast(const Napi::CallbackInfo& info);
  Napi::Value JsDmaMapBatch(const Napi::CallbackInfo& info);
  Napi::Value JsDmaUnmapBatch(const Napi::CallbackInfo& info);
  Napi::Value JsDmaList(const Napi::CallbackInfo& info);
  Napi::Value JsClose(const Napi::CallbackInfo& info);
  static void MapOne(Napi::Env env, IommuContext& ctx, const std::shared_ptr<DmaMemory>& mem,
                     uint64_t offset, uint64_t iova, uint64_t size, uint32_t flags);

  std::string kind_;
  const char* map_op_ = "VFIO_IOMMU_MAP_DMA";  // op named by errors before the kernel is asked
  std::shared_ptr<IommuContext> ctx_;
  std::shared_ptr<IommuFastPath> fast_;
};

class JsDevice : public Napi::ObjectWrap<JsDevice> {
 public:
  struct Init {
    std::shared_ptr<IommuContext> ctx;
    std::shared_ptr<VfioDevice> device;
  };
  static Napi::Function Define(Napi::Env env);
  explicit JsDevice(const Napi::CallbackInfo& info);

 private:
  Napi::Value JsBdf(const Napi::CallbackInfo& info);
  Napi::Value JsInfo(const Napi::CallbackInfo& info);
  Napi::Value JsRegionInfo(const Napi::CallbackInfo& info);
  Napi::Value JsIrqInfo(const Napi::CallbackInfo& info);
  Napi::Value JsRead(const Napi::CallbackInfo& info);
  Napi::Value JsWrite(const Napi::CallbackInfo& info);
  Napi::Value JsReadBlock(const Napi::CallbackInfo& info);
  Napi::Value JsWriteBlock(const Napi::CallbackInfo& info);
  Napi::Value JsMmap(const Napi::CallbackInfo& info);
  Napi::Value JsSetIrqs(const Napi::CallbackInfo& info);
  Napi::Value JsReset(const Napi::CallbackInfo& info);
  Napi::Value JsClose(const Napi::CallbackInfo& info);
  /** the region's info; throws RangeError unless [offset, offset+length) lies inside it. */
  const RegionInfo& CheckedRegion(const Napi::CallbackInfo& info, uint32_t index, uint64_t offset,
                                  uint64_t length);

  std::shared_ptr<IommuContext> ctx_;  // keeps the IOMMU (container/iommufd) alive
  std::shared_ptr<VfioDevice> device_;
};

class JsMapping : public Napi::ObjectWrap<JsMapping> {
 public:
  struct Init {
    std::shared_ptr<VfioDevice> device;
    std::shared_ptr<RegionMapping> mapping;
  };
  static Napi::Function Define(Napi::Env env);
  explicit JsMapping(const Napi::CallbackInfo& info);

 private:
  Napi::Value JsSizeBytes(const Napi::CallbackInfo& info);
  Napi::Value JsRegionIndex(const Napi::CallbackInfo& info);
  Napi::Value JsRegionOffset(const Napi::CallbackInfo& info);
  Napi::Value JsRead(const Napi::CallbackInfo& info);
  Napi::Value JsWrite(const Napi::CallbackInfo& info);
  Napi::Value JsClose(const Napi::CallbackInfo& info);
  uint8_t* Checked(const Napi::CallbackInfo& info, const char* op, uint64_t offset, unsigned width,
                   int prot);

  std::shared_ptr<VfioDevice> device_;
  std::shared_ptr<RegionMapping> mapping_;
};

class JsDmaBuffer : public Napi::ObjectWrap<JsDmaBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit JsDmaBuffer(const Napi::CallbackInfo& info);
  /** the memory, or throws ERR_VFIO_CLOSED with `op` after close(). */
  const std::shared_ptr<DmaMemory>& Memory(Napi::Env env, const char* op);
  /** the memory without the closed check (empty after close()), for Iommu.selectDmaBuffer. */
  std::weak_ptr<DmaMemory> WeakMemory() const { return memory_; }

 private:
  Napi::Value JsSizeBytes(const Napi::CallbackInfo& info);
  Napi::Value JsRead(const Napi::CallbackInfo& info);
  Napi::Value JsWrite(const Napi::CallbackInfo& info);
  Napi::Value JsFill(const Napi::CallbackInfo& info);
  Napi::Value JsLock(const Napi::CallbackInfo& info);
  Napi::Value JsPhysAddr(const Napi::CallbackInfo& info);
  Napi::Value JsClose(const Napi::CallbackInfo& info);
  uint8_t* Range(const Napi::CallbackInfo& info, const char* op, uint64_t offset, uint64_t length);

  uint64_t size_ = 0;
  std::shared_ptr<DmaMemory> memory_;
};

class JsEventFd : public Napi::ObjectWrap<JsEventFd> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit JsEventFd(const Napi::CallbackInfo& info);
  ~JsEventFd() override;
  /** the raw fd for VFIO_DEVICE_SET_IRQS, or throws ERR_VFIO_CLOSED. */
  int Fd(Napi::Env env, const char* op);

 private:
  Napi::Value JsFdGetter(const Napi::CallbackInfo& info);
  Napi::Value JsRead(const Napi::CallbackInfo& info);
  Napi::Value JsWrite(const Napi::CallbackInfo& info);
  Napi::Value JsWait(const Napi::CallbackInfo& info);
  Napi::Value JsClose(const Napi::CallbackInfo& info);

  struct Waiter;
  /** the fd became readable (or failed): the oldest wait gets the count (eventfd.cc) */
  static void OnPoll(void* arg, int status, int events);
  static void OnEnvCleanup(void* arg);
  /** settles `w` (0n on timeout, the count, or the error in status) and forgets it */
  void Settle(Waiter* w, uint64_t count, const Status& status);
  /** stops polling and drops every wait; resolve_js: settle them with 0n first */
  void DropWaiters(bool resolve_js);
  void UpdateRef();

  std::shared_ptr<UniqueFd> fd_;
  // Waits run on this thread's event loop (one uv_poll on the fd, one uv_timer per wait),
  // not on libuv's thread pool, where each would hold one of its four threads.
  std::unique_ptr<vfio_user::UvPoller> poller_;
  std::list<std::unique_ptr<Waiter>> waiters_;  // oldest first
  Napi::AsyncContext async_context_;  // the callback scope a settled wait runs its reactions in
  bool referenced_ = false;           // waits pending: the JS object must outlive them
  bool hook_registered_ = false;
  bool env_gone_ = false;
};

/**
 * VfioUserSocket (NativeVfioUserSocket): the client end of a vfio-user socket, for the TS
 * client. Real addon only. Receives on a uv_poll_t of the creating thread's loop; while open,
 * the JS object is strongly referenced (like a net.Socket), so GC never closes it.
 */
class JsVfioUserSocket : public Napi::ObjectWrap<JsVfioUserSocket> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit JsVfioUserSocket(const Napi::CallbackInfo& info);
  ~JsVfioUserSocket() override;

 private:
  static Napi::Value JsConnect(const Napi::CallbackInfo& info);
  Napi::Value JsSend(const Napi::CallbackInfo& info);
  Napi::Value JsOnMessage(const Napi::CallbackInfo& info);
  Napi::Value JsOnClose(const Napi::CallbackInfo& info);
  Napi::Value JsClose(const Napi::CallbackInfo& info);
  static void OnPoll(void* arg, int status, int events);
  static void OnEnvCleanup(void* arg);
  void OnReadable();
  void UpdateWatch();
  /** closes the socket; calls onClose(err) when notify is set and a callback is registered. */
  void Shutdown(int err, bool notify);
  void ReleaseNative();
  void Deliver(const Napi::FunctionReference& cb, std::initializer_list<napi_value> args);

  napi_env env_ = nullptr;
  std::unique_ptr<vfio_user::Transport> transport_;
  std::unique_ptr<vfio_user::UvPoller> poller_;
  Napi::FunctionReference on_message_;
  Napi::FunctionReference on_close_;
  bool hook_registered_ = false;
  bool referenced_ = false;
};

/** memfdCreate, fdRead, fdWrite, closeFd (real addon only): helpers for vfio-user clients. */
void DefineFdFunctions(Napi::Env env, Napi::Object exports);

/** the `fake` export (vfio_core_fake.node only). */
Napi::Object CreateFakeExport(Napi::Env env);

/** throws ERR_VFIO_CLOSED for a handle that was closed. */
[[noreturn]] void ThrowClosed(Napi::Env env, const char* op, const char* what);

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_JS_CLASSES_H_
