/*
 * group_radix.c - radix-partitioned grouping: one parallel partitioning pass
 * on the high bits of (key - min) scatters the keys and every aggregate's
 * input (and validity bytes) into 2^bits partitions; then each worker groups
 * whole partitions, one at a time, with a table that fits in its L2.
 *
 * The planner selects it for many sparse groups, where one hash table would
 * be larger than the caches and every probe a cache miss. Partitions are key
 * ranges, so each one is grouped from its own properties: a partition whose
 * key range is at most twice its rows gets a direct array (SPHG on the
 * partition), the others an open-addressing hash table (group_hash.c's
 * cpu_htab). Output comes ordered by partition, i.e. by key range.
 *
 * Cost: the histogram pass reads the keys, the scatter pass reads keys and
 * inputs and writes them once more, then grouping reads the partitions back
 * (about 3x the input traffic), with every table access in L2. Memory: a copy
 * of the input columns, a threads x partitions histogram, one table per
 * worker, and an output buffer with room for one group per row (only the
 * pages written are touched), compacted at the end.
 * Reference: the DQO paper, Section 2 (partitioning as a granule) and
 * DESIGN.md "Granules"; the paper's footnote on "dynamic data structures"
 * for unknown group counts.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/cpu_int.h"

/* One pass up to 2^11 partitions: beyond about 2K open write streams per
 * thread the scatter thrashes the TLB and the L1 write-combining, and 2^11
 * partitions already cut 100M groups to 50K per partition. */
#define RADIX_MAX_BITS 11

/* A partition's table may take half of L2; the rest is for the partition's
 * rows streaming through. */
#define RADIX_L2_SHARE 2

/* At least this many partitions per thread, so that the dynamic schedule
 * can balance uneven partitions. */
#define RADIX_PARTS_PER_THREAD 4

/* A direct array per worker covers at most this many slots, or L2's worth
 * when that is more. */
#define RADIX_DIRECT_MIN_SLOTS 4096

#define RADIX_KEY_TYPES(X)                                                     \
    X(u32, uint32_t)                                                           \
    X(i32, int32_t)                                                            \
    X(i64, int64_t)

static inline uint32_t radix_pid(uint64_t off, int shift, int bits)
{
    return bits == 0 ? 0 : (uint32_t)(off >> shift);
}

/* Histogram of rows [lo, hi) by partition. */
#define RADIX_DEFINE_HIST(kt, K)                                               \
    static void radix_hist_##kt(const K *restrict k, uint64_t lo, uint64_t hi, \
                                int64_t kmin, int shift, int bits,             \
                                uint64_t *restrict hist)                       \
    {                                                                          \
        const uint64_t base = (uint64_t)kmin;                                  \
        for (uint64_t i = lo; i < hi; i++)                                     \
            hist[radix_pid((uint64_t)(int64_t)k[i] - base, shift, bits)]++;    \
    }
RADIX_KEY_TYPES(RADIX_DEFINE_HIST)

/* Scatter of one column of `esz`-byte elements by the key's partition. */
#define RADIX_DEFINE_SCATTER(kt, K, et, E)                                     \
    static void radix_scatter_##kt##_##et(                                     \
        const K *restrict k, const E *restrict src, E *restrict dst,           \
        uint64_t lo, uint64_t hi, int64_t kmin, int shift, int bits,           \
        uint64_t *restrict cur)                                                \
    {                                                                          \
        const uint64_t base = (uint64_t)kmin;                                  \
        for (uint64_t i = lo; i < hi; i++)                                     \
            dst[cur[radix_pid((uint64_t)(int64_t)k[i] - base, shift, bits)]++] \
                = src[i];                                                      \
    }
#define RADIX_SCATTER_ALL_(kt, K)                                              \
    RADIX_DEFINE_SCATTER(kt, K, e1, uint8_t)                                   \
    RADIX_DEFINE_SCATTER(kt, K, e4, uint32_t)                                  \
    RADIX_DEFINE_SCATTER(kt, K, e8, uint64_t)
