// SPDX-License-Identifier: MIT
// GuardedCopy (guarded_copy.h): a copy from or into a shared memfd mapping whose file was
// shrunk ends with -EFAULT instead of killing the process, and every other SIGBUS still
// reaches the handler installed before ours. Built with ASan + UBSan by native/test/run.sh.
#include "native/src/guarded_copy.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "native/test/check.h"

// ASan keeps its own SIGBUS handler and ignores sigaction(SIGBUS) from the program unless told
// otherwise; the server installs one, so the test must see it installed.
extern "C" const char* __asan_default_options() { return "allow_user_segv_handler=1"; }

namespace vfiobox::test {
namespace {

constexpr size_t kPage = 4096;

// the "previous" handler: records what it saw and jumps out of a fault it is handed
volatile sig_atomic_t g_foreign_calls = 0;
volatile sig_atomic_t g_foreign_code = 0;
sigjmp_buf g_foreign_jump;
volatile sig_atomic_t g_foreign_armed = 0;

void ForeignHandler(int, siginfo_t* info, void*) {
  g_foreign_calls = g_foreign_calls + 1;
  g_foreign_code = info->si_code;
  if (g_foreign_armed) siglongjmp(g_foreign_jump, 1);
  // a fault nobody expected (the guard failed): die on its recurrence instead of looping
  if (info->si_code > 0) signal(SIGBUS, SIG_DFL);
}

struct Shared {
  int fd = -1;
  uint8_t* hva = nullptr;
  size_t size = 0;
  explicit Shared(size_t bytes) : size(bytes) {
    fd = memfd_create("guarded", MFD_CLOEXEC);
    CHECK_EQ(ftruncate(fd, static_cast<off_t>(bytes)), 0);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    hva = static_cast<uint8_t*>(p);
  }
  ~Shared() {
    munmap(hva, size);
    close(fd);
  }
};

void TestCopies() {
  Shared mem(4 * kPage);
  std::vector<uint8_t> buf(4 * kPage);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 7);
  CHECK_EQ(GuardedCopy(mem.hva, buf.data(), buf.size()), 0);
  std::vector<uint8_t> back(buf.size());
  CHECK_EQ(GuardedCopy(back.data(), mem.hva, back.size()), 0);
  CHECK(back == buf);
  CHECK_EQ(GuardedCopy(back.data(), mem.hva, 0), 0);
  CHECK_EQ(GuardedCopyFaults(), 0u);
}

void TestShrunkFileFaults() {
  Shared mem(4 * kPage);
  std::vector<uint8_t> buf(4 * kPage, 0xab);
  CHECK_EQ(ftruncate(mem.fd, static_cast<off_t>(kPage)), 0);  // the last 3 pages are gone
  CHECK_EQ(GuardedCopy(buf.data(), mem.hva, kPage), 0);       // the first is still there
  CHECK_EQ(GuardedCopy(buf.data(), mem.hva, 2 * kPage), -EFAULT);
  CHECK_EQ(GuardedCopyFaults(), 1u);
  CHECK_EQ(GuardedCopy(mem.hva + kPage, buf.data(), kPage), -EFAULT);  // into it
  CHECK_EQ(GuardedCopyFaults(), 2u);
  CHECK_EQ(GuardedCopy(buf.data(), mem.hva, kPage), 0);  // the guard is re-armed each time
  CHECK_EQ(g_foreign_calls, 0);                          // nothing reached the old handler
}

void TestForeignSigbusIsChained() {
  raise(SIGBUS);  // sent, not a fault: si_code <= 0
  CHECK_EQ(g_foreign_calls, 1);
  CHECK(g_foreign_code <= 0);
  // a real fault outside any guarded copy belongs to the old handler too
  Shared mem(2 * kPage);
  CHECK_EQ(ftruncate(mem.fd, 0), 0);
  g_foreign_armed = 1;
  if (sigsetjmp(g_foreign_jump, 1) == 0) {
    volatile uint8_t* p = mem.hva;
    uint8_t v = p[0];  // SIGBUS, handed on
    (void)v;
    CHECK(false);  // not reached
  }
  g_foreign_armed = 0;
  CHECK_EQ(g_foreign_calls, 2);
  CHECK_EQ(g_foreign_code, BUS_ADRERR);
  CHECK_EQ(GuardedCopyFaults(), 2u);
}

}  // namespace
}  // namespace vfiobox::test

int main() {
  using namespace vfiobox::test;  // NOLINT
  std::vector<uint8_t> a(16), b(16);
  CHECK_EQ(vfiobox::GuardedCopy(a.data(), b.data(), a.size()), -EFAULT);  // not installed yet
  struct sigaction old {};
  old.sa_sigaction = ForeignHandler;
  old.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&old.sa_mask);
  CHECK_EQ(sigaction(SIGBUS, &old, nullptr), 0);
  CHECK_EQ(vfiobox::InstallCopyGuard(), 0);
  CHECK_EQ(vfiobox::InstallCopyGuard(), 0);  // once
  TestCopies();
  TestShrunkFileFaults();
  TestForeignSigbusIsChained();
  return Finish("guarded_copy");
}
