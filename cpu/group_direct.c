/*
 * group_direct.c - static perfect hash grouping (SPHG): the key minus the
 * column's minimum is the slot of an array of accumulators, so there is no
 * hashing, no probing and no key comparison.
 *
 * The planner selects it for dense keys: a key range (max - min + 1) of at
 * most plan_settings.direct_max_range slots, with enough distinct keys per
 * slot (direct_min_density). It costs one pass over the keys and the
 * aggregate columns plus a final scan of the range; its memory is
 * range * (8 + 8 * naggs) bytes per table.
 *
 * Parallel modes. Thread-private tables (each thread owns `range` slots,
 * merged at the end by cutting the slot range into one slice per thread) are
 * used while all of them fit in the machine's caches; above that one table is
 * shared and updated with atomics, because private copies would multiply both
 * the DRAM footprint and the merge traffic by the thread count. For tiny
 * ranges every private table holds DIRECT_LANES interleaved copies, so that
 * consecutive rows with the same key update different memory words: repeated
 * read-modify-writes of one word serialise on store-to-load forwarding
 * (about 5 cycles each), which would dominate a 10-group query.
 * COUNT(*) plus one SUM of a 32-bit column without NULLs (the paper's
 * experiment) runs a fused loop that reads a key and a value and updates two
 * words; every other combination goes through agg_update one chunk at a time.
 * The fused loop has two more variants, chosen from the statistics and the
 * cache sizes: when the keys come in runs (rows / runs >= DIRECT_RUN_MIN,
 * sorted or clustered input) a run's totals stay in registers and reach the
 * table once per run; when the table exceeds L2 the slot DIRECT_PREFETCH
 * rows ahead is prefetched, so DRAM misses overlap. Private tables are
 * initialised by their own threads (first touch in parallel), and the pair
 * scratch is a kept scratch block (mem_scratch_alloc).
 *
 * Output: the slots with a count above zero, in key order.
 * Reference: the DQO paper, Section 5.1 (SPHG).
 */
#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_int.h"

/* Interleaved copies of a tiny table (see above); 8 covers the depth of the
 * store-forwarding chain at about one row per cycle. */
#define DIRECT_LANES 8
/* Average run length from which the run-aware loop wins: a mispredicted
 * branch (~15 cycles) per run against a store-to-load chain (~5 cycles)
 * per row inside it; measured 1-thread on the host: sorted dense keys in
 * the table loop took 2.5x the time of the same keys unsorted. */
#define DIRECT_RUN_MIN 4
/* Rows of look-ahead for the prefetching loop: enough misses in flight to
 * cover DRAM latency (~100 ns at ~2 ns per row) without running past what
 * the line fill buffers hold. */
#define DIRECT_PREFETCH 24

/* Lanes are used while DIRECT_LANES copies fit in half of L1d (the other
 * half is for the streaming input): 48 KiB L1d and 16-byte slots give 192
 * keys. Above that the chance that two consecutive rows share a slot
 * (1 / range) is too small to matter. */
#define DIRECT_LANES_L1_SHARE 2

/* Forcing private tables (PLAN_MODE_PRIVATE) still stops at this total, so
 * that a bad request cannot commit the machine's memory. */
#define DIRECT_PRIVATE_MAX_BYTES (UINT64_C(8) << 30)

/* The largest range the kernel accepts: slots are 32-bit. */
#define DIRECT_MAX_SLOTS (UINT64_C(1) << 32)

/* Even when forced, one table stops at 4 GiB (2^28 slots of COUNT(*) and one
 * SUM): 16x the planner's direct_max_range table, and beyond it an array
 * over the range is mostly untouched memory; the kernel refuses instead. */
#define DIRECT_MAX_TABLE_BYTES (UINT64_C(4) << 30)

#define DIRECT_KEY_TYPES(X)                                                    \
    X(u32, uint32_t)                                                           \
    X(i32, int32_t)                                                            \
    X(i64, int64_t)

/* The fused COUNT(*) + SUM loop, specialised per key and value type; with
 * v == NULL it counts only. lane[] holds the offsets of the interleaved
 * copies (all zero without lanes). */
