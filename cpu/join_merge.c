/*
 * join_merge.c - the merge joins: order-based join (OJ) over two inputs
 * already sorted ascending on the key, and sort-based join (SOJ), which
 * first sorts every side that is not sorted; also the sorted (key, row)
 * pairs that BSJ (join.c) indexes its build side with.
 *
 * The planner selects OJ when the statistics say both key columns are
 * ascending (order ASC or CONST), SOJ when sorting the unsorted side(s)
 * and merging is cheaper than a hash or direct join (large inputs, output
 * wanted in key order). OJ costs one read of each side; SOJ adds a parallel
 * LSD radix sort of the unsorted sides' (key, row) pairs: a few passes
 * over 8 bytes per row (keys packed above the row id, see
 * cpu_radix_sort_u64) or, when key and row bits exceed 64, 12 bytes per
 * row through this file's own radix sort with a row payload. Memory: two
 * buffers of 8 bytes per row of every sorted side, plus 4 bytes per row
 * for the row ids, plus the output.
 *
 * A side with NULL keys is turned into (key, row) pairs without its NULL
 * rows first (sorted sides: one filtering pass, no sort), so that the
 * merge and its binary searches see only valid keys. A sorted side
 * without NULLs is read in place.
 *
 * Parallel merge: the probe side is cut into ranges at key boundaries
 * (several per thread, for balance), the build side at the first key of
 * each range (binary search), so every key's pairs fall in one range. A
 * count pass gives each range its output offset (prefix sum), and a write
 * pass fills the exactly sized output. Output order: ascending key; within
 * a key, build row ascending, then probe row ascending (backend.h).
 *
 * Reference: the DQO paper, Section 5.2 (OJ, SOJ); the range split is
 * the usual parallel merge-join partitioning (Balkesen et al., "Multi-core,
 * main-memory joins: sort vs. hash revisited", VLDB 2013).
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_int.h"

/* Probe rows per merge range at least: below this the range bookkeeping
 * (two binary searches, a count) costs more than the rows it balances. */
#define JM_MIN_RANGE_ROWS 4096
/* Ranges per thread: a many-to-many key can make one range far heavier
 * than the others; dynamic scheduling over several ranges evens that out. */
#define JM_RANGES_PER_THREAD 4
/* Digit bits of the wide radix sort: 2^11 counters of 8 bytes per thread
 * (16 KiB) stay in L1d, as in group_sort.c's RS_MAX_DIGIT_BITS. */
#define JM_DIGIT_BITS 11
/* Rows per thread at least in this file's parallel passes (fill, unpack,
 * sort): a fork costs a few microseconds. */
#define JM_MIN_ROWS_PER_THREAD 16384

static inline unsigned jm_bits(uint64_t v)
{
    return v == 0 ? 0 : 64u - (unsigned)__builtin_clzll(v);
}

static int jm_threads_for(uint64_t n, int threads)
{
    const uint64_t most = n / JM_MIN_ROWS_PER_THREAD;
    if (most < 1)
        return 1;
    return (uint64_t)threads < most ? threads : (int)most;
}

/* ------------------------------------------ wide sort with a row payload */

/* Sorts (k[i], r[i]) by the low `bits` bits of k, stably, with the second
 * buffers kt and rt; *ko and *ro point at the buffers holding the result.
 * Per pass: per-thread digit histograms of its block, a digit-major prefix
 * sum (stable: thread t's rows of a digit go before thread t + 1's), then
 * the scatter. `hist` holds threads * 2^JM_DIGIT_BITS counters. */
