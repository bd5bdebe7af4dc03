// SPDX-License-Identifier: MIT
// Shared pieces of the JS layer: per-environment addon data (constructors, the error factory)
// and argument checks that throw TypeError/RangeError naming the parameter, the expected value
// and the value received (house style B3, sharp's invalidParameterError).
#ifndef VFIOBOX_NATIVE_SRC_JS_COMMON_H_
#define VFIOBOX_NATIVE_SRC_JS_COMMON_H_

#include <napi.h>

#include <cstdint>
#include <string>

namespace vfiobox {

struct AddonData {
  Napi::FunctionReference error_factory;
  Napi::FunctionReference iommu_ctor;
  Napi::FunctionReference device_ctor;
  Napi::FunctionReference mapping_ctor;
  Napi::FunctionReference dma_buffer_ctor;
  Napi::FunctionReference eventfd_ctor;
  Napi::FunctionReference vfio_user_socket_ctor;  // real addon only
  Napi::FunctionReference vfio_user_server_ctor;  // real addon only
  Napi::FunctionReference wasm_component_ctor;    // with wasmtime only
  Napi::FunctionReference wasm_instance_ctor;     // with wasmtime only
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

/** "number 5", "bigint 5n", "string 'x'", "undefined", "object", ... */
std::string Describe(const Napi::Value& v);
[[noreturn]] void ThrowTypeError(Napi::Env env, const char* name, const char* expected,
                                 const Napi::Value& received);
[[noreturn]] void ThrowRangeError(Napi::Env env, const char* name, const std::string& expected,
                                  const Napi::Value& received);

/** a bigint in [0, 2^64). */
uint64_t ArgBigU64(const Napi::Value& v, const char* name);
/** an integer number in [0, max] (max <= 2^53 - 1). */
uint64_t ArgUint(const Napi::Value& v, const char* name, uint64_t max = kMaxSafeInteger);
/** 1, 2, 4 or 8. */
unsigned ArgWidth(const Napi::Value& v, const char* name);
/** the value for an access of `width`: a bigint for 8, else a number below 2^(8*width). */
uint64_t ArgValueForWidth(const Napi::Value& v, const char* name, unsigned width);
std::string ArgString(const Napi::Value& v, const char* name);
/** a Uint8Array (Buffer included); returns its bytes and length. */
Napi::Uint8Array ArgBytes(const Napi::Value& v, const char* name);

/** a result of `width` bytes as JS: bigint for 8, number otherwise. */
Napi::Value WidthValue(Napi::Env env, unsigned width, uint64_t value);

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_JS_COMMON_H_
