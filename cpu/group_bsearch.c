/*
 * group_bsearch.c - binary search grouping (BSG): the groups live in an array
 * sorted by key, and each row finds its group by binary search (paper,
 * Section 5.1, "Binary Search-based Grouping").
 *
 * When the planner selects it: sparse keys with very few groups, where the
 * sorted key array stays in L1 and log2(groups) comparisons cost less than a
 * hash and a probe (the paper's Figure 5 shows BSG ahead of HG up to about 14
 * groups on unsorted sparse keys); otherwise only when forced.
 *
 * How: the distinct keys are found by sorting a copy of the key offsets
 * (key - min) with the radix sort of group_sort.c and keeping the first of
 * every run, or, when the distinct estimate is small, by per-thread hash sets
 * whose union is sorted; they become the output's key column, ascending.
 * Then each thread
 * walks its contiguous range of rows in chunks of AGG_CHUNK: a branch-free
 * lower bound, level by level for the whole chunk (the loads of one level are
 * independent, so they overlap), gives every row's slot, and agg_update folds
 * the chunk. With few groups every thread owns a private table (thread 0
 * writes straight into the output) and the tables are merged in parallel
 * slices with agg_merge_range; with many groups (BSG_PRIVATE_MAX_SLOTS) one
 * shared table takes agg_update_atomic.
 *
 * Cost: the sort (two to six passes over 8 n bytes), then n log2(groups)
 * comparisons. Memory: two arrays of n uint64 during the sort, the output,
 * and (threads - 1) private tables of groups slots.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_int.h"

/* Private tables are used while groups x threads stays below 2^20 slots:
 * the tables then total at most 8 MiB per aggregate (within a server's LLC)
 * and their merge reads 2^20 slots, less than a tenth of a pass over the
 * 10^7 or more rows where BSG's parallelism matters; beyond that the merge
 * and the cache misses of cold private tables cost more than the atomics of
 * one shared table, whose updates rarely contend with that many groups. */
#define BSG_PRIVATE_MAX_SLOTS (UINT64_C(1) << 20)

/* Up to this distinct estimate the keys are collected in per-thread hash
 * sets (bsg_distinct_hashed) instead of sorting the whole column: 4096 keys
 * make a set of 16K entries (136 KiB), within L2, so one probe per new key
 * costs less than the 2 to 3 radix passes over 8 n bytes it replaces. */
#define BSG_HASHED_DISTINCT_MAX 4096

/* The smallest share of a pass a thread gets (see group_order.c). */
#define BSG_MIN_ROWS_PER_THREAD 1024

static inline unsigned bsg_bits(uint64_t v)
{
    return v == 0 ? 0 : 64u - (unsigned)__builtin_clzll(v);
}

static int bsg_threads(int threads, uint64_t n)
{
    if ((uint64_t)threads > n / BSG_MIN_ROWS_PER_THREAD)
        threads = n / BSG_MIN_ROWS_PER_THREAD > 1
                      ? (int)(n / BSG_MIN_ROWS_PER_THREAD)
                      : 1;
    return threads;
}

static inline void bsg_view(agg_table *v, const grp_output *out,
                            const grp_input *in)
{
    v->cap = out->groups;
    v->count = out->count;
    for (int a = 0; a < in->naggs; a++)
        v->acc[a] = out->acc[a];
}

/* The slot of every key of the chunk in the sorted distinct keys dk, where
 * every key is present: the branch-free lower bound, one level at a time
 * for all keys so that the independent loads of a level overlap. */
static inline void bsg_search(const int64_t *restrict dk, uint64_t groups,
                              const int64_t *restrict kc,
                              uint32_t *restrict pos, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++)
        pos[j] = 0;
    for (uint64_t len = groups; len > 1;) {
        const uint32_t half = (uint32_t)(len / 2);
        for (uint32_t j = 0; j < n; j++)
            pos[j] = dk[pos[j] + half] < kc[j] ? pos[j] + half : pos[j];
        len -= half;
    }
    for (uint32_t j = 0; j < n; j++)
        pos[j] += dk[pos[j]] < kc[j];
}

