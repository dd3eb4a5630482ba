/*
 * group_hash.c - hash grouping (HG): an open-addressing hash table with
 * linear probing, the Murmur3 64-bit finaliser as hash function, and
 * columnar accumulators beside it.
 *
 * The planner selects it when the keys are neither dense (no direct array)
 * nor clustered (no order-based grouping) and the estimated groups are few
 * enough that one table is cheaper than radix partitioning. It costs one
 * pass over the input with a hash and a probe per row; memory is
 * 2 * groups * (8 + 8 + 8 * naggs) bytes per table (load factor <= 0.5 at
 * the estimate; a table grows when the load passes 0.7).
 *
 * Parallel modes. When a table for the estimated groups fits in half of a
 * core's L2, every thread fills a private table over its block of rows; the
 * tables are then merged in parallel by hash: each merger owns the keys whose
 * hash has its low bits, so mergers never share a key. Above that size one
 * table is shared: a key slot is claimed with compare-and-swap and the
 * accumulators use atomic updates. The shared table cannot grow, so it is
 * sized from the estimate (2x, and never beyond 2x the rows); should the
 * estimate be wrong and the table fill past 3/4, the threads stop and the
 * query reruns through radix partitioning, whose per-partition tables grow.
 * Correctness never depends on the estimate.
 *
 * Output groups come in hash-table order. Reference: the DQO paper, Section
 * 5.1 (HG); the table is the one that paper's footnote 2 compares against
 * std::unordered_map, with open addressing instead of chaining.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_int.h"

/* Grow a private table when its load passes 7/10: linear probing's expected
 * probe length rises quickly beyond that. */
#define HASH_MAX_LOAD_NUM 7
#define HASH_MAX_LOAD_DEN 10

/* Private tables while one of them takes at most 1 / HASH_PRIVATE_L2_SHARE
 * of L2: the input streams through the other half. */
#define HASH_PRIVATE_L2_SHARE 2

/* The largest capacity: slot ids (and slot `cap`) are 32-bit. */
#define HASH_MAX_CAP (UINT64_C(1) << 31)

#define HASH_KEY_TYPES(X)                                                      \
    X(u32, uint32_t)                                                           \
    X(i32, int32_t)                                                            \
    X(i64, int64_t)

static inline uint64_t hash_pow2_at_least(uint64_t x)
{
    uint64_t c = 1;
    while (c < x && c < (UINT64_C(1) << 62))
        c <<= 1;
    return c;
}

static inline uint64_t hash_home(uint64_t off, int shift, uint64_t mask)
{
    return (cpu_hash64(off) >> shift) & mask;
}

/* --------------------------------------------------- the private table */

static dqo_status htab_alloc(cpu_htab *h, const grp_input *in, int64_t base,
                             int shift, uint64_t cap)
{
    memset(h, 0, sizeof *h);
    if (cap > HASH_MAX_CAP)
        return DQO_ENOMEM;
    h->cap = cap;
    h->limit = cap / HASH_MAX_LOAD_DEN * HASH_MAX_LOAD_NUM +
               cap % HASH_MAX_LOAD_DEN * HASH_MAX_LOAD_NUM / HASH_MAX_LOAD_DEN;
    h->shift = shift;
    h->base = base;
    h->offs = mem_alloc(cap * sizeof *h->offs);
    if (h->offs == NULL)
        return DQO_ENOMEM;
    memset(h->offs, 0xff, cap * sizeof *h->offs);
    dqo_status st = agg_table_init(&h->acc, in, cap + 1);
    if (st != DQO_OK) {
        mem_free(h->offs);
        h->offs = NULL;
    }
    return st;
}

dqo_status cpu_htab_init(cpu_htab *h, const grp_input *in, int64_t base,
                         int shift, uint64_t groups)
{
    const uint64_t want = groups > HASH_MAX_CAP / 2 ? HASH_MAX_CAP : 2 * groups;
    return htab_alloc(h, in, base, shift,
                      hash_pow2_at_least(want < 16 ? 16 : want));
}