static void jm_sort_wide(uint64_t *k, uint32_t *r, uint64_t *kt, uint32_t *rt,
                         uint64_t n, unsigned bits, int threads, uint64_t *hist,
                         uint64_t **ko, uint32_t **ro)
{
    const unsigned passes = (bits + JM_DIGIT_BITS - 1) / JM_DIGIT_BITS;
    const uint64_t nd = UINT64_C(1) << JM_DIGIT_BITS;
    const int nt = threads;
    for (unsigned p = 0; p < passes; p++) {
        const unsigned shift = p * JM_DIGIT_BITS;
        const uint64_t *restrict sk = k;
        const uint32_t *restrict sr = r;
        uint64_t *restrict dk = kt;
        uint32_t *restrict dr = rt;
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num();
            const int tn = omp_get_num_threads();
            uint64_t *restrict h = hist + (uint64_t)t * nd;
            const uint64_t lo = n * (uint64_t)t / (uint64_t)tn;
            const uint64_t hi = n * (uint64_t)(t + 1) / (uint64_t)tn;
            memset(h, 0, nd * sizeof *h);
            for (uint64_t i = lo; i < hi; i++)
                h[(sk[i] >> shift) & (nd - 1)]++;
#pragma omp barrier
#pragma omp single
            {
                uint64_t sum = 0;
                for (uint64_t d = 0; d < nd; d++)
                    for (int u = 0; u < tn; u++) {
                        const uint64_t c = hist[(uint64_t)u * nd + d];
                        hist[(uint64_t)u * nd + d] = sum;
                        sum += c;
                    }
            }
            for (uint64_t i = lo; i < hi; i++) {
                const uint64_t pos = h[(sk[i] >> shift) & (nd - 1)]++;
                dk[pos] = sk[i];
                dr[pos] = sr[i];
            }
        }
        uint64_t *tk = k;
        k = kt;
        kt = tk;
        uint32_t *tr = r;
        r = rt;
        rt = tr;
    }
    *ko = k;
    *ro = r;
}

/* -------------------------------------------------- a side as sorted pairs */

/* Writes the valid rows of block [lo, hi) as (offset, row) pairs from
 * position pos: packed (offset << rbits | row) or into keys and rows. */
#define JM_DEFINE_FILL(kt, K)                                                  \
    static void jm_fill_##kt(                                                  \
        const K *restrict k, const uint8_t *restrict v, uint64_t lo,           \
        uint64_t hi, uint64_t base, unsigned rbits, bool packed,               \
        uint64_t *restrict a, uint32_t *restrict rows, uint64_t pos)           \
    {                                                                          \
        for (uint64_t i = lo; i < hi; i++) {                                   \
            if (v != NULL && v[i] == 0)                                        \
                continue;                                                      \
            const uint64_t off = (uint64_t)(int64_t)k[i] - base;               \
            if (packed) {                                                      \
                a[pos++] = off << rbits | i;                                   \
            } else {                                                           \
                a[pos] = off;                                                  \
                rows[pos++] = (uint32_t)i;                                     \
            }                                                                  \
        }                                                                      \
    }
JM_DEFINE_FILL(u32, uint32_t)
JM_DEFINE_FILL(i32, int32_t)
JM_DEFINE_FILL(i64, int64_t)

static void jm_fill(dqo_type type, const void *keys, const uint8_t *valid,
                    uint64_t lo, uint64_t hi, uint64_t base, unsigned rbits,
                    bool packed, uint64_t *a, uint32_t *rows, uint64_t pos)
{
    switch (type) {
    case DQO_TYPE_U32:
        jm_fill_u32(keys, valid, lo, hi, base, rbits, packed, a, rows, pos);
        break;
    case DQO_TYPE_I32:
        jm_fill_i32(keys, valid, lo, hi, base, rbits, packed, a, rows, pos);
        break;
    default:
        jm_fill_i64(keys, valid, lo, hi, base, rbits, packed, a, rows, pos);
        break;
    }
}

/* Fills the pairs of the valid rows in row order, in parallel: a count of
 * the valid rows per block, a prefix sum, then the writes. Returns the
 * number of pairs through *n (the count is taken from the data, not the
 * statistics, so wrong statistics cannot overrun the buffers). `cnt` has
 * room for nt + 1 counters. */
