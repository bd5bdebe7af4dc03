// SPDX-License-Identifier: MIT
// ParseClientCaps: a tiny strict JSON reader (RFC 8259 grammar, depth-limited) for the VERSION
// capabilities [SPEC "VFIO_USER_VERSION"]. It keeps only the keys the server uses; the rest
// is checked for well-formedness and dropped.
#include <cctype>
#include <cerrno>
#include <cstring>
#include <string>

#include "native/src/vfio_user/server_core.h"

namespace vfiobox::vfio_user {

namespace {

constexpr int kMaxDepth = 16;

enum class Kind { kObject, kArray, kString, kNumber, kBool, kNull };

class Parser {
 public:
  Parser(const char* p, const char* end, ClientCaps* caps) : p_(p), end_(end), caps_(caps) {}

  int Document() {
    Kind kind;
    if (int r = Value("", &kind); r < 0) return r;
    SkipWs();
    return (p_ == end_ && kind == Kind::kObject) ? 0 : -EINVAL;
  }

 private:
  void SkipWs() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool Eat(char c) {
    SkipWs();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }

  int Value(const std::string& path, Kind* kind) {
    SkipWs();
    if (p_ >= end_) return -EINVAL;
    char c = *p_;
    if (c == '{') return (*kind = Kind::kObject), Object(path);
    if (c == '[') return (*kind = Kind::kArray), Array(path);
    if (c == '"') return (*kind = Kind::kString), String(nullptr);
    if (c == 't') return (*kind = Kind::kBool), Literal("true");
    if (c == 'f') return (*kind = Kind::kBool), Literal("false");
    if (c == 'n') return (*kind = Kind::kNull), Literal("null");
    *kind = Kind::kNumber;
    return Number();
  }

  int Object(const std::string& path) {
    if (++depth_ > kMaxDepth) return -EINVAL;
    ++p_;  // '{'
    if (Eat('}')) return --depth_, 0;
    do {
      std::string key;
      SkipWs();
      if (p_ >= end_ || *p_ != '"' || String(&key) < 0 || !Eat(':')) return -EINVAL;
      std::string child = path.empty() ? key : path + "." + key;
      Kind kind;
      if (int r = Value(child, &kind); r < 0) return r;
      if (int r = Keep(child, kind); r < 0) return r;
    } while (Eat(','));
    if (!Eat('}')) return -EINVAL;
    --depth_;
    return 0;
  }

  int Array(const std::string& path) {
    if (++depth_ > kMaxDepth) return -EINVAL;
    ++p_;  // '['
    if (Eat(']')) return --depth_, 0;
    do {
      Kind kind;
      if (int r = Value(path + "[]", &kind); r < 0) return r;
    } while (Eat(','));
    if (!Eat(']')) return -EINVAL;
    --depth_;
    return 0;
  }

  int String(std::string* out) {
    ++p_;  // '"'
    while (p_ < end_ && *p_ != '"') {
      unsigned char c = static_cast<unsigned char>(*p_++);
      if (c < 0x20) return -EINVAL;  // control characters must be escaped
      if (c != '\\') {
        if (out) out->push_back(static_cast<char>(c));
        continue;
      }
      if (p_ >= end_) return -EINVAL;
      char e = *p_++;
      if (e == 'u') {
        for (int i = 0; i < 4; ++i, ++p_) {
          if (p_ >= end_ || !std::isxdigit(static_cast<unsigned char>(*p_))) return -EINVAL;
        }
        if (out) out->push_back('?');  // keys we know are ASCII; escapes never match them
      } else if (std::strchr("\"\\/bfnrt", e) != nullptr) {
        if (out) out->push_back(e);
      } else {
        return -EINVAL;
      }
    }
    if (p_ >= end_) return -EINVAL;
    ++p_;  // closing '"'
    return 0;
  }

  int Literal(const char* word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return -EINVAL;
    p_ += n;
    return 0;
  }

  int Number() {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ >= end_ || !std::isdigit(static_cast<unsigned char>(*p_))) return -EINVAL;
    if (*p_ == '0' && p_ + 1 < end_ && std::isdigit(static_cast<unsigned char>(p_[1]))) {
      return -EINVAL;  // no leading zeros
    }
    bool integer = Digits();
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!Digits()) return -EINVAL;
      integer = false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!Digits()) return -EINVAL;
      integer = false;
    }
    std::string text(start, p_);
    number_ok_ = integer && text[0] != '-' && text.size() <= 19;
    number_ = number_ok_ ? std::stoull(text) : 0;
    return 0;
  }
  bool Digits() {
    const char* s = p_;
    while (p_ < end_ && std::isdigit(static_cast<unsigned char>(*p_))) ++p_;
    return p_ > s;
  }

  /** records a known key; a known key of the wrong type is -EINVAL. */
  int Keep(const std::string& path, Kind kind) {
    if (path == "capabilities") return kind == Kind::kObject ? 0 : -EINVAL;
    if (path == "capabilities.write_multiple") return kind == Kind::kBool ? 0 : -EINVAL;
    uint32_t* u32 = nullptr;
    if (path == "capabilities.max_msg_fds") u32 = &caps_->max_msg_fds;
    if (path == "capabilities.max_data_xfer_size") u32 = &caps_->max_data_xfer_size;
    if (path == "capabilities.max_dma_maps") u32 = &caps_->max_dma_maps;
    bool pgsizes = path == "capabilities.pgsizes";
    if (u32 == nullptr && !pgsizes) return 0;
    if (kind != Kind::kNumber || !number_ok_) return -EINVAL;
    if (pgsizes) {
      caps_->pgsizes = number_;
      return 0;
    }
    if (number_ > UINT32_MAX) return -EINVAL;
    *u32 = static_cast<uint32_t>(number_);
    return 0;
  }

  const char* p_;
  const char* end_;
  ClientCaps* caps_;
  int depth_ = 0;
  uint64_t number_ = 0;
  bool number_ok_ = false;
};

}  // namespace

int ParseClientCaps(const uint8_t* json, size_t len, ClientCaps* caps) {
  // [LVU lib/tran.c] refuses JSON that is not NUL-terminated; an inner NUL is refused too.
  if (len == 0 || json[len - 1] != '\0') return -EINVAL;
  // SAFETY: the bytes are plain chars; json[len - 1] is the NUL, so the text is [0, len - 1).
  const char* text = reinterpret_cast<const char*>(json);
  if (std::strlen(text) != len - 1) return -EINVAL;
  ClientCaps parsed;
  Parser parser(text, text + len - 1, &parsed);
  if (int r = parser.Document(); r < 0) return r;
  *caps = parsed;
  return 0;
}

}  // namespace vfiobox::vfio_user
