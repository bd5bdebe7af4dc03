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

#endif  // VFIOBOX_LIBC_STRING_H_