/* Widens n keys of any type from row i into the chunk buffer. */
static inline void bsg_load(const grp_input *in, uint64_t i, uint32_t n,
                            int64_t *restrict kc)
{
    switch (in->key_type) {
    case DQO_TYPE_U32: {
        const uint32_t *restrict k = (const uint32_t *)in->keys + i;
        for (uint32_t j = 0; j < n; j++)
            kc[j] = k[j];
        break;
    }
    case DQO_TYPE_I32: {
        const int32_t *restrict k = (const int32_t *)in->keys + i;
        for (uint32_t j = 0; j < n; j++)
            kc[j] = k[j];
        break;
    }
    default: memcpy(kc, (const int64_t *)in->keys + i, n * sizeof *kc); break;
    }
}

static int bsg_cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The distinct keys of few groups without sorting the column: each thread
 * collects its range's keys in a small open-addressing set (Murmur3
 * finaliser, linear probing; a repeat of the previous key skips the probe),
 * then the union of the sets is sorted. Sets are sized from the distinct
 * estimate before the region; a thread whose set fills up (the estimate was
 * far off) stops, and *fits = false sends the caller to the sort. */
static dqo_status bsg_distinct_hashed(const grp_input *in, grp_output *out,
                                      bool *fits)
{
    const uint64_t n = in->rows;
    const int nr = bsg_threads(in->threads, n);
    uint64_t cap = 64;
    while (cap < 4 * (in->key_stats->distinct + 16))
        cap <<= 1;
    const uint64_t mask = cap - 1, limit = cap / 2;
    dqo_status st = DQO_OK;
    int64_t *sets = mem_alloc((size_t)nr * cap * sizeof *sets);
    uint8_t *used = mem_alloc((size_t)nr * cap);
    uint64_t *sizes = mem_calloc((size_t)nr, sizeof *sizes);
    int64_t *kc = mem_alloc((size_t)nr * AGG_CHUNK * sizeof *kc);
    int64_t *all = NULL;
    if (sets == NULL || used == NULL || sizes == NULL || kc == NULL) {
        st = DQO_ENOMEM;
        goto done;
    }
    bool full = false;
#pragma omp parallel for num_threads(nr) schedule(static, 1) \
    reduction(|| : full)
    for (int t = 0; t < nr; t++) {
        const uint64_t b = n * (uint64_t)t / (uint64_t)nr;
        const uint64_t e = n * (uint64_t)(t + 1) / (uint64_t)nr;
        int64_t *restrict set = sets + (size_t)t * cap;
        uint8_t *restrict u = used + (size_t)t * cap;
        int64_t *restrict k = kc + (size_t)t * AGG_CHUNK;
        memset(u, 0, cap);
        uint64_t size = 0;
        int64_t last = 0;
        bool have_last = false;
        for (uint64_t i = b; i < e && !full; i += AGG_CHUNK) {
            const uint32_t c = (uint32_t)(e - i < AGG_CHUNK ? e - i : AGG_CHUNK);
            bsg_load(in, i, c, k);
            for (uint32_t j = 0; j < c; j++) {
                if (have_last && k[j] == last)
                    continue;
                last = k[j];
                have_last = true;
                uint64_t h = cpu_hash64((uint64_t)last) & mask;
                while (u[h] != 0 && set[h] != last)
                    h = (h + 1) & mask;
                if (u[h] != 0)
                    continue;
                if (size == limit) {
                    full = true;
                    break;
                }
                u[h] = 1;
                set[h] = last;
                size++;
            }
        }
        /* Compact the set to its front for the union. */
        uint64_t m = 0;
        for (uint64_t h = 0; h < cap && !full; h++)
            if (u[h] != 0)
                set[m++] = set[h];
        sizes[t] = m;
    }
    *fits = !full;
    if (full)
        goto done;
    uint64_t total = 0;
    for (int t = 0; t < nr; t++)
        total += sizes[t];
    all = mem_alloc(total * sizeof *all);
    if (all == NULL) {
        st = DQO_ENOMEM;
        goto done;
    }
    total = 0;
    for (int t = 0; t < nr; t++) {
        memcpy(all + total, sets + (size_t)t * cap, sizes[t] * sizeof *all);
        total += sizes[t];
    }
    qsort(all, total, sizeof *all, bsg_cmp_i64);
    uint64_t g = 0;
    for (uint64_t i = 0; i < total; i++)
        if (i == 0 || all[i] != all[i - 1])
            all[g++] = all[i];
    st = grp_output_alloc(out, in, g);
    if (st != DQO_OK)
        goto done;
    memcpy(out->keys, all, g * sizeof *all);
done:
    mem_free(sets);
    mem_free(used);
    mem_free(sizes);
    mem_free(kc);
    mem_free(all);
    return st;
}