#define DIRECT_DEFINE_FUSED(kt, K, vt, V)                                      \
    static void direct_fused_##kt##_##vt(                                      \
        const K *restrict k, const V *restrict v, uint64_t lo, uint64_t hi,    \
        int64_t kmin, const uint64_t *restrict lane, int64_t *restrict cnt,    \
        int64_t *restrict pair)                                                \
    {                                                                          \
        const uint64_t base = (uint64_t)kmin;                                  \
        uint64_t i = lo;                                                       \
        const uint64_t l0 = lane[0], l1 = lane[1], l2 = lane[2], l3 = lane[3], \
                       l4 = lane[4], l5 = lane[5], l6 = lane[6], l7 = lane[7]; \
        if (v == NULL) {                                                       \
            for (; i + 8 <= hi; i += 8) {                                      \
                cnt[(uint64_t)(int64_t)k[i] - base + l0]++;                    \
                cnt[(uint64_t)(int64_t)k[i + 1] - base + l1]++;                \
                cnt[(uint64_t)(int64_t)k[i + 2] - base + l2]++;                \
                cnt[(uint64_t)(int64_t)k[i + 3] - base + l3]++;                \
                cnt[(uint64_t)(int64_t)k[i + 4] - base + l4]++;                \
                cnt[(uint64_t)(int64_t)k[i + 5] - base + l5]++;                \
                cnt[(uint64_t)(int64_t)k[i + 6] - base + l6]++;                \
                cnt[(uint64_t)(int64_t)k[i + 7] - base + l7]++;                \
            }                                                                  \
            for (; i < hi; i++)                                                \
                cnt[(uint64_t)(int64_t)k[i] - base]++;                         \
            return;                                                            \
        }                                                                      \
        for (; i + 8 <= hi; i += 8) {                                          \
            DIRECT_PAIR_(k[i], v[i], l0);                                      \
            DIRECT_PAIR_(k[i + 1], v[i + 1], l1);                              \
            DIRECT_PAIR_(k[i + 2], v[i + 2], l2);                              \
            DIRECT_PAIR_(k[i + 3], v[i + 3], l3);                              \
            DIRECT_PAIR_(k[i + 4], v[i + 4], l4);                              \
            DIRECT_PAIR_(k[i + 5], v[i + 5], l5);                              \
            DIRECT_PAIR_(k[i + 6], v[i + 6], l6);                              \
            DIRECT_PAIR_(k[i + 7], v[i + 7], l7);                              \
        }                                                                      \
        for (; i < hi; i++)                                                    \
            DIRECT_PAIR_(k[i], v[i], 0);                                       \
    }
/* One row of the fused loop: COUNT(*) and SUM side by side in one 16-byte
 * pair, so that a row touches one cache line, not two. */
#define DIRECT_PAIR_(key, val, off)                                            \
    do {                                                                       \
        const uint64_t s_ = 2 * ((uint64_t)(int64_t)(key) - base + (off));     \
        pair[s_]++;                                                            \
        pair[s_ + 1] += (val);                                                 \
    } while (0)
/* The fused loop for tables beyond L2: every row's slot is a cache (often a
 * DRAM) miss, so the slot DIRECT_PREFETCH rows ahead is prefetched to keep
 * many misses in flight instead of one dependent miss per row. */
#define DIRECT_DEFINE_FUSED_PF(kt, K, vt, V)                                   \
    static void direct_fused_pf_##kt##_##vt(                                   \
        const K *restrict k, const V *restrict v, uint64_t lo, uint64_t hi,    \
        int64_t kmin, int64_t *restrict pair)                                  \
    {                                                                          \
        const uint64_t base = (uint64_t)kmin;                                  \
        uint64_t i = lo;                                                       \
        const uint64_t end = hi > DIRECT_PREFETCH ? hi - DIRECT_PREFETCH : 0;  \
        for (; i < end; i++) {                                                 \
            __builtin_prefetch(                                                \
                &pair[2 * ((uint64_t)(int64_t)k[i + DIRECT_PREFETCH] - base)], \
                1, 0);                                                         \
            DIRECT_PAIR_(k[i], v[i], 0);                                       \
        }                                                                      \
        for (; i < hi; i++)                                                    \
            DIRECT_PAIR_(k[i], v[i], 0);                                       \
    }