void cpu_htab_clear(cpu_htab *h, const grp_input *in, int64_t base)
{
    memset(h->offs, 0xff, h->cap * sizeof *h->offs);
    agg_table_reset(&h->acc, in, 0, h->cap + 1);
    h->used = 0;
    h->top_used = false;
    h->base = base;
}

void cpu_htab_free(cpu_htab *h, const grp_input *in)
{
    mem_free(h->offs);
    agg_table_free(&h->acc, in);
    memset(h, 0, sizeof *h);
}

/* The slot of offset `off`, inserting it; the caller made sure that
 * used < limit, so an empty slot exists. */
static inline uint64_t htab_find_or_insert(cpu_htab *h, uint64_t off)
{
    const uint64_t mask = h->cap - 1;
    uint64_t i = hash_home(off, h->shift, mask);
    for (;;) {
        const uint64_t o = h->offs[i];
        if (o == off)
            return i;
        if (o == CPU_HTAB_EMPTY) {
            h->offs[i] = off;
            h->used++;
            return i;
        }
        i = (i + 1) & mask;
    }
}

/* Doubles the capacity, moving every group (a rare path: one call per group
 * is fine here). */
static dqo_status htab_grow(cpu_htab *h, const grp_input *in)
{
    cpu_htab n;
    dqo_status st = htab_alloc(&n, in, h->base, h->shift, h->cap * 2);
    if (st != DQO_OK)
        return st;
    for (uint64_t i = 0; i < h->cap; i++) {
        const uint64_t off = h->offs[i];
        if (off == CPU_HTAB_EMPTY)
            continue;
        const uint64_t j = htab_find_or_insert(&n, off);
        agg_merge_range(&n.acc, j, &h->acc, i, 1, in, NULL);
    }
    agg_merge_range(&n.acc, n.cap, &h->acc, h->cap, 1, in, NULL);
    n.top_used = h->top_used;
    cpu_htab_free(h, in);
    *h = n;
    return DQO_OK;
}

/* Slots for rows [row0, row0 + n); stops before the first row that would
 * insert past the load limit and returns how many rows got a slot. */
#define HASH_DEFINE_PROBE(kt, K)                                               \
    static uint32_t htab_probe_##kt(cpu_htab *h, const K *restrict k,          \
                                    uint64_t row0, uint32_t n,                 \
                                    uint32_t *restrict slots)                  \
    {                                                                          \
        uint64_t *restrict offs = h->offs;                                     \
        const uint64_t mask = h->cap - 1, base = (uint64_t)h->base;            \
        const uint64_t limit = h->limit;                                       \
        const int shift = h->shift;                                            \
        uint64_t used = h->used;                                               \
        uint32_t j;                                                            \
        for (j = 0; j < n; j++) {                                              \
            const uint64_t off = (uint64_t)(int64_t)k[row0 + j] - base;        \
            if (off == CPU_HTAB_EMPTY) {                                       \
                h->top_used = true;                                            \
                slots[j] = (uint32_t)h->cap;                                   \
                continue;                                                      \
            }                                                                  \
            uint64_t i = hash_home(off, shift, mask);                          \
            for (;;) {                                                         \
                const uint64_t o = offs[i];                                    \
                if (o == off)                                                  \
                    break;                                                     \
                if (o == CPU_HTAB_EMPTY) {                                     \
                    if (used >= limit)                                         \
                        goto full;                                             \
                    offs[i] = off;                                             \
                    used++;                                                    \
                    break;                                                     \
                }                                                              \
                i = (i + 1) & mask;                                            \
            }                                                                  \
            slots[j] = (uint32_t)i;                                            \
        }                                                                      \
    full:                                                                      \
        h->used = used;                                                        \
        return j;                                                              \
    }
HASH_KEY_TYPES(HASH_DEFINE_PROBE)

static uint32_t htab_probe(cpu_htab *h, const grp_input *in, uint64_t row0,
                           uint32_t n, uint32_t *slots)
{
    switch (in->key_type) {
    case DQO_TYPE_U32: return htab_probe_u32(h, in->keys, row0, n, slots);
    case DQO_TYPE_I32: return htab_probe_i32(h, in->keys, row0, n, slots);
    default: return htab_probe_i64(h, in->keys, row0, n, slots);
    }
}