RADIX_KEY_TYPES(RADIX_SCATTER_ALL_)

static void radix_scatter(const grp_input *in, const void *src, void *dst,
                          size_t esz, uint64_t lo, uint64_t hi, int64_t kmin,
                          int shift, int bits, uint64_t *cur)
{
    switch (in->key_type) {
#define RADIX_SCATTER_CASE_(kt, K)                                             \
    case DQO_TYPE_##kt:                                                        \
        if (esz == 1)                                                          \
            radix_scatter_##kt##_e1(in->keys, src, dst, lo, hi, kmin, shift,   \
                                    bits, cur);                                \
        else if (esz == 4)                                                     \
            radix_scatter_##kt##_e4(in->keys, src, dst, lo, hi, kmin, shift,   \
                                    bits, cur);                                \
        else                                                                   \
            radix_scatter_##kt##_e8(in->keys, src, dst, lo, hi, kmin, shift,   \
                                    bits, cur);                                \
        break;
#define DQO_TYPE_u32 DQO_TYPE_U32
#define DQO_TYPE_i32 DQO_TYPE_I32
#define DQO_TYPE_i64 DQO_TYPE_I64
        RADIX_KEY_TYPES(RADIX_SCATTER_CASE_)
#undef RADIX_SCATTER_CASE_
    default: break;
    }
}

/* The partition buffers are as large as the input and written once, in
 * random order across 2^bits streams: with 4 KiB pages their first-touch
 * faults cost as much as the scatter itself, so ask for huge pages (a hint;
 * ignored where unsupported). */
static void radix_advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    const uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    const uintptr_t hi = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (p != NULL && hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

static inline size_t radix_type_size(dqo_type t)
{
    return t == DQO_TYPE_U32 || t == DQO_TYPE_I32 ? 4 : 8;
}

/* Min and max key of rows [lo, hi) (lo < hi). */
static void radix_range(const grp_input *in, uint64_t lo, uint64_t hi,
                        int64_t *mn, int64_t *mx)
{
    int64_t a = INT64_MAX, b = INT64_MIN;
    switch (in->key_type) {
#define RADIX_RANGE_CASE_(kt, K)                                               \
    case DQO_TYPE_##kt: {                                                      \
        const K *restrict k = in->keys;                                        \
        for (uint64_t i = lo; i < hi; i++) {                                   \
            const int64_t v = (int64_t)k[i];                                   \
            a = v < a ? v : a;                                                 \
            b = v > b ? v : b;                                                 \
        }                                                                      \
        break;                                                                 \
    }
        RADIX_KEY_TYPES(RADIX_RANGE_CASE_)
#undef RADIX_RANGE_CASE_
    default: break;
    }
    *mn = a;
    *mx = b;
}

#define RADIX_DEFINE_SLOTS(kt, K)                                              \
    static inline void radix_slots_##kt(const K *restrict k, uint64_t row0,    \
                                        uint32_t n, int64_t kmin,              \
                                        uint32_t *restrict slots)              \
    {                                                                          \
        const uint64_t base = (uint64_t)kmin;                                  \
        for (uint32_t j = 0; j < n; j++)                                       \
            slots[j] = (uint32_t)((uint64_t)(int64_t)k[row0 + j] - base);      \
    }
RADIX_KEY_TYPES(RADIX_DEFINE_SLOTS)

/* Groups rows [lo, hi) of the partitioned input with a direct array over
 * [pmin, pmin + range) and writes the non-empty slots at pos. */
