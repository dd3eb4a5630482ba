/*
 * group_radix.c - radix-partitioned grouping: one parallel partitioning pass
 * on the high bits of (key - min) scatters the rows into 2^bits partitions;
 * then each worker groups whole partitions, one at a time, with a table
 * that fits in its L2.
 *
 * The planner selects it for many sparse groups, where one hash table would
 * be larger than the caches and every probe a cache miss, and for large
 * dense domains. Partitions are key ranges, so each one is grouped from its
 * own properties: a partition whose key range is at most twice its rows gets
 * a direct array (SPHG on the partition), the others an open-addressing hash
 * table. Output comes ordered by partition, i.e. by key range.
 *
 * Two paths. The packed fast path (rf_*) takes a 4-byte key with at most one
 * aggregate over a 4-byte integer column without NULLs (COUNT(*), SUM(v):
 * the benchmark's shape): each row becomes one 8-byte item, key offset and
 * value; the scatter computes a row's partition once and writes through
 * per-thread 64-byte write-combining lines flushed with streaming stores;
 * a table entry holds key, count and accumulator in 16 bytes (one line per
 * row; AVX-512 compares a bucket of 4 at once), and a partition's groups
 * overwrite its own items when they fit (pages already mapped), so only
 * partitions of fewer than 3 rows per group go through worker buffers.
 * When the estimated groups fit in L2 it does not partition at all: private
 * tables per thread over row blocks, merged. Every other input takes the
 * general path: keys and every aggregate's input (and validity bytes)
 * scattered column by column, cpu_htab or agg_table per partition.
 *
 * Cost: the histogram pass reads the keys, the scatter pass reads keys and
 * inputs and writes them once more, then grouping reads the partitions back
 * (about 3x the input traffic), with every table access in L2; then the
 * groups are copied to the output. The first touch of the fresh partition
 * buffer (page faults and the kernel's zeroing) costs as much as a pass;
 * it is advised to huge pages. Memory: a copy of the input (8 bytes a row
 * on the fast path), a threads x partitions histogram (and 64 bytes per
 * partition and thread of write-combining lines), one table per worker,
 * worker buffers for groups that did not fit in place (general path: all
 * groups, sized from the estimate), and the output.
 * Reference: the DQO paper, Section 2 (partitioning as a granule) and
 * DESIGN.md "Granules"; the paper's footnote on "dynamic data structures"
 * for unknown group counts. Write-combined scatter: Balkesen et al., "Main-
 * memory hash joins on multi-core CPUs" (ICDE 2013).
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/cpu_int.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

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

/* Prefix sums over per-thread histograms hist[T][P]: pstart[p] becomes
 * partition p's first row (pstart[P] the total) and hist[b][p] thread b's
 * first row inside it, in (partition, thread) order. Returns the largest
 * partition's rows. */
static uint64_t radix_prefix(uint64_t *hist, int T, uint64_t P,
                             uint64_t *pstart)
{
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
    return max_rows;
}

/* The partition buffers are as large as the input and written once, in
 * random order across 2^bits streams: with 4 KiB pages their first-touch
 * faults cost as much as the scatter itself, so ask for huge pages (a hint;
 * ignored where unsupported). Not for the output: with the kernel's
 * defrag=madvise setting a huge-page fault may compact memory first, which
 * on a fragmented machine costs far more than 4 KiB faults. */
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

/* ------------------------------------------------------------------------
 * The packed fast path: a 4-byte key (u32 or i32) and at most one aggregate
 * that reads a 4-byte integer column without NULLs, or no column at all
 * (COUNT(*), SUM(v), MIN(v), MAX(v), COUNT(v) of a non-NULL column). Each
 * row becomes one 8-byte item, (key - min) in the low half and the value's
 * bits in the high half: the scatter computes each row's partition once and
 * writes one stream per partition, through per-thread write-combining lines
 * flushed with full-line streaming stores, and a table entry holds key,
 * count and accumulator in 16 bytes, so a row costs one cache-line access.
 * ------------------------------------------------------------------------ */

/* Items per 64-byte line of the write-combining buffers. */
#define RF_LINE 8

/* Rows ahead whose home slot the hash grouping prefetches. */
#define RF_PREFETCH 16


typedef struct rf_entry {
    uint32_t off; /* key - min */
    uint32_t cnt; /* 0: a free slot */
    int64_t acc;
} rf_entry;

/* What the one aggregate does to its accumulator. */
typedef enum rf_op { RF_NONE, RF_SUM, RF_MIN, RF_MAX } rf_op;

/* A worker's table: an open-addressing hash table (linear probing, load at
 * most 3/4) or, for a dense partition, a direct array. */
typedef struct rf_tab {
    rf_entry *t;
    uint64_t alloc; /* entries allocated */
    uint64_t cap;   /* entries in use, a power of two <= alloc */
    uint64_t used, limit;
    int lg; /* log2(cap) */
} rf_tab;

static inline int64_t rf_val(uint64_t x, bool sgn)
{
    const uint32_t b = (uint32_t)(x >> 32);
    return sgn ? (int64_t)(int32_t)b : (int64_t)b;
}

