// SPDX-License-Identifier: MIT
// Finds a plugin component's main core module (the component model's binary format: a preamble
// with layer 1, then sections; section 1 holds a core module). The wasmtime engine
// (instance.h) runs that module alone and does the canonical ABI of the vfiobox:device
// interfaces itself (canon_abi.h), so that a plugin call is a plain wasm call.
//
// The main module is the one that exports the device's `describe`. The other core modules of a
// component made by wit-component are its plumbing (the shim and fixup modules that route
// lowered imports through a table, so the main module can be instantiated before its memory
// exists); the engine gives the main module its imports directly, so it needs none of them.
// What the main module imports is then checked by the linker: an import the engine does not
// define (a WASI adapter's, say) fails instantiation with its name, and such a plugin runs on
// the V8 engine instead.
// Untrusted input: every length is checked against what is left; nothing is copied.
#ifndef VFIOBOX_NATIVE_SRC_WASM_COMPONENT_BINARY_H_
#define VFIOBOX_NATIVE_SRC_WASM_COMPONENT_BINARY_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace vfiobox::wasm {

struct CoreModuleSlice {
  const uint8_t* data = nullptr;  // inside the component's bytes
  size_t size = 0;
};

/**
 * The component's main core module: the only top-level core module exporting a function named
 * "vfiobox:device/device@<version>#describe". On failure returns false and sets `why` (not a
 * component, truncated, a section running past the end, no such module, or two).
 */
bool FindMainCoreModule(const uint8_t* bytes, size_t size, CoreModuleSlice* out, std::string* why);

}  // namespace vfiobox::wasm

#endif  // VFIOBOX_NATIVE_SRC_WASM_COMPONENT_BINARY_H_