static uint64_t radix_direct(const grp_input *in, agg_table *t, uint64_t lo,
                             uint64_t hi, int64_t pmin, uint64_t range,
                             grp_output *out, uint64_t pos, agg_flags *f)
{
    uint32_t slots[AGG_CHUNK];
    agg_table_reset(t, in, 0, range);
    for (uint64_t r = lo; r < hi; r += AGG_CHUNK) {
        const uint32_t n = (uint32_t)(hi - r < AGG_CHUNK ? hi - r : AGG_CHUNK);
        switch (in->key_type) {
        case DQO_TYPE_U32: radix_slots_u32(in->keys, r, n, pmin, slots); break;
        case DQO_TYPE_I32: radix_slots_i32(in->keys, r, n, pmin, slots); break;
        default: radix_slots_i64(in->keys, r, n, pmin, slots); break;
        }
        agg_update(t, in, slots, r, n, f);
    }
    const int64_t *restrict cnt = t->count;
    uint64_t p = pos;
    for (uint64_t i = 0; i < range; i++)
        if (cnt[i] > 0)
            out->keys[p++] = (int64_t)((uint64_t)pmin + i);
    p = pos;
    for (uint64_t i = 0; i < range; i++)
        if (cnt[i] > 0)
            out->count[p++] = cnt[i];
    for (int a = 0; a < in->naggs; a++) {
        const int64_t *restrict src = t->acc[a];
        int64_t *restrict dst = out->acc[a];
        p = pos;
        for (uint64_t i = 0; i < range; i++)
            if (cnt[i] > 0)
                dst[p++] = src[i];
    }
    return p - pos;
}

static int radix_choose_bits(const grp_input *in, const granule *g,
                             uint64_t est, int T, int key_bits)
{
    int bits;
    if (g != NULL && g->radix_bits != 0) {
        bits = g->radix_bits;
    } else {
        cpu_caches cc;
        cpu_get_caches(&cc);
        /* Hash table bytes for the estimate at load 0.5. */
        const uint64_t bytes = est * 2 * (16 + 8 * (uint64_t)in->naggs);
        const uint64_t fit = cc.l2 / RADIX_L2_SHARE;
        bits = 0;
        while (bits < 63 && (bytes >> bits) > fit)
            bits++;
        int par = 0;
        while ((1 << par) < RADIX_PARTS_PER_THREAD * T)
            par++;
        if (T > 1 && bits < par)
            bits = par;
        if (bits > RADIX_MAX_BITS)
            bits = RADIX_MAX_BITS;
    }
    if (bits > key_bits)
        bits = key_bits;
    if (bits > 24)
        bits = 24;
    return bits;
}

