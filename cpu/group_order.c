/*
 * group_order.c - order-based grouping (OG): the input arrives clustered by
 * key, so a group is a run of equal keys and the only "index" is a comparison
 * with the previous key (paper, Section 5.1, "Order-based Grouping").
 *
 * When the planner selects it: the key column is sorted (ascending,
 * descending or constant) or clustered (runs close to the distinct count);
 * see plan_choose_group. OG stays exact on any input, though: a key that
 * comes back in a later run is merged into its first run by a hash pass over
 * the run outputs, which runs only when the statistics do not say sorted.
 *
 * How: the rows are split into one contiguous range per thread. With one
 * thread the exact run count of the statistics sizes the output and the
 * walk accumulates straight into it. With few runs (the paper's datasets)
 * every range gets a private output of min(its rows, runs) slots, and the
 * ranges' groups are copied into place afterwards. With many runs a first
 * parallel pass counts the runs of every range, which fixes each range's
 * first output slot, so the threads again accumulate straight into the
 * output with no copy. A run that spans a range boundary is accumulated by
 * the later thread into a spare slot and merged afterwards. Ranges of long runs (the paper's datasets: 100M rows,
 * at most a few million groups) are folded run by run with tight loops that
 * scan a run's extent and reduce its values directly; ranges of short runs
 * go through agg_update in chunks of AGG_CHUNK slots. Groups come out in the
 * order of their first appearance (ascending for ascending input).
 *
 * Cost: one read of keys and aggregate columns to accumulate, plus one read
 * of the keys to count runs when there are many, plus a hash pass over the
 * groups for unsorted input. Memory: the output arrays (groups + threads
 * slots; with few runs also threads x runs private slots), plus a 4-byte
 * hash table of 2x the groups when deduplicating.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_int.h"

/* The smallest range a thread gets: below a few thousand rows the fork and
 * the boundary merge cost more than the rows. */
#define OG_MIN_ROWS_PER_THREAD 1024

/* Average run length from which a range is folded run by run (scan the run,
 * reduce its values) instead of through agg_update's slot chunks: the per-run
 * dispatch (one switch per aggregate) costs about as much as 20-30 rows of
 * the chunked loop, so from 32 rows per run the direct fold wins. */
#define OG_SCAN_MIN_RUN 32

/* Private outputs per range (see cpu_group_order) while all of them
 * together have at most one slot per 8 rows: then initialising and copying
 * them costs less than the count pass over the keys that they save (4 to 8
 * bytes per row against 8 + 8 * naggs bytes per slot, twice). */
#define OG_PRIVATE_ROWS_PER_SLOT 8

/* Rows per block of a 32-bit SUM folded in int64 without overflow checks:
 * 2^30 values below 2^32 in magnitude stay below 2^62. */
#define OG_SUM_BLOCK (UINT64_C(1) << 30)

/* One thread's share of the input and what the count pass learned of it. */
typedef struct og_range {
    uint64_t begin, end; /* rows [begin, end) */
    uint64_t runs;       /* maximal runs of equal keys within the range */
    int64_t first, last; /* its first and last key */
    bool cont;           /* its first run continues the previous range's */
    uint64_t off;        /* output slot of its first run that is not cont */
    uint64_t cap;        /* the most groups the walk may write from off */
    bool scan;           /* fold run by run (long runs) */
    uint64_t walked;     /* groups the walk wrote (check against runs) */
    agg_flags flags;
    char pad[64]; /* keeps the ranges' walked/flags on separate lines */
} og_range;

/* A table whose slot 0 is output slot `base`: kernels address at most a
 * chunk of slots from there, so uint32 slots suffice for any group count. */
static inline void og_view(agg_table *v, const grp_output *out,
                           const grp_input *in, uint64_t base)
{
    v->cap = UINT64_MAX;
    v->count = out->count + base;
    for (int a = 0; a < in->naggs; a++)
        v->acc[a] = (int64_t *)out->acc[a] + base;
}

/* ------------------------------------------------------- run-wise folding */

static inline void og_note_overflow(agg_flags *f, int a)
{
    if (f->overflow_agg < 0 || a < f->overflow_agg)
        f->overflow_agg = a;
}