/* Sorts the key offsets and writes the distinct keys into a freshly
 * allocated output (out->groups of them, ascending). */
static dqo_status bsg_distinct(const grp_input *in, grp_output *out)
{
    const uint64_t n = in->rows;
    const int64_t min = in->key_stats->min;
    const uint64_t range = (uint64_t)in->key_stats->max - (uint64_t)min;
    dqo_status st = DQO_OK;
    const int nr = bsg_threads(in->threads, n);
    uint64_t *a = mem_alloc(n * sizeof *a);
    uint64_t *tmp = mem_alloc(n * sizeof *tmp);
    uint64_t *starts = mem_calloc((size_t)nr + 1, sizeof *starts);
    if (a == NULL || tmp == NULL || starts == NULL) {
        st = DQO_ENOMEM;
        goto done;
    }
#pragma omp parallel for num_threads(in->threads) schedule(static)
    for (uint64_t i = 0; i < n; i++)
        a[i] = (uint64_t)grp_key_at(in, i) - (uint64_t)min;
    uint64_t *s = NULL;
    st = cpu_radix_sort_u64(a, tmp, n, 0, bsg_bits(range), in->threads, &s);
    if (st != DQO_OK)
        goto done;

    /* Count the first elements of runs per range, then write them at the
     * ranges' prefix offsets. */
#pragma omp parallel for num_threads(nr) schedule(static, 1)
    for (int t = 0; t < nr; t++) {
        const uint64_t b = n * (uint64_t)t / (uint64_t)nr;
        const uint64_t e = n * (uint64_t)(t + 1) / (uint64_t)nr;
        uint64_t c = 0;
        for (uint64_t i = b; i < e; i++)
            c += i == 0 || s[i] != s[i - 1];
        starts[t + 1] = c;
    }
    for (int t = 0; t < nr; t++)
        starts[t + 1] += starts[t];
    st = grp_output_alloc(out, in, starts[nr]);
    if (st != DQO_OK)
        goto done;
#pragma omp parallel for num_threads(nr) schedule(static, 1)
    for (int t = 0; t < nr; t++) {
        const uint64_t b = n * (uint64_t)t / (uint64_t)nr;
        const uint64_t e = n * (uint64_t)(t + 1) / (uint64_t)nr;
        uint64_t o = starts[t];
        for (uint64_t i = b; i < e; i++)
            if (i == 0 || s[i] != s[i - 1])
                out->keys[o++] = (int64_t)((uint64_t)min + s[i]);
    }
done:
    mem_free(a);
    mem_free(tmp);
    mem_free(starts);
    return st;
}

