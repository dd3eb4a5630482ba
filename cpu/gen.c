/*
 * gen.c - the paper's grouping datasets (Section 5.1): `rows` u32 keys with
 * `groups` distinct values, uniformly distributed, in the four combinations of
 * sortedness and density, and i32 values uniform in [-1000, 1000].
 *
 * Every element is a pure function of (seed, row): a counter-based generator
 * (the SplitMix64 finaliser applied to the seed's stream position of the row)
 * replaces a sequential PRNG, so the OpenMP loop can hand rows to threads in
 * any way and the dataset is still the same for every thread count.
 *
 * Keys, with j the group number of a row:
 *  - unsorted: j is uniform in [0, groups), drawn with a multiply-high
 *    reduction of 32 random bits (no modulo bias);
 *  - sorted: j = floor(i * groups / rows), so rows ascend and groups have equal
 *    sizes (+/- 1 row); every group appears when groups <= rows;
 *  - dense: key = j;
 *  - sparse: key = j * stride + (hash(j) mod stride) with
 *    stride = floor(2^32 / groups): the keys are distinct per group, spread
 *    over the whole u32 range, and monotone in j, so sorted stays sorted.
 */
#include <omp.h>

#include "cpu/cpu_int.h"

/* The SplitMix64 increment and finaliser (Steele, Lea and Flood, 2014). */
#define GEN_GAMMA 0x9e3779b97f4a7c15ULL

static inline uint64_t gen_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Value i of the stream `stream` (the mixed seed): SplitMix64's output for
 * state stream + (i + 1) * gamma, computed without walking the stream. */
static inline uint64_t gen_at(uint64_t stream, uint64_t i)
{
    return gen_mix(stream + (i + 1) * GEN_GAMMA);
}

/* floor(x * n / 2^32) for a 32-bit x: uniform in [0, n) for n <= 2^32. */
static inline uint64_t gen_below(uint64_t r, uint64_t n)
{
    return ((r >> 32) * n) >> 32;
}

dqo_status cpu_gen_grouping(uint32_t *keys, int32_t *vals, uint64_t rows,
                            uint64_t groups, bool sorted, bool sparse,
                            uint64_t seed, int threads)
{
    if (groups == 0 || groups > (UINT64_C(1) << 32))
        return DQO_EINVAL;
    if (rows > 0 && keys == NULL)
        return DQO_EINVAL;
    if (threads < 1)
        threads = 1;

    /* Independent streams for keys, sparse offsets and values: one seed
     * must not give correlated keys and values. */
    const uint64_t key_stream = gen_mix(seed ^ 0x6b6579735f5f5f5fULL);
    const uint64_t off_stream = gen_mix(seed ^ 0x6f66667365747373ULL);
    const uint64_t val_stream = gen_mix(seed ^ 0x76616c7565735f5fULL);
    const uint64_t stride = (UINT64_C(1) << 32) / groups;

#pragma omp parallel for num_threads(threads) schedule(static)
    for (uint64_t i = 0; i < rows; i++) {
        uint64_t j;
        if (sorted)
            j = (uint64_t)(((unsigned __int128)i * groups) / rows);
        else
            j = gen_below(gen_at(key_stream, i), groups);
        uint64_t k = j;
        if (sparse)
            k = j * stride + gen_at(off_stream, j) % stride;
        keys[i] = (uint32_t)k;
        if (vals != NULL)
            vals[i] = (int32_t)gen_below(gen_at(val_stream, i), 2001) - 1000;
    }
    return DQO_OK;
}