static void jm_fill_all(dqo_type type, const void *keys, const uint8_t *valid,
                        uint64_t rows, uint64_t base, unsigned rbits,
                        bool packed, uint64_t *a, uint32_t *r, int nt,
                        uint64_t *cnt, uint64_t *n)
{
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num();
        const int tn = omp_get_num_threads();
        const uint64_t lo = rows * (uint64_t)t / (uint64_t)tn;
        const uint64_t hi = rows * (uint64_t)(t + 1) / (uint64_t)tn;
        uint64_t c = hi - lo;
        if (valid != NULL) {
            c = 0;
            for (uint64_t i = lo; i < hi; i++)
                c += valid[i] != 0;
        }
        cnt[t + 1] = c;
#pragma omp barrier
#pragma omp single
        {
            cnt[0] = 0;
            for (int u = 0; u < tn; u++)
                cnt[u + 1] += cnt[u];
            *n = cnt[tn];
        }
        jm_fill(type, keys, valid, lo, hi, base, rbits, packed, a, r, cnt[t]);
    }
}

/* Splits packed items into key offsets (in place) and row ids. */
static void jm_unpack(uint64_t *restrict a, uint32_t *restrict r, uint64_t n,
                      unsigned rbits, int nt)
{
    const uint64_t mask = (UINT64_C(1) << rbits) - 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (uint64_t i = 0; i < n; i++) {
        r[i] = (uint32_t)(a[i] & mask);
        a[i] >>= rbits;
    }
}

void cpu_join_side_free(cpu_join_side *s)
{
    mem_scratch_free(s->own_keys);
    mem_free(s->own_rows);
    memset(s, 0, sizeof *s);
}

dqo_status cpu_join_side_pairs(dqo_type type, const void *keys,
                               const uint8_t *valid, uint64_t rows,
                               const dqo_column_stats *stats, int64_t base,
                               bool sorted, int threads, cpu_join_side *out)
{
    memset(out, 0, sizeof *out);
    out->offsets = true;
    if (rows == 0)
        return DQO_OK;
    const unsigned kbits = jm_bits((uint64_t)stats->max - (uint64_t)base);
    const unsigned rbits = jm_bits(rows - 1);
    /* Packed items sort with group_sort.c's streaming radix sort; keys too
     * wide for that carry their row ids beside them. */
    const bool packed = kbits + rbits <= 64;
    const bool sort = !sorted && kbits > 0;
    const int nt = jm_threads_for(rows, threads);
    dqo_status st = DQO_ENOMEM;
    uint64_t *a = mem_scratch_alloc(rows * sizeof *a);
    uint64_t *tmp = sort ? mem_scratch_alloc(rows * sizeof *tmp) : NULL;
    uint32_t *r = mem_alloc(rows * sizeof *r);
    uint32_t *rt = sort && !packed ? mem_alloc(rows * sizeof *rt) : NULL;
    uint64_t *hist =
        sort && !packed ? mem_alloc((size_t)nt << JM_DIGIT_BITS << 3) : NULL;
    uint64_t *cnt = mem_alloc(((size_t)nt + 1) * sizeof *cnt);
    if (a == NULL || r == NULL || cnt == NULL || (sort && tmp == NULL) ||
        (sort && !packed && (rt == NULL || hist == NULL)))
        goto done;

    uint64_t n = 0;
    jm_fill_all(type, keys, valid, rows, (uint64_t)base, packed ? rbits : 0,
                packed && sort, a, r, nt, cnt, &n);
    uint64_t *ko = a;
    uint32_t *ro = r;
    if (sort && packed) {
        st = cpu_radix_sort_u64(a, tmp, n, rbits, kbits, threads, &ko);
        if (st != DQO_OK)
            goto done;
        jm_unpack(ko, r, n, rbits, jm_threads_for(n, threads));
    } else if (sort) {
        jm_sort_wide(a, r, tmp, rt, n, kbits, jm_threads_for(n, threads), hist,
                     &ko, &ro);
    }
    /* Keep the buffers holding the result, free the others. */
    out->own_keys = ko;
    out->own_rows = ro;
    mem_scratch_free(ko == a ? tmp : a);
    mem_free(ro == r ? rt : r);
    a = tmp = NULL;
    r = rt = NULL;
    out->n = n;
    out->keys = ko;
    out->rows = ro;
    out->sorted_here = sort;
    out->wide = sort && !packed;
    st = DQO_OK;
done:
    mem_scratch_free(a);
    mem_scratch_free(tmp);
    mem_free(r);
    mem_free(rt);
    mem_free(hist);
    mem_free(cnt);
    return st;
}

/* ------------------------------------------------------------- the merge */

