// SPDX-License-Identifier: MIT
// ThrowErrno: the only path from a core Status to a JS exception. The JS error object is
// built by the factory that host/native/binding.ts hands in (setErrorFactory), so errors are
// real VfioError instances (the better-sqlite3 pattern).
#include "native/src/errors.h"

#include <napi.h>

#include "native/src/js/common.h"

namespace vfiobox {

namespace {

Napi::Value DetailToJs(Napi::Env env, const DetailValue& v) {
  switch (v.kind) {
    case DetailValue::Kind::kBigInt:
      return Napi::BigInt::New(env, v.u64);
    case DetailValue::Kind::kNumber:
      return Napi::Number::New(env, static_cast<double>(v.u64));
    default:
      return Napi::String::New(env, v.str);
  }
}

}  // namespace

Napi::Value MakeError(Napi::Env env, const Status& status) {
  std::string code = status.code().empty() ? ErrnoName(status.err()) : status.code();
  std::string message =
      status.message().empty() ? ErrnoDescription(status.err()) : status.message();
  Napi::Object detail = Napi::Object::New(env);
  for (const auto& [key, value] : status.detail()) detail.Set(key, DetailToJs(env, value));
  Napi::Object init = Napi::Object::New(env);
  init.Set("op", status.op());
  init.Set("errno", status.err());
  init.Set("code", code);
  init.Set("message", message);
  init.Set("detail", detail);
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->error_factory.IsEmpty()) {
    return data->error_factory.Call({init});
  }
  // No factory yet (binding.ts always sets one): a plain Error with the same fields.
  Napi::Error error = Napi::Error::New(env, status.op() + ": " + message + " (" + code + ")");
  Napi::Object obj = error.Value();
  for (const char* key : {"op", "errno", "code", "detail"}) obj.Set(key, init.Get(key));
  return obj;
}

void ThrowErrno(Napi::Env env, const Status& status) {
  throw Napi::Error(env, MakeError(env, status));
}

void ThrowErrno(Napi::Env env, const char* op, int err, Detail detail) {
  ThrowErrno(env, Status(op, err, std::move(detail)));
}

}  // namespace vfiobox
