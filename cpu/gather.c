/*
 * gather.c - dst[i] = src[rows[i]] for 1-, 4- and 8-byte elements, in
 * parallel: the executor's row-id gathers after filters and joins (a join
 * of 90M pairs gathers 90M keys; one thread takes ~0.3 s of it, 16 threads
 * are bound by memory instead).
 */
#include <omp.h>
#include <string.h>

#include "cpu/cpu_int.h"

/* Below this many rows one thread is cheaper than waking a team. */
#define GATHER_MIN_PARALLEL 65536

#define GATHER_LOOP(T)                                                         \
    do {                                                                       \
        T *d = dst;                                                            \
        const T *s = src;                                                      \
        _Pragma("omp parallel for schedule(static) num_threads(threads) if (par)") \
        for (uint64_t i = 0; i < n; i++)                                       \
            d[i] = s[rows[i]];                                                 \
    } while (0)

void cpu_gather(void *dst, const void *src, size_t width,
                const uint32_t *rows, uint64_t n, int threads)
{
    if (threads < 1)
        threads = 1;
    const int par = n >= GATHER_MIN_PARALLEL && threads > 1;
    switch (width) {
    case 1: GATHER_LOOP(uint8_t); break;
    case 2: GATHER_LOOP(uint16_t); break;
    case 4: GATHER_LOOP(uint32_t); break;
    case 8: GATHER_LOOP(uint64_t); break;
    default:
        for (uint64_t i = 0; i < n; i++)
            memcpy((char *)dst + i * width,
                   (const char *)src + (size_t)rows[i] * width, width);
    }
}