/* Key i of a side as an offset from the join's base; `sub` is the base for
 * raw sides and 0 for pairs (whose keys already are offsets). */
#define JM_KEY(k, i, sub) ((uint64_t)(int64_t)(k)[i] - (sub))
#define JM_ROW(r, i) ((r) != NULL ? (r)[i] : (uint32_t)(i))

/* Count and write passes of one range, per pair of side representations:
 * the input key types and uint64_t for offsets. */
#define JM_DEFINE_MERGE(bn, KB, pn, KP)                                        \
    static uint64_t jm_count_##bn##_##pn(                                      \
        const KB *restrict kb, uint64_t bsub, uint64_t i, uint64_t bh,         \
        const KP *restrict kp, uint64_t psub, uint64_t j, uint64_t ph)         \
    {                                                                          \
        uint64_t pairs = 0;                                                    \
        while (i < bh && j < ph) {                                             \
            const uint64_t x = JM_KEY(kb, i, bsub), y = JM_KEY(kp, j, psub);   \
            if (x < y) {                                                       \
                i++;                                                           \
            } else if (x > y) {                                                \
                j++;                                                           \
            } else {                                                           \
                const uint64_t i0 = i, j0 = j;                                 \
                while (i < bh && JM_KEY(kb, i, bsub) == x)                     \
                    i++;                                                       \
                while (j < ph && JM_KEY(kp, j, psub) == x)                     \
                    j++;                                                       \
                pairs += (i - i0) * (j - j0);                                  \
            }                                                                  \
        }                                                                      \
        return pairs;                                                          \
    }                                                                          \
    static void jm_write_##bn##_##pn(                                          \
        const KB *restrict kb, const uint32_t *restrict br, uint64_t bsub,     \
        uint64_t i, uint64_t bh, const KP *restrict kp,                        \
        const uint32_t *restrict pr, uint64_t psub, uint64_t j, uint64_t ph,   \
        uint32_t *restrict ob, uint32_t *restrict op, uint64_t pos)            \
    {                                                                          \
        while (i < bh && j < ph) {                                             \
            const uint64_t x = JM_KEY(kb, i, bsub), y = JM_KEY(kp, j, psub);   \
            if (x < y) {                                                       \
                i++;                                                           \
            } else if (x > y) {                                                \
                j++;                                                           \
            } else {                                                           \
                const uint64_t j0 = j;                                         \
                while (j < ph && JM_KEY(kp, j, psub) == x)                     \
                    j++;                                                       \
                for (; i < bh && JM_KEY(kb, i, bsub) == x; i++) {              \
                    const uint32_t b = JM_ROW(br, i);                          \
                    for (uint64_t q = j0; q < j; q++) {                        \
                        ob[pos] = b;                                           \
                        op[pos++] = JM_ROW(pr, q);                             \
                    }                                                          \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }
JM_DEFINE_MERGE(u32, uint32_t, u32, uint32_t)
JM_DEFINE_MERGE(u32, uint32_t, off, uint64_t)
JM_DEFINE_MERGE(off, uint64_t, u32, uint32_t)
JM_DEFINE_MERGE(i32, int32_t, i32, int32_t)
JM_DEFINE_MERGE(i32, int32_t, off, uint64_t)
JM_DEFINE_MERGE(off, uint64_t, i32, int32_t)
JM_DEFINE_MERGE(i64, int64_t, i64, int64_t)
JM_DEFINE_MERGE(i64, int64_t, off, uint64_t)
JM_DEFINE_MERGE(off, uint64_t, i64, int64_t)
JM_DEFINE_MERGE(off, uint64_t, off, uint64_t)

/* The two sides of a merge and their representations. */
typedef struct jm_sides {
    dqo_type type;
    uint64_t base;
    const cpu_join_side *b, *p;
} jm_sides;

static inline uint64_t jm_sub(const jm_sides *m, const cpu_join_side *s)
{
    return s->offsets ? 0 : m->base;
}

/* One range's count (ob == NULL) or writes, through the specialised loop
 * of the sides' representations. */
static uint64_t jm_range(const jm_sides *m, uint64_t bl, uint64_t bh,
                         uint64_t pl, uint64_t ph, uint32_t *ob, uint32_t *op,
                         uint64_t pos)
{
    const cpu_join_side *b = m->b, *p = m->p;
    const uint64_t bs = jm_sub(m, b), ps = jm_sub(m, p);
#define JM_CALL_(bn, pn)                                                       \
    do {                                                                       \
        if (ob == NULL)                                                        \
            return jm_count_##bn##_##pn(b->keys, bs, bl, bh, p->keys, ps, pl,  \
                                        ph);                                   \
        jm_write_##bn##_##pn(b->keys, b->rows, bs, bl, bh, p->keys, p->rows,   \
                             ps, pl, ph, ob, op, pos);                         \
        return 0;                                                              \
    } while (0)
#define JM_TYPE_CASE_(tn)                                                      \
    if (b->offsets && p->offsets)                                              \
        JM_CALL_(off, off);                                                    \
    if (b->offsets)                                                            \
        JM_CALL_(off, tn);                                                     \
    if (p->offsets)                                                            \
        JM_CALL_(tn, off);                                                     \
    JM_CALL_(tn, tn);
    switch (m->type) {
    case DQO_TYPE_U32: JM_TYPE_CASE_(u32)
    case DQO_TYPE_I32: JM_TYPE_CASE_(i32)
    default: JM_TYPE_CASE_(i64)
    }
#undef JM_TYPE_CASE_
#undef JM_CALL_
}

/* Key i of a side (outside the hot loops). */
static uint64_t jm_key_at(const jm_sides *m, const cpu_join_side *s, uint64_t i)
{
    if (s->offsets)
        return ((const uint64_t *)s->keys)[i];
    switch (m->type) {
    case DQO_TYPE_U32: return JM_KEY((const uint32_t *)s->keys, i, m->base);
    case DQO_TYPE_I32: return JM_KEY((const int32_t *)s->keys, i, m->base);
    default: return JM_KEY((const int64_t *)s->keys, i, m->base);
    }
}

/* The first position of side s whose key is >= x. */
static uint64_t jm_lower_bound(const jm_sides *m, const cpu_join_side *s,
                               uint64_t x)
{
    uint64_t lo = 0, hi = s->n;
    while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (jm_key_at(m, s, mid) < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct jm_span {
    uint64_t bl, bh, pl, ph, pairs, pos;
} jm_span;

/* Cuts the probe side into nr ranges starting at key boundaries and the
 * build side at the same keys. */
static void jm_split(const jm_sides *m, jm_span *sp, int nr)
{
    const uint64_t np = m->p->n;
    uint64_t prev_p = 0, prev_b = 0;
    for (int t = 1; t <= nr; t++) {
        uint64_t s = t == nr ? np : np * (uint64_t)t / (uint64_t)nr;
        uint64_t bs = m->b->n;
        if (s < np) {
            /* Move up to the first row of the key that row s holds. */
            s = jm_lower_bound(m, m->p, jm_key_at(m, m->p, s));
            if (s < prev_p)
                s = prev_p;
            bs = jm_lower_bound(m, m->b, jm_key_at(m, m->p, s));
        }
        if (bs < prev_b)
            bs = prev_b;
        sp[t - 1] = (jm_span){prev_b, bs, prev_p, s, 0, 0};
        prev_p = s;
        prev_b = bs;
    }
}

/* The merge of two sorted sides into out (count, prefix, write). */
static dqo_status jm_merge(const jm_sides *m, int threads, const char *alg,
                           join_output *out, int *ranges)
{
    int nr = 1;
    if (threads > 1) {
        const uint64_t most = m->p->n / JM_MIN_RANGE_ROWS;
        const uint64_t want = (uint64_t)threads * JM_RANGES_PER_THREAD;
        nr = most < 1 ? 1 : (int)(most < want ? most : want);
    }
    *ranges = nr;
    jm_span *sp = mem_alloc((size_t)nr * sizeof *sp);
    if (sp == NULL) {
        snprintf(out->detail, sizeof out->detail,
                 "%s: cannot allocate %d merge ranges", alg, nr);
        return DQO_ENOMEM;
    }
    jm_split(m, sp, nr);
    const int nt = nr < threads ? nr : threads;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int t = 0; t < nr; t++)
        sp[t].pairs =
            jm_range(m, sp[t].bl, sp[t].bh, sp[t].pl, sp[t].ph, NULL, NULL, 0);
    uint64_t total = 0;
    for (int t = 0; t < nr; t++) {
        sp[t].pos = total;
        total += sp[t].pairs;
    }
    dqo_status st = cpu_join_output_alloc(out, total, alg);
    if (st == DQO_OK && total > 0) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int t = 0; t < nr; t++)
            jm_range(m, sp[t].bl, sp[t].bh, sp[t].pl, sp[t].ph, out->build_row,
                     out->probe_row, sp[t].pos);
    }
    mem_free(sp);
    return st;
}