dqo_status cpu_htab_add(cpu_htab *h, const grp_input *in, uint64_t lo,
                        uint64_t hi, agg_flags *f)
{
    uint32_t slots[AGG_CHUNK];
    uint64_t r = lo;
    while (r < hi) {
        const uint32_t n = (uint32_t)(hi - r < AGG_CHUNK ? hi - r : AGG_CHUNK);
        const uint32_t done = htab_probe(h, in, r, n, slots);
        if (done > 0)
            agg_update(&h->acc, in, slots, r, done, f);
        r += done;
        if (done < n) {
            dqo_status st = htab_grow(h, in);
            if (st != DQO_OK)
                return st;
        }
    }
    return DQO_OK;
}

/* Emits the occupied slots of [lo, hi) at pos; returns how many. */
static uint64_t htab_emit_range(const uint64_t *restrict offs,
                                const agg_table *acc, int64_t base,
                                const grp_input *in, grp_output *out,
                                uint64_t pos, uint64_t lo, uint64_t hi)
{
    uint64_t p = pos;
    for (uint64_t i = lo; i < hi; i++)
        if (offs[i] != CPU_HTAB_EMPTY)
            out->keys[p++] = (int64_t)((uint64_t)base + offs[i]);
    p = pos;
    for (uint64_t i = lo; i < hi; i++)
        if (offs[i] != CPU_HTAB_EMPTY)
            out->count[p++] = acc->count[i];
    for (int a = 0; a < in->naggs; a++) {
        const int64_t *restrict src = acc->acc[a];
        int64_t *restrict dst = out->acc[a];
        p = pos;
        for (uint64_t i = lo; i < hi; i++)
            if (offs[i] != CPU_HTAB_EMPTY)
                dst[p++] = src[i];
    }
    return p - pos;
}

static void htab_emit_top(const agg_table *acc, uint64_t slot, int64_t base,
                          const grp_input *in, grp_output *out, uint64_t pos)
{
    out->keys[pos] = (int64_t)((uint64_t)base + CPU_HTAB_EMPTY);
    agg_emit_range(out, pos, acc, slot, 1, in);
}

void cpu_htab_emit(const cpu_htab *h, const grp_input *in, grp_output *out,
                   uint64_t pos)
{
    pos += htab_emit_range(h->offs, &h->acc, h->base, in, out, pos, 0, h->cap);
    if (h->top_used)
        htab_emit_top(&h->acc, h->cap, h->base, in, out, pos);
}

/* ------------------------------------------------ thread-private tables */

static void hash_note_flags(grp_output *out, const agg_flags *f)
{
    if (f->overflow_agg >= 0 &&
        (!out->overflow || f->overflow_agg < out->overflow_agg)) {
        out->overflow = true;
        out->overflow_agg = f->overflow_agg;
    }
}

