// SPDX-License-Identifier: MIT
#include "native/src/wasm/component_binary.h"

#include <cstring>
#include <string_view>

namespace vfiobox::wasm {

namespace {

constexpr uint8_t kMagic[4] = {0x00, 0x61, 0x73, 0x6d};             // "\0asm"
constexpr uint8_t kComponentVersion[4] = {0x0d, 0x00, 0x01, 0x00};  // version 13, layer 1
constexpr uint8_t kCoreVersion[4] = {0x01, 0x00, 0x00, 0x00};
constexpr uint8_t kSectionCoreModule = 1;  // in a component
constexpr uint8_t kSectionExport = 7;      // in a core module
constexpr uint8_t kExternFunc = 0x00;
constexpr std::string_view kDevicePrefix = "vfiobox:device/device@";
constexpr std::string_view kDescribeSuffix = "#describe";

/** Reads [at, end) forward; any read past the end sets `bad` and yields zeros. */
struct Cursor {
  const uint8_t* at;
  const uint8_t* end;
  bool bad = false;

  /** an unsigned LEB128 of at most 32 bits */
  uint32_t U32() {
    uint64_t value = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (at >= end) break;
      uint8_t byte = *at++;
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        if (value > UINT32_MAX) break;
        return static_cast<uint32_t>(value);
      }
    }
    bad = true;
    return 0;
  }
  uint8_t Byte() {
    if (at >= end) {
      bad = true;
      return 0;
    }
    return *at++;
  }
  /** the next `n` bytes, or nullptr */
  const uint8_t* Take(uint32_t n) {
    if (bad || n > static_cast<size_t>(end - at)) {
      bad = true;
      return nullptr;
    }
    const uint8_t* p = at;
    at += n;
    return p;
  }
};

/** true when the core module exports a function vfiobox:device/device@<v>#describe */
bool ExportsDescribe(const uint8_t* data, size_t size) {
  if (size < 8 || std::memcmp(data, kMagic, 4) != 0 || std::memcmp(data + 4, kCoreVersion, 4)) {
    return false;
  }
  Cursor c{data + 8, data + size};
  while (!c.bad && c.at < c.end) {
    uint8_t id = c.Byte();
    uint32_t len = c.U32();
    const uint8_t* body = c.Take(len);
    if (body == nullptr) return false;
    if (id != kSectionExport) continue;
    Cursor e{body, body + len};
    uint32_t count = e.U32();
    for (uint32_t i = 0; i < count && !e.bad; i++) {
      uint32_t name_len = e.U32();
      const uint8_t* name = e.Take(name_len);
      uint8_t kind = e.Byte();
      e.U32();  // the index
      if (e.bad || kind != kExternFunc) continue;
      std::string_view n(reinterpret_cast<const char*>(name), name_len);
      if (n.size() > kDevicePrefix.size() + kDescribeSuffix.size() &&
          n.compare(0, kDevicePrefix.size(), kDevicePrefix) == 0 &&
          n.compare(n.size() - kDescribeSuffix.size(), kDescribeSuffix.size(), kDescribeSuffix) ==
              0) {
        return true;
      }
    }
    return false;  // a module has one export section
  }
  return false;
}

}  // namespace

bool FindMainCoreModule(const uint8_t* bytes, size_t size, CoreModuleSlice* out, std::string* why) {
  if (size < 8 || std::memcmp(bytes, kMagic, 4) != 0) {
    *why = "not a WebAssembly binary (no \\0asm magic)";
    return false;
  }
  if (std::memcmp(bytes + 4, kComponentVersion, 4) != 0) {
    *why = "a core module, not a component (build it with wasm-tools component new)";
    return false;
  }
  Cursor c{bytes + 8, bytes + size};
  int found = 0;
  while (c.at < c.end) {
    uint8_t id = c.Byte();
    uint32_t len = c.U32();
    const uint8_t* body = c.Take(len);
    if (body == nullptr) {
      *why = "a section runs past the end of the component";
      return false;
    }
    if (id == kSectionCoreModule && ExportsDescribe(body, len) && found++ == 0) {
      *out = {body, len};
    }
  }
  if (found == 1) return true;
  *why = found == 0 ? "no core module of the component exports vfiobox:device/device#describe"
                    : "two core modules of the component export vfiobox:device/device#describe";
  return false;
}

}  // namespace vfiobox::wasm