/* ---------------------------------------------------------- OJ and SOJ */

static bool jm_ascending(const dqo_column_stats *s)
{
    return s->order == DQO_ORDER_ASC || s->order == DQO_ORDER_CONST;
}

static bool jm_no_valid_key(const dqo_column_stats *s, uint64_t rows)
{
    return rows == 0 || s->nulls >= rows;
}

/* A side ready to merge: read in place when sorted without NULLs, else
 * as pairs (sorted here when not sorted). */
static dqo_status jm_side(dqo_type type, const void *keys, const uint8_t *valid,
                          uint64_t rows, const dqo_column_stats *stats,
                          int64_t base, int threads, cpu_join_side *s)
{
    const bool sorted = jm_ascending(stats);
    if (sorted && (valid == NULL || stats->nulls == 0)) {
        memset(s, 0, sizeof *s);
        s->n = rows;
        s->keys = keys;
        return DQO_OK;
    }
    return cpu_join_side_pairs(type, keys, valid, rows, stats, base, sorted,
                               threads, s);
}

static const char *jm_side_how(const cpu_join_side *s)
{
    return s->sorted_here ? (s->wide ? "sorted (wide)" : "sorted")
           : s->offsets   ? "filtered"
                          : "in place";
}

dqo_status cpu_join_merge(const join_input *in, bool sort, join_output *out)
{
    const char *alg = sort ? "soj" : "oj";
    if (!sort &&
        (!jm_ascending(in->build_stats) || !jm_ascending(in->probe_stats))) {
        snprintf(out->detail, sizeof out->detail,
                 "oj: the %s side is not sorted ascending on the key; "
                 "soj sorts it",
                 jm_ascending(in->build_stats) ? "probe" : "build");
        return DQO_EUNSUPPORTED;
    }
    if (jm_no_valid_key(in->build_stats, in->build_rows) ||
        jm_no_valid_key(in->probe_stats, in->probe_rows)) {
        snprintf(out->detail, sizeof out->detail,
                 "%s: a side has no valid key, no pairs", alg);
        return DQO_OK;
    }
    const int64_t base = in->build_stats->min < in->probe_stats->min
                             ? in->build_stats->min
                             : in->probe_stats->min;
    cpu_join_side b, p;
    memset(&p, 0, sizeof p);
    dqo_status st =
        jm_side(in->key_type, in->build_keys, in->build_valid, in->build_rows,
                in->build_stats, base, in->threads, &b);
    if (st == DQO_OK)
        st = jm_side(in->key_type, in->probe_keys, in->probe_valid,
                     in->probe_rows, in->probe_stats, base, in->threads, &p);
    if (st != DQO_OK) {
        snprintf(out->detail, sizeof out->detail,
                 "%s: cannot allocate the sort buffers of %llu + %llu rows",
                 alg, (unsigned long long)in->build_rows,
                 (unsigned long long)in->probe_rows);
        goto done;
    }
    const jm_sides m = {in->key_type, (uint64_t)base, &b, &p};
    int nr = 1;
    st = jm_merge(&m, in->threads, alg, out, &nr);
    if (st == DQO_OK)
        snprintf(out->detail, sizeof out->detail,
                 "%s: build %s, probe %s, merge in %d ranges, %d threads", alg,
                 jm_side_how(&b), jm_side_how(&p), nr, in->threads);
done:
    cpu_join_side_free(&b);
    cpu_join_side_free(&p);
    return st;
}