static dqo_status hash_private(const grp_input *in, uint64_t est, int T,
                               grp_output *out)
{
    dqo_status st = DQO_OK;
    const int64_t base = in->key_stats->min;
    /* Mergers: a power of two >= T, each owning hash & (M - 1). */
    int mbits = 0;
    while ((1 << mbits) < T)
        mbits++;
    const int M = T == 1 ? 1 : 1 << mbits;
    cpu_htab *tabs = mem_calloc((size_t)T, sizeof *tabs);
    cpu_htab *mer = mem_calloc((size_t)M, sizeof *mer);
    /* Status and flags per thread, then per merger (M >= T entries). */
    agg_flags *flags = mem_calloc((size_t)M, sizeof *flags);
    dqo_status *tst = mem_calloc((size_t)M, sizeof *tst);
    uint32_t **idx = mem_calloc((size_t)T, sizeof *idx);
    uint64_t *bucket = mem_calloc((size_t)T * (size_t)(M + 1), sizeof *bucket);
    uint64_t *mpos = mem_calloc((size_t)M + 1, sizeof *mpos);
    if (tabs == NULL || mer == NULL || flags == NULL || tst == NULL ||
        idx == NULL || bucket == NULL || mpos == NULL) {
        st = DQO_ENOMEM;
        goto fail;
    }
    for (int m = 0; m < M; m++)
        flags[m].overflow_agg = -1;
    for (int b = 0; b < T; b++) {
        st = cpu_htab_init(&tabs[b], in, base, 0, est);
        if (st != DQO_OK)
            goto fail;
    }

#pragma omp parallel num_threads(T)
    for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
        const uint64_t lo = in->rows * (uint64_t)b / (uint64_t)T;
        const uint64_t hi = in->rows * (uint64_t)(b + 1) / (uint64_t)T;
        tst[b] = cpu_htab_add(&tabs[b], in, lo, hi, &flags[b]);
    }
    for (int b = 0; b < T; b++) {
        if (tst[b] != DQO_OK) {
            st = tst[b];
            goto fail;
        }
        hash_note_flags(out, &flags[b]);
        flags[b].overflow_agg = -1;
    }

    if (T == 1) {
        const bool ovf = out->overflow;
        const int ovf_agg = out->overflow_agg;
        st = grp_output_alloc(out, in, cpu_htab_groups(&tabs[0]));
        if (st != DQO_OK)
            goto fail;
        out->overflow = ovf;
        out->overflow_agg = ovf ? ovf_agg : -1;
        cpu_htab_emit(&tabs[0], in, out, 0);
        snprintf(out->detail, sizeof out->detail,
                 "hg: private table, capacity %llu, %llu groups (estimate %llu)",
                 (unsigned long long)tabs[0].cap,
                 (unsigned long long)out->groups, (unsigned long long)est);
        goto done;
    }

    /* Each table's groups, ordered by merger (a counting sort on the low
     * hash bits), so that a merger reads only its own groups. */
    for (int b = 0; b < T; b++) {
        idx[b] = mem_alloc((tabs[b].used + 1) * sizeof(uint32_t));
        if (idx[b] == NULL) {
            st = DQO_ENOMEM;
            goto fail;
        }
    }
    for (int m = 0; m < M; m++) {
        const uint64_t per = est / (uint64_t)M + est / (uint64_t)M / 4 + 16;
        st = cpu_htab_init(&mer[m], in, base, mbits, per);
        if (st != DQO_OK)
            goto fail;
    }

#pragma omp parallel num_threads(T)
    {
        for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
            const cpu_htab *h = &tabs[b];
            uint64_t *bk = bucket + (size_t)b * (size_t)(M + 1);
            const uint64_t mmask = (uint64_t)M - 1;
            for (uint64_t i = 0; i < h->cap; i++)
                if (h->offs[i] != CPU_HTAB_EMPTY)
                    bk[(cpu_hash64(h->offs[i]) & mmask) + 1]++;
            for (int m = 0; m < M; m++)
                bk[m + 1] += bk[m];
            /* bk[m] now is the start of bucket m; fill, then shift back. */
            for (uint64_t i = 0; i < h->cap; i++)
                if (h->offs[i] != CPU_HTAB_EMPTY)
                    idx[b][bk[cpu_hash64(h->offs[i]) & mmask]++] = (uint32_t)i;
            for (int m = M; m > 0; m--)
                bk[m] = bk[m - 1];
            bk[0] = 0;
        }
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
        for (int m = 0; m < M; m++) {
            cpu_htab *d = &mer[m];
            agg_flags f = {-1};
            dqo_status ms = DQO_OK;
            for (int b = 0; b < T && ms == DQO_OK; b++) {
                const cpu_htab *s = &tabs[b];
                const uint64_t *bk = bucket + (size_t)b * (size_t)(M + 1);
                for (uint64_t e = bk[m]; e < bk[m + 1]; e++) {
                    if (d->used >= d->limit) {
                        ms = htab_grow(d, in);
                        if (ms != DQO_OK)
                            break;
                    }
                    const uint32_t i = idx[b][e];
                    const uint64_t j = htab_find_or_insert(d, s->offs[i]);
                    agg_merge_range(&d->acc, j, &s->acc, i, 1, in, &f);
                }
                /* The key whose offset is the empty marker: merger 0. */
                if (m == 0 && s->top_used) {
                    agg_merge_range(&d->acc, d->cap, &s->acc, s->cap, 1, in,
                                    &f);
                    d->top_used = true;
                }
            }
            tst[m] = ms;
            flags[m] = f;
        }
    }
    for (int m = 0; m < M; m++) {
        if (tst[m] != DQO_OK) {
            st = tst[m];
            goto fail;
        }
        hash_note_flags(out, &flags[m]);
    }

    for (int m = 0; m < M; m++)
        mpos[m + 1] = mpos[m] + cpu_htab_groups(&mer[m]);
    {
        const bool ovf = out->overflow;
        const int ovf_agg = out->overflow_agg;
        st = grp_output_alloc(out, in, mpos[M]);
        if (st != DQO_OK)
            goto fail;
        out->overflow = ovf;
        out->overflow_agg = ovf ? ovf_agg : -1;
    }
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
    for (int m = 0; m < M; m++)
        cpu_htab_emit(&mer[m], in, out, mpos[m]);
    snprintf(out->detail, sizeof out->detail,
             "hg: private tables x%d (capacity %llu), merged by hash x%d, "
             "%llu groups (estimate %llu)",
             T, (unsigned long long)tabs[0].cap, M,
             (unsigned long long)out->groups, (unsigned long long)est);
    goto done;
