/*
 * alloc.c - aligned allocation with a size header, a live-allocation count
 * for leak checks, and a fail-the-N-th-call hook for tests.
 */
#include "engine/alloc.h"

#include <pthread.h>
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

/* mem_alloc without the failure hook (callers have consulted it). */
static void *mem_alloc_unchecked(size_t bytes)
{
    if (bytes > SIZE_MAX - MEM_HEADER)
        return NULL;
    void *base = NULL;
    if (posix_memalign(&base, MEM_HEADER, bytes + MEM_HEADER) != 0)
        return NULL;
    *(size_t *)base = bytes;
    atomic_fetch_add(&mem_live, 1);
    return (char *)base + MEM_HEADER;
}

void *mem_alloc(size_t bytes)
{
    return mem_should_fail() ? NULL : mem_alloc_unchecked(bytes);
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

/* ------------------------------------------------------- scratch blocks */

static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static void *scratch_kept[MEM_SCRATCH_BLOCKS];

static size_t mem_size(const void *p)
{
    return *(const size_t *)((const char *)p - MEM_HEADER);
}

void *mem_scratch_alloc(size_t bytes)
{
    if (mem_should_fail())
        return NULL;
    /* Kept blocks are MEM_SCRATCH_MIN or more and serve at least half. */
    if (bytes >= MEM_SCRATCH_MIN / 2) {
        /* The smallest kept block that holds `bytes` and is not more than
         * twice as large (a far larger one is better left to a big query). */
        pthread_mutex_lock(&scratch_lock);
        int best = -1;
        for (int i = 0; i < MEM_SCRATCH_BLOCKS; i++) {
            void *b = scratch_kept[i];
            if (b != NULL && mem_size(b) >= bytes && mem_size(b) / 2 <= bytes &&
                (best < 0 || mem_size(b) < mem_size(scratch_kept[best])))
                best = i;
        }
        void *p = best >= 0 ? scratch_kept[best] : NULL;
        if (best >= 0)
            scratch_kept[best] = NULL;
        pthread_mutex_unlock(&scratch_lock);
        if (p != NULL) {
            atomic_fetch_add(&mem_live, 1);
            return p;
        }
    }
    return mem_alloc_unchecked(bytes);
}

void mem_scratch_free(void *p)
{
    if (p == NULL)
        return;
    if (mem_size(p) >= MEM_SCRATCH_MIN) {
        pthread_mutex_lock(&scratch_lock);
        for (int i = 0; i < MEM_SCRATCH_BLOCKS; i++) {
            if (scratch_kept[i] == NULL) {
                scratch_kept[i] = p;
                atomic_fetch_sub(&mem_live, 1);
                p = NULL;
                break;
            }
        }
        pthread_mutex_unlock(&scratch_lock);
    }
    mem_free(p);
}

void mem_scratch_trim(void)
{
    pthread_mutex_lock(&scratch_lock);
    for (int i = 0; i < MEM_SCRATCH_BLOCKS; i++) {
        if (scratch_kept[i] != NULL)
            free((char *)scratch_kept[i] - MEM_HEADER);
        scratch_kept[i] = NULL;
    }
    pthread_mutex_unlock(&scratch_lock);
}