dqo_status cpu_group_radix(const grp_input *in, const granule *g,
                           grp_output *out)
{
    dqo_status st = DQO_OK;
    uint64_t *hist = NULL, *cur = NULL, *pstart = NULL, *gcount = NULL;
    void *kbuf = NULL;
    void *abuf[GRP_MAX_AGGS] = {0};
    uint8_t *vbuf[GRP_MAX_AGGS] = {0};
    cpu_htab *htabs = NULL;
    agg_table *dtabs = NULL;
    agg_flags *flags = NULL;
    dqo_status *wst = NULL;
    grp_output *wbuf = NULL;
    uint64_t *wcap = NULL, *wlen = NULL, *poff = NULL;
    int *pwork = NULL;
    memset(out, 0, sizeof *out);
    out->overflow_agg = -1;
    if (in->key_type != DQO_TYPE_U32 && in->key_type != DQO_TYPE_I32 &&
        in->key_type != DQO_TYPE_I64)
        return DQO_ETYPE;
    if (in->rows == 0) {
        st = grp_output_alloc(out, in, 0);
        if (st == DQO_OK)
            snprintf(out->detail, sizeof out->detail, "radix: empty input");
        return st;
    }
    const int T = in->threads < 1 ? 1 : in->threads;
    const int64_t kmin = in->key_stats->min;
    const uint64_t span = (uint64_t)in->key_stats->max - (uint64_t)kmin;
    const int key_bits = span == 0 ? 0 : 64 - __builtin_clzll(span);
    uint64_t est = in->key_stats->distinct;
    est = est < 1 ? 1 : est > in->rows ? in->rows : est;
    const int bits = radix_choose_bits(in, g, est, T, key_bits);
    const int shift = key_bits - bits;
    const uint64_t P = UINT64_C(1) << bits;
    const size_t ksz = radix_type_size(in->key_type);

    hist = mem_calloc((size_t)T * P, sizeof *hist);
    cur = mem_calloc((size_t)T * P, sizeof *cur);
    pstart = mem_calloc(P + 1, sizeof *pstart);
    gcount = mem_calloc(P + 1, sizeof *gcount);
    kbuf = mem_alloc(in->rows * ksz);
    htabs = mem_calloc((size_t)T, sizeof *htabs);
    dtabs = mem_calloc((size_t)T, sizeof *dtabs);
    flags = mem_calloc((size_t)T, sizeof *flags);
    wst = mem_calloc((size_t)T, sizeof *wst);
    if (hist == NULL || cur == NULL || pstart == NULL || gcount == NULL ||
        kbuf == NULL || htabs == NULL || dtabs == NULL || flags == NULL ||
        wst == NULL)
        goto nomem;
    grp_agg sub_aggs[GRP_MAX_AGGS];
    for (int a = 0; a < in->naggs; a++) {
        sub_aggs[a] = in->aggs[a];
        abuf[a] = mem_alloc(in->rows * radix_type_size(in->aggs[a].type));
        if (abuf[a] == NULL)
            goto nomem;
        sub_aggs[a].data = abuf[a];
        if (in->aggs[a].valid != NULL) {
            vbuf[a] = mem_alloc(in->rows);
            if (vbuf[a] == NULL)
                goto nomem;
        }
        sub_aggs[a].valid = vbuf[a];
    }
    radix_advise_huge(kbuf, in->rows * ksz);
    for (int a = 0; a < in->naggs; a++) {
        radix_advise_huge(abuf[a], in->rows * radix_type_size(in->aggs[a].type));
        radix_advise_huge(vbuf[a], in->rows);
    }
    grp_input sub = *in;
    sub.keys = kbuf;
    sub.aggs = sub_aggs;

    /* Pass 1: per-thread histograms. */
#pragma omp parallel num_threads(T)
    for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
        const uint64_t lo = in->rows * (uint64_t)b / (uint64_t)T;
        const uint64_t hi = in->rows * (uint64_t)(b + 1) / (uint64_t)T;
        uint64_t *h = hist + (size_t)b * P;
        switch (in->key_type) {
        case DQO_TYPE_U32: radix_hist_u32(in->keys, lo, hi, kmin, shift, bits, h); break;
        case DQO_TYPE_I32: radix_hist_i32(in->keys, lo, hi, kmin, shift, bits, h); break;
        default: radix_hist_i64(in->keys, lo, hi, kmin, shift, bits, h); break;
        }
    }
    /* Prefix sums: partition starts, and each thread's offset in each. */
    uint64_t max_rows = 0, acc_rows = 0;
    for (uint64_t p = 0; p < P; p++) {
        pstart[p] = acc_rows;
        for (int b = 0; b < T; b++) {
            const uint64_t n = hist[(size_t)b * P + p];
            hist[(size_t)b * P + p] = acc_rows;
            acc_rows += n;
        }
        const uint64_t np = acc_rows - pstart[p];
        max_rows = np > max_rows ? np : max_rows;
    }
    pstart[P] = acc_rows;

    /* Pass 2: scatter every column, one column at a time. */
