// SPDX-License-Identifier: MIT
// The process's wasmtime engine, its epoch ticker, wasmtime's error and trap text, and
// Module: compiling a component's core module, and its serialized form for the cache.
#include <chrono>
#include <mutex>
#include <thread>

#include "native/src/wasm/component_binary.h"
#include "native/src/wasm/instance.h"
#include "native/src/wasm/internal.h"

namespace vfiobox::wasm {

const char kWasmtimeVersion[] = "48.0.8";

namespace {

/**
 * One line of a wasmtime message: its root cause (the line after the last "Caused by:", where
 * the context above it is a backtrace), else its first line.
 */
std::string FirstLine(const char* data, size_t size) {
  std::string all(data, size);
  size_t at = 0;
  size_t caused = all.rfind("Caused by:");
  if (caused != std::string::npos) at = all.find('\n', caused);
  if (at == std::string::npos) at = 0;
  while (at < all.size() && (all[at] == '\n' || all[at] == ' ')) at++;
  size_t end = all.find('\n', at);
  std::string out = all.substr(at, end == std::string::npos ? std::string::npos : end - at);
  while (!out.empty() && (out.back() == ':' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

namespace internal {

std::string TakeMessage(wasmtime_error_t* error) {
  wasm_name_t msg;
  wasmtime_error_message(error, &msg);
  std::string out = FirstLine(msg.data, msg.size);
  wasm_byte_vec_delete(&msg);
  wasmtime_error_delete(error);
  return out;
}

std::string TakeTrap(wasm_trap_t* trap, uint32_t budget_ms) {
  wasmtime_trap_code_t code;
  bool has_code = wasmtime_trap_code(trap, &code);
  wasm_message_t msg;
  wasm_trap_message(trap, &msg);
  std::string text =
      FirstLine(msg.data, msg.size > 0 && msg.data[msg.size - 1] == '\0' ? msg.size - 1 : msg.size);
  wasm_byte_vec_delete(&msg);
  wasm_trap_delete(trap);
  if (has_code && code == WASMTIME_TRAP_CODE_INTERRUPT) {
    return "exceeded its budget of " + std::to_string(budget_ms) + " ms (" + text + ")";
  }
  return text;
}

/**
 * The process's engine: epoch interruption on, cranelift at speed. Never freed.
 *
 * A linear memory never moves (memory_may_move off: a 32-bit memory lives in its reservation,
 * 4 GiB on 64-bit hosts, and grows in place). Instance::memory_data relies on it: its snapshot
 * of the base stays valid for the whole of a plugin call, whatever the plugin grows meanwhile.
 */
wasm_engine_t* SharedEngine() {
  static wasm_engine_t* engine = [] {
    wasm_config_t* config = wasm_config_new();
    wasmtime_config_epoch_interruption_set(config, true);
    wasmtime_config_cranelift_opt_level_set(config, WASMTIME_OPT_LEVEL_SPEED);
    wasmtime_config_memory_may_move_set(config, false);
    return wasm_engine_new_with_config(config);  // takes the config
  }();
  return engine;
}

/** Starts the epoch ticker once (a detached thread for the process's lifetime). */
void EnsureTicker() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::thread([engine = SharedEngine()] {
      for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
        wasmtime_engine_increment_epoch(engine);
      }
    }).detach();
  });
}

}  // namespace internal

using internal::SharedEngine;
using internal::TakeMessage;

// ---------------------------------------------------------------------------------------
// Module

std::shared_ptr<Module> Module::Compile(const uint8_t* component, size_t size, std::string* why) {
  CoreModuleSlice core;
  if (!FindMainCoreModule(component, size, &core, why)) return nullptr;
  wasmtime_module_t* module = nullptr;
  wasmtime_error_t* error = wasmtime_module_new(SharedEngine(), core.data, core.size, &module);
  if (error != nullptr) {
    *why = "wasmtime: " + TakeMessage(error);
    return nullptr;
  }
  return std::shared_ptr<Module>(new Module(module));
}

std::shared_ptr<Module> Module::Deserialize(const uint8_t* bytes, size_t size, std::string* why) {
  wasmtime_module_t* module = nullptr;
  // SAFETY: wasmtime trusts a serialized artifact's code. Only Serialize's output, read back
  // from the host's own cache after a checksum over every byte (js/wasmtime.cc), gets here.
  wasmtime_error_t* error = wasmtime_module_deserialize(SharedEngine(), bytes, size, &module);
  if (error != nullptr) {
    *why = "wasmtime: " + TakeMessage(error);
    return nullptr;
  }
  return std::shared_ptr<Module>(new Module(module));
}

Module::~Module() { wasmtime_module_delete(module_); }

std::vector<uint8_t> Module::Serialize() const {
  wasm_byte_vec_t vec;
  wasmtime_error_t* error = wasmtime_module_serialize(module_, &vec);
  if (error != nullptr) {
    wasmtime_error_delete(error);
    return {};
  }
  std::vector<uint8_t> out(reinterpret_cast<uint8_t*>(vec.data),
                           reinterpret_cast<uint8_t*>(vec.data) + vec.size);
  wasm_byte_vec_delete(&vec);
  return out;
}

}  // namespace vfiobox::wasm
