// SPDX-License-Identifier: MIT
// A freestanding libc subset for device-model plugins: memory functions and an allocator.
//
// Why not wasi-libc: a device model gets no ambient authority, so the core module must import
// nothing but the WIT capabilities; with no WASI imports, `wasm-tools component new` needs no
// preview1 adapter either. Any stray libc call (printf, ...) then fails at link time.
//
// Allocator: the canonical ABI allocates only for the duration of one call (arguments the host
// copies in through cabi_realloc, lists returned by imports, results freed by the post-return
// function), and device state lives in static storage. So a bump arena that counts live blocks
// and rewinds when the count drops to zero is enough, and is about 200 bytes of code. A leak does
// not corrupt anything; it only stops the rewinding, and memory growth is capped by the module's
// maximum memory (see the Makefile), past which malloc returns NULL and cabi_realloc traps.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Provided by wasm-ld: the first byte after static data and the stack.
extern unsigned char __heap_base;

// Blocks of kBigBytes and more (DMA buffers, lists an import returns) start on a cache line: a
// host copy into or out of an 8-byte-aligned buffer runs at about 0.6 of one into an aligned
// buffer (bench/README.md "DMA copy").
enum { kAlign = 8, kPageBytes = 65536, kBigBytes = 1024, kBigAlign = 64 };

typedef struct BlockHeader {
  size_t size;  // Usable bytes in the block.
  size_t from;  // heap_top before this block, below any alignment padding
} BlockHeader;

static uintptr_t heap_top;       // Next free byte; 0 until first use.
static size_t live_blocks;       // Blocks handed out and not yet freed.
static BlockHeader *last_block;  // Most recent block: the only one realloc grows in place.

static uintptr_t HeapStart(void) {
  return ((uintptr_t)&__heap_base + kAlign - 1) & ~(uintptr_t)(kAlign - 1);
}

static int InHeap(const void *ptr) {
  uintptr_t p = (uintptr_t)ptr;
  return p >= HeapStart() && p < heap_top;
}

// Makes sure [0, end) is backed by linear memory.
static int EnsureMemory(uintptr_t end) {
  uintptr_t have = __builtin_wasm_memory_size(0) * (uintptr_t)kPageBytes;
  if (end <= have) return 1;
  uintptr_t pages = (end - have + kPageBytes - 1) / kPageBytes;
  return __builtin_wasm_memory_grow(0, pages) != (size_t)-1;
}

void *malloc(size_t size) {
  if (heap_top == 0) heap_top = HeapStart();
  size_t rounded = (size + kAlign - 1) & ~(size_t)(kAlign - 1);
  uintptr_t align = size >= kBigBytes ? kBigAlign : kAlign;
  uintptr_t payload = (heap_top + sizeof(BlockHeader) + align - 1) & ~(align - 1);
  uintptr_t end = payload + rounded;
  if (rounded < size || payload < heap_top || end < payload || !EnsureMemory(end)) return NULL;
  BlockHeader *block = (BlockHeader *)payload - 1;
  block->size = rounded;
  block->from = heap_top;
  heap_top = end;
  live_blocks++;
  last_block = block;
  return block + 1;
}

void free(void *ptr) {
  // Static data (a string literal handed to the glue) is not ours to free.
  if (ptr == NULL || !InHeap(ptr)) return;
  BlockHeader *block = (BlockHeader *)ptr - 1;
  if (block == last_block) {
    heap_top = block->from;
    last_block = NULL;
  }
  if (--live_blocks == 0) {
    heap_top = HeapStart();
    last_block = NULL;
  }
}

void *realloc(void *ptr, size_t size) {
  if (ptr == NULL) return malloc(size);
  BlockHeader *block = (BlockHeader *)ptr - 1;
  if (size <= block->size) return ptr;
  if (block == last_block) {
    size_t rounded = (size + kAlign - 1) & ~(size_t)(kAlign - 1);
    uintptr_t end = (uintptr_t)ptr + rounded;
    if (rounded < size || end < heap_top || !EnsureMemory(end)) return NULL;
    block->size = rounded;
    heap_top = end;
    return ptr;
  }
  void *moved = malloc(size);
  if (moved == NULL) return NULL;
  memcpy(moved, ptr, block->size);
  free(ptr);
  return moved;
}

_Noreturn void abort(void) { __builtin_trap(); }

// Built with -mbulk-memory (WebAssembly 2.0; V8 since 7.5, wasmtime by default), so clang lowers
// these builtins to single memory.copy / memory.fill instructions instead of calling back here.
// The names are in parentheses because string.h defines them as macros over the builtins.
void *(memcpy)(void *restrict dst, const void *restrict src, size_t n) {
  return __builtin_memcpy(dst, src, n);
}

void *(memmove)(void *dst, const void *src, size_t n) { return __builtin_memmove(dst, src, n); }

void *(memset)(void *dst, int c, size_t n) { return __builtin_memset(dst, c, n); }

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++) {
    if (*x != *y) return *x - *y;
  }
  return 0;
}

size_t strlen(const char *s) {
  const char *p = s;
  while (*p) p++;
  return (size_t)(p - s);
}
