/*
 * alloc.h - the one allocation wrapper of dqo. Every allocation of engine/,
 * planner/ and the back-ends goes through it so that tests can fail the N-th
 * call (SQLite's technique) and check that every failure path returns an
 * error without leaking. Never call these inside an OpenMP parallel loop's
 * hot path: size buffers before the region.
 */
#ifndef DQO_ALLOC_H
#define DQO_ALLOC_H

#include <stddef.h>

/* 64-byte aligned memory of `bytes` (0 allowed), or NULL on failure (real or
 * injected). The caller frees it with mem_free. */
void *mem_alloc(size_t bytes);
/* Zeroed n * size bytes; NULL also when n * size overflows. mem_free. */
void *mem_calloc(size_t n, size_t size);
/* Resizes a block from mem_alloc (p may be NULL); on failure p is untouched
 * and NULL is returned. mem_free. */
void *mem_realloc(void *p, size_t bytes);
/* A copy of s (NULL gives NULL); the caller frees it with mem_free. */
char *mem_strdup(const char *s);
void mem_free(void *p);

/* Scratch blocks: large buffers a kernel uses and frees within one call
 * (partition buffers, sort buffers). Blocks of MEM_SCRATCH_MIN bytes or more
 * are kept after mem_scratch_free (at most MEM_SCRATCH_BLOCKS of them) and
 * handed to the next mem_scratch_alloc that fits, so repeated queries do
 * not fault in hundreds of MB of fresh pages each time, as a buffer pool
 * does. The contents of a block are undefined. Kept blocks are not counted
 * by mem_outstanding and are released by mem_scratch_trim (called when the
 * last context is destroyed). */
#define MEM_SCRATCH_MIN ((size_t)16 << 20)
#define MEM_SCRATCH_BLOCKS 4
void *mem_scratch_alloc(size_t bytes);
void mem_scratch_free(void *p);
void mem_scratch_trim(void);

/* Test hook: after mem_fail_after(n) the n-th allocation from now fails
 * (n = 1: the next one), once; n = 0 disarms it. Thread-safe. */
void mem_fail_after(long n);
/* Allocations made since the process started and not yet freed. */
long mem_outstanding(void);

#endif /* DQO_ALLOC_H */
