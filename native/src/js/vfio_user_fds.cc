// SPDX-License-Identifier: MIT
// memfdCreate, fdRead, fdWrite, fdTruncate, closeFd: what a vfio-user client (and the tests) need
// to share guest memory with a server by fd [SPEC "VFIO_USER_DMA_MAP"] and to release fds that
// arrived with messages. Real addon only; direct syscalls, like native/src/vfio_user/transport.cc.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"
#include "native/src/js/vfio_user_server.h"

namespace vfiobox {

namespace {

constexpr uint64_t kMaxMemfdBytes = uint64_t{1} << 40;
constexpr uint64_t kMaxCopyBytes = uint64_t{256} << 20;

/** an fd number >= 3: stdio is never ours to read or close through these helpers. */
int ArgFd(const Napi::Value& v) {
  uint64_t fd = ArgUint(v, "fd", 0x7fffffff);
  if (fd < 3) ThrowRangeError(v.Env(), "fd", "an fd >= 3 (not stdio)", v);
  return static_cast<int>(fd);
}

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info[0], "name");
  uint64_t size = ArgUint(info[1], "sizeBytes", kMaxMemfdBytes);
  // sealable, so that a client can seal it as QEMU's memory-backend-memfd does (MemfdSeal)
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) ThrowErrno(env, "memfd_create", errno, {{"name", DetailValue::Str(name)}});
  if (::ftruncate(fd, static_cast<off_t>(size)) < 0) {
    int err = errno;
    ::close(fd);
    ThrowErrno(env, "ftruncate", err, {{"size", DetailValue::Num(size)}});
  }
  return Napi::Number::New(env, fd);
}

Napi::Value FdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info[0]);
  uint64_t offset = ArgUint(info[1], "offset");
  uint64_t len = ArgUint(info[2], "len", kMaxCopyBytes);
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, len);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, out.Data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowErrno(env, "pread", errno, {{"offset", DetailValue::Num(offset + done)}});
    if (n == 0) ThrowErrno(env, "pread", EIO, {{"offset", DetailValue::Num(offset + done)}});
    done += static_cast<size_t>(n);
  }
  return out;
}

Napi::Value FdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info[0]);
  uint64_t offset = ArgUint(info[1], "offset");
  Napi::Uint8Array data = ArgBytes(info[2], "data");
  size_t len = data.ElementLength();
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd, data.Data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowErrno(env, "pwrite", errno, {{"offset", DetailValue::Num(offset + done)}});
    done += static_cast<size_t>(n);
  }
  return env.Undefined();
}

// ftruncate(2): a client may resize its guest memory after DMA_MAP (tests of the server's
// SIGBUS guard shrink it under a map).
Napi::Value FdTruncate(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info[0]);
  uint64_t size = ArgUint(info[1], "sizeBytes", kMaxMemfdBytes);
  if (::ftruncate(fd, static_cast<off_t>(size)) < 0) {
    ThrowErrno(info.Env(), "ftruncate", errno, {{"size", DetailValue::Num(size)}});
  }
  return info.Env().Undefined();
}

// F_SEAL_SHRINK | F_SEAL_GROW, QEMU's memory-backend-memfd default: the server can then rely
// on the pages staying (plain copies, DMA windows).
Napi::Value MemfdSeal(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info[0]);
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
    ThrowErrno(info.Env(), "fcntl(F_ADD_SEALS)", errno);
  }
  return info.Env().Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info[0]);
  // close(2) releases the fd even when it reports EINTR on Linux: never retry.
  if (::close(fd) < 0 && errno != EINTR) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

}  // namespace

void DefineFdFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("fdRead", Napi::Function::New(env, FdRead, "fdRead"));
  exports.Set("fdWrite", Napi::Function::New(env, FdWrite, "fdWrite"));
  exports.Set("fdTruncate", Napi::Function::New(env, FdTruncate, "fdTruncate"));
  exports.Set("memfdSeal", Napi::Function::New(env, MemfdSeal, "memfdSeal"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  DefineVfioUserHostFunctions(env, exports);  // the server hosts' process-wide functions
  DefineFdMapping(env, exports);
}

}  // namespace vfiobox