fail:
    grp_output_free(out, in->naggs);
    out->overflow_agg = -1;
done:
    if (tabs != NULL)
        for (int b = 0; b < T; b++)
            cpu_htab_free(&tabs[b], in);
    if (mer != NULL)
        for (int m = 0; m < M; m++)
            cpu_htab_free(&mer[m], in);
    if (idx != NULL)
        for (int b = 0; b < T; b++)
            mem_free(idx[b]);
    mem_free(tabs);
    mem_free(mer);
    mem_free(flags);
    mem_free(tst);
    mem_free(idx);
    mem_free(bucket);
    mem_free(mpos);
    return st;
}

/* ------------------------------------------------------- shared table */

#define HASH_DEFINE_PROBE_SHARED(kt, K)                                        \
    static uint32_t shared_probe_##kt(uint64_t *restrict offs, uint64_t cap,   \
                                      int64_t kbase, bool *top,                \
                                      const K *restrict k, uint64_t row0,      \
                                      uint32_t n, uint32_t *restrict slots)    \
    {                                                                          \
        const uint64_t mask = cap - 1, base = (uint64_t)kbase;                 \
        uint32_t inserted = 0;                                                 \
        for (uint32_t j = 0; j < n; j++) {                                     \
            const uint64_t off = (uint64_t)(int64_t)k[row0 + j] - base;        \
            if (off == CPU_HTAB_EMPTY) {                                       \
                __atomic_store_n(top, true, __ATOMIC_RELAXED);                 \
                slots[j] = (uint32_t)cap;                                      \
                continue;                                                      \
            }                                                                  \
            uint64_t i = hash_home(off, 0, mask);                              \
            for (;;) {                                                         \
                uint64_t o = __atomic_load_n(&offs[i], __ATOMIC_RELAXED);      \
                if (o == off)                                                  \
                    break;                                                     \
                if (o == CPU_HTAB_EMPTY) {                                     \
                    if (__atomic_compare_exchange_n(&offs[i], &o, off, false,  \
                                                    __ATOMIC_RELAXED,          \
                                                    __ATOMIC_RELAXED)) {       \
                        inserted++;                                            \
                        break;                                                 \
                    }                                                          \
                    if (o == off)                                              \
                        break;                                                 \
                }                                                              \
                i = (i + 1) & mask;                                            \
            }                                                                  \
            slots[j] = (uint32_t)i;                                            \
        }                                                                      \
        return inserted;                                                       \
    }
HASH_KEY_TYPES(HASH_DEFINE_PROBE_SHARED)