/* The fused loop for input in runs (clustered or sorted keys, known from
 * the statistics' run count): a row whose key repeats the previous one adds
 * to registers, and a run's totals reach the table once. In the table loop
 * every row of a run would read the slot the row before it just wrote, a
 * store-to-load chain of several cycles per row. */
#define DIRECT_DEFINE_FUSED_RUNS(kt, K, vt, V)                                 \
    static void direct_fused_runs_##kt##_##vt(                                 \
        const K *restrict k, const V *restrict v, uint64_t lo, uint64_t hi,    \
        int64_t kmin, int64_t *restrict pair)                                  \
    {                                                                          \
        if (lo >= hi)                                                          \
            return;                                                            \
        const uint64_t base = (uint64_t)kmin;                                  \
        K cur = k[lo];                                                         \
        int64_t n = 0, sum = 0;                                                \
        for (uint64_t i = lo; i < hi; i++) {                                   \
            if (k[i] != cur) {                                                 \
                const uint64_t s_ = 2 * ((uint64_t)(int64_t)cur - base);       \
                pair[s_] += n;                                                 \
                pair[s_ + 1] += sum;                                           \
                cur = k[i];                                                    \
                n = 0;                                                         \
                sum = 0;                                                       \
            }                                                                  \
            n++;                                                               \
            sum += v[i];                                                       \
        }                                                                      \
        const uint64_t s_ = 2 * ((uint64_t)(int64_t)cur - base);               \
        pair[s_] += n;                                                         \
        pair[s_ + 1] += sum;                                                   \
    }
DIRECT_DEFINE_FUSED_RUNS(u32, uint32_t, i32, int32_t)
DIRECT_DEFINE_FUSED_RUNS(u32, uint32_t, u32, uint32_t)
DIRECT_DEFINE_FUSED_RUNS(i32, int32_t, i32, int32_t)
DIRECT_DEFINE_FUSED_RUNS(i32, int32_t, u32, uint32_t)
DIRECT_DEFINE_FUSED_RUNS(i64, int64_t, i32, int32_t)
DIRECT_DEFINE_FUSED_RUNS(i64, int64_t, u32, uint32_t)
DIRECT_DEFINE_FUSED_PF(u32, uint32_t, i32, int32_t)
DIRECT_DEFINE_FUSED_PF(u32, uint32_t, u32, uint32_t)
DIRECT_DEFINE_FUSED_PF(i32, int32_t, i32, int32_t)
DIRECT_DEFINE_FUSED_PF(i32, int32_t, u32, uint32_t)
DIRECT_DEFINE_FUSED_PF(i64, int64_t, i32, int32_t)
DIRECT_DEFINE_FUSED_PF(i64, int64_t, u32, uint32_t)
DIRECT_DEFINE_FUSED(u32, uint32_t, i32, int32_t)
DIRECT_DEFINE_FUSED(u32, uint32_t, u32, uint32_t)
DIRECT_DEFINE_FUSED(i32, int32_t, i32, int32_t)
DIRECT_DEFINE_FUSED(i32, int32_t, u32, uint32_t)
DIRECT_DEFINE_FUSED(i64, int64_t, i32, int32_t)
DIRECT_DEFINE_FUSED(i64, int64_t, u32, uint32_t)

/* Slots of rows [row0, row0 + n) for the general path. */
#define DIRECT_DEFINE_SLOTS(kt, K)                                             \
    static inline void direct_slots_##kt(                                      \
        const K *restrict k, uint64_t row0, uint32_t n, int64_t kmin,          \
        const uint64_t *restrict lane, uint32_t *restrict slots)               \
    {                                                                          \
        const uint64_t base = (uint64_t)kmin;                                  \
        for (uint32_t j = 0; j < n; j++)                                       \
            slots[j] = (uint32_t)((uint64_t)(int64_t)k[row0 + j] - base +      \
                                  lane[j & (DIRECT_LANES - 1)]);               \
    }
DIRECT_KEY_TYPES(DIRECT_DEFINE_SLOTS)

static void direct_slots(const grp_input *in, uint64_t row0, uint32_t n,
                         int64_t kmin, const uint64_t *lane, uint32_t *slots)
{
    switch (in->key_type) {
    case DQO_TYPE_U32: direct_slots_u32(in->keys, row0, n, kmin, lane, slots); break;
    case DQO_TYPE_I32: direct_slots_i32(in->keys, row0, n, kmin, lane, slots); break;
    default: direct_slots_i64(in->keys, row0, n, kmin, lane, slots); break;
    }
}

