// SPDX-License-Identifier: MIT
// The wasmtime engine core (wasm/instance.h) under ASan + UBSan, on the real plugin builds
// (build/plugins/*.wasm, made by scripts/build-plugins.sh) and a recording C++ Host: describe
// is lifted field by field, region accesses and their returned errors, list results (save-state,
// dma.read into the plugin) and imports with error results, traps that poison, an overrunning
// call stopped by its budget, the memory cap, and dispose; a DmaPort in front of the host
// (answering or declining, with the plugin's memory growing under a port's read), and DMA
// windows over a sealed memfd the port offers (map, load, store, memcpy, drop). Built by run.sh
// only when scripts/wasmtime.sh has built the library.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "native/src/wasm/instance.h"
#include "native/test/check.h"

// wasmtime handles its traps with signals and looks at its own stack guard pages
extern "C" const char* __asan_default_options() {
  return "allow_user_segv_handler=1:handle_segv=0:handle_sigbus=0:detect_stack_use_after_return=0";
}

namespace vfiobox::test {
namespace {

using wasm::HostStatus;

std::string g_root;

std::vector<uint8_t> Read(const std::string& name) {
  std::ifstream in(g_root + "/build/plugins/" + name + ".wasm", std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

/** Records what the plugin asked for; guest RAM is 64 KiB at IOVA 0. */
class FakeHost final : public wasm::Host {
 public:
  std::vector<uint32_t> raised;
  std::vector<uint8_t> ram = std::vector<uint8_t>(65536);
  uint64_t now = 0;
  int timers = 0;
  bool deny_irq = false;

  HostStatus IrqRaise(uint32_t v) override {
    if (deny_irq) return HostStatus::Err(static_cast<uint8_t>(wasm::IrqError::kNotGranted));
    raised.push_back(v);
    return {};
  }
  HostStatus IrqLower(uint32_t) override { return {}; }
  HostStatus IrqIsMasked(uint32_t, bool* m) override {
    *m = false;
    return {};
  }
  HostStatus DmaRead(uint64_t iova, uint32_t len, wasm::GuestBuffer& out) override {
    if (iova + len > ram.size()) return HostStatus::Err(0);  // not-mapped
    uint8_t* dst = out.Alloc(len);
    if (dst == nullptr) return HostStatus::Fault("alloc");
    std::memcpy(dst, ram.data() + iova, len);
    return {};
  }
  HostStatus DmaWrite(uint64_t iova, const uint8_t* data, uint32_t len) override {
    if (iova + len > ram.size()) return HostStatus::Err(0);
    std::memcpy(ram.data() + iova, data, len);
    return {};
  }
  HostStatus Log(uint8_t, std::string_view) override { return {}; }
  HostStatus NowNs(uint64_t* ns) override {
    *ns = now++;
    return {};
  }
  HostStatus SetTimer(uint32_t, uint64_t) override {
    ++timers;
    return {};
  }
  HostStatus CancelTimer(uint32_t) override { return {}; }
  HostStatus StreamWrite(const uint8_t*, uint32_t len, uint32_t* n) override {
    *n = len;
    return {};
  }
  HostStatus StreamRead(uint32_t, wasm::GuestBuffer& out) override {
    return out.Alloc(0) ? HostStatus() : HostStatus::Fault("alloc");
  }
  HostStatus RegionRead(uint8_t, uint64_t, uint8_t, uint64_t*) override { return {}; }
  HostStatus RegionWrite(uint8_t, uint64_t, uint8_t, uint64_t) override { return {}; }
  HostStatus SharedRead(uint8_t, uint64_t, uint32_t, wasm::GuestBuffer& out) override {
    return out.Alloc(0) ? HostStatus() : HostStatus::Fault("alloc");
  }
  HostStatus SharedWrite(uint8_t, uint64_t, const uint8_t*, uint32_t) override { return {}; }
  bool has_region() const override { return false; }
  bool has_shared_memory() const override { return false; }
};

std::unique_ptr<wasm::Instance> Make(const std::string& name, FakeHost* host,
                                     uint64_t memory = 16 << 20, uint32_t budget_ms = 0) {
  std::vector<uint8_t> bytes = Read(name);
  std::string why;
  std::shared_ptr<wasm::Module> module = wasm::Module::Compile(bytes.data(), bytes.size(), &why);
  CHECK(module != nullptr);
  if (!module) {
    std::printf("compile %s: %s\n", name.c_str(), why.c_str());
    return nullptr;
  }
  // the fixtures' WIT versions: hostile.c is built against 0.1.2 (DMA windows), edu 0.1.0
  const char* abi = name.rfind("hostile", 0) == 0 ? "0.1.2" : "0.1.0";
  auto inst = wasm::Instance::Create(module, host, {abi, memory, budget_ms}, &why);
  CHECK(inst != nullptr);
  if (!inst) std::printf("instantiate %s: %s\n", name.c_str(), why.c_str());
  return inst;
}

void EduDescribesAndAnswers() {
  FakeHost host;
  auto edu = Make("edu", &host);
  if (!edu) return;
  wasm::DeviceDescription d{};
  CHECK(edu->Describe(&d).ok());
  CHECK_EQ(d.vendor_id, 0x1234);
  CHECK_EQ(d.device_id, 0x11e8);
  CHECK_EQ(d.bars.size(), 1u);
  if (!d.bars.empty()) CHECK_EQ(d.bars[0].size_bytes, uint64_t{1} << 20);
  CHECK(d.intx.has_value());
  uint64_t v = 0;
  CHECK(edu->RegionRead(0, 0, 4, &v).ok());
  CHECK_EQ(v, 0x010000edu);
  CHECK(edu->RegionWrite(0, 4, 4, 0x12345678).ok());
  CHECK(edu->RegionRead(0, 4, 4, &v).ok());
  CHECK_EQ(v, ~uint64_t{0x12345678} & 0xffffffffu);
  wasm::Outcome bad = edu->RegionRead(0, 0, 3, &v);  // edu: invalid-width
  CHECK_EQ(bad.kind, wasm::Outcome::kErr);
  CHECK(bad.message == "invalid-width");
  std::vector<uint8_t> state;
  CHECK(edu->SaveState(&state).ok());
  CHECK(!state.empty());
  CHECK(edu->LoadState(state.data(), state.size()).ok());
  CHECK(edu->live());
  edu->Dispose();
  CHECK_EQ(edu->RegionRead(0, 0, 4, &v).kind, wasm::Outcome::kInvalid);
}

// test/fixtures/plugins/hostile/src/hostile.c: behaviour codes and actions
constexpr uint64_t kTrap = 0x08, kSpin = 0x0c, kBomb = 0x14, kStatus = 0x30;
constexpr uint64_t kIrqRaise = 0x40, kDmaRead = 0x44, kDmaWrite = 0x54;

void HostileImportsAndErrors() {
  FakeHost host;
  auto h = Make("hostile", &host);
  if (!h) return;
  uint64_t status = 1;
  CHECK(h->RegionWrite(0, kIrqRaise, 4, 3).ok());
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  CHECK_EQ(status, 0u);
  CHECK_EQ(host.raised.size(), 1u);
  host.deny_irq = true;  // err(not-granted) reaches the plugin, which records it
  CHECK(h->RegionWrite(0, kIrqRaise, 4, 3).ok());
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  CHECK_EQ(status, 0x100u | 1u);
  for (int i = 0; i < 16; i++) host.ram[0x100 + i] = static_cast<uint8_t>(i + 1);
  CHECK(h->RegionWrite(0, kDmaRead, 4, 0x100).ok());  // a list result through cabi_realloc
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  CHECK_EQ(status, 0u);
  CHECK(h->RegionWrite(0, kDmaRead, 4, 0x20000).ok());  // outside RAM: err(not-mapped)
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  CHECK_EQ(status, 0x100u);
  std::memset(host.ram.data() + 0x200, 0xff, 16);
  CHECK(h->RegionWrite(0, kDmaWrite, 4, 0x200).ok());  // 16 zero bytes out of the plugin
  CHECK_EQ(host.ram[0x200], 0);
  CHECK_EQ(host.ram[0x20f], 0);
}

/** a DmaPort over its own RAM: declines what `decline` says, counts what it answers */
class FakePort final : public wasm::DmaPort {
 public:
  std::vector<uint8_t> ram = std::vector<uint8_t>(8 << 20);
  bool decline = false;
  int reads = 0, writes = 0;

  bool Read(uint64_t iova, uint32_t len, wasm::GuestBuffer& out, HostStatus* s) override {
    if (decline || iova + len > ram.size()) return false;
    ++reads;
    uint8_t* dst = out.Alloc(len);
    if (dst == nullptr) {
      *s = HostStatus::Fault("alloc");
      return true;
    }
    std::memcpy(dst, ram.data() + iova, len);
    *s = HostStatus::Ok();
    return true;
  }
  bool Write(uint64_t iova, const uint8_t* data, uint32_t len, HostStatus* s) override {
    if (decline || iova + len > ram.size()) return false;
    ++writes;
    std::memcpy(ram.data() + iova, data, len);
    *s = HostStatus::Ok();
    return true;
  }
};

constexpr uint64_t kDmaReadLen = 0x48, kDmaWriteLen = 0x5c, kRepeat = 0x60, kStride = 0x64,
                   kDmaWriteGrow = 0x68;

void DmaPortAnswersOrDeclines() {
  FakeHost host;
  FakePort port;
  auto h = Make("hostile", &host);
  if (!h) return;
  h->set_dma_port(&port);
  uint64_t status = 1;
  // 1 MiB in one read: the plugin's heap grows (and may move) inside cabi_realloc, after the
  // trampoline looked at its memory; the copy and the result must land in the new memory
  uint64_t before = h->MemoryBytes();
  CHECK(h->RegionWrite(0, kDmaReadLen, 4, 1 << 20).ok());
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  CHECK_EQ(status, 0u);
  CHECK(h->MemoryBytes() > before);
  CHECK_EQ(port.reads, 1);
  // 8 reads of 4 KiB at a stride, then 8 writes: all answered by the port, none by the host
  CHECK(h->RegionWrite(0, kRepeat, 4, 8).ok());
  CHECK(h->RegionWrite(0, kStride, 4, 0x1000).ok());
  CHECK(h->RegionWrite(0, kDmaReadLen, 4, 0x1000).ok());
  CHECK(h->RegionWrite(0, kDmaWriteLen, 4, 0x1000).ok());
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  CHECK_EQ(status, 0u);
  CHECK_EQ(port.reads, 9);
  CHECK_EQ(port.writes, 8);
  // declined: the host answers (its RAM is 64 KiB: the 17th page is err(not-mapped))
  port.decline = true;
  CHECK(h->RegionWrite(0, kDmaWriteLen, 4, 0x1000).ok());
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  CHECK_EQ(status, 0u);
  CHECK(h->RegionWrite(0, kRepeat, 4, 17).ok());
  CHECK(h->RegionWrite(0, kDmaReadLen, 4, 0x1000).ok());
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  CHECK_EQ(status, 0x100u);  // err(not-mapped) from the host
  CHECK_EQ(port.reads, 9);
  CHECK_EQ(port.writes, 8);
  // one call: a dma.write (the trampoline's first look at the memory), then a malloc that grows
  // the memory, then a dma.write out of the new pages, which that first look did not cover
  port.decline = false;
  CHECK(h->RegionWrite(0, kRepeat, 4, 1).ok());
  before = h->MemoryBytes();
  CHECK(h->RegionWrite(0, kDmaWriteGrow, 4, 4 << 20).ok());
  CHECK(h->live());
  CHECK(h->MemoryBytes() > before);
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  CHECK_EQ(status, 0u);
  CHECK_EQ(port.writes, 10);
  CHECK_EQ(port.ram[0], 0xa5);
  CHECK_EQ(port.ram[(4 << 20) - 1], 0xa5);
  h->set_dma_port(nullptr);
  CHECK(h->live());
}

/** a DmaPort whose RAM is a sealed memfd: WindowSource offers it, other calls are declined */
class WindowPort final : public wasm::DmaPort {
 public:
  static constexpr uint64_t kBytes = 1 << 20;
  int fd = -1;
  bool refuse = false;
  WindowPort() {
    fd = ::memfd_create("window-port", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0 && ::ftruncate(fd, kBytes) == 0);
    CHECK(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
  }
  ~WindowPort() { ::close(fd); }
  uint32_t Peek(uint64_t at) const {
    uint32_t v = 0;
    CHECK(::pread(fd, &v, 4, static_cast<off_t>(at)) == 4);
    return v;
  }
  void Poke(uint64_t at, uint32_t v) const {
    CHECK(::pwrite(fd, &v, 4, static_cast<off_t>(at)) == 4);
  }
  bool Read(uint64_t, uint32_t, wasm::GuestBuffer&, HostStatus*) override { return false; }
  bool Write(uint64_t, const uint8_t*, uint32_t, HostStatus*) override { return false; }
  HostStatus WindowSource(uint64_t iova, uint32_t len, bool, wasm::WindowFile* file) override {
    if (refuse) return HostStatus::Err(static_cast<uint8_t>(wasm::WindowError::kNotGranted));
    if (iova + len > kBytes)
      return HostStatus::Err(static_cast<uint8_t>(wasm::WindowError::kNotMapped));
    file->fd = fd;
    file->offset = iova;
    return HostStatus::Ok();
  }
};

constexpr uint64_t kWindowIova = 0x70, kMapWindow = 0x74, kUnmapWindow = 0x78, kWindowWord = 0x7c,
                   kWindowOffset = 0x80, kWindowCopyOut = 0x84;

/** the hostile fixture's map-window of `value` (length | 1 writable): its status */
uint64_t MapWindow(wasm::Instance* h, uint64_t iova, uint64_t value) {
  uint64_t status = 1;
  CHECK(h->RegionWrite(0, kWindowIova, 4, iova).ok());
  CHECK(h->RegionWrite(0, kMapWindow, 4, value).ok());
  CHECK(h->RegionRead(0, kStatus, 4, &status).ok());
  return status;
}

void WindowsMapAndDrop() {
  FakeHost host;
  WindowPort port;
  auto h = Make("hostile", &host);
  if (!h) return;
  uint64_t v = 0;
  CHECK_EQ(MapWindow(h.get(), 0, 0x2000 | 1), 0x106u);  // no port: err(unsupported)
  h->set_dma_port(&port);
  port.Poke(0x1000, 0xfeedface);
  CHECK_EQ(MapWindow(h.get(), 0, 0x4000 | 1), 0u);
  CHECK_EQ(h->window_count(), 1u);
  CHECK(h->RegionWrite(0, kWindowOffset, 4, 0x1000).ok());
  CHECK(h->RegionRead(0, kWindowWord, 4, &v).ok());
  CHECK_EQ(v, 0xfeedfaceu);  // the plugin's load reads the file
  CHECK(h->RegionWrite(0, kWindowWord, 4, 0x0b0e0b0e).ok());
  CHECK_EQ(port.Peek(0x1000), 0x0b0e0b0eu);  // and its store writes it
  // the plugin's memcpy out of the whole window (wasmtime's memory.copy over the mapping)
  CHECK(h->RegionWrite(0, kWindowCopyOut, 4, 0x4000).ok());
  CHECK(h->RegionRead(0, kStatus, 4, &v).ok());
  CHECK_EQ(v, 0u);
  CHECK_EQ(MapWindow(h.get(), 0x8000, 0x1000), 0x104u);  // over the same buffer: err(busy)
  port.refuse = true;
  CHECK_EQ(MapWindow(h.get(), 0, 0x1000), 0x104u);  // busy is checked before the port
  // the VMM unmaps [0, 0x1000): the window over it goes, and reads zeros
  h->DropWindows(0, 0x1000);
  CHECK_EQ(h->window_count(), 0u);
  CHECK(h->RegionRead(0, kWindowWord, 4, &v).ok());
  CHECK_EQ(v, 0u);
  CHECK_EQ(port.Peek(0x1000), 0x0b0e0b0eu);
  CHECK_EQ(MapWindow(h.get(), 0, 0x1000), 0x101u);  // the port's refusal: err(not-granted)
  port.refuse = false;
  // mapped again, and unmapped by the plugin
  CHECK_EQ(MapWindow(h.get(), 0, 0x2000 | 1), 0u);
  CHECK(h->RegionWrite(0, kUnmapWindow, 4, 0).ok());
  CHECK(h->RegionRead(0, kStatus, 4, &v).ok());
  CHECK_EQ(v, 0u);
  CHECK_EQ(h->window_count(), 0u);
  CHECK(h->live());
  h->set_dma_port(nullptr);
}

void TrapsPoison() {
  FakeHost host;
  auto h = Make("hostile", &host);
  if (!h) return;
  uint64_t v = 0;
  wasm::Outcome trap = h->RegionRead(0, kTrap, 4, &v);
  CHECK_EQ(trap.kind, wasm::Outcome::kTrap);
  CHECK(trap.message.find('\n') == std::string::npos);  // one line
  CHECK(!h->live());
  wasm::Outcome again = h->RegionRead(0, 0, 4, &v);
  CHECK_EQ(again.kind, wasm::Outcome::kTrap);
  CHECK(again.message.find("poisoned") != std::string::npos);
}

void BudgetStopsASpin() {
  FakeHost host;
  auto h = Make("hostile", &host, 16 << 20, 20);
  if (!h) return;
  uint64_t v = 0;
  wasm::Outcome o = h->RegionRead(0, kSpin, 4, &v);
  CHECK_EQ(o.kind, wasm::Outcome::kTrap);
  CHECK(o.message.find("budget of 20 ms") != std::string::npos);
}

void MemoryCapHolds() {
  FakeHost host;
  auto h = Make("hostile", &host, 4 << 20);
  if (!h) return;
  uint64_t v = 0;
  wasm::Outcome o = h->RegionRead(0, kBomb, 4, &v);  // grows until refused, then traps
  CHECK_EQ(o.kind, wasm::Outcome::kTrap);
  CHECK(h->MemoryBytes() <= uint64_t{4} << 20);
}

}  // namespace
}  // namespace vfiobox::test

int main(int argc, char** argv) {
  using namespace vfiobox::test;
  g_root = argc > 1 ? argv[1] : ".";
  EduDescribesAndAnswers();
  HostileImportsAndErrors();
  DmaPortAnswersOrDeclines();
  WindowsMapAndDrop();
  TrapsPoison();
  BudgetStopsASpin();
  MemoryCapHolds();
  return Finish("wasm_instance");
}