/* The fold of rows [s, e) of one aggregate into the accumulator *acc, one
 * loop per (type, operation, NULL-ability) so each vectorises. */
#define OG_FOLD_INT(t, T)                                                      \
    static void og_fold_##t(int64_t *acc, const grp_agg *a, uint64_t s,        \
                            uint64_t e, int ai, agg_flags *f)                  \
    {                                                                          \
        const T *restrict x = (const T *)a->data;                              \
        const uint8_t *restrict v = a->valid;                                  \
        switch (a->op) {                                                       \
        case AGG_OP_SUM: {                                                     \
            /* Blocks that cannot overflow, each added with a check. */       \
            for (uint64_t b = s; b < e;) {                                     \
                uint64_t be = e - b > OG_SUM_BLOCK ? b + OG_SUM_BLOCK : e;     \
                __int128 sum = 0;                                              \
                if (sizeof(T) == 8) {                                          \
                    /* Halves of 32 bits sum without overflow in int64:      \
                     * |hi| < 2^31 and lo < 2^32 per row. */                   \
                    int64_t hi = 0;                                            \
                    uint64_t lo = 0;                                           \
                    if (v == NULL)                                             \
                        for (uint64_t i = b; i < be; i++) {                    \
                            hi += (int64_t)x[i] >> 32;                         \
                            lo += (uint32_t)x[i];                              \
                        }                                                      \
                    else                                                       \
                        for (uint64_t i = b; i < be; i++) {                    \
                            int64_t m = -(int64_t)(v[i] != 0);                 \
                            hi += ((int64_t)x[i] >> 32) & m;                   \
                            lo += (uint32_t)x[i] & (uint64_t)m;                \
                        }                                                      \
                    sum = (__int128)hi * ((__int128)1 << 32) + lo;             \
                } else {                                                       \
                    int64_t p = 0;                                             \
                    if (v == NULL)                                             \
                        for (uint64_t i = b; i < be; i++)                      \
                            p += (int64_t)x[i];                                \
                    else                                                       \
                        for (uint64_t i = b; i < be; i++)                      \
                            p += (int64_t)x[i] & -(int64_t)(v[i] != 0);        \
                    sum = p;                                                   \
                }                                                              \
                sum += *acc;                                                   \
                if (sum > INT64_MAX || sum < INT64_MIN)                        \
                    og_note_overflow(f, ai);                                   \
                *acc = (int64_t)(uint64_t)(unsigned __int128)sum;              \
                b = be;                                                        \
            }                                                                  \
            return;                                                            \
        }                                                                      \
        case AGG_OP_MIN: {                                                     \
            int64_t m = *acc;                                                  \
            if (v == NULL)                                                     \
                for (uint64_t i = s; i < e; i++)                               \
                    m = (int64_t)x[i] < m ? (int64_t)x[i] : m;                 \
            else                                                               \
                for (uint64_t i = s; i < e; i++)                               \
                    m = v[i] != 0 && (int64_t)x[i] < m ? (int64_t)x[i] : m;    \
            *acc = m;                                                          \
            return;                                                            \
        }                                                                      \
        case AGG_OP_MAX: {                                                     \
            int64_t m = *acc;                                                  \
            if (v == NULL)                                                     \
                for (uint64_t i = s; i < e; i++)                               \
                    m = (int64_t)x[i] > m ? (int64_t)x[i] : m;                 \
            else                                                               \
                for (uint64_t i = s; i < e; i++)                               \
                    m = v[i] != 0 && (int64_t)x[i] > m ? (int64_t)x[i] : m;    \
            *acc = m;                                                          \
            return;                                                            \
        }                                                                      \
        default: return;                                                       \
        }                                                                      \
    }

OG_FOLD_INT(u32, uint32_t)
OG_FOLD_INT(i32, int32_t)
OG_FOLD_INT(i64, int64_t)
#undef OG_FOLD_INT

