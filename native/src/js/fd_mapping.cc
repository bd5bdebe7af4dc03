// SPDX-License-Identifier: MIT
// JS class FdMapping (NativeFdMapping): a MAP_SHARED mapping of part of a memory fd, what a
// vfio-user client does with a region fd from GET_REGION_INFO (mmap a sparse area) [SPEC
// "VFIO_USER_DEVICE_GET_REGION_INFO"]. Copies in and out only: the memory never reaches JS as
// an ArrayBuffer, and after close() every access throws ERR_VFIO_CLOSED. Real addon only;
// direct syscalls, like vfio_user_fds.cc.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "native/src/errors.h"
#include "native/src/js/classes.h"
#include "native/src/js/common.h"
#include "native/src/js/vfio_user_server.h"

namespace vfiobox {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMaxMapBytes = uint64_t{1} << 40;

class JsFdMapping : public Napi::ObjectWrap<JsFdMapping> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdMapping",
                       {InstanceAccessor<&JsFdMapping::JsSizeBytes>("sizeBytes"),
                        InstanceMethod<&JsFdMapping::JsRead>("read"),
                        InstanceMethod<&JsFdMapping::JsWrite>("write"),
                        InstanceMethod<&JsFdMapping::JsClose>("close")});
  }

  explicit JsFdMapping(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsFdMapping>(info) {
    Napi::Env env = info.Env();
    uint64_t fd = ArgUint(info[0], "fd", 0x7fffffff);
    if (fd < 3) ThrowRangeError(env, "fd", "an fd >= 3 (not stdio)", info[0]);
    uint64_t offset = ArgUint(info[1], "offset");
    uint64_t size = ArgUint(info[2], "sizeBytes", kMaxMapBytes);
    if (offset % kPage != 0) ThrowRangeError(env, "offset", "a multiple of 4096", info[1]);
    if (size == 0) ThrowRangeError(env, "sizeBytes", "a size > 0", info[2]);
    Detail where{{"offset", DetailValue::Num(offset)}, {"size", DetailValue::Num(size)}};
    struct stat st;
    if (::fstat(static_cast<int>(fd), &st) < 0) ThrowErrno(env, "fstat", errno, where);
    // past the end of the file a mapping raises SIGBUS on touch: refuse it up front
    uint64_t file_size = static_cast<uint64_t>(st.st_size);
    if (!S_ISREG(st.st_mode) || offset > file_size || size > file_size - offset) {
      ThrowErrno(env, "mmap", EINVAL, where);
    }
    void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, static_cast<int>(fd),
                        static_cast<off_t>(offset));
    if (addr == MAP_FAILED) ThrowErrno(env, "mmap", errno, where);
    data_ = static_cast<uint8_t*>(addr);
    size_ = size;
  }

  ~JsFdMapping() override { Unmap(); }

 private:
  void Unmap() {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
  }

  uint8_t* Range(const Napi::CallbackInfo& info, const char* op, uint64_t offset, uint64_t len) {
    if (data_ == nullptr) ThrowClosed(info.Env(), op, "the FdMapping");
    if (offset > size_ || len > size_ - offset) {
      ThrowRangeError(info.Env(), "offset", "offset + length <= " + std::to_string(size_), info[0]);
    }
    // SAFETY: offset + len <= size_, the length of the live mapping (munmapped only by close()
    // or the finalizer, after which data_ is null). The other side may write concurrently.
    return data_ + offset;
  }

  Napi::Value JsSizeBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(size_));
  }

  Napi::Value JsRead(const Napi::CallbackInfo& info) {
    uint64_t offset = ArgUint(info[0], "offset");
    uint64_t len = ArgUint(info[1], "length");
    uint8_t* p = Range(info, "FdMapping.read", offset, len);
    return Napi::Buffer<uint8_t>::Copy(info.Env(), p, len);
  }

  Napi::Value JsWrite(const Napi::CallbackInfo& info) {
    uint64_t offset = ArgUint(info[0], "offset");
    Napi::Uint8Array data = ArgBytes(info[1], "data");
    uint8_t* p = Range(info, "FdMapping.write", offset, data.ElementLength());
    std::memcpy(p, data.Data(), data.ElementLength());
    return info.Env().Undefined();
  }

  Napi::Value JsClose(const Napi::CallbackInfo& info) {
    Unmap();
    return info.Env().Undefined();
  }

  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace

void DefineFdMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("FdMapping", JsFdMapping::Define(env));
}

}  // namespace vfiobox