static inline int64_t rf_comb(int64_t a, int64_t v, rf_op op)
{
    switch (op) {
    case RF_SUM: return a + v;
    case RF_MIN: return v < a ? v : a;
    case RF_MAX: return v > a ? v : a;
    default: return a;
    }
}

/* Tables of at least 2^RF_SIMD_MIN_LG entries are made of 64-byte buckets
 * of RF_BUCKET entries: a key's probe sequence starts at the first entry of
 * its home bucket, so that one line holds the key in almost every case and
 * AVX-512 compares the whole bucket at once. Smaller tables stay in L1 and
 * start at the home entry (fewer collisions, and see rf_find). Either way
 * probing is linear, to the first entry that is free or holds the key. */
#define RF_BUCKET 4
#define RF_SIMD_MIN_LG 12

/* Fibonacci hashing of the offset, in a table of 2^lg entries
 * (8 <= lg <= 32). */
static inline uint64_t rf_home(uint32_t off, int lg)
{
    const uint32_t h = off * UINT32_C(0x9E3779B1);
    if (lg < RF_SIMD_MIN_LG)
        return h >> (32 - lg);
    return (uint64_t)(h >> (34 - lg)) * RF_BUCKET;
}

static inline uint64_t rf_pow2_at_least(uint64_t x)
{
    uint64_t c = 256;
    while (c < x && c < (UINT64_C(1) << 32))
        c <<= 1;
    return c;
}

/* Makes room for `cap` entries (outside hot loops: before the parallel
 * regions, or when a table grows). */
static dqo_status rf_tab_reserve(rf_tab *h, uint64_t cap)
{
    if (cap <= h->alloc)
        return DQO_OK;
    if (cap > SIZE_MAX / sizeof(rf_entry))
        return DQO_ENOMEM;
    rf_entry *n = mem_alloc(cap * sizeof *n);
    if (n == NULL)
        return DQO_ENOMEM;
    mem_free(h->t);
    h->t = n;
    h->alloc = cap;
    return DQO_OK;
}

/* Empties the first `cap` entries (a power of two <= alloc) for use. */
static void rf_tab_clear(rf_tab *h, uint64_t cap)
{
    h->cap = cap;
    h->lg = __builtin_ctzll(cap);
    h->limit = cap / 4 * 3;
    h->used = 0;
    memset(h->t, 0, cap * sizeof *h->t);
}

/* The entry of offset `off`: its own, or the free entry that it takes.
 * With `simd` (and AVX-512) one compare covers a whole bucket; but a
 * 64-byte load cannot take its data from the narrower stores of a recent
 * update of the same line, so small tables, whose lines are hit again
 * within a few rows, probe entry by entry. */
static inline __attribute__((always_inline)) rf_entry *
rf_find(rf_entry *restrict t, uint64_t mask, int lg, uint32_t off, bool simd)
{
    uint64_t s = rf_home(off, lg);
#if defined(__AVX512F__)
    if (simd) {
        const __m512i key = _mm512_set1_epi32((int)off);
        for (;;) {
            /* 32-bit lanes 4j and 4j + 1 are entry j's off and cnt. */
            const __m512i v = _mm512_load_si512((const void *)(t + s));
            const unsigned eq = _mm512_cmpeq_epi32_mask(v, key);
            const unsigned fr = (unsigned)_mm512_cmpeq_epi32_mask(
                                    v, _mm512_setzero_si512()) >>
                                1;
            const unsigned m = ((eq & ~fr) | fr) & 0x1111u;
            if (__builtin_expect(m != 0, 1))
                return t + s + ((unsigned)__builtin_ctz(m) >> 2);
            s = (s + RF_BUCKET) & mask;
        }
    }
#else
    (void)simd;
#endif
    for (;;) {
        rf_entry *e = t + s;
        if (e->cnt == 0 || e->off == off)
            return e;
        s = (s + 1) & mask;
    }
}

/* Adds entry e to the hash table (combining with its key's entry). */
static void rf_tab_put(rf_tab *h, const rf_entry *e, rf_op op)
{
    rf_entry *d = rf_find(h->t, h->cap - 1, h->lg, e->off, false);
    if (d->cnt == 0) {
        *d = *e;
        h->used++;
        return;
    }
    d->cnt += e->cnt;
    d->acc = rf_comb(d->acc, e->acc, op);
}

/* Doubles the hash table (a rare path: only when the estimate was low). */
static dqo_status rf_tab_grow(rf_tab *h, rf_op op)
{
    rf_tab n = {0};
    dqo_status st = rf_tab_reserve(&n, h->cap * 2);
    if (st != DQO_OK)
        return st;
    rf_tab_clear(&n, h->cap * 2);
    for (uint64_t s = 0; s < h->cap; s++)
        if (h->t[s].cnt != 0)
            rf_tab_put(&n, &h->t[s], op);
    mem_free(h->t);
    *h = n;
    return DQO_OK;
}

