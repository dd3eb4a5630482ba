/*
 * alloc.c - aligned allocation with a size header, a live-allocation count
 * for leak checks, and a fail-the-N-th-call hook for tests.
 */
#include "engine/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The header keeps the 64-byte alignment of the block after it. */
#define MEM_HEADER 64

static atomic_long mem_live;
static atomic_long mem_countdown; /* 0: disarmed */

static int mem_should_fail(void)
{
    long c = atomic_load(&mem_countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&mem_countdown, &c, c - 1))
            return c == 1;
    }
    return 0;
}

void mem_fail_after(long n) { atomic_store(&mem_countdown, n > 0 ? n : 0); }

long mem_outstanding(void) { return atomic_load(&mem_live); }

void *mem_alloc(size_t bytes)
{
    if (mem_should_fail() || bytes > SIZE_MAX - MEM_HEADER)
        return NULL;
    void *base = NULL;
    if (posix_memalign(&base, MEM_HEADER, bytes + MEM_HEADER) != 0)
        return NULL;
    *(size_t *)base = bytes;
    atomic_fetch_add(&mem_live, 1);
    return (char *)base + MEM_HEADER;
}

void *mem_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = mem_alloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *mem_realloc(void *p, size_t bytes)
{
    if (p == NULL)
        return mem_alloc(bytes);
    size_t old = *(size_t *)((char *)p - MEM_HEADER);
    void *q = mem_alloc(bytes);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old < bytes ? old : bytes);
    mem_free(p);
    return q;
}

char *mem_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = mem_alloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

void mem_free(void *p)
{
    if (p == NULL)
        return;
    atomic_fetch_sub(&mem_live, 1);
    free((char *)p - MEM_HEADER);
}