/* `pair` is a zeroed scratch of 2 * t->cap words when there is a SUM. */
static void direct_fused(const grp_input *in, uint64_t lo, uint64_t hi,
                         int64_t kmin, const uint64_t *lane, agg_table *t,
                         int64_t *restrict pair, bool prefetch, bool runs)
{
    const grp_agg *a = in->naggs == 1 ? &in->aggs[0] : NULL;
    const bool sum = a != NULL && a->op == AGG_OP_SUM;
    const bool vu32 = sum && a->type == DQO_TYPE_U32;
    const void *v = sum ? a->data : NULL;
    int64_t *restrict acc = a != NULL ? t->acc[0] : NULL;
    switch (in->key_type) {
#define DIRECT_FUSED_CASE_(kt, K)                                              \
    case DQO_TYPE_##kt:                                                        \
        if (runs && pair != NULL && vu32)                                      \
            direct_fused_runs_##kt##_u32(in->keys, v, lo, hi, kmin, pair);     \
        else if (runs && pair != NULL)                                         \
            direct_fused_runs_##kt##_i32(in->keys, v, lo, hi, kmin, pair);     \
        else if (prefetch && pair != NULL && vu32)                             \
            direct_fused_pf_##kt##_u32(in->keys, v, lo, hi, kmin, pair);       \
        else if (prefetch && pair != NULL)                                     \
            direct_fused_pf_##kt##_i32(in->keys, v, lo, hi, kmin, pair);       \
        else if (vu32)                                                         \
            direct_fused_##kt##_u32(in->keys, v, lo, hi, kmin, lane,           \
                                    t->count, pair);                           \
        else                                                                   \
            direct_fused_##kt##_i32(in->keys, v, lo, hi, kmin, lane,           \
                                    t->count, pair);                           \
        break;
#define DQO_TYPE_u32 DQO_TYPE_U32
#define DQO_TYPE_i32 DQO_TYPE_I32
#define DQO_TYPE_i64 DQO_TYPE_I64
        DIRECT_KEY_TYPES(DIRECT_FUSED_CASE_)
#undef DIRECT_FUSED_CASE_
    default: break;
    }
    if (sum) {
        int64_t *restrict cnt = t->count;
        for (uint64_t i = 0; i < t->cap; i++) {
            cnt[i] = pair[2 * i];
            acc[i] = pair[2 * i + 1];
        }
    }
    /* COUNT of a column without NULLs is COUNT(*). */
    if (a != NULL && a->op == AGG_OP_COUNT) {
        uint64_t cap = t->cap;
        memcpy(acc, t->count, cap * sizeof(int64_t));
    }
}

/* Slices of the slot range for the merge and the output, one per thread. */
static inline uint64_t direct_slice(uint64_t range, uint64_t s, uint64_t ns)
{
    return range * s / ns;
}