/* Groups items it[0, n) into the hash table; stops before the first item
 * that would insert past the load limit and returns how many it took. The
 * update is branch-free: a free entry has count 0 and accumulator 0. */
static inline __attribute__((always_inline)) uint64_t
rf_hash_add_k(rf_tab *h, const uint64_t *restrict it, uint64_t n, rf_op op,
              bool sgn, bool simd)
{
    rf_entry *restrict t = h->t;
    const uint64_t mask = h->cap - 1, limit = h->limit;
    const int lg = h->lg;
    uint64_t used = h->used, i;
    for (i = 0; i < n; i++) {
        if (i + RF_PREFETCH < n)
            __builtin_prefetch(&t[rf_home((uint32_t)it[i + RF_PREFETCH], lg)],
                               1);
        const uint64_t x = it[i];
        const uint32_t off = (uint32_t)x;
        rf_entry *e = rf_find(t, mask, lg, off, simd);
        const bool fresh = e->cnt == 0;
        if (__builtin_expect(used >= limit, 0) && fresh)
            break;
        const int64_t v = rf_val(x, sgn);
        if (op == RF_SUM)
            e->acc += v;
        else if (op == RF_MIN)
            e->acc = fresh || v < e->acc ? v : e->acc;
        else if (op == RF_MAX)
            e->acc = fresh || v > e->acc ? v : e->acc;
        e->off = off;
        e->cnt++;
        used += fresh;
    }
    h->used = used;
    return i;
}

/* The direct array: entry (off - base) of t, every one in range. */
static inline __attribute__((always_inline)) void
rf_direct_add_k(rf_entry *restrict t, uint32_t base,
                const uint64_t *restrict it, uint64_t n, rf_op op, bool sgn)
{
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t x = it[i];
        rf_entry *e = &t[(uint32_t)x - base];
        const int64_t v = rf_val(x, sgn);
        if (op == RF_SUM)
            e->acc += v;
        else if (op == RF_MIN)
            e->acc = e->cnt == 0 || v < e->acc ? v : e->acc;
        else if (op == RF_MAX)
            e->acc = e->cnt == 0 || v > e->acc ? v : e->acc;
        e->cnt++;
    }
}

/* One instance of each kernel per (operation, signedness). */
#define RF_DISPATCH(call)                                                      \
    switch ((int)op * 2 + (sgn ? 1 : 0)) {                                     \
    case RF_SUM * 2: call(RF_SUM, false); break;                               \
    case RF_SUM * 2 + 1: call(RF_SUM, true); break;                            \
    case RF_MIN * 2: call(RF_MIN, false); break;                               \
    case RF_MIN * 2 + 1: call(RF_MIN, true); break;                            \
    case RF_MAX * 2: call(RF_MAX, false); break;                               \
    case RF_MAX * 2 + 1: call(RF_MAX, true); break;                            \
    default: call(RF_NONE, false); break;                                      \
    }

/* Groups items it[0, n) into the hash table, growing it when needed. */
static dqo_status rf_hash_add(rf_tab *h, const uint64_t *it, uint64_t n,
                              rf_op op, bool sgn)
{
    uint64_t done = 0;
    while (done < n) {
        uint64_t d = 0;
#define RF_HASH_SIMD_(o, s) d = rf_hash_add_k(h, it + done, n - done, o, s, true)
#define RF_HASH_CALL_(o, s) d = rf_hash_add_k(h, it + done, n - done, o, s, false)
        if (h->lg >= RF_SIMD_MIN_LG) {
            RF_DISPATCH(RF_HASH_SIMD_)
        } else {
            RF_DISPATCH(RF_HASH_CALL_)
        }
#undef RF_HASH_SIMD_
#undef RF_HASH_CALL_
        done += d;
        if (done < n) {
            dqo_status st = rf_tab_grow(h, op);
            if (st != DQO_OK)
                return st;
        }
    }
    return DQO_OK;
}

static void rf_direct_add(rf_entry *t, uint32_t base, const uint64_t *it,
                          uint64_t n, rf_op op, bool sgn)
{
#define RF_DIRECT_CALL_(o, s) rf_direct_add_k(t, base, it, n, o, s)
    RF_DISPATCH(RF_DIRECT_CALL_)
#undef RF_DIRECT_CALL_
}

/* Writes the groups of entries t[0, n) at output position pos; a direct
 * array's entry s has offset base + s, a hash table's its own. Returns how
 * many groups. */
static uint64_t rf_emit(const rf_entry *restrict t, uint64_t n, bool direct,
                        uint32_t base, int64_t kmin, bool count_acc,
                        grp_output *o, uint64_t pos, int naggs)
{
    int64_t *restrict keys = o->keys + pos;
    int64_t *restrict cnt = o->count + pos;
    int64_t *restrict acc = naggs > 0 ? (int64_t *)o->acc[0] + pos : NULL;
    uint64_t g = 0;
    for (uint64_t s = 0; s < n; s++) {
        if (t[s].cnt == 0)
            continue;
        const uint32_t off = direct ? base + (uint32_t)s : t[s].off;
        keys[g] = (int64_t)((uint64_t)kmin + off);
        cnt[g] = t[s].cnt;
        if (acc != NULL)
            acc[g] = count_acc ? (int64_t)t[s].cnt : t[s].acc;
        g++;
    }
    return g;
}

