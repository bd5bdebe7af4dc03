// SPDX-License-Identifier: MIT
// Re-exports the wasmtime C API so that cargo emits it as a staticlib (libvfiobox_wasmtime.a).
pub use wasmtime_c_api::*;
