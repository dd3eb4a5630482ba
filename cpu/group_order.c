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
 * How: the rows are split into one contiguous range per thread, and each
 * range gets its output slots up front. With one thread the exact run count
 * of the statistics sizes the output. With sorted keys, a range holds at
 * most |last - first| + 1 runs; when these bounds add up to that run count
 * (dense keys: the paper's datasets) they are exact, and every range writes
 * straight into the output at prefix offsets. Otherwise, with few runs every
 * range gets a private output of min(its rows, runs) slots, copied into
 * place afterwards; with many runs a first parallel pass counts the runs of
 * every range to fix its offset. A run that spans a range boundary is
 * accumulated by the later thread into a spare slot and merged afterwards.
 *
 * The walk of a range: the common shape - COUNT(*), COUNTs of NULL-free
 * columns and at most one SUM of a NULL-free 32-bit column - is fused: per
 * chunk of AGG_CHUNK rows one branch-free pass (AVX-512 compares, prefix
 * sums and compress-stores 16 rows at a time where available) records every
 * run end with the running prefix sum of the values there; a run's count
 * and sum are differences of consecutive ends, written once into the output
 * (no initialisation pass; the output's pages are first touched there, in
 * parallel). O(1) per row for any run length. Other shapes: ranges of long
 * runs are folded run by run with tight loops that scan a run's extent and
 * reduce its values directly; ranges of short runs go through agg_update in
 * chunks of AGG_CHUNK slots. Groups come out in the order of their first
 * appearance (ascending for ascending input).
 *
 * Cost: one read of keys and aggregate columns to accumulate, plus one read
 * of the keys to count runs when there are many and the key bounds do not
 * give them, plus a hash pass over the groups for unsorted input. Memory:
 * the output arrays (groups + threads slots; with few runs also threads x
 * runs private slots), plus a 4-byte hash table of 2x the groups when
 * deduplicating.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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
            /* Blocks that cannot overflow, each added with a check. */        \
            for (uint64_t b = s; b < e;) {                                     \
                uint64_t be = e - b > OG_SUM_BLOCK ? b + OG_SUM_BLOCK : e;     \
                __int128 sum = 0;                                              \
                if (sizeof(T) == 8) {                                          \
                    /* Halves of 32 bits sum without overflow in int64:        \
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
                /* The run index within the chunk is a prefix sum of key       \
                 * changes. */                                                 \
                uint32_t s = 0;                                                \
                slots[0] = 0;                                                  \
                for (uint32_t j = 1; j < n; j++) {                             \
                    s += k[i + j] != k[i + j - 1];                             \
                    slots[j] = s;                                              \
                }                                                              \
                if (g + s >= cap)                                              \
                    return false;                                              \
                /* A branch-free key store per row: the last one of a run      \
                 * wins, and all of them write the same value. */              \
                for (uint32_t j = 0; j < n; j++)                               \
                    okeys[base + slots[j]] = (int64_t)k[i + j];                \
                agg_table view;                                                \
                og_view(&view, out, in, base);                                 \
                agg_update(&view, in, slots, i, n, &r->flags);                 \
                g += s;                                                        \
                i += n;                                                        \
                /* The next chunk starts a new group unless it continues       \
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

/* ------------------------------------------------ the fused COUNT/SUM walk */

/* Rows per block of the fused walk whose keys are compared at once: a block
 * without a key change only adds its values (vectorised); one with a change
 * goes through the branch-free per-row loop. */
#define OG_FAST_BLOCK 16

/* The aggregate shape of the fused walk: COUNT(*), COUNT of NULL-free
 * columns (the run length again) and at most one SUM of a NULL-free 32-bit
 * column, with fewer than 2^31 rows (a running int64 prefix of such values
 * cannot overflow). sum_agg is that SUM's index or -1. */
typedef struct og_fast {
    int sum_agg;
    int ncount;
    int count_aggs[GRP_MAX_AGGS];
} og_fast;

static bool og_fast_shape(const grp_input *in, og_fast *fs)
{
    fs->sum_agg = -1;
    fs->ncount = 0;
    if (in->rows >= (UINT64_C(1) << 31))
        return false;
    for (int a = 0; a < in->naggs; a++) {
        const grp_agg *g = &in->aggs[a];
        if (g->valid != NULL)
            return false;
        if (g->op == AGG_OP_COUNT) {
            fs->count_aggs[fs->ncount++] = a;
        } else if (g->op == AGG_OP_SUM && fs->sum_agg < 0 &&
                   (g->type == DQO_TYPE_I32 || g->type == DQO_TYPE_U32)) {
            fs->sum_agg = a;
        } else {
            return false;
        }
    }
    return true;
}

#if defined(__AVX512F__)
/* 16 keys at a time: a mask of the rows whose successor has another key
 * (two 8-lane compares for 64-bit keys). */
static inline __mmask16 og_ne16_32(const void *k)
{
    const uint32_t *p = k;
    return _mm512_cmpneq_epi32_mask(_mm512_loadu_si512(p),
                                    _mm512_loadu_si512(p + 1));
}
static inline __mmask16 og_ne16_64(const void *k)
{
    const int64_t *p = k;
    const __mmask8 a = _mm512_cmpneq_epi64_mask(_mm512_loadu_si512(p),
                                                _mm512_loadu_si512(p + 1));
    const __mmask8 b = _mm512_cmpneq_epi64_mask(_mm512_loadu_si512(p + 8),
                                                _mm512_loadu_si512(p + 9));
    return (__mmask16)((unsigned)a | (unsigned)b << 8);
}
/* The inclusive prefix sum of 8 int64 lanes. */
static inline __m512i og_scan8(__m512i x)
{
    const __m512i z = _mm512_setzero_si512();
    x = _mm512_add_epi64(x, _mm512_alignr_epi64(x, z, 7));
    x = _mm512_add_epi64(x, _mm512_alignr_epi64(x, z, 6));
    return _mm512_add_epi64(x, _mm512_alignr_epi64(x, z, 4));
}

/* The fused walk's blocks of 16 rows with AVX-512 (see OG_FAST): a block
 * without a key change adds its values to a vector accumulator; one with
 * changes computes the 16 running prefix sums in two int64 vectors and
 * compress-stores the prefixes and row offsets of its run ends. The stores
 * write whole vectors at S + c and E + c, which stay inside the chunk's
 * AGG_CHUNK entries since c never passes the block's first row. Leaves j at
 * the first row that the scalar loops still have to do. */
#define OG_FAST_BLOCKS(T, V, HASV, SG)                                         \
    {                                                                          \
        const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,   \
                                               10, 11, 12, 13, 14, 15);        \
        const __m512i last = _mm512_set1_epi64(7);                             \
        __m512i vacc = _mm512_setzero_si512();                                 \
        bool vpend = false;                                                    \
        for (; j + 16 <= lim; j += 16) {                                       \
            const __mmask16 m =                                                \
                sizeof(T) == 4 ? og_ne16_32(k + j) : og_ne16_64(k + j);        \
            __m512i lo = _mm512_setzero_si512(), hi = lo;                      \
            if (HASV) {                                                        \
                const __m512i vv = _mm512_loadu_si512(v + j);                  \
                const __m256i v0 = _mm512_castsi512_si256(vv);                 \
                const __m256i v1 = _mm512_extracti64x4_epi64(vv, 1);           \
                lo = SG ? _mm512_cvtepi32_epi64(v0)                            \
                        : _mm512_cvtepu32_epi64(v0);                           \
                hi = SG ? _mm512_cvtepi32_epi64(v1)                            \
                        : _mm512_cvtepu32_epi64(v1);                           \
            }                                                                  \
            if (m == 0) {                                                      \
                if (HASV) {                                                    \
                    vacc = _mm512_add_epi64(vacc, _mm512_add_epi64(lo, hi));   \
                    vpend = true;                                              \
                }                                                              \
                continue;                                                      \
            }                                                                  \
            _mm512_storeu_si512(                                               \
                E + c, _mm512_maskz_compress_epi32(                            \
                           m, _mm512_add_epi32(                                \
                                  _mm512_set1_epi32((int)(j - x)), iota)));    \
            if (HASV) {                                                        \
                if (vpend) {                                                   \
                    P += _mm512_reduce_add_epi64(vacc);                        \
                    vacc = _mm512_setzero_si512();                             \
                    vpend = false;                                             \
                }                                                              \
                lo = _mm512_add_epi64(og_scan8(lo), _mm512_set1_epi64(P));     \
                hi = _mm512_add_epi64(og_scan8(hi),                            \
                                      _mm512_permutexvar_epi64(last, lo));     \
                P = _mm_cvtsi128_si64(_mm512_castsi512_si128(                  \
                    _mm512_permutexvar_epi64(last, hi)));                      \
                _mm512_storeu_si512(                                           \
                    S + c, _mm512_maskz_compress_epi64((__mmask8)m, lo));      \
                c += (uint32_t)__builtin_popcount(m & 0xffu);                  \
                _mm512_storeu_si512(S + c, _mm512_maskz_compress_epi64(        \
                                               (__mmask8)(m >> 8), hi));       \
                c += (uint32_t)__builtin_popcount((unsigned)m >> 8);           \
            } else {                                                           \
                c += (uint32_t)__builtin_popcount(m);                          \
            }                                                                  \
        }                                                                      \
        if (HASV && vpend)                                                     \
            P += _mm512_reduce_add_epi64(vacc);                                \
    }
#else
#define OG_FAST_BLOCKS(T, V, HASV, SG)
#endif

/* og_fast_<t>_<v>: the walk of a range for the fused shape, key type T,
 * SUM input type V (HASV 0: no SUM; SG: V is signed). Per chunk of AGG_CHUNK
 * rows one branch-free pass records every run end (a row whose successor has
 * another key, and the range's last row) with the running prefix sum of the
 * values there: S[c] = prefix, E[c] = row, c += key change. A run's count and
 * sum are then differences of consecutive ends and prefixes, written straight
 * into the output (every slot written once, so nothing is initialised).
 * Cost: O(1) per row with no store-to-load chain through the accumulators,
 * plus O(1) per run. Returns false, like og_walk, on more runs than r->cap. */
#define OG_FAST(t, T, vn, V, HASV, SG)                                         \
    static bool og_fast_##t##_##vn(                                            \
        const grp_input *in, grp_output *out, og_range *r, uint64_t spare,     \
        const og_fast *fs, int64_t *restrict S, uint32_t *restrict E)          \
    {                                                                          \
        const T *restrict k = (const T *)in->keys;                             \
        const V *restrict v =                                                  \
            HASV ? (const V *)in->aggs[fs->sum_agg].data : NULL;               \
        int64_t *restrict okeys = out->keys;                                   \
        int64_t *restrict ocnt = out->count;                                   \
        int64_t *restrict osum =                                               \
            HASV ? (int64_t *)out->acc[fs->sum_agg] : NULL;                    \
        const uint64_t e = r->end, gend = r->off + r->cap;                     \
        uint64_t g = r->off;                                                   \
        bool pending = r->cont; /* the first run goes to the spare slot */     \
        int64_t P = 0, ps = 0;  /* prefix so far; at the last emitted end */   \
        uint64_t rs = r->begin; /* first row of the next run to emit */        \
        for (uint64_t x = r->begin; x < e;) {                                  \
            const uint64_t ce = e - x > AGG_CHUNK ? x + AGG_CHUNK : e;         \
            const uint64_t lim = ce == e ? e - 1 : ce; /* j < lim: k[j+1] */   \
            uint32_t c = 0;                                                    \
            uint64_t j = x;                                                    \
            OG_FAST_BLOCKS(T, V, HASV, SG)                                     \
            for (; j + OG_FAST_BLOCK <= lim; j += OG_FAST_BLOCK) {             \
                unsigned d = 0;                                                \
                for (int q = 0; q < OG_FAST_BLOCK; q++)                        \
                    d |= k[j + q] != k[j + q + 1];                             \
                if (d == 0) {                                                  \
                    if (HASV) {                                                \
                        int64_t s = 0;                                         \
                        for (int q = 0; q < OG_FAST_BLOCK; q++)                \
                            s += (int64_t)v[j + q];                            \
                        P += s;                                                \
                    }                                                          \
                    continue;                                                  \
                }                                                              \
                for (int q = 0; q < OG_FAST_BLOCK; q++) {                      \
                    if (HASV)                                                  \
                        P += (int64_t)v[j + q];                                \
                    S[c] = P;                                                  \
                    E[c] = (uint32_t)(j + q - x);                              \
                    c += k[j + q] != k[j + q + 1];                             \
                }                                                              \
            }                                                                  \
            for (; j < lim; j++) {                                             \
                if (HASV)                                                      \
                    P += (int64_t)v[j];                                        \
                S[c] = P;                                                      \
                E[c] = (uint32_t)(j - x);                                      \
                c += k[j] != k[j + 1];                                         \
            }                                                                  \
            if (ce == e) {                                                     \
                if (HASV)                                                      \
                    P += (int64_t)v[e - 1];                                    \
                S[c] = P;                                                      \
                E[c] = (uint32_t)(e - 1 - x);                                  \
                c++;                                                           \
            }                                                                  \
            uint32_t q = 0;                                                    \
            if (pending && c > 0) {                                            \
                const uint64_t end = x + E[0];                                 \
                ocnt[spare] = (int64_t)(end + 1 - rs);                         \
                if (HASV)                                                      \
                    osum[spare] = S[0] - ps;                                   \
                for (int a = 0; a < fs->ncount; a++)                           \
                    ((int64_t *)out->acc[fs->count_aggs[a]])[spare] =          \
                        ocnt[spare];                                           \
                rs = end + 1;                                                  \
                ps = S[0];                                                     \
                pending = false;                                               \
                q = 1;                                                         \
            }                                                                  \
            if (c - q > gend - g)                                              \
                return false;                                                  \
            const uint64_t g0 = g;                                             \
            for (; q < c; q++) {                                               \
                const uint64_t end = x + E[q];                                 \
                okeys[g] = (int64_t)k[end];                                    \
                ocnt[g] = (int64_t)(end + 1 - rs);                             \
                if (HASV)                                                      \
                    osum[g] = S[q] - ps;                                       \
                rs = end + 1;                                                  \
                ps = S[q];                                                     \
                g++;                                                           \
            }                                                                  \
            for (int a = 0; a < fs->ncount; a++)                               \
                memcpy((int64_t *)out->acc[fs->count_aggs[a]] + g0, ocnt + g0, \
                       (g - g0) * sizeof *ocnt);                               \
            x = ce;                                                            \
        }                                                                      \
        r->walked = g - r->off;                                                \
        return true;                                                           \
    }

#define OG_FAST_KEYS(t, T)                                                     \
    OG_FAST(t, T, none, int32_t, 0, 1)                                         \
    OG_FAST(t, T, i32, int32_t, 1, 1)                                          \
    OG_FAST(t, T, u32, uint32_t, 1, 0)
OG_FAST_KEYS(u32, uint32_t)
OG_FAST_KEYS(i32, int32_t)
OG_FAST_KEYS(i64, int64_t)
#undef OG_FAST_KEYS
#undef OG_FAST

static bool og_fast_walk(const grp_input *in, grp_output *out, og_range *r,
                         uint64_t spare, const og_fast *fs, int64_t *S,
                         uint32_t *E)
{
    const int vt = fs->sum_agg < 0                              ? 0
                   : in->aggs[fs->sum_agg].type == DQO_TYPE_I32 ? 1
                                                                : 2;
#define OG_FAST_CALL_(t)                                                       \
    return vt == 0   ? og_fast_##t##_none(in, out, r, spare, fs, S, E)         \
           : vt == 1 ? og_fast_##t##_i32(in, out, r, spare, fs, S, E)          \
                     : og_fast_##t##_u32(in, out, r, spare, fs, S, E);
    switch (in->key_type) {
    case DQO_TYPE_U32: OG_FAST_CALL_(u32)
    case DQO_TYPE_I32: OG_FAST_CALL_(i32)
    default: OG_FAST_CALL_(i64)
    }
#undef OG_FAST_CALL_
}

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
    int64_t *sums = NULL;
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
    og_fast fs;
    const bool fast = og_fast_shape(in, &fs);
    if (fast)
        sums = mem_alloc((size_t)nr * AGG_CHUNK * sizeof *sums);
    if (ranges == NULL || slots == NULL || (fast && sums == NULL)) {
        st = DQO_ENOMEM;
        goto fail;
    }
    for (int t = 0; t < nr; t++) {
        ranges[t].begin = rows * (uint64_t)t / (uint64_t)nr;
        ranges[t].end = rows * (uint64_t)(t + 1) / (uint64_t)nr;
        ranges[t].flags.overflow_agg = -1;
    }

    /* Four ways to give every range its output slots, all exact:
     *  - one range: the statistics' run count is its group count;
     *  - sorted key bounds: with sorted keys a range holds at most
     *    |last - first| + 1 runs; when these bounds add up to the exact run
     *    count of the statistics (dense keys, the paper's datasets), they
     *    are the ranges' run counts, and the ranges write straight into the
     *    output at prefix offsets with no pass to count them;
     *  - few runs (private): each range writes into its own small output of
     *    min(rows of the range, runs) slots, copied into place afterwards,
     *    which saves the count pass over the keys;
     *  - many runs (counted): a parallel pass counts each range's runs, and
     *    the ranges write straight into the output at prefix offsets.
     * In every case the walk checks it never writes past its slots, so
     * wrong statistics give DQO_EINTERNAL rather than a corrupt result. */
    const uint64_t sruns = in->key_stats->runs;
    const dqo_order order = in->key_stats->order;
    const bool sorted = order == DQO_ORDER_ASC || order == DQO_ORDER_DESC ||
                        order == DQO_ORDER_CONST;
    const bool one = nr == 1 && (rows == 0 || sruns > 0);
    bool bounded = false;
    if (!one) {
        /* nr > 1 here or the run count is unknown; ranges are not empty
         * when nr > 1 (at least OG_MIN_ROWS_PER_THREAD rows each). */
        uint64_t total = 0;
        for (int t = 0; t < nr && rows > 0; t++) {
            og_range *r = &ranges[t];
            r->first = grp_key_at(in, r->begin);
            r->last = grp_key_at(in, r->end - 1);
            const uint64_t len = r->end - r->begin;
            const uint64_t d = r->last >= r->first
                                   ? (uint64_t)r->last - (uint64_t)r->first
                                   : (uint64_t)r->first - (uint64_t)r->last;
            r->runs = d >= len - 1 ? len : d + 1;
            total += r->runs - (t > 0 && ranges[t - 1].last == r->first);
        }
        bounded = sorted && rows > 0 && total == sruns;
    }
    const bool priv =
        !one && !bounded && sruns > 0 &&
        (sruns + 1) * (uint64_t)nr <= rows / OG_PRIVATE_ROWS_PER_SLOT;
    const bool scan_all = rows >= OG_SCAN_MIN_RUN * sruns;
    if (one) {
        ranges[0].runs = rows == 0 ? 0 : sruns;
    } else if (priv) {
        for (int t = 0; t < nr; t++) {
            og_range *r = &ranges[t];
            const uint64_t len = r->end - r->begin;
            r->runs = len < sruns ? len : sruns;
        }
    } else if (!bounded) {
#pragma omp parallel for num_threads(nr) schedule(static, 1)
        for (int t = 0; t < nr; t++)
            ranges[t].runs = og_count(in, ranges[t].begin, ranges[t].end);
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
        bool ok;
        if (fast) {
            /* The fused walk writes every slot once, so the first touch of
             * the output's pages happens here, spread over the threads. */
            ok =
                og_fast_walk(in, o, r, spare, &fs, sums + (size_t)t * AGG_CHUNK,
                             slots + (size_t)t * AGG_CHUNK);
        } else {
            /* Each thread initialises the slots it writes: first touch puts
             * them on its own NUMA node. */
            agg_table_reset(&view, in, r->off, r->cap);
            agg_table_reset(&view, in, spare, 1);
            ok = og_walk(in, o, r, spare, slots + (size_t)t * AGG_CHUNK);
        }
        consistent = ok && (priv || r->walked == r->cap);
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
                agg_merge_range(&view, ranges[t].off - 1, &tv, ranges[t].cap, 1,
                                in, &flags);
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
             one       ? "one"
             : priv    ? "private outputs"
             : bounded ? "sorted key bounds"
                       : "counted",
             fast             ? "fused count/sum over run ends"
             : ranges[0].scan ? "run scan"
                              : "slot chunks",
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
    mem_free(sums);
    return st;
}