dqo_status cpu_group_direct(const grp_input *in, const granule *g,
                            grp_output *out)
{
    dqo_status st = DQO_OK;
    agg_table *tabs = NULL;
    uint64_t *nonempty = NULL;
    agg_flags *flags = NULL;
    int64_t *pairs = NULL;
    int ntabs = 0;
    memset(out, 0, sizeof *out);
    out->overflow_agg = -1;
    if (in->key_type != DQO_TYPE_U32 && in->key_type != DQO_TYPE_I32 &&
        in->key_type != DQO_TYPE_I64)
        return DQO_ETYPE;
    if (in->rows == 0) {
        st = grp_output_alloc(out, in, 0);
        if (st == DQO_OK)
            snprintf(out->detail, sizeof out->detail, "sphg: empty input");
        return st;
    }
    const int64_t kmin = in->key_stats->min;
    const uint64_t span = (uint64_t)in->key_stats->max - (uint64_t)kmin;
    if (in->key_stats->max < kmin)
        return DQO_EINVAL;
    if (span >= DIRECT_MAX_SLOTS - 1) {
        snprintf(out->detail, sizeof out->detail,
                 "key range %" PRIu64 " exceeds the direct array's %" PRIu64
                 " slots", span + 1, (uint64_t)DIRECT_MAX_SLOTS - 1);
        return DQO_EUNSUPPORTED;
    }
    const uint64_t range = span + 1;
    const int T = in->threads < 1 ? 1 : in->threads;
    const uint64_t slot_bytes = 8 * (1 + (uint64_t)in->naggs);
    if (range > DIRECT_MAX_TABLE_BYTES / slot_bytes)
        return DQO_EUNSUPPORTED;
    cpu_caches cc;
    cpu_get_caches(&cc);

    const bool use_lanes =
        range * DIRECT_LANES * slot_bytes <= cc.l1d / DIRECT_LANES_L1_SHARE;
    int lanes = use_lanes ? DIRECT_LANES : 1;
    const uint64_t cap = range * (uint64_t)lanes;

    /* Private tables while all of them stay in the caches: each thread's L2
     * plus the shared L3. */
    const uint64_t priv_bytes = cap * slot_bytes * (uint64_t)T;
    const uint64_t budget = cc.l2 * (uint64_t)T + cc.l3;
    bool shared;
    if (T == 1)
        shared = false;
    else if (g != NULL && g->mode == PLAN_MODE_SHARED)
        shared = true;
    else if (g != NULL && g->mode == PLAN_MODE_PRIVATE)
        shared = priv_bytes > DIRECT_PRIVATE_MAX_BYTES;
    else
        shared = priv_bytes > budget;
    ntabs = shared ? 1 : T;

    tabs = mem_calloc((size_t)ntabs, sizeof *tabs);
    nonempty = mem_calloc((size_t)T + 1, sizeof *nonempty);
    flags = mem_calloc((size_t)T, sizeof *flags);
    if (tabs == NULL || nonempty == NULL || flags == NULL) {
        st = DQO_ENOMEM;
        goto fail;
    }
    for (int b = 0; b < T; b++)
        flags[b].overflow_agg = -1;
    /* Private tables are initialised by their threads below (first touch
     * in parallel: zeroing 16 tables in one thread cost more than the
     * grouping itself at 100K groups). */
    for (int b = 0; b < ntabs && st == DQO_OK; b++)
        st = shared ? agg_table_init(&tabs[b], in, range)
                    : agg_table_alloc(&tabs[b], in, cap);
    if (st != DQO_OK && !shared) {
        /* The private copies do not fit in memory: one shared table. */
        for (int b = 0; b < ntabs; b++)
            agg_table_free(&tabs[b], in);
        shared = true;
        ntabs = 1;
        st = agg_table_init(&tabs[0], in, range);
    }
    if (st != DQO_OK)
        goto fail;
    const bool fused = !shared && agg_fusable_count_sum(in);
    /* Tables beyond L2 miss on most rows: prefetch ahead (lanes never
     * apply there; they are for tables in L1). */
    const bool prefetch = lanes == 1 && 2 * cap * sizeof(int64_t) > cc.l2;
    /* Runs of DIRECT_RUN_MIN rows or more on average: the run-aware loop
     * (its branch mispredicts once per run, cheap when runs are long). */
    const bool runs = in->key_stats->runs > 0 &&
                      in->rows / in->key_stats->runs >= DIRECT_RUN_MIN;
    const bool fused_sum = fused && in->naggs == 1 &&
                           in->aggs[0].op == AGG_OP_SUM;
    if (fused_sum) {
        pairs = mem_scratch_alloc((size_t)ntabs * 2 * cap * sizeof(int64_t));
        if (pairs == NULL) {
            st = DQO_ENOMEM;
            goto fail;
        }
    }
    /* A shared table has no lanes: atomics already serialise per word. */
    if (shared)
        lanes = 1;
    uint64_t lane[DIRECT_LANES];
    for (int l = 0; l < DIRECT_LANES; l++)
        lane[l] = lanes > 1 ? (uint64_t)l * range : 0;

#pragma omp parallel num_threads(T)
    {
        uint32_t slots[AGG_CHUNK];
        for (int b = omp_get_thread_num(); b < T; b += omp_get_num_threads()) {
            const uint64_t lo = in->rows * (uint64_t)b / (uint64_t)T;
            const uint64_t hi = in->rows * (uint64_t)(b + 1) / (uint64_t)T;
            agg_table *t = &tabs[shared ? 0 : b];
            if (!shared) {
                if (fused_sum)
                    memset(pairs + 2 * cap * (uint64_t)b, 0,
                           2 * cap * sizeof(int64_t));
                else
                    agg_table_reset(t, in, 0, cap);
            }
            if (fused) {
                direct_fused(in, lo, hi, kmin, lane, t,
                             fused_sum ? pairs + 2 * cap * (uint64_t)b
                                       : NULL,
                             prefetch, runs);
            } else {
                for (uint64_t r = lo; r < hi; r += AGG_CHUNK) {
                    const uint32_t n =
                        (uint32_t)(hi - r < AGG_CHUNK ? hi - r : AGG_CHUNK);
                    if (shared) {
                        direct_slots(in, r, n, kmin, lane, slots);
                        agg_update_atomic(t, in, slots, r, n, &flags[b]);
                    } else {
                        direct_slots(in, r, n, kmin, lane, slots);
                        agg_update(t, in, slots, r, n, &flags[b]);
                    }
                }
            }
            /* Fold the interleaved copies into the first. */
            if (!shared)
                for (int l = 1; l < lanes; l++)
                    agg_merge_range(t, 0, t, (uint64_t)l * range, range, in,
                                    &flags[b]);
        }
#pragma omp barrier
        /* Merge the private tables slice by slice and count the groups. */
#pragma omp for schedule(static)
        for (int s = 0; s < T; s++) {
            const uint64_t lo = direct_slice(range, (uint64_t)s, (uint64_t)T);
            const uint64_t hi = direct_slice(range, (uint64_t)s + 1, (uint64_t)T);
            for (int b = 1; b < ntabs; b++)
                agg_merge_range(&tabs[0], lo, &tabs[b], lo, hi - lo, in,
                                &flags[s]);
            uint64_t n = 0;
            const int64_t *restrict cnt = tabs[0].count;
            for (uint64_t i = lo; i < hi; i++)
                n += cnt[i] > 0;
            nonempty[s + 1] = n;
        }
    }

    for (int s = 0; s < T; s++)
        nonempty[s + 1] += nonempty[s];
    st = grp_output_alloc(out, in, nonempty[T]);
    if (st != DQO_OK)
        goto fail;

#pragma omp parallel for num_threads(T) schedule(static)
    for (int s = 0; s < T; s++) {
        const uint64_t lo = direct_slice(range, (uint64_t)s, (uint64_t)T);
        const uint64_t hi = direct_slice(range, (uint64_t)s + 1, (uint64_t)T);
        const int64_t *restrict cnt = tabs[0].count;
        uint64_t pos = nonempty[s];
        uint64_t i = lo;
        /* Copy each run of non-empty slots with one call. */
        while (i < hi) {
            while (i < hi && cnt[i] == 0)
                i++;
            const uint64_t start = i;
            while (i < hi && cnt[i] > 0) {
                out->keys[pos + (i - start)] = (int64_t)((uint64_t)kmin + i);
                i++;
            }
            if (i > start) {
                agg_emit_range(out, pos, &tabs[0], start, i - start, in);
                pos += i - start;
            }
        }
    }

    for (int b = 0; b < T; b++) {
        if (flags[b].overflow_agg >= 0 &&
            (!out->overflow || flags[b].overflow_agg < out->overflow_agg)) {
            out->overflow = true;
            out->overflow_agg = flags[b].overflow_agg;
        }
    }
    if (shared)
        snprintf(out->detail, sizeof out->detail,
                 "sphg: range %llu, shared table, atomic updates, %d threads",
                 (unsigned long long)range, T);
    else
        snprintf(out->detail, sizeof out->detail,
                 "sphg: range %llu, private tables x%d%s%s, merged",
                 (unsigned long long)range, T,
                 lanes > 1 ? ", 8 interleaved lanes" : "",
                 fused ? (runs && fused_sum ? ", fused run-aware count+sum loop"
                                            : ", fused count+sum loop")
                       : "");
    goto done;
fail:
    grp_output_free(out, in->naggs);
    out->overflow_agg = -1;
done:
    if (tabs != NULL)
        for (int b = 0; b < ntabs; b++)
            agg_table_free(&tabs[b], in);
    mem_free(tabs);
    mem_free(nonempty);
    mem_free(flags);
    mem_scratch_free(pairs);
    return st;
}
