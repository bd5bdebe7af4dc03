// SPDX-License-Identifier: MIT
// The error model of the native core (house style B3). The core never throws: functions return
// 0/-errno, a Status, or an Expected<T>. A Status names the failed operation verbatim (the
// kernel's ioctl name, 'open', 'mmap') and carries the positive errno plus typed detail fields.
// Only native/src/js/*.cc turns a Status into a JS exception, through ThrowErrno.
#ifndef VFIOBOX_NATIVE_SRC_ERRORS_H_
#define VFIOBOX_NATIVE_SRC_ERRORS_H_

#include <string.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace Napi {
class Env;
class Value;
}  // namespace Napi

namespace vfiobox {

/** One detail field: iova-like values are bigints in JS, sizes numbers, paths strings. */
struct DetailValue {
  enum class Kind { kBigInt, kNumber, kString };
  Kind kind;
  uint64_t u64 = 0;
  std::string str;
  static DetailValue Big(uint64_t v) { return {Kind::kBigInt, v, {}}; }
  static DetailValue Num(uint64_t v) { return {Kind::kNumber, v, {}}; }
  static DetailValue Str(std::string v) { return {Kind::kString, 0, std::move(v)}; }
};
using Detail = std::vector<std::pair<std::string, DetailValue>>;

class Status {
 public:
  Status() = default;  // success: no allocation, nothing to destroy (the per-map hot path)
  Status(std::string op, int err, Detail detail = {})
      : errno_(err), rep_(std::make_unique<Rep>(Rep{std::move(op), {}, {}, std::move(detail)})) {}
  /** a condition the kernel does not name: code is 'ERR_VFIO_*', message is our own text. */
  static Status Custom(std::string op, int err, std::string code, std::string message,
                       Detail detail = {}) {
    Status s(std::move(op), err, std::move(detail));
    s.rep_->code = std::move(code);
    s.rep_->message = std::move(message);
    return s;
  }
  /** wraps a -errno return value (0 or positive = success). */
  static Status FromRet(const char* op, long ret, Detail detail = {}) {
    return ret < 0 ? Status(op, static_cast<int>(-ret), std::move(detail)) : Status();
  }
  Status(const Status& other)
      : errno_(other.errno_), rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) *this = Status(other);
    return *this;
  }
  Status(Status&& other) noexcept : errno_(other.errno_), rep_(std::move(other.rep_)) {
    other.errno_ = 0;
  }
  Status& operator=(Status&& other) noexcept {
    errno_ = other.errno_;
    rep_ = std::move(other.rep_);
    if (this != &other) other.errno_ = 0;
    return *this;
  }
  ~Status() = default;

  bool ok() const { return errno_ == 0; }
  int err() const { return errno_; }
  const std::string& op() const { return rep().op; }
  const std::string& code() const { return rep().code; }
  const std::string& message() const { return rep().message; }
  const Detail& detail() const { return rep().detail; }
  Status& Add(std::string key, DetailValue value) {
    if (!rep_) rep_ = std::make_unique<Rep>();
    rep_->detail.emplace_back(std::move(key), std::move(value));
    return *this;
  }

 private:
  struct Rep {
    std::string op;
    std::string code;     // empty: strerrorname_np(errno)
    std::string message;  // empty: strerrordesc_np(errno)
    Detail detail;
  };
  const Rep& rep() const {
    static const Rep kEmpty{};
    return rep_ ? *rep_ : kEmpty;
  }

  int errno_ = 0;
  std::unique_ptr<Rep> rep_;  // only a failure has one: a success is an int and a null pointer
};

template <typename T>
class Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Expected(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

/** The canonical name of an errno ("EBUSY"); "E<n>" when glibc has none (glibc >= 2.32). */
inline std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}
/** The description of an errno ("Device or resource busy"). */
inline std::string ErrnoDescription(int err) {
  const char* desc = strerrordesc_np(err);
  return desc != nullptr ? desc : "errno " + std::to_string(err);
}

// ---- JS side (defined in errors.cc, linked only into the addon) ----
/** Builds the JS error object through the factory set by setErrorFactory (or a plain Error). */
Napi::Value MakeError(Napi::Env env, const Status& status);
/** Throws MakeError(...) as a C++ Napi::Error (node_addon_api_except). Never returns. */
[[noreturn]] void ThrowErrno(Napi::Env env, const Status& status);
[[noreturn]] void ThrowErrno(Napi::Env env, const char* op, int err, Detail detail = {});

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_ERRORS_H_