/* One full 64-byte line to 64-byte aligned dst, bypassing the caches. */
static inline void rf_stream_line(uint64_t *dst, const uint64_t *src)
{
#if defined(__AVX512F__)
    _mm512_stream_si512((void *)dst, _mm512_load_si512((const void *)src));
#elif defined(__AVX__)
    _mm256_stream_si256((__m256i *)(void *)dst,
                        _mm256_load_si256((const __m256i *)(const void *)src));
    _mm256_stream_si256((__m256i *)(void *)(dst + 4),
                        _mm256_load_si256((const __m256i *)(const void *)(src + 4)));
#elif defined(__SSE2__)
    for (int q = 0; q < 4; q++)
        _mm_stream_si128((__m128i *)(void *)(dst + 2 * q),
                         _mm_load_si128((const __m128i *)(const void *)(src + 2 * q)));
#else
    memcpy(dst, src, RF_LINE * sizeof *dst);
#endif
}

static inline void rf_stream_fence(void)
{
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

static inline uint64_t rf_item(const uint32_t *restrict k,
                               const uint32_t *restrict v, uint64_t i,
                               uint32_t kmin32)
{
    const uint64_t off = (uint32_t)(k[i] - kmin32);
    return v == NULL ? off : off | (uint64_t)v[i] << 32;
}

/* Scatters rows [lo, hi) to dst: row i goes to cur[p]++ of its partition
 * p. Items gather in the line wc[p] (the line of dst that cur[p] is in) and
 * a completed line leaves with one streaming store, unless it begins before
 * this thread's segment seg[p] (the line it shares with the previous
 * thread: written item by item). The partial last lines are written item
 * by item at the end. */
static void rf_scatter(const uint32_t *restrict k, const uint32_t *restrict v,
                       uint64_t lo, uint64_t hi, uint32_t kmin32, int shift,
                       uint64_t P, uint64_t *restrict cur,
                       const uint64_t *restrict seg, uint64_t *restrict wc,
                       uint64_t *restrict dst)
{
    for (uint64_t i = lo; i < hi; i++) {
        const uint64_t x = rf_item(k, v, i, kmin32);
        const uint32_t p = (uint32_t)x >> shift;
        const uint64_t c = cur[p]++;
        uint64_t *line = wc + (size_t)p * RF_LINE;
        line[c % RF_LINE] = x;
        if (c % RF_LINE == RF_LINE - 1) {
            const uint64_t l0 = c - (RF_LINE - 1);
            if (l0 >= seg[p]) {
                rf_stream_line(dst + l0, line);
            } else {
                for (uint64_t j = seg[p]; j <= c; j++)
                    dst[j] = line[j % RF_LINE];
            }
        }
    }
    for (uint64_t p = 0; p < P; p++) {
        const uint64_t c = cur[p];
        uint64_t j = c - c % RF_LINE;
        j = j < seg[p] ? seg[p] : j;
        for (; j < c; j++)
            dst[j] = wc[(size_t)p * RF_LINE + j % RF_LINE];
    }
    rf_stream_fence();
}

static void rf_hist(const uint32_t *restrict k, uint64_t lo, uint64_t hi,
                    uint32_t kmin32, int shift, uint64_t *restrict hist)
{
    for (uint64_t i = lo; i < hi; i++)
        hist[(uint32_t)(k[i] - kmin32) >> shift]++;
}

/* Makes worker buffer w (capacity *cap, len groups used) hold `need`
 * groups: a rare path (the estimate was low), allocating and copying. */
static dqo_status radix_wbuf_reserve(grp_output *w, uint64_t *cap,
                                     uint64_t len, uint64_t need,
                                     const grp_input *in)
{
    if (need <= *cap)
        return DQO_OK;
    grp_output bigger;
    const uint64_t c = 2 * *cap > need ? 2 * *cap : need;
    dqo_status st = grp_output_alloc(&bigger, in, c);
    if (st != DQO_OK)
        return st;
    memcpy(bigger.keys, w->keys, len * sizeof(int64_t));
    memcpy(bigger.count, w->count, len * sizeof(int64_t));
    for (int a = 0; a < in->naggs; a++)
        memcpy(bigger.acc[a], w->acc[a], len * sizeof(int64_t));
    grp_output_free(w, in->naggs);
    *w = bigger;
    *cap = c;
    return DQO_OK;
}

/* Concatenates the partitions' groups into out, in partition order:
 * partition p's gcount[p] groups are at wbuf[pwork[p]] from poff[p], or,
 * when pwork[p] is -1, in place of its items (pbuf from pstart[p]: keys,
 * count and accumulators, gcount[p] each). gcount becomes the output start
 * of each partition. */
static dqo_status radix_assemble(const grp_input *in, uint64_t P, int T,
                                 uint64_t *gcount, const grp_output *wbuf,
                                 const int *pwork, const uint64_t *poff,
                                 const uint64_t *pbuf, const uint64_t *pstart,
                                 grp_output *out)
{
    uint64_t G = 0;
    for (uint64_t p = 0; p <= P; p++) {
        const uint64_t n = gcount[p];
        gcount[p] = G;
        G += n;
    }
    dqo_status st = grp_output_alloc(out, in, G);
    if (st != DQO_OK)
        return st;
#pragma omp parallel for num_threads(T) schedule(dynamic, 4)
    for (uint64_t p = 0; p < P; p++) {
        const uint64_t n = gcount[p + 1] - gcount[p];
        if (n == 0)
            continue;
        if (pwork[p] < 0) {
            const int64_t *src = (const int64_t *)(pbuf + pstart[p]);
            memcpy(out->keys + gcount[p], src, n * sizeof(int64_t));
            memcpy(out->count + gcount[p], src + n, n * sizeof(int64_t));
            for (int a = 0; a < in->naggs; a++)
                memcpy((int64_t *)out->acc[a] + gcount[p],
                       src + (2 + (uint64_t)a) * n, n * sizeof(int64_t));
            continue;
        }
        const grp_output *src = &wbuf[pwork[p]];
        memcpy(out->keys + gcount[p], src->keys + poff[p], n * sizeof(int64_t));
        memcpy(out->count + gcount[p], src->count + poff[p],
               n * sizeof(int64_t));
        for (int a = 0; a < in->naggs; a++)
            memcpy((int64_t *)out->acc[a] + gcount[p],
                   (const int64_t *)src->acc[a] + poff[p], n * sizeof(int64_t));
    }
    return DQO_OK;
}

/* The capacity of a hash table for about g groups (and at most n rows of
 * `range` keys): a power of two that keeps the load below the 3/4 limit
 * with a margin of 1/32 for the estimate's error. */
static uint64_t rf_hash_cap(uint64_t g, uint64_t n, uint64_t range)
{
    g = g + g / 32 + 16;
    g = g > n ? n : g;
    g = g > range ? range : g;
    return rf_pow2_at_least(g + g / 3 + 1);
}

/* Whether the packed fast path applies. */
static bool rf_eligible(const grp_input *in)
{
    if (in->key_type != DQO_TYPE_U32 && in->key_type != DQO_TYPE_I32)
        return false;
    /* Counts are 32-bit and 32-bit sums need no overflow checks. */
    if (in->rows >= (UINT64_C(1) << 31))
        return false;
    if (in->naggs == 0)
        return true;
    if (in->naggs != 1)
        return false;
    const grp_agg *a = &in->aggs[0];
    if (a->valid != NULL)
        return false;
    return a->op == AGG_OP_COUNT || a->type == DQO_TYPE_U32 ||
           a->type == DQO_TYPE_I32;
}

/* The table plan of partition p (rows n, offsets [base, base + range)): a
 * direct array of `range` entries when the range is dense and small, else
 * a hash table of a power-of-two capacity for the estimated groups. */
static bool rf_plan(uint64_t n, uint64_t range, uint64_t est, uint64_t rows,
                    uint64_t dmax, uint64_t *cap)
{
    if (range <= 2 * n && range <= dmax) {
        *cap = range;
        return true;
    }
    *cap = rf_hash_cap(est * n / rows, n, range);
    return false;
}

/* The fan-out: the fewest partitions whose hash tables fit in half of L2,
 * 0 when one table for all groups does. */
static int rf_choose_bits(const granule *g, uint64_t est, uint64_t rows,
                          int T, int key_bits, uint64_t l2)
{
    int bits;
    if (g != NULL && g->radix_bits != 0) {
        bits = g->radix_bits;
    } else {
        bits = 0;
        while (bits < 32 && rf_hash_cap(est >> bits, rows, UINT64_MAX) *
                                    sizeof(rf_entry) >
                                l2 / RADIX_L2_SHARE)
            bits++;
        int par = 0;
        while ((1 << par) < RADIX_PARTS_PER_THREAD * T)
            par++;
        if (bits > 0 && bits < par)
            bits = par;
        if (bits > RADIX_MAX_BITS)
            bits = RADIX_MAX_BITS;
    }
    bits = bits > key_bits ? key_bits : bits;
    return bits > 24 ? 24 : bits;
}

static dqo_status radix_fast(const grp_input *in, const granule *g,
                             uint64_t est, int key_bits, grp_output *out)
{
    dqo_status st = DQO_OK;
    const int T = in->threads < 1 ? 1 : in->threads;
    const uint64_t rows = in->rows;
    const int64_t kmin = in->key_stats->min;
    const uint32_t kmin32 = (uint32_t)(uint64_t)kmin;
    const uint64_t span = (uint64_t)in->key_stats->max - (uint64_t)kmin;
    const uint32_t *keys = in->keys;
    const uint32_t *vals = NULL;
    rf_op op = RF_NONE;
    bool sgn = false, count_acc = false;
    if (in->naggs == 1) {
        const grp_agg *a = &in->aggs[0];
        if (a->op == AGG_OP_COUNT) {
            count_acc = true;
        } else {
            vals = a->data;
            sgn = a->type == DQO_TYPE_I32;
            op = a->op == AGG_OP_SUM   ? RF_SUM
                 : a->op == AGG_OP_MIN ? RF_MIN
                                       : RF_MAX;
        }
    }
    cpu_caches cc;
    cpu_get_caches(&cc);
    int bits = rf_choose_bits(g, est, rows, T, key_bits, cc.l2);

    rf_tab *tabs = mem_calloc((size_t)T, sizeof *tabs);
    dqo_status *wst = mem_calloc((size_t)T, sizeof *wst);
    uint64_t *prog = mem_calloc((size_t)T, sizeof *prog);
    bool retried = false;
    uint64_t *hist = NULL, *cur = NULL, *wc = NULL, *pbuf = NULL;
    uint64_t *pstart = NULL, *gcount = NULL, *wcap = NULL, *wlen = NULL;
    uint64_t *poff = NULL;
    int *pwork = NULL;
    grp_output *wbuf = NULL;
    if (tabs == NULL || wst == NULL || prog == NULL)
        goto nomem;

    if (bits == 0) {
        /* No partitioning: the groups fit in L2, so each thread groups its
         * block of rows into a private table, and the tables are merged. */
        const uint64_t c0 = rf_hash_cap(est, rows / (uint64_t)T + 1,
                                        UINT64_MAX);
        for (int b = 0; b < T; b++) {
            st = rf_tab_reserve(&tabs[b], c0);
            if (st != DQO_OK)
                goto fail;
        }
        /* A table that grows past 8x its plan means the estimate was far
         * too low: with several threads, every one would end up holding
         * most groups, so they give up and the rows are partitioned. */
        int too_many = 0;
#pragma omp parallel num_threads(T)
        for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
            const uint64_t lo = rows * (uint64_t)b / (uint64_t)T;
            const uint64_t hi = rows * (uint64_t)(b + 1) / (uint64_t)T;
            uint64_t items[AGG_CHUNK];
            rf_tab_clear(&tabs[b], c0);
            for (uint64_t r = lo; r < hi && wst[b] == DQO_OK; r += AGG_CHUNK) {
                if (T > 1 && tabs[b].cap > 8 * c0) {
#pragma omp atomic write
                    too_many = 1;
                    break;
                }
                const uint64_t n = hi - r < AGG_CHUNK ? hi - r : AGG_CHUNK;
                for (uint64_t j = 0; j < n; j++)
                    items[j] = rf_item(keys + r, vals == NULL ? NULL : vals + r,
                                       j, kmin32);
                wst[b] = rf_hash_add(&tabs[b], items, n, op, sgn);
                prog[b] += n;
            }
        }
        for (int b = 0; b < T; b++) {
            if (wst[b] != DQO_OK) {
                st = wst[b];
                goto fail;
            }
        }
        if (too_many) {
            /* The groups seen, scaled to all rows: a rough new estimate. */
            uint64_t seen = 0, done_rows = 0;
            for (int b = 0; b < T; b++) {
                seen += tabs[b].used;
                done_rows += prog[b];
            }
            seen = done_rows == 0 || seen >= done_rows
                       ? rows
                       : (uint64_t)((double)seen * (double)rows /
                                    (double)done_rows);
            seen = seen > rows ? rows : seen;
            est = seen > est ? seen : est;
            retried = true;
            bits = rf_choose_bits(NULL, est, rows, T, key_bits, cc.l2);
            bits = bits < 1 ? 1 : bits;
            goto partitioned;
        }
        rf_tab *h = &tabs[0];
        for (int b = 1; b < T; b++) {
            const rf_tab *s = &tabs[b];
            for (uint64_t i = 0; i < s->cap; i++) {
                if (s->t[i].cnt == 0)
                    continue;
                if (h->used >= h->limit) {
                    st = rf_tab_grow(h, op);
                    if (st != DQO_OK)
                        goto fail;
                }
                rf_tab_put(h, &s->t[i], op);
            }
        }
        st = grp_output_alloc(out, in, h->used);
        if (st != DQO_OK)
            goto fail;
        rf_emit(h->t, h->cap, false, 0, kmin, count_acc, out, 0, in->naggs);
        snprintf(out->detail, sizeof out->detail,
                 "radix: 0 bits (groups fit in L2: no partitioning), packed "
                 "key+value, private tables x%d, merged",
                 T);
        goto done;
    }

partitioned:;
    const int shift = key_bits - bits;
    const uint64_t P = UINT64_C(1) << bits;
    /* Per-thread histograms, cursors and write-combining lines are left
     * uninitialised here: each thread zeroes or fills its own (first touch
     * on its NUMA node). */
    hist = mem_alloc((size_t)T * P * sizeof *hist);
    cur = mem_alloc((size_t)T * P * sizeof *cur);
    wc = mem_alloc((size_t)T * P * RF_LINE * sizeof *wc);
    pstart = mem_calloc(P + 1, sizeof *pstart);
    gcount = mem_calloc(P + 1, sizeof *gcount);
    pbuf = mem_scratch_alloc(rows * sizeof *pbuf);
    wbuf = mem_calloc((size_t)T, sizeof *wbuf);
    wcap = mem_calloc((size_t)T, sizeof *wcap);
    wlen = mem_calloc((size_t)T, sizeof *wlen);
    pwork = mem_calloc(P, sizeof *pwork);
    poff = mem_calloc(P, sizeof *poff);
    if (hist == NULL || cur == NULL || wc == NULL || pstart == NULL ||
        gcount == NULL || pbuf == NULL || wbuf == NULL || wcap == NULL ||
        wlen == NULL || pwork == NULL || poff == NULL)
        goto nomem;
    radix_advise_huge(pbuf, rows * sizeof *pbuf);
    /* Pass 1: per-thread histograms. */
#pragma omp parallel num_threads(T)
    for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
        const uint64_t lo = rows * (uint64_t)b / (uint64_t)T;
        const uint64_t hi = rows * (uint64_t)(b + 1) / (uint64_t)T;
        memset(hist + (size_t)b * P, 0, P * sizeof *hist);
        rf_hist(keys, lo, hi, kmin32, shift, hist + (size_t)b * P);
    }
    const uint64_t max_rows = radix_prefix(hist, T, P, pstart);
    /* Pass 2: one scatter of packed items. Each thread's segments are its
     * own, so it also takes the first-touch page faults of its pages. */