static void og_fold_f64(double *acc, const grp_agg *a, uint64_t s, uint64_t e)
{
    const double *restrict x = (const double *)a->data;
    const uint8_t *restrict v = a->valid;
    switch (a->op) {
    case AGG_OP_SUM: {
        /* Four partial sums break the add latency chain; the order of the
         * additions differs from a sequential sum only by rounding. */
        double p[4] = {0, 0, 0, 0};
        uint64_t i = s;
        for (; i + 4 <= e; i += 4)
            for (int l = 0; l < 4; l++)
                p[l] += v == NULL || v[i + l] != 0 ? x[i + l] : 0.0;
        for (; i < e; i++)
            p[0] += v == NULL || v[i] != 0 ? x[i] : 0.0;
        *acc += (p[0] + p[1]) + (p[2] + p[3]);
        return;
    }
    case AGG_OP_MIN: {
        double m = *acc;
        for (uint64_t i = s; i < e; i++)
            m = (v == NULL || v[i] != 0) && x[i] < m ? x[i] : m;
        *acc = m;
        return;
    }
    case AGG_OP_MAX: {
        double m = *acc;
        for (uint64_t i = s; i < e; i++)
            m = (v == NULL || v[i] != 0) && x[i] > m ? x[i] : m;
        *acc = m;
        return;
    }
    default: return;
    }
}

/* Folds rows [s, e), all of one group, into output slot `slot`. */
static void og_fold_run(const grp_input *in, grp_output *out, uint64_t slot,
                        uint64_t s, uint64_t e, agg_flags *f)
{
    out->count[slot] += (int64_t)(e - s);
    for (int ai = 0; ai < in->naggs; ai++) {
        const grp_agg *a = &in->aggs[ai];
        int64_t *acc = (int64_t *)out->acc[ai] + slot;
        if (a->op == AGG_OP_COUNT) {
            int64_t n = (int64_t)(e - s);
            if (a->valid != NULL) {
                const uint8_t *restrict v = a->valid;
                n = 0;
                for (uint64_t i = s; i < e; i++)
                    n += v[i] != 0;
            }
            *acc += n;
            continue;
        }
        switch (a->type) {
        case DQO_TYPE_U32: og_fold_u32(acc, a, s, e, ai, f); break;
        case DQO_TYPE_I32: og_fold_i32(acc, a, s, e, ai, f); break;
        case DQO_TYPE_I64: og_fold_i64(acc, a, s, e, ai, f); break;
        case DQO_TYPE_F64: og_fold_f64((double *)acc, a, s, e); break;
        default: break;
        }
    }
}

/* --------------------------------------------------- type-specialised walks */

/* For each key type: og_count_<t> counts the runs of rows [b, e) and
 * og_walk_<t> accumulates a range into the output (see the file comment).
 * The walk returns false when it finds more runs than the count said, which
 * only wrong statistics can cause; it then stops before writing past them. */
#define OG_WALKS(t, T)                                                         \
    static uint64_t og_count_##t(const T *restrict k, uint64_t b, uint64_t e)  \
    {                                                                          \
        if (b >= e)                                                            \
            return 0;                                                          \
        uint64_t runs = 1;                                                     \
        for (uint64_t i = b + 1; i < e; i++)                                   \
            runs += k[i] != k[i - 1];                                          \
        return runs;                                                           \
    }                                                                          \
                                                                               \
    static bool og_walk_##t(const grp_input *in, grp_output *out, og_range *r, \
                            uint64_t spare, uint32_t *restrict slots)          \
    {                                                                          \
        const T *restrict k = (const T *)in->keys;                             \
        const uint64_t e = r->end, cap = r->cap;                               \
        uint64_t i = r->begin;                                                 \
        if (r->cont) {                                                         \
            /* The run continued from the previous range goes to the spare     \
             * slot; its key is the previous range's last one. */              \
            uint64_t j = i + 1;                                                \
            while (j < e && k[j] == k[i])                                      \
                j++;                                                           \
            og_fold_run(in, out, spare, i, j, &r->flags);                      \
            i = j;                                                             \
        }                                                                      \
        uint64_t g = 0; /* groups written, relative to r->off */               \
        if (r->scan) {                                                         \
            while (i < e) {                                                    \
                if (g >= cap)                                                  \
                    return false;                                              \
                const T key = k[i];                                            \
                uint64_t j = i + 1;                                            \
                while (j < e && k[j] == key)                                   \
                    j++;                                                       \
                out->keys[r->off + g] = (int64_t)key;                          \
                og_fold_run(in, out, r->off + g, i, j, &r->flags);             \
                g++;                                                           \
                i = j;                                                         \
            }                                                                  \
        } else {                                                               \
            int64_t *restrict okeys = out->keys;                               \
            while (i < e) {                                                    \
                const uint32_t n =                                             \
                    (uint32_t)(e - i < AGG_CHUNK ? e - i : AGG_CHUNK);         \
                const uint64_t base = r->off + g;                              \
                /* The run index within the chunk is a prefix sum of key      \
                 * changes. */                                                 \
                uint32_t s = 0;                                                \
                slots[0] = 0;                                                  \
                for (uint32_t j = 1; j < n; j++) {                             \
                    s += k[i + j] != k[i + j - 1];                             \
                    slots[j] = s;                                              \
                }                                                              \
                if (g + s >= cap)                                              \
                    return false;                                              \
                /* A branch-free key store per row: the last one of a run     \
                 * wins, and all of them write the same value. */              \
                for (uint32_t j = 0; j < n; j++)                               \
                    okeys[base + slots[j]] = (int64_t)k[i + j];                \
                agg_table view;                                                \
                og_view(&view, out, in, base);                                 \
                agg_update(&view, in, slots, i, n, &r->flags);                 \
                g += s;                                                        \
                i += n;                                                        \
                /* The next chunk starts a new group unless it continues     \
                 * this chunk's last run. */                                   \
                if (i < e)                                                     \
                    g += k[i] != k[i - 1];                                     \
                else                                                           \
                    g += 1;                                                    \
            }                                                                  \
        }                                                                      \
        r->walked = g;                                                         \
        return true;                                                           \
    }