dqo_status cpu_group_bsearch(const grp_input *in, const granule *g,
                             grp_output *out)
{
    memset(out, 0, sizeof *out);
    if (in->naggs < 0 || in->naggs > GRP_MAX_AGGS || in->threads < 1 ||
        (in->rows > 0 && in->keys == NULL))
        return DQO_EINVAL;

    const uint64_t n = in->rows;
    dqo_status st = DQO_OK;
    agg_table *priv = NULL;
    agg_flags *flags = NULL;
    uint32_t *pos = NULL;
    int64_t *kc = NULL;
    const int nr = bsg_threads(in->threads, n);

    bool hashed = false;
    if (in->key_stats->distinct <= BSG_HASHED_DISTINCT_MAX) {
        st = bsg_distinct_hashed(in, out, &hashed);
        if (st != DQO_OK)
            goto fail;
    }
    if (!hashed) {
        st = bsg_distinct(in, out);
        if (st != DQO_OK)
            goto fail;
    }
    const uint64_t groups = out->groups;
    if (groups > UINT32_MAX) {
        st = DQO_EUNSUPPORTED;
        goto fail;
    }
    const bool shared =
        g->mode == PLAN_MODE_SHARED ||
        (g->mode != PLAN_MODE_PRIVATE &&
         groups * (uint64_t)nr > BSG_PRIVATE_MAX_SLOTS);

    /* Everything the threads use is sized here, before the region: private
     * tables (thread 0's is the output itself), flags and chunk buffers. */
    priv = mem_calloc((size_t)nr, sizeof *priv);
    flags = mem_alloc((size_t)nr * sizeof *flags);
    pos = mem_alloc((size_t)nr * AGG_CHUNK * sizeof *pos);
    kc = mem_alloc((size_t)nr * AGG_CHUNK * sizeof *kc);
    if (priv == NULL || flags == NULL || pos == NULL || kc == NULL) {
        st = DQO_ENOMEM;
        goto fail;
    }
    bsg_view(&priv[0], out, in);
    agg_table_reset(&priv[0], in, 0, groups);
    for (int t = 0; t < nr; t++)
        flags[t].overflow_agg = -1;
    /* Private tables are initialised below by their own threads, so that
     * first touch places their pages on those threads' NUMA nodes. */
    if (!shared)
        for (int t = 1; t < nr; t++) {
            st = agg_table_alloc(&priv[t], in, groups);
            if (st != DQO_OK)
                goto fail;
        }

#pragma omp parallel for num_threads(nr) schedule(static, 1)
    for (int t = 0; t < nr; t++) {
        const uint64_t b = n * (uint64_t)t / (uint64_t)nr;
        const uint64_t e = n * (uint64_t)(t + 1) / (uint64_t)nr;
        uint32_t *restrict p = pos + (size_t)t * AGG_CHUNK;
        int64_t *restrict k = kc + (size_t)t * AGG_CHUNK;
        agg_table *tab = shared ? &priv[0] : &priv[t];
        if (!shared && t > 0)
            agg_table_reset(tab, in, 0, groups);
        for (uint64_t i = b; i < e; i += AGG_CHUNK) {
            const uint32_t c = (uint32_t)(e - i < AGG_CHUNK ? e - i : AGG_CHUNK);
            bsg_load(in, i, c, k);
            bsg_search(out->keys, groups, k, p, c);
            if (shared)
                agg_update_atomic(tab, in, p, i, c, &flags[t]);
            else
                agg_update(tab, in, p, i, c, &flags[t]);
        }
    }

    agg_flags f = {-1};
    if (!shared && nr > 1) {
        /* Parallel merge: each thread folds one slice of every table. */
#pragma omp parallel for num_threads(nr) schedule(static, 1)
        for (int t = 0; t < nr; t++) {
            const uint64_t s0 = groups * (uint64_t)t / (uint64_t)nr;
            const uint64_t s1 = groups * (uint64_t)(t + 1) / (uint64_t)nr;
            agg_flags mf = {-1};
            for (int u = 1; u < nr; u++)
                agg_merge_range(&priv[0], s0, &priv[u], s0, s1 - s0, in, &mf);
            if (mf.overflow_agg >= 0 &&
                (flags[t].overflow_agg < 0 ||
                 mf.overflow_agg < flags[t].overflow_agg))
                flags[t].overflow_agg = mf.overflow_agg;
        }
    }
    for (int t = 0; t < nr; t++)
        if (flags[t].overflow_agg >= 0 &&
            (f.overflow_agg < 0 || flags[t].overflow_agg < f.overflow_agg))
            f.overflow_agg = flags[t].overflow_agg;
    out->overflow = f.overflow_agg >= 0;
    out->overflow_agg = f.overflow_agg;
    snprintf(out->detail, sizeof out->detail,
             "%llu sorted keys (%s), %s x%d", (unsigned long long)groups,
             hashed ? "hash sets" : "radix sort",
             shared ? "shared table, atomic" : "private tables, merged", nr);
    for (int t = 1; priv != NULL && t < nr; t++)
        agg_table_free(&priv[t], in);
    mem_free(priv);
    mem_free(flags);
    mem_free(pos);
    mem_free(kc);
    return DQO_OK;
fail:
    for (int t = 1; priv != NULL && t < nr; t++)
        agg_table_free(&priv[t], in);
    grp_output_free(out, in->naggs);
    mem_free(priv);
    mem_free(flags);
    mem_free(pos);
    mem_free(kc);
    return st;
}