#pragma omp parallel num_threads(T)
    for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
        const uint64_t lo = in->rows * (uint64_t)b / (uint64_t)T;
        const uint64_t hi = in->rows * (uint64_t)(b + 1) / (uint64_t)T;
        uint64_t *c = cur + (size_t)b * P;
        const uint64_t *o = hist + (size_t)b * P;
        memcpy(c, o, P * sizeof *c);
        radix_scatter(in, in->keys, kbuf, ksz, lo, hi, kmin, shift, bits, c);
        for (int a = 0; a < in->naggs; a++) {
            memcpy(c, o, P * sizeof *c);
            radix_scatter(in, in->aggs[a].data, abuf[a],
                          radix_type_size(in->aggs[a].type), lo, hi, kmin,
                          shift, bits, c);
            if (vbuf[a] != NULL) {
                memcpy(c, o, P * sizeof *c);
                radix_scatter(in, in->aggs[a].valid, vbuf[a], 1, lo, hi, kmin,
                              shift, bits, c);
            }
        }
    }

    /* Per-worker tables, sized before the grouping region. */
    cpu_caches cc;
    cpu_get_caches(&cc);
    const uint64_t slot_bytes = 8 * (1 + (uint64_t)in->naggs);
    uint64_t dcap = cc.l2 / slot_bytes;
    dcap = dcap < RADIX_DIRECT_MIN_SLOTS ? RADIX_DIRECT_MIN_SLOTS : dcap;
    dcap = dcap > 2 * max_rows ? 2 * max_rows : dcap;
    uint64_t hgroups = est / P + est / P / 4 + 64;
    hgroups = hgroups > max_rows ? max_rows : hgroups;
    for (int b = 0; b < T; b++) {
        flags[b].overflow_agg = -1;
        st = agg_table_init(&dtabs[b], in, dcap);
        if (st == DQO_OK)
            st = cpu_htab_init(&htabs[b], in, kmin, 0, hgroups);
        if (st != DQO_OK)
            goto fail;
    }
    /* Each worker appends its partitions' groups to its own buffer, sized
     * for its share of the estimate; partition p's groups are then at
     * wbuf[pwork[p]] from poff[p]. */
    wbuf = mem_calloc((size_t)T, sizeof *wbuf);
    wcap = mem_calloc((size_t)T, sizeof *wcap);
    wlen = mem_calloc((size_t)T, sizeof *wlen);
    pwork = mem_calloc(P, sizeof *pwork);
    poff = mem_calloc(P, sizeof *poff);
    if (wbuf == NULL || wcap == NULL || wlen == NULL || pwork == NULL ||
        poff == NULL)
        goto nomem;
    for (int b = 0; b < T; b++) {
        uint64_t c = est / (uint64_t)T + est / (uint64_t)T / 4 + 1024;
        c = c > in->rows ? in->rows : c;
        st = grp_output_alloc(&wbuf[b], in, c);
        if (st != DQO_OK)
            goto fail;
        wcap[b] = c;
    }

    uint64_t ndirect = 0, nhash = 0;
#pragma omp parallel num_threads(T) reduction(+ : ndirect, nhash)
    {
        const int w = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (uint64_t p = 0; p < P; p++) {
            const uint64_t lo = pstart[p], hi = pstart[p + 1];
            if (lo == hi || wst[w] != DQO_OK)
                continue;
            int64_t pmin, pmax;
            radix_range(&sub, lo, hi, &pmin, &pmax);
            const uint64_t prange = (uint64_t)pmax - (uint64_t)pmin;
            const bool direct = prange < dcap && prange < 2 * (hi - lo);
            cpu_htab *h = &htabs[w];
            if (!direct) {
                cpu_htab_clear(h, &sub, pmin);
                wst[w] = cpu_htab_add(h, &sub, lo, hi, &flags[w]);
            }
            /* The worker's buffer grows when this partition may not fit
             * (rare: only when the estimate was low). */
            const uint64_t need =
                wlen[w] + (direct ? (prange + 1 < hi - lo ? prange + 1 : hi - lo)
                                  : cpu_htab_groups(h));
            if (wst[w] == DQO_OK && need > wcap[w]) {
                grp_output bigger;
                uint64_t c = 2 * wcap[w] > need ? 2 * wcap[w] : need;
                wst[w] = grp_output_alloc(&bigger, in, c);
                if (wst[w] == DQO_OK) {
                    memcpy(bigger.keys, wbuf[w].keys, wlen[w] * sizeof(int64_t));
                    memcpy(bigger.count, wbuf[w].count,
                           wlen[w] * sizeof(int64_t));
                    for (int a = 0; a < in->naggs; a++)
                        memcpy(bigger.acc[a], wbuf[w].acc[a],
                               wlen[w] * sizeof(int64_t));
                    grp_output_free(&wbuf[w], in->naggs);
                    wbuf[w] = bigger;
                    wcap[w] = c;
                }
            }
            if (wst[w] != DQO_OK)
                continue;
            pwork[p] = w;
            poff[p] = wlen[w];
            if (direct) {
                gcount[p] = radix_direct(&sub, &dtabs[w], lo, hi, pmin,
                                         prange + 1, &wbuf[w], wlen[w],
                                         &flags[w]);
                ndirect++;
            } else {
                gcount[p] = cpu_htab_groups(h);
                cpu_htab_emit(h, &sub, &wbuf[w], wlen[w]);
                nhash++;
            }
            wlen[w] += gcount[p];
        }
    }
    for (int b = 0; b < T; b++) {
        if (wst[b] != DQO_OK) {
            st = wst[b];
            goto fail;
        }
    }
    /* gcount becomes the output start of each partition. */
    uint64_t G = 0;
    for (uint64_t p = 0; p <= P; p++) {
        const uint64_t n = gcount[p];
        gcount[p] = G;
        G += n;
    }
    st = grp_output_alloc(out, in, G);
    if (st != DQO_OK)
        goto fail;
