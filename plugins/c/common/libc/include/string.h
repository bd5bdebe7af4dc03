// SPDX-License-Identifier: MIT
// The part of <string.h> that wit-bindgen's C glue and the device model use (and that clang may
// emit calls to for struct copies). libc.c implements these.
#ifndef VFIOBOX_LIBC_STRING_H_
#define VFIOBOX_LIBC_STRING_H_

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

// -ffreestanding makes clang treat these as plain calls: a call into libc.c's out-of-line copy,
// with its prologue, stack check and epoch check, around one memory.copy. As macros over the
// builtins they lower inline where used: memory.copy / memory.fill for a variable length
// (wasmtime then calls its memmove straight away), plain loads and stores for a small constant
// one. A hot 4 KiB copy out of a DMA window takes 50 ns this way, 55 ns as a call
// (bench/README.md).
// libc.c still defines the functions, for clang's own calls and for taking their address.
#define memcpy(dst, src, n) __builtin_memcpy((dst), (src), (n))
#define memmove(dst, src, n) __builtin_memmove((dst), (src), (n))
#define memset(dst, c, n) __builtin_memset((dst), (c), (n))

#endif  // VFIOBOX_LIBC_STRING_H_
