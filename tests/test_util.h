/*
 * test_util.h - what the cmocka tests share: the seeded generator
 * (splitmix64, uniform draws over any span, each key type's domain) and
 * CHECK_OK. Include it after cmocka.h.
 */
#ifndef DQO_TEST_UTIL_H
#define DQO_TEST_UTIL_H

#include <stdint.h>

#include "dqo.h"

typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (inclusive, any span including the full 2^64). */
static inline int64_t rng_in(rng *r, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
    uint64_t x = rng_next(r);
    if (span == 0)
        return (int64_t)x;
    return (int64_t)((uint64_t)lo +
                     (uint64_t)(((unsigned __int128)x * span) >> 64));
}

/* The values a key of type t can hold (u32, i32, else i64). */
static inline void type_domain(dqo_type t, int64_t *lo, int64_t *hi)
{
    switch (t) {
    case DQO_TYPE_U32: *lo = 0; *hi = UINT32_MAX; break;
    case DQO_TYPE_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

/* Fails the test with the call, its status, the context's error text and
 * the seed when `call` does not return DQO_OK; the including test defines
 * `seed` (uint64_t). */
#define CHECK_OK(ctx, call)                                                    \
    do {                                                                       \
        dqo_status s_ = (call);                                                \
        if (s_ != DQO_OK)                                                      \
            fail_msg("%s failed: %s (%s) [seed %llu]", #call,                  \
                     dqo_status_name(s_), dqo_ctx_errmsg(ctx),                 \
                     (unsigned long long)seed);                                \
    } while (0)

#endif /* DQO_TEST_UTIL_H */
