// SPDX-License-Identifier: MIT
#include "native/src/js/common.h"

#include <cmath>

namespace vfiobox {

std::string Describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return std::string("boolean ") + (v.As<Napi::Boolean>() ? "true" : "false");
    case napi_number:
      return "number " + v.ToString().Utf8Value();
    case napi_bigint:
      return "bigint " + v.ToString().Utf8Value() + "n";
    case napi_string:
      return "string '" + v.As<Napi::String>().Utf8Value() + "'";
    case napi_function:
      return "function";
    default:
      return v.IsArray() ? "array" : "object";
  }
}

void ThrowTypeError(Napi::Env env, const char* name, const char* expected,
                    const Napi::Value& received) {
  throw Napi::TypeError::New(
      env, std::string(name) + ": expected " + expected + ", received " + Describe(received));
}

void ThrowRangeError(Napi::Env env, const char* name, const std::string& expected,
                     const Napi::Value& received) {
  throw Napi::RangeError::New(
      env, std::string(name) + ": expected " + expected + ", received " + Describe(received));
}

// One N-API call per argument on the success path: napi_get_value_* itself refuses a value of
// the wrong type (napi_*_expected, no JS exception pending), so no napi_typeof goes first.
uint64_t ArgBigU64(const Napi::Value& v, const char* name) {
  bool lossless = false;  // false for negative values and for values >= 2^64
  uint64_t value = 0;
  if (napi_get_value_bigint_uint64(v.Env(), v, &value, &lossless) != napi_ok) {
    ThrowTypeError(v.Env(), name, "a bigint", v);
  }
  if (!lossless) ThrowRangeError(v.Env(), name, "a bigint in [0n, 2n ** 64n)", v);
  return value;
}

uint64_t ArgUint(const Napi::Value& v, const char* name, uint64_t max) {
  double d = 0;
  if (napi_get_value_double(v.Env(), v, &d) != napi_ok) {
    ThrowTypeError(v.Env(), name, "a number", v);
  }
  if (!(d >= 0) || d > static_cast<double>(max) || std::floor(d) != d) {
    ThrowRangeError(v.Env(), name, "an integer in [0, " + std::to_string(max) + "]", v);
  }
  return static_cast<uint64_t>(d);
}

unsigned ArgWidth(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) ThrowTypeError(v.Env(), name, "1, 2, 4 or 8", v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != 1 && d != 2 && d != 4 && d != 8) ThrowRangeError(v.Env(), name, "1, 2, 4 or 8", v);
  return static_cast<unsigned>(d);
}

uint64_t ArgValueForWidth(const Napi::Value& v, const char* name, unsigned width) {
  if (width == 8) return ArgBigU64(v, name);
  uint64_t max = (uint64_t{1} << (8 * width)) - 1;
  if (!v.IsNumber()) ThrowTypeError(v.Env(), name, "a number (width < 8)", v);
  return ArgUint(v, name, max);
}

std::string ArgString(const Napi::Value& v, const char* name) {
  if (!v.IsString()) ThrowTypeError(v.Env(), name, "a string", v);
  return v.As<Napi::String>().Utf8Value();
}

Napi::Uint8Array ArgBytes(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowTypeError(v.Env(), name, "a Uint8Array", v);
  }
  return v.As<Napi::Uint8Array>();
}

Napi::Value WidthValue(Napi::Env env, unsigned width, uint64_t value) {
  if (width == 8) return Napi::BigInt::New(env, value);
  return Napi::Number::New(env, static_cast<double>(value));
}

}  // namespace vfiobox
