// SPDX-License-Identifier: MIT
// Raw Node-API helpers for calls into JS from libuv callbacks (vfio_user_socket.cc,
// vfio_user_hooks.cc). They never throw: when the environment is being torn down (a worker
// terminated mid-request) every napi call may fail, and node-addon-api's exception path
// would then abort the process while building its Napi::Error. Failures are returned instead.
#ifndef VFIOBOX_NATIVE_SRC_JS_VFIO_USER_NAPI_H_
#define VFIOBOX_NATIVE_SRC_JS_VFIO_USER_NAPI_H_

#include <node_api.h>

#include <cstdint>
#include <initializer_list>
#include <string>

namespace vfiobox::rawjs {

class Scope {
 public:
  explicit Scope(napi_env env) : env_(env) {
    if (napi_open_handle_scope(env, &scope_) != napi_ok) scope_ = nullptr;
  }
  ~Scope() {
    if (scope_ != nullptr) napi_close_handle_scope(env_, scope_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  bool ok() const { return scope_ != nullptr; }

 private:
  napi_env env_;
  napi_handle_scope scope_ = nullptr;
};

/**
 * A callback scope (what napi_make_callback opens around one call) held across a whole poll
 * wakeup: async context for the calls in it, and microtasks and nextTicks run once, when it
 * closes. Nothing is opened when resource or context is missing (JS calls still work; their
 * microtasks then run at the next callback scope of the loop).
 */
class CallbackScope {
 public:
  CallbackScope(napi_env env, napi_value resource, napi_async_context context) : env_(env) {
    if (resource == nullptr || context == nullptr ||
        napi_open_callback_scope(env, resource, context, &scope_) != napi_ok) {
      scope_ = nullptr;
    }
  }
  ~CallbackScope() {
    if (scope_ != nullptr) napi_close_callback_scope(env_, scope_);
  }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

 private:
  napi_env env_;
  napi_callback_scope scope_ = nullptr;
};

// Value makers: nullptr when the value could not be made (Call refuses nullptr arguments).
inline napi_value Uint(napi_env env, uint32_t v) {
  napi_value out = nullptr;
  return napi_create_uint32(env, v, &out) == napi_ok ? out : nullptr;
}
inline napi_value Number(napi_env env, double v) {
  napi_value out = nullptr;
  return napi_create_double(env, v, &out) == napi_ok ? out : nullptr;
}
inline napi_value BigU64(napi_env env, uint64_t v) {
  napi_value out = nullptr;
  return napi_create_bigint_uint64(env, v, &out) == napi_ok ? out : nullptr;
}
inline napi_value Bool(napi_env env, bool v) {
  napi_value out = nullptr;
  return napi_get_boolean(env, v, &out) == napi_ok ? out : nullptr;
}
inline napi_value String(napi_env env, const std::string& s) {
  napi_value out = nullptr;
  return napi_create_string_utf8(env, s.data(), s.size(), &out) == napi_ok ? out : nullptr;
}

/** clears a pending exception (a throwing callback, or termination); true if there was one. */
inline bool ClearException(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  return pending;
}

/**
 * cb(...args) through napi_make_callback (so microtasks run afterwards, as for any I/O
 * callback). False when an argument is missing, the call could not be made, or it threw; a
 * thrown exception is returned in *thrown (if given) and cleared.
 */
inline bool Call(napi_env env, napi_ref cb, std::initializer_list<napi_value> args,
                 napi_value* result, napi_value* thrown = nullptr) {
  for (napi_value a : args) {
    if (a == nullptr) return false;
  }
  napi_value fn = nullptr;
  napi_value global = nullptr;
  if (napi_get_reference_value(env, cb, &fn) != napi_ok || fn == nullptr) return false;
  if (napi_get_global(env, &global) != napi_ok) return false;
  if (napi_make_callback(env, nullptr, global, fn, args.size(), args.begin(), result) == napi_ok) {
    return true;
  }
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value e = nullptr;
    napi_get_and_clear_last_exception(env, &e);
    if (thrown != nullptr) *thrown = e;
  }
  return false;
}

/**
 * cb(...args) with napi_call_function and `this` undefined: no callback scope of its own, so
 * the caller holds one (CallbackScope) or is itself inside a JS call. False when an argument
 * is missing, the call could not be made, or it threw (the exception is left pending).
 */
inline bool CallDirect(napi_env env, napi_ref cb, size_t argc, const napi_value* argv,
                       napi_value* result) {
  for (size_t i = 0; i < argc; ++i) {
    if (argv[i] == nullptr) return false;
  }
  napi_value fn = nullptr;
  napi_value recv = nullptr;
  if (cb == nullptr || napi_get_reference_value(env, cb, &fn) != napi_ok || fn == nullptr) {
    return false;
  }
  if (napi_get_undefined(env, &recv) != napi_ok) return false;
  return napi_call_function(env, recv, fn, argc, argv, result) == napi_ok;
}

}  // namespace vfiobox::rawjs

#endif  // VFIOBOX_NATIVE_SRC_JS_VFIO_USER_NAPI_H_