#pragma omp parallel num_threads(T)
    for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
        const uint64_t lo = rows * (uint64_t)b / (uint64_t)T;
        const uint64_t hi = rows * (uint64_t)(b + 1) / (uint64_t)T;
        uint64_t *c = cur + (size_t)b * P;
        const uint64_t *o = hist + (size_t)b * P;
        memcpy(c, o, P * sizeof *c);
        rf_scatter(keys, vals, lo, hi, kmin32, shift, P, c, o,
                   wc + (size_t)b * P * RF_LINE, pbuf);
    }
    /* Tables and output buffers, sized before the grouping region. */
    uint64_t dmax = cc.l2 / RADIX_L2_SHARE / sizeof(rf_entry);
    dmax = dmax < RADIX_DIRECT_MIN_SLOTS ? RADIX_DIRECT_MIN_SLOTS : dmax;
    uint64_t tcap = 256;
    for (uint64_t p = 0; p < P; p++) {
        const uint64_t n = pstart[p + 1] - pstart[p];
        if (n == 0)
            continue;
        const uint64_t base = p << shift;
        const uint64_t range =
            (span - base) < (UINT64_C(1) << shift) ? span - base + 1
                                                   : UINT64_C(1) << shift;
        uint64_t c;
        rf_plan(n, range, est, rows, dmax, &c);
        tcap = c > tcap ? c : tcap;
    }
    for (int b = 0; b < T; b++) {
        st = rf_tab_reserve(&tabs[b], tcap);
        if (st != DQO_OK)
            goto fail;
        /* Groups go to these buffers only from partitions with fewer than
         * 2 + naggs rows per group on average. */
        uint64_t c = est * (uint64_t)(2 + in->naggs) <= rows / 2
                         ? 1024
                         : 2 * est / (uint64_t)T + 1024;
        c = c > rows ? rows : c;
        st = grp_output_alloc(&wbuf[b], in, c);
        if (st != DQO_OK)
            goto fail;
        wcap[b] = c;
    }
    uint64_t ndirect = 0, nhash = 0, nspill = 0;
