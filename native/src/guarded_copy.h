// SPDX-License-Identifier: MIT
// GuardedCopy: a memcpy that survives client memory losing its pages under it. A vfio-user
// client hands its guest memory as an fd (DMA_MAP) and may ftruncate(2) it afterwards; the
// server's next access to the now-beyond-EOF part of its MAP_SHARED mapping raises SIGBUS
// (mm/filemap.c, mm/shmem.c: VM_FAULT_SIGBUS), which would kill the whole process. A copy from
// or into such memory goes through GuardedCopy, which turns that SIGBUS into -EFAULT.
//
// How: one process-wide SA_SIGINFO SIGBUS handler (InstallCopyGuard, installed once) and a
// thread-local pointer to the copy in progress. SIGBUS from a fault is synchronous, delivered
// to the faulting thread, so the handler looks at that thread's copy only: when the fault
// address lies inside the copy's source or destination it siglongjmps back into GuardedCopy.
// Any other SIGBUS (no copy in progress, another address, or one sent by kill(2)) goes to the
// handler installed before ours, or gets the default action: a foreign SIGBUS is never
// swallowed. SA_NODEFER and an empty sa_mask leave the signal mask as it was, so the jump
// needs no sigprocmask (sigsetjmp(.., 0): no syscall per copy).
//
// Not covered: a handler someone installs for SIGBUS after ours replaces it (Node and V8 do
// not install one on Linux x86-64; V8's wasm trap handler takes SIGSEGV).
// Memory whose fd carries F_SEAL_SHRINK cannot shrink, and skips the guard (server_dma.cc).
#ifndef VFIOBOX_NATIVE_SRC_GUARDED_COPY_H_
#define VFIOBOX_NATIVE_SRC_GUARDED_COPY_H_

#include <cstddef>
#include <cstdint>

namespace vfiobox {

/** installs the SIGBUS handler once per process (thread-safe); 0 or -errno of sigaction. */
int InstallCopyGuard();

/**
 * memcpy(dst, src, len), except that a SIGBUS raised by an access inside [dst, dst + len) or
 * [src, src + len) ends it with -EFAULT (a prefix may have been copied). 0 on success.
 * -EFAULT without copying when InstallCopyGuard has not succeeded.
 */
int GuardedCopy(void* dst, const void* src, size_t len);

/** guarded copies a SIGBUS ended, process-wide. */
uint64_t GuardedCopyFaults();

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_GUARDED_COPY_H_
