// SPDX-License-Identifier: MIT
// The part of <stdlib.h> that wit-bindgen's C glue and the device model use. The plugin is built
// freestanding (no WASI, no libc); libc.c implements these.
#ifndef VFIOBOX_LIBC_STDLIB_H_
#define VFIOBOX_LIBC_STDLIB_H_

#include <stddef.h>

void *malloc(size_t size);
void *realloc(void *ptr, size_t size);
void free(void *ptr);
_Noreturn void abort(void);

#endif  // VFIOBOX_LIBC_STDLIB_H_