static dqo_status hash_shared(const grp_input *in, uint64_t est, int T,
                              grp_output *out, bool *overflowed)
{
    dqo_status st = DQO_OK;
    const int64_t base = in->key_stats->min;
    uint64_t *offs = NULL, *cnt = NULL;
    agg_table acc;
    agg_flags *flags = NULL;
    memset(&acc, 0, sizeof acc);
    *overflowed = false;

    /* 2x the estimate, and room for every thread's chunk in flight above
     * the 3/4 stop line, so the table can never be full while probing. */
    uint64_t want = 2 * (est < in->rows ? est : in->rows);
    const uint64_t margin = 4 * ((uint64_t)T + 1) * AGG_CHUNK;
    if (want < margin)
        want = margin;
    const uint64_t cap = hash_pow2_at_least(want);
    if (cap > HASH_MAX_CAP)
        return DQO_ENOMEM;
    const uint64_t stop = cap / 4 * 3;
    offs = mem_alloc(cap * sizeof *offs);
    cnt = mem_calloc((size_t)T + 1, sizeof *cnt);
    flags = mem_calloc((size_t)T, sizeof *flags);
    acc.cap = cap + 1;
    acc.count = mem_alloc((cap + 1) * sizeof(int64_t));
    bool ok = offs != NULL && cnt != NULL && flags != NULL && acc.count != NULL;
    for (int a = 0; a < in->naggs && ok; a++) {
        acc.acc[a] = mem_alloc((cap + 1) * sizeof(int64_t));
        ok = acc.acc[a] != NULL;
    }
    if (!ok) {
        st = DQO_ENOMEM;
        goto fail;
    }
    for (int b = 0; b < T; b++)
        flags[b].overflow_agg = -1;

    uint64_t inserted = 0;
    int abort_flag = 0;
    bool top = false;
#pragma omp parallel num_threads(T)
    {
        /* First touch in parallel: the table is as large as the data. */
#pragma omp for schedule(static)
        for (int s = 0; s < T; s++) {
            const uint64_t lo = (cap + 1) * (uint64_t)s / (uint64_t)T;
            const uint64_t hi = (cap + 1) * (uint64_t)(s + 1) / (uint64_t)T;
            const uint64_t ohi = hi < cap ? hi : cap;
            if (ohi > lo)
                memset(offs + lo, 0xff, (ohi - lo) * sizeof *offs);
            agg_table_reset(&acc, in, lo, hi - lo);
        }
        uint32_t slots[AGG_CHUNK];
        for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
            const uint64_t lo = in->rows * (uint64_t)b / (uint64_t)T;
            const uint64_t hi = in->rows * (uint64_t)(b + 1) / (uint64_t)T;
            for (uint64_t r = lo; r < hi; r += AGG_CHUNK) {
                if (__atomic_load_n(&abort_flag, __ATOMIC_RELAXED) != 0)
                    break;
                if (__atomic_load_n(&inserted, __ATOMIC_RELAXED) > stop) {
                    __atomic_store_n(&abort_flag, 1, __ATOMIC_RELAXED);
                    break;
                }
                const uint32_t n =
                    (uint32_t)(hi - r < AGG_CHUNK ? hi - r : AGG_CHUNK);
                uint32_t ins = 0;
                switch (in->key_type) {
                case DQO_TYPE_U32:
                    ins = shared_probe_u32(offs, cap, base, &top, in->keys, r,
                                           n, slots);
                    break;
                case DQO_TYPE_I32:
                    ins = shared_probe_i32(offs, cap, base, &top, in->keys, r,
                                           n, slots);
                    break;
                default:
                    ins = shared_probe_i64(offs, cap, base, &top, in->keys, r,
                                           n, slots);
                    break;
                }
                agg_update_atomic(&acc, in, slots, r, n, &flags[b]);
                if (ins > 0)
                    __atomic_add_fetch(&inserted, ins, __ATOMIC_RELAXED);
            }
        }
#pragma omp barrier
        if (abort_flag == 0) {
#pragma omp for schedule(static)
            for (int s = 0; s < T; s++) {
                const uint64_t lo = cap * (uint64_t)s / (uint64_t)T;
                const uint64_t hi = cap * (uint64_t)(s + 1) / (uint64_t)T;
                uint64_t n = 0;
                for (uint64_t i = lo; i < hi; i++)
                    n += offs[i] != CPU_HTAB_EMPTY;
                cnt[s + 1] = n;
            }
        }
    }
    if (abort_flag != 0) {
        *overflowed = true;
        goto fail;
    }
    for (int b = 0; b < T; b++)
        hash_note_flags(out, &flags[b]);
    for (int s = 0; s < T; s++)
        cnt[s + 1] += cnt[s];
    {
        const bool ovf = out->overflow;
        const int ovf_agg = out->overflow_agg;
        st = grp_output_alloc(out, in, cnt[T] + (top ? 1 : 0));
        if (st != DQO_OK)
            goto fail;
        out->overflow = ovf;
        out->overflow_agg = ovf ? ovf_agg : -1;
    }