#pragma omp parallel for num_threads(T) schedule(dynamic, 16)
    for (uint64_t p = 0; p < P; p++) {
        const uint64_t n = gcount[p + 1] - gcount[p];
        if (n == 0)
            continue;
        const grp_output *src = &wbuf[pwork[p]];
        memcpy(out->keys + gcount[p], src->keys + poff[p], n * sizeof(int64_t));
        memcpy(out->count + gcount[p], src->count + poff[p],
               n * sizeof(int64_t));
        for (int a = 0; a < in->naggs; a++)
            memcpy((int64_t *)out->acc[a] + gcount[p],
                   (const int64_t *)src->acc[a] + poff[p], n * sizeof(int64_t));
    }
    out->overflow = false;
    out->overflow_agg = -1;
    for (int b = 0; b < T; b++) {
        if (flags[b].overflow_agg >= 0 &&
            (!out->overflow || flags[b].overflow_agg < out->overflow_agg)) {
            out->overflow = true;
            out->overflow_agg = flags[b].overflow_agg;
        }
    }
    snprintf(out->detail, sizeof out->detail,
             "radix: %d bits of %d (1 pass), %llu partitions (largest %llu "
             "rows), %llu direct + %llu hash, %d threads",
             bits, key_bits, (unsigned long long)P,
             (unsigned long long)max_rows, (unsigned long long)ndirect,
             (unsigned long long)nhash, T);
    goto done;
nomem:
    st = DQO_ENOMEM;
fail:
    grp_output_free(out, in->naggs);
    out->overflow_agg = -1;
done:
    if (wbuf != NULL)
        for (int b = 0; b < T; b++)
            grp_output_free(&wbuf[b], in->naggs);
    mem_free(wbuf);
    mem_free(wcap);
    mem_free(wlen);
    mem_free(pwork);
    mem_free(poff);
    if (htabs != NULL)
        for (int b = 0; b < T; b++)
            cpu_htab_free(&htabs[b], in);
    if (dtabs != NULL)
        for (int b = 0; b < T; b++)
            agg_table_free(&dtabs[b], in);
    for (int a = 0; a < GRP_MAX_AGGS; a++) {
        mem_free(abuf[a]);
        mem_free(vbuf[a]);
    }
    mem_free(hist);
    mem_free(cur);
    mem_free(pstart);
    mem_free(gcount);
    mem_free(kbuf);
    mem_free(htabs);
    mem_free(dtabs);
    mem_free(flags);
    mem_free(wst);
    return st;
}