#pragma omp parallel num_threads(T) reduction(+ : ndirect, nhash, nspill)
    {
        const int w = omp_get_thread_num();
        rf_tab *h = &tabs[w];
#pragma omp for schedule(dynamic, 1)
        for (uint64_t p = 0; p < P; p++) {
            const uint64_t lo = pstart[p], n = pstart[p + 1] - lo;
            if (n == 0 || wst[w] != DQO_OK)
                continue;
            const uint64_t base = p << shift;
            const uint64_t range =
                (span - base) < (UINT64_C(1) << shift) ? span - base + 1
                                                       : UINT64_C(1) << shift;
            uint64_t c;
            const bool direct = rf_plan(n, range, est, rows, dmax, &c);
            uint64_t groups = 0;
            if (direct) {
                memset(h->t, 0, c * sizeof *h->t);
                rf_direct_add(h->t, (uint32_t)base, pbuf + lo, n, op, sgn);
                for (uint64_t s = 0; s < c; s++)
                    groups += h->t[s].cnt != 0;
            } else {
                rf_tab_clear(h, c);
                wst[w] = rf_hash_add(h, pbuf + lo, n, op, sgn);
                groups = h->used;
            }
            if (wst[w] != DQO_OK)
                continue;
            /* The groups replace the partition's items when they fit (as
             * arrays keys, count, acc of `groups` each): those pages are
             * already mapped. Else they go to the worker's buffer. */
            grp_output view, *dst = &view;
            uint64_t pos = 0;
            if (groups * (uint64_t)(2 + in->naggs) <= n) {
                memset(&view, 0, sizeof view);
                view.keys = (int64_t *)(pbuf + lo);
                view.count = view.keys + groups;
                view.acc[0] = view.count + groups;
                pwork[p] = -1;
            } else {
                wst[w] = radix_wbuf_reserve(&wbuf[w], &wcap[w], wlen[w],
                                            wlen[w] + groups, in);
                if (wst[w] != DQO_OK)
                    continue;
                dst = &wbuf[w];
                pos = wlen[w];
                pwork[p] = w;
                poff[p] = wlen[w];
                wlen[w] += groups;
                nspill++;
            }
            gcount[p] = groups;
            if (direct) {
                rf_emit(h->t, c, true, (uint32_t)base, kmin, count_acc, dst,
                        pos, in->naggs);
                ndirect++;
            } else {
                rf_emit(h->t, h->cap, false, 0, kmin, count_acc, dst, pos,
                        in->naggs);
                nhash++;
            }
        }
    }
    for (int b = 0; b < T; b++) {
        if (wst[b] != DQO_OK) {
            st = wst[b];
            goto fail;
        }
    }
    st = radix_assemble(in, P, T, gcount, wbuf, pwork, poff, pbuf, pstart,
                        out);
    if (st != DQO_OK)
        goto fail;
    snprintf(out->detail, sizeof out->detail,
             "radix: %d bits of %d, packed key+value, WC scatter, %u parts "
             "(max %u rows), %u direct + %u hash (%u spilled), %d threads%s",
             bits, key_bits, (unsigned)P, (unsigned)max_rows,
             (unsigned)ndirect, (unsigned)nhash, (unsigned)nspill, T,
             retried ? ", estimate too low" : "");
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
    if (tabs != NULL)
        for (int b = 0; b < T; b++)
            mem_free(tabs[b].t);
    mem_free(tabs);
    mem_free(wst);
    mem_free(prog);
    mem_free(hist);
    mem_free(cur);
    mem_free(wc);
    mem_free(pstart);
    mem_free(gcount);
    mem_scratch_free(pbuf);
    mem_free(wbuf);
    mem_free(wcap);
    mem_free(wlen);
    mem_free(pwork);
    mem_free(poff);
    return st;
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
    if (rf_eligible(in))
        return radix_fast(in, g, est, key_bits, out);
    const int bits = radix_choose_bits(in, g, est, T, key_bits);
    const int shift = key_bits - bits;
    const uint64_t P = UINT64_C(1) << bits;
    const size_t ksz = radix_type_size(in->key_type);

    /* Per-thread histograms and cursors: zeroed or filled by their own
     * threads (first touch on their NUMA nodes). */
    hist = mem_alloc((size_t)T * P * sizeof *hist);
    cur = mem_alloc((size_t)T * P * sizeof *cur);
    pstart = mem_calloc(P + 1, sizeof *pstart);
    gcount = mem_calloc(P + 1, sizeof *gcount);
    kbuf = mem_scratch_alloc(in->rows * ksz);
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
        abuf[a] = mem_scratch_alloc(in->rows * radix_type_size(in->aggs[a].type));
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
        memset(h, 0, P * sizeof *h);
        switch (in->key_type) {
        case DQO_TYPE_U32: radix_hist_u32(in->keys, lo, hi, kmin, shift, bits, h); break;
        case DQO_TYPE_I32: radix_hist_i32(in->keys, lo, hi, kmin, shift, bits, h); break;
        default: radix_hist_i64(in->keys, lo, hi, kmin, shift, bits, h); break;
        }
    }
    /* Prefix sums: partition starts, and each thread's offset in each. */
    const uint64_t max_rows = radix_prefix(hist, T, P, pstart);

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
    /* Allocated only: a worker resets the slots of a direct table
     * (radix_direct) and clears its hash table (cpu_htab_clear) before each
     * partition, so the first touch of their pages is the worker's. */
    for (int b = 0; b < T; b++) {
        flags[b].overflow_agg = -1;
        st = agg_table_alloc(&dtabs[b], in, dcap);
        if (st == DQO_OK)
            st = cpu_htab_alloc(&htabs[b], in, kmin, 0, hgroups);
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
            if (wst[w] == DQO_OK)
                wst[w] = radix_wbuf_reserve(&wbuf[w], &wcap[w], wlen[w], need,
                                            in);
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
    st = radix_assemble(in, P, T, gcount, wbuf, pwork, poff, NULL, NULL, out);
    if (st != DQO_OK)
        goto fail;
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
        mem_scratch_free(abuf[a]);
        mem_free(vbuf[a]);
    }
    mem_free(hist);
    mem_free(cur);
    mem_free(pstart);
    mem_free(gcount);
    mem_scratch_free(kbuf);
    mem_free(htabs);
    mem_free(dtabs);
    mem_free(flags);
    mem_free(wst);
    return st;
}