#pragma omp parallel for num_threads(T) schedule(static)
    for (int s = 0; s < T; s++) {
        const uint64_t lo = cap * (uint64_t)s / (uint64_t)T;
        const uint64_t hi = cap * (uint64_t)(s + 1) / (uint64_t)T;
        htab_emit_range(offs, &acc, base, in, out, cnt[s], lo, hi);
    }
    if (top)
        htab_emit_top(&acc, cap, base, in, out, cnt[T]);
    snprintf(out->detail, sizeof out->detail,
             "hg: shared table, capacity %llu, CAS inserts and atomic "
             "updates, %d threads, %llu groups (estimate %llu)",
             (unsigned long long)cap, T, (unsigned long long)out->groups,
             (unsigned long long)est);
    goto done;
fail:
    grp_output_free(out, in->naggs);
    out->overflow_agg = -1;
done:
    mem_free(offs);
    mem_free(cnt);
    mem_free(flags);
    agg_table_free(&acc, in);
    return st;
}

dqo_status cpu_group_hash(const grp_input *in, const granule *g,
                          grp_output *out)
{
    memset(out, 0, sizeof *out);
    out->overflow_agg = -1;
    if (in->key_type != DQO_TYPE_U32 && in->key_type != DQO_TYPE_I32 &&
        in->key_type != DQO_TYPE_I64)
        return DQO_ETYPE;
    const int T = in->threads < 1 ? 1 : in->threads;
    uint64_t est = in->key_stats->distinct;
    if (est < 1)
        est = 1;
    if (est > in->rows)
        est = in->rows > 0 ? in->rows : 1;
    cpu_caches cc;
    cpu_get_caches(&cc);
    const uint64_t table_bytes = 2 * est * (16 + 8 * (uint64_t)in->naggs);
    bool shared;
    if (T == 1 || in->rows < 2 * (uint64_t)AGG_CHUNK)
        shared = false;
    else if (g != NULL && g->mode == PLAN_MODE_SHARED)
        shared = true;
    else if (g != NULL && g->mode == PLAN_MODE_PRIVATE)
        shared = false;
    else
        shared = table_bytes > cc.l2 / HASH_PRIVATE_L2_SHARE;
    if (!shared)
        return hash_private(in, est, T, out);

    bool overflowed = false;
    dqo_status st = hash_shared(in, est, T, out, &overflowed);
    if (!overflowed)
        return st;
    /* The estimate was far too low: radix partitioning's tables grow. */
    granule rg = {0};
    rg.kernel = GRP_KERNEL_RADIX;
    rg.part = PLAN_PART_RADIX;
    rg.index = PLAN_INDEX_HASH;
    rg.mode = PLAN_MODE_PARTITION;
    st = cpu_group_radix(in, &rg, out);
    if (st == DQO_OK) {
        char d[sizeof out->detail];
        snprintf(d, sizeof d, "hg: shared table overflowed (estimate %llu), "
                              "reran as %.120s",
                 (unsigned long long)est, out->detail);
        memcpy(out->detail, d, sizeof d);
    }
    return st;
}
