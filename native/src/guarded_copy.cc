// SPDX-License-Identifier: MIT
#include "native/src/guarded_copy.h"

#include <setjmp.h>
#include <signal.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace vfiobox {

namespace {

/** the copy in progress on one thread; lives on GuardedCopy's frame. */
struct CopyGuard {
  sigjmp_buf jump;
  uintptr_t dst = 0;
  uintptr_t src = 0;
  size_t len = 0;
};

// initial-exec: the addon is dlopen'ed, and a dynamic-model TLS variable may be allocated
// lazily by __tls_get_addr on a thread's first access, which is not async-signal-safe (the
// handler may run on a thread that never copied). One pointer fits glibc's static TLS surplus.
thread_local CopyGuard* t_copy __attribute__((tls_model("initial-exec"))) = nullptr;

// Memory protection keys. The kernel runs a signal handler with PKRU reset to its default,
// which denies every key but 0, and restores the interrupted PKRU only on sigreturn; the
// handler leaves by siglongjmp, so GuardedCopy puts the copy's PKRU back itself. Without it,
// a CPU with PKU keeps V8's pkey-protected wasm code space unreadable after a guarded fault,
// and the next wasm call through a jump table dies of SIGSEGV (seen on this machine kind).
#if defined(__x86_64__)
bool HasPkru() {
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 4)) != 0;  // OSPKE
  }();
  return has;
}
__attribute__((noinline)) uint32_t ReadPkru() {
  uint32_t eax = 0, edx = 0;
  // SAFETY: RDPKRU (0f 01 ee) with ecx = 0; only called when CPUID reports OSPKE.
  asm volatile(".byte 0x0f, 0x01, 0xee" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}
void WritePkru(uint32_t value) {
  // SAFETY: WRPKRU (0f 01 ef) with ecx = edx = 0, restoring a value RDPKRU read on this thread.
  asm volatile(".byte 0x0f, 0x01, 0xef" : : "a"(value), "c"(0), "d"(0) : "memory");
}
#else
bool HasPkru() { return false; }
uint32_t ReadPkru() { return 0; }
void WritePkru(uint32_t) {}
#endif

struct sigaction g_previous;  // written once, before our handler is installed
std::once_flag g_install_once;
std::atomic<int> g_install_result{-EAGAIN};
std::atomic<uint64_t> g_faults{0};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "used from a signal handler");

bool Inside(uintptr_t at, uintptr_t begin, size_t len) { return at >= begin && at - begin < len; }

/** what would have happened without us: the previous handler, else the default action. */
void Chain(int sig, siginfo_t* info, void* ctx) {
  const struct sigaction& prev = g_previous;
  if (prev.sa_flags & SA_SIGINFO) {
    prev.sa_sigaction(sig, info, ctx);
    return;
  }
  if (prev.sa_handler == SIG_IGN && info->si_code <= 0) return;  // a sent one, ignored as before
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // The default action (a fault cannot be ignored: the kernel forces it, kernel/signal.c
  // force_sig_info_to_task). Restore it: a fault then recurs on return and kills the process
  // as it would have without us; a signal sent by kill(2) does not recur, so send it again.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGBUS, &dfl, nullptr);
  if (info->si_code <= 0) raise(SIGBUS);
}

void OnSigbus(int sig, siginfo_t* info, void* ctx) {
  CopyGuard* copy = t_copy;
  // si_code > 0: raised by the kernel for a memory access (BUS_ADRERR for a page beyond EOF)
  if (copy != nullptr && info->si_code > 0) {
    uintptr_t at = reinterpret_cast<uintptr_t>(info->si_addr);
    if (Inside(at, copy->dst, copy->len) || Inside(at, copy->src, copy->len)) {
      t_copy = nullptr;
      g_faults.fetch_add(1, std::memory_order_relaxed);
      // SAFETY: copy->jump was set by sigsetjmp in GuardedCopy, whose frame is still live (the
      // fault happened inside its memcpy, on this thread); memcpy holds no resource.
      siglongjmp(copy->jump, 1);
    }
  }
  Chain(sig, info, ctx);
}

int Install() {
  struct sigaction sa {};
  sa.sa_sigaction = OnSigbus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, nullptr, &g_previous) < 0) return -errno;
  if (sigaction(SIGBUS, &sa, nullptr) < 0) return -errno;
  return 0;
}

}  // namespace

int InstallCopyGuard() {
  std::call_once(g_install_once, [] { g_install_result.store(Install()); });
  return g_install_result.load();
}

int GuardedCopy(void* dst, const void* src, size_t len) {
  if (g_install_result.load(std::memory_order_acquire) != 0) return -EFAULT;
  CopyGuard copy;
  copy.dst = reinterpret_cast<uintptr_t>(dst);
  copy.src = reinterpret_cast<uintptr_t>(src);
  copy.len = len;
  // savemask 0: with SA_NODEFER the handler runs under the mask of the copy, so there is
  // nothing to restore. Nothing read after a jump is modified after this point.
  // volatile: read after a siglongjmp
  const volatile bool pkru = HasPkru();
  const volatile uint32_t saved_pkru = pkru ? ReadPkru() : 0;
  if (sigsetjmp(copy.jump, 0) != 0) {
    if (pkru) WritePkru(saved_pkru);  // the handler ran with the kernel's default PKRU
    return -EFAULT;
  }
  t_copy = &copy;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // t_copy is set before the first access
  // SAFETY: the caller checked that [dst, +len) and [src, +len) lie inside live mappings; a
  // page of them that the file no longer backs raises SIGBUS, which lands above.
  std::memcpy(dst, src, len);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // and cleared after the last
  t_copy = nullptr;
  return 0;
}

uint64_t GuardedCopyFaults() { return g_faults.load(std::memory_order_relaxed); }

}  // namespace vfiobox