OG_WALKS(u32, uint32_t)
OG_WALKS(i32, int32_t)
OG_WALKS(i64, int64_t)
#undef OG_WALKS

static uint64_t og_count(const grp_input *in, uint64_t b, uint64_t e)
{
    switch (in->key_type) {
    case DQO_TYPE_U32: return og_count_u32(in->keys, b, e);
    case DQO_TYPE_I32: return og_count_i32(in->keys, b, e);
    default: return og_count_i64(in->keys, b, e);
    }
}

static bool og_walk(const grp_input *in, grp_output *out, og_range *r,
                    uint64_t spare, uint32_t *slots)
{
    switch (in->key_type) {
    case DQO_TYPE_U32: return og_walk_u32(in, out, r, spare, slots);
    case DQO_TYPE_I32: return og_walk_i32(in, out, r, spare, slots);
    default: return og_walk_i64(in, out, r, spare, slots);
    }
}

/* ---------------------------------------------------------- deduplication */

/* Moves group `from` to position `to` < from of every output array. */
static void og_move(grp_output *out, const grp_input *in, uint64_t to,
                    uint64_t from)
{
    out->keys[to] = out->keys[from];
    out->count[to] = out->count[from];
    for (int a = 0; a < in->naggs; a++)
        ((int64_t *)out->acc[a])[to] = ((int64_t *)out->acc[a])[from];
}

/* Merges every group whose key already appeared in an earlier group into
 * that one and compacts the rest in place, keeping the order of first
 * appearance; *groups is updated. One sequential pass with an open-
 * addressing table (Murmur3 finaliser, linear probing) of output positions:
 * since positions only move down, a group's data is still in place when its
 * turn comes. */
static dqo_status og_dedup(const grp_input *in, grp_output *out,
                           uint64_t *groups, agg_flags *f, uint64_t *merged)
{
    const uint64_t n = *groups;
    if (n > UINT32_MAX / 2)
        return DQO_EUNSUPPORTED;
    uint64_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    const uint64_t mask = cap - 1;
    /* Entries are position + 1, so zeroed memory is an empty table. */
    uint32_t *table = mem_calloc(cap, sizeof *table);
    if (table == NULL)
        return DQO_ENOMEM;
    agg_table view;
    og_view(&view, out, in, 0);
    uint64_t pos = 0;
    for (uint64_t s = 0; s < n; s++) {
        const int64_t key = out->keys[s];
        uint64_t h = cpu_hash64((uint64_t)key) & mask;
        while (table[h] != 0 && out->keys[table[h] - 1] != key)
            h = (h + 1) & mask;
        if (table[h] != 0) {
            agg_merge_range(&view, table[h] - 1, &view, s, 1, in, f);
            continue;
        }
        if (pos != s)
            og_move(out, in, pos, s);
        table[h] = (uint32_t)(pos + 1);
        pos++;
    }
    mem_free(table);
    *merged = n - pos;
    *groups = pos;
    return DQO_OK;
}

