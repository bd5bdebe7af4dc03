// SPDX-License-Identifier: MIT
// RAII owners for kernel resources: UniqueFd (close) and Mapping (munmap), both through the
// sys layer so that the fake kernel sees every release. Move-only.
#ifndef VFIOBOX_NATIVE_SRC_FD_H_
#define VFIOBOX_NATIVE_SRC_FD_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "native/src/sys.h"

namespace vfiobox {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  /** closes the current fd (errors ignored: the fd is gone either way) and owns `fd`. */
  void Reset(int fd = -1) {
    if (fd_ >= 0) sys::Close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, size_t length) : addr_(addr), length_(length) {}
  Mapping(Mapping&& other) noexcept
      : addr_(std::exchange(other.addr_, nullptr)), length_(std::exchange(other.length_, 0)) {}
  Mapping& operator=(Mapping&& other) noexcept {
    if (this != &other) {
      Reset();
      addr_ = std::exchange(other.addr_, nullptr);
      length_ = std::exchange(other.length_, 0);
    }
    return *this;
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { Reset(); }

  uint8_t* Data() const { return static_cast<uint8_t*>(addr_); }
  size_t Length() const { return length_; }
  bool Valid() const { return addr_ != nullptr; }
  void Reset() {
    if (addr_ != nullptr) sys::Munmap(addr_, length_);
    addr_ = nullptr;
    length_ = 0;
  }

 private:
  void* addr_ = nullptr;
  size_t length_ = 0;
};

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_FD_H_