/* ------------------------------------------------------------------ kernel */

dqo_status cpu_group_order(const grp_input *in, const granule *g,
                           grp_output *out)
{
    (void)g;
    dqo_status st = DQO_OK;
    og_range *ranges = NULL;
    uint32_t *slots = NULL;
    grp_output *tout = NULL;
    memset(out, 0, sizeof *out);
    if (in->naggs < 0 || in->naggs > GRP_MAX_AGGS || in->threads < 1 ||
        (in->rows > 0 && in->keys == NULL))
        return DQO_EINVAL;

    const uint64_t rows = in->rows;
    int nr = in->threads;
    if ((uint64_t)nr > rows / OG_MIN_ROWS_PER_THREAD)
        nr = rows / OG_MIN_ROWS_PER_THREAD > 1
                 ? (int)(rows / OG_MIN_ROWS_PER_THREAD)
                 : 1;
    ranges = mem_calloc((size_t)nr, sizeof *ranges);
    slots = mem_alloc((size_t)nr * AGG_CHUNK * sizeof *slots);
    if (ranges == NULL || slots == NULL) {
        st = DQO_ENOMEM;
        goto fail;
    }
    for (int t = 0; t < nr; t++) {
        ranges[t].begin = rows * (uint64_t)t / (uint64_t)nr;
        ranges[t].end = rows * (uint64_t)(t + 1) / (uint64_t)nr;
        ranges[t].flags.overflow_agg = -1;
    }

    /* Three ways to give every range its output slots, all exact:
     *  - one range: the statistics' run count is its group count;
     *  - few runs (private): each range writes into its own small output of
     *    min(rows of the range, runs) slots, copied into place afterwards,
     *    which saves the count pass over the keys;
     *  - many runs (counted): a parallel pass counts each range's runs, and
     *    the ranges write straight into the output at prefix offsets.
     * In every case the walk checks it never writes past its slots, so
     * wrong statistics give DQO_EINTERNAL rather than a corrupt result. */
    const uint64_t sruns = in->key_stats->runs;
    const bool one = nr == 1 && (rows == 0 || sruns > 0);
    const bool priv = !one && sruns > 0 &&
                      (sruns + 1) * (uint64_t)nr <= rows / OG_PRIVATE_ROWS_PER_SLOT;
    const bool scan_all = rows >= OG_SCAN_MIN_RUN * sruns;
    if (one) {
        ranges[0].runs = rows == 0 ? 0 : sruns;
    } else if (priv) {
        for (int t = 0; t < nr; t++) {
            og_range *r = &ranges[t];
            const uint64_t len = r->end - r->begin;
            r->runs = len < sruns ? len : sruns;
            r->first = grp_key_at(in, r->begin);
            r->last = grp_key_at(in, r->end - 1);
        }
    } else {
#pragma omp parallel for num_threads(nr) schedule(static, 1)
        for (int t = 0; t < nr; t++) {
            og_range *r = &ranges[t];
            r->runs = og_count(in, r->begin, r->end);
            if (r->end > r->begin) {
                r->first = grp_key_at(in, r->begin);
                r->last = grp_key_at(in, r->end - 1);
            }
        }
    }

    /* Output slots: ranges in order, a continued run shares the slot of the
     * run it continues. Counted: range t has spare slot `groups + t`;
     * private: its own output has `cap` slots and the spare after them. */
    uint64_t groups = 0;
    for (int t = 0, prev = -1; t < nr; t++) {
        og_range *r = &ranges[t];
        if (r->end == r->begin)
            continue;
        r->cont = prev >= 0 && ranges[prev].last == r->first;
        r->off = priv ? 0 : groups;
        r->cap = priv ? r->runs : r->runs - (r->cont ? 1 : 0);
        r->scan = one || priv ? scan_all
                              : r->end - r->begin >= OG_SCAN_MIN_RUN * r->runs;
        groups += r->cap;
        prev = t;
    }
    if (priv) {
        tout = mem_calloc((size_t)nr, sizeof *tout);
        if (tout == NULL) {
            st = DQO_ENOMEM;
            goto fail;
        }
        for (int t = 0; t < nr; t++) {
            st = grp_output_alloc(&tout[t], in, ranges[t].cap + 1);
            if (st != DQO_OK)
                goto fail;
        }
    } else {
        st = grp_output_alloc(out, in, groups + (uint64_t)nr);
        if (st != DQO_OK)
            goto fail;
    }

    bool consistent = true;
#pragma omp parallel for num_threads(nr) schedule(static, 1) \
    reduction(&& : consistent)
    for (int t = 0; t < nr; t++) {
        og_range *r = &ranges[t];
        grp_output *o = priv ? &tout[t] : out;
        const uint64_t spare = priv ? r->cap : groups + (uint64_t)t;
        agg_table view;
        og_view(&view, o, in, 0);
        /* Each thread initialises the slots it writes: first touch puts
         * them on its own NUMA node. */
        agg_table_reset(&view, in, r->off, r->cap);
        agg_table_reset(&view, in, spare, 1);
        consistent = og_walk(in, o, r, spare, slots + (size_t)t * AGG_CHUNK) &&
                     (priv || r->walked == r->cap);
    }
    if (!consistent) {
        /* The statistics' run count was wrong (too small or too large). */
        st = DQO_EINTERNAL;
        goto fail;
    }

    agg_flags flags = {-1};
    agg_table view;
    if (priv) {
        /* Copy the ranges' groups into place, in parallel. */
        groups = 0;
        for (int t = 0; t < nr; t++) {
            ranges[t].off = groups;
            groups += ranges[t].walked;
        }
        st = grp_output_alloc(out, in, groups);
        if (st != DQO_OK)
            goto fail;
#pragma omp parallel for num_threads(nr) schedule(static, 1)
        for (int t = 0; t < nr; t++) {
            const og_range *r = &ranges[t];
            agg_table tv;
            og_view(&tv, &tout[t], in, 0);
            memcpy(out->keys + r->off, tout[t].keys,
                   r->walked * sizeof *out->keys);
            agg_emit_range(out, r->off, &tv, 0, r->walked, in);
        }
        og_view(&view, out, in, 0);
        for (int t = 0; t < nr; t++) {
            if (ranges[t].cont) {
                agg_table tv;
                og_view(&tv, &tout[t], in, 0);
                agg_merge_range(&view, ranges[t].off - 1, &tv, ranges[t].cap,
                                1, in, &flags);
            }
        }
    } else {
        og_view(&view, out, in, 0);
        for (int t = 0; t < nr; t++)
            if (ranges[t].cont)
                agg_merge_range(&view, ranges[t].off - 1, &view,
                                groups + (uint64_t)t, 1, in, &flags);
    }
    for (int t = 0; t < nr; t++)
        if (ranges[t].flags.overflow_agg >= 0)
            og_note_overflow(&flags, ranges[t].flags.overflow_agg);

    uint64_t merged = 0;
    const dqo_order order = in->key_stats->order;
    const bool sorted = order == DQO_ORDER_ASC || order == DQO_ORDER_DESC ||
                        order == DQO_ORDER_CONST;
    if (!sorted && groups > 1) {
        st = og_dedup(in, out, &groups, &flags, &merged);
        if (st != DQO_OK)
            goto fail;
    }

    out->groups = groups;
    out->overflow = flags.overflow_agg >= 0;
    out->overflow_agg = flags.overflow_agg;
    snprintf(out->detail, sizeof out->detail,
             "ranges x%d (%s), %s, %llu repeated runs merged", nr,
             one ? "one" : priv ? "private outputs" : "counted",
             ranges[0].scan ? "run scan" : "slot chunks",
             (unsigned long long)merged);
    st = DQO_OK;
fail:
    if (st != DQO_OK)
        grp_output_free(out, in->naggs);
    for (int t = 0; tout != NULL && t < nr; t++)
        grp_output_free(&tout[t], in->naggs);
    mem_free(tout);
    mem_free(ranges);
    mem_free(slots);
    return st;
}
