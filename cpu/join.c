/*
 * join.c - the CPU join kernels that keep the probe side's order: hash join
 * (HJ), static perfect hash join (SPHJ) and binary search join (BSJ); the
 * dispatch to them and to the merge joins of join_merge.c (OJ, SOJ); and
 * the join output.
 *
 * All three build an index over the build side that maps a key to a range
 * of a row list holding the build rows of each key together, ascending
 * (so duplicates cost nothing extra at probe time), then probe in
 * parallel: chunks of probe rows count their matches, a prefix sum gives
 * each chunk its output offset, and a second pass writes the pairs into an
 * exactly sized output. Pairs come in probe row order, and within one
 * probe row in ascending build row order (engine/backend.h).
 *
 * SPHJ (planner: dense build keys, range <= JOIN_DIRECT_MAX_SLOTS): the
 * build key minus its minimum indexes an offsets array: a count per slot,
 * a prefix sum, a stable scatter of the build rows; per-thread counts when
 * threads x range counters stay small (JOIN_DIRECT_PRIVATE_MAX), else one
 * thread builds. Memory: 4 bytes per slot of the range plus 4 per build
 * row. A probe is one subtraction and two loads.
 *
 * HJ (planner: the default for unsorted, sparse keys): the build rows are
 * radix-partitioned on the high bits of the Murmur3 hash (as many
 * partitions as keep one partition's table within half an L2, at least
 * JOIN_HASH_PART_PER_THREAD per thread), then each partition, in parallel,
 * gets an open-addressing table (linear probing, load <= 1/2) of its
 * distinct keys with the range of their rows. Memory: 12 bytes per build
 * row of partition buffers, 16 bytes per slot (2 to 4 slots per distinct
 * key), 4 bytes per build row. A probe is a hash and usually one slot.
 *
 * BSJ (planner: build side sorted or small, probe side large and unsorted):
 * the build side's (key, row) pairs sorted (join_merge.c), the distinct
 * keys with offsets; each probe key is binary-searched: log2(distinct)
 * dependent loads per probe row. Memory: 12 bytes per build row plus 12 per
 * distinct key.
 *
 * Reference: the DQO paper, Section 5.2 (HJ, SPHJ, BSJ); the partitioned
 * build is the radix join's (Manegold, Boncz, Kersten, "Optimizing main-
 * memory join on modern hardware", TKDE 2002).
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_int.h"
#include "planner/plan.h"

/* The largest build key range SPHJ takes: 2^26 slots are a 256 MiB
 * offsets array, as the task's and the planner's direct-join limit. */
#define JOIN_DIRECT_MAX_SLOTS (UINT64_C(1) << 26)
/* Per-thread slot counters while threads x slots stays at most this many
 * (16 MiB of counters, about an L3): beyond it the counters would cost more
 * memory traffic than the parallel count saves, and one thread builds. */
#define JOIN_DIRECT_PRIVATE_MAX (UINT64_C(1) << 22)
/* Probe chunks per thread (dynamic scheduling evens out skewed matches)
 * and the fewest probe rows a chunk gets (a chunk costs a fork share and
 * a counter). */
#define JOIN_CHUNKS_PER_THREAD 8
#define JOIN_MIN_CHUNK_ROWS 4096
/* HJ: partitions at least per thread, so that per-partition builds
 * balance, and at most 2^12 partitions (per-thread histograms of 32 KiB,
 * scatter targets within the TLB's reach). */
#define JOIN_HASH_PART_PER_THREAD 4
#define JOIN_HASH_MAX_PART_BITS 12
/* HJ: bytes of table per build row (a 16-byte slot at load <= 1/2). */
#define JOIN_HASH_SLOT_BYTES 16
#define JOIN_HASH_EMPTY UINT32_MAX

static const char *const join_names[PLAN_JOIN_COUNT_] = {"hj", "sphj", "oj",
                                                         "soj", "bsj"};

/* ------------------------------------------------------------ the output */

void join_output_free(join_output *out)
{
    if (out == NULL)
        return;
    mem_free(out->build_row);
    mem_free(out->probe_row);
    out->build_row = out->probe_row = NULL;
    out->pairs = 0;
}

dqo_status cpu_join_output_alloc(join_output *out, uint64_t pairs,
                                 const char *alg)
{
    out->pairs = 0;
    out->build_row = out->probe_row = NULL;
    if (pairs == 0)
        return DQO_OK;
    if (pairs > SIZE_MAX / sizeof(uint32_t)) {
        snprintf(out->detail, sizeof out->detail,
                 "%s: %llu pairs exceed the address space", alg,
                 (unsigned long long)pairs);
        return DQO_ENOMEM;
    }
    out->build_row = mem_alloc(pairs * sizeof(uint32_t));
    out->probe_row = mem_alloc(pairs * sizeof(uint32_t));
    if (out->build_row == NULL || out->probe_row == NULL) {
        join_output_free(out);
        snprintf(out->detail, sizeof out->detail,
                 "%s: cannot allocate the output of %llu pairs (%.1f GiB)", alg,
                 (unsigned long long)pairs,
                 (double)pairs * 8.0 / (double)(UINT64_C(1) << 30));
        return DQO_ENOMEM;
    }
    out->pairs = pairs;
    return DQO_OK;
}

/* ------------------------------------------------------------- the index */

typedef struct jh_slot {
    uint64_t key; /* the key as uint64_t */
    uint32_t lo;  /* first position in rows; JOIN_HASH_EMPTY: free */
    uint32_t cnt; /* build rows of the key */
} jh_slot;

/* A build index: key -> range [a, b) of `rows`. min and span bound the
 * valid keys (offset key - min in [0, span]) for SPHJ and BSJ. */
typedef struct jidx {
    uint64_t min, span;
    const uint32_t *rows;
    const uint32_t *off;   /* SPHJ: per slot; BSJ: per distinct key */
    const uint64_t *dkeys; /* BSJ: distinct key offsets, ascending */
    uint64_t ndist;
    const jh_slot *slots;  /* HJ: every partition's table */
    const uint64_t *pbase; /* HJ: first slot of partition p */
    const uint64_t *pmask; /* HJ: capacity - 1 of partition p */
    unsigned pbits;
} jidx;

static inline void jl_sphj(const jidx *x, uint64_t key, uint64_t *a,
                           uint64_t *b)
{
    const uint64_t s = key - x->min;
    if (s > x->span) {
        *a = *b = 0;
        return;
    }
    *a = x->off[s];
    *b = x->off[s + 1];
}

static inline void jl_bsj(const jidx *x, uint64_t key, uint64_t *a, uint64_t *b)
{
    const uint64_t s = key - x->min;
    *a = *b = 0;
    if (s > x->span)
        return;
    const uint64_t *restrict d = x->dkeys;
    uint64_t lo = 0, n = x->ndist;
    /* Branch-free lower bound: halve the window, keep the upper half when
     * its first key is still below s. */
    while (n > 1) {
        const uint64_t half = n / 2;
        lo = d[lo + half - 1] < s ? lo + half : lo;
        n -= half;
    }
    if (x->ndist > 0 && d[lo] == s) {
        *a = x->off[lo];
        *b = x->off[lo + 1];
    }
}

static inline uint64_t jh_part(uint64_t h, unsigned pbits)
{
    return pbits == 0 ? 0 : h >> (64 - pbits);
}

static inline void jl_hj(const jidx *x, uint64_t key, uint64_t *a, uint64_t *b)
{
    const uint64_t h = cpu_hash64(key);
    const uint64_t p = jh_part(h, x->pbits);
    const jh_slot *restrict t = x->slots + x->pbase[p];
    const uint64_t mask = x->pmask[p];
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
        if (t[i].lo == JOIN_HASH_EMPTY) {
            *a = *b = 0;
            return;
        }
        if (t[i].key == key) {
            *a = t[i].lo;
            *b = (uint64_t)t[i].lo + t[i].cnt;
            return;
        }
    }
}

/* ------------------------------------------------------------- the probe */

/* Count and write loops over probe rows [lo, hi), per algorithm and key
 * type; the lookups inline. */
#define JP_DEFINE(alg, kt, K)                                                  \
    static uint64_t jp_count_##alg##_##kt(const jidx *x, const void *kv,       \
                                          const uint8_t *restrict v,           \
                                          uint64_t lo, uint64_t hi)            \
    {                                                                          \
        const K *restrict k = kv;                                              \
        uint64_t n = 0;                                                        \
        for (uint64_t i = lo; i < hi; i++) {                                   \
            if (v != NULL && v[i] == 0)                                        \
                continue;                                                      \
            uint64_t a, b;                                                     \
            jl_##alg(x, (uint64_t)(int64_t)k[i], &a, &b);                      \
            n += b - a;                                                        \
        }                                                                      \
        return n;                                                              \
    }                                                                          \
    static void jp_write_##alg##_##kt(const jidx *x, const void *kv,           \
                                      const uint8_t *restrict v, uint64_t lo,  \
                                      uint64_t hi, uint32_t *restrict ob,      \
                                      uint32_t *restrict op, uint64_t pos)     \
    {                                                                          \
        const K *restrict k = kv;                                              \
        const uint32_t *restrict rows = x->rows;                               \
        for (uint64_t i = lo; i < hi; i++) {                                   \
            if (v != NULL && v[i] == 0)                                        \
                continue;                                                      \
            uint64_t a, b;                                                     \
            jl_##alg(x, (uint64_t)(int64_t)k[i], &a, &b);                      \
            for (uint64_t j = a; j < b; j++) {                                 \
                ob[pos] = rows[j];                                             \
                op[pos++] = (uint32_t)i;                                       \
            }                                                                  \
        }                                                                      \
    }
#define JP_DEFINE_TYPES(alg)                                                   \
    JP_DEFINE(alg, u32, uint32_t)                                              \
    JP_DEFINE(alg, i32, int32_t)                                               \
    JP_DEFINE(alg, i64, int64_t)
JP_DEFINE_TYPES(sphj)
JP_DEFINE_TYPES(bsj)
JP_DEFINE_TYPES(hj)

typedef uint64_t (*jp_count_fn)(const jidx *, const void *, const uint8_t *,
                                uint64_t, uint64_t);
typedef void (*jp_write_fn)(const jidx *, const void *, const uint8_t *,
                            uint64_t, uint64_t, uint32_t *, uint32_t *,
                            uint64_t);

static int jp_type_index(dqo_type t)
{
    return t == DQO_TYPE_U32 ? 0 : t == DQO_TYPE_I32 ? 1 : 2;
}

#define JP_FNS_(alg)                                                           \
    {jp_count_##alg##_u32, jp_count_##alg##_i32, jp_count_##alg##_i64},        \
    {                                                                          \
        jp_write_##alg##_u32, jp_write_##alg##_i32, jp_write_##alg##_i64       \
    }
typedef struct jp_fns {
    jp_count_fn count[3];
    jp_write_fn write[3];
} jp_fns;
static const jp_fns jp_sphj = {JP_FNS_(sphj)};
static const jp_fns jp_bsj = {JP_FNS_(bsj)};
static const jp_fns jp_hj = {JP_FNS_(hj)};

/* Probes the whole probe side against x: count per chunk, prefix sum,
 * allocation, writes. Sets *chunks to the chunk count. */
static dqo_status jp_run(const join_input *in, const jidx *x, const jp_fns *f,
                         const char *alg, join_output *out, int *chunks)
{
    const uint64_t n = in->probe_rows;
    int nc = 1;
    if (in->threads > 1) {
        const uint64_t most = n / JOIN_MIN_CHUNK_ROWS;
        const uint64_t want = (uint64_t)in->threads * JOIN_CHUNKS_PER_THREAD;
        nc = most < 1 ? 1 : (int)(most < want ? most : want);
    }
    *chunks = nc;
    uint64_t *cnt = mem_alloc(((size_t)nc + 1) * sizeof *cnt);
    if (cnt == NULL) {
        snprintf(out->detail, sizeof out->detail,
                 "%s: cannot allocate %d chunk counters", alg, nc);
        return DQO_ENOMEM;
    }
    const int ti = jp_type_index(in->key_type);
    const jp_count_fn count = f->count[ti];
    const jp_write_fn write = f->write[ti];
    /* No more threads than chunks: a team member without work still costs
     * its wake-up. */
    const int nt = nc < in->threads ? nc : in->threads;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int c = 0; c < nc; c++)
        cnt[c + 1] = count(x, in->probe_keys, in->probe_valid,
                           n * (uint64_t)c / (uint64_t)nc,
                           n * (uint64_t)(c + 1) / (uint64_t)nc);
    cnt[0] = 0;
    for (int c = 0; c < nc; c++)
        cnt[c + 1] += cnt[c];
    dqo_status st = cpu_join_output_alloc(out, cnt[nc], alg);
    if (st == DQO_OK && cnt[nc] > 0) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int c = 0; c < nc; c++)
            write(x, in->probe_keys, in->probe_valid,
                  n * (uint64_t)c / (uint64_t)nc,
                  n * (uint64_t)(c + 1) / (uint64_t)nc, out->build_row,
                  out->probe_row, cnt[c]);
    }
    mem_free(cnt);
    return st;
}

static bool join_no_valid_key(const dqo_column_stats *s, uint64_t rows)
{
    return rows == 0 || s->nulls >= rows;
}

static bool join_empty(const join_input *in, const char *alg, join_output *out)
{
    if (!join_no_valid_key(in->build_stats, in->build_rows) &&
        !join_no_valid_key(in->probe_stats, in->probe_rows))
        return false;
    snprintf(out->detail, sizeof out->detail,
             "%s: a side has no valid key, no pairs", alg);
    return true;
}

/* ------------------------------------------------------------------ SPHJ */

/* Counts build keys per slot, and scatters build rows to their slot's
 * cursor, over rows [lo, hi); keys outside [min, min + span] (only
 * possible with wrong statistics) are skipped, never written. */
#define JD_DEFINE(kt, K)                                                       \
    static void jd_count_##kt(const K *restrict k, const uint8_t *restrict v,  \
                              uint64_t lo, uint64_t hi, uint64_t min,          \
                              uint64_t span, uint32_t *restrict c)             \
    {                                                                          \
        for (uint64_t i = lo; i < hi; i++) {                                   \
            const uint64_t s = (uint64_t)(int64_t)k[i] - min;                  \
            if ((v == NULL || v[i] != 0) && s <= span)                         \
                c[s]++;                                                        \
        }                                                                      \
    }                                                                          \
    static void jd_scatter_##kt(                                               \
        const K *restrict k, const uint8_t *restrict v, uint64_t lo,           \
        uint64_t hi, uint64_t min, uint64_t span, uint32_t *restrict cur,      \
        uint32_t *restrict rows)                                               \
    {                                                                          \
        for (uint64_t i = lo; i < hi; i++) {                                   \
            const uint64_t s = (uint64_t)(int64_t)k[i] - min;                  \
            if ((v == NULL || v[i] != 0) && s <= span)                         \
                rows[cur[s]++] = (uint32_t)i;                                  \
        }                                                                      \
    }
JD_DEFINE(u32, uint32_t)
JD_DEFINE(i32, int32_t)
JD_DEFINE(i64, int64_t)

static void jd_count(const join_input *in, uint64_t lo, uint64_t hi,
                     uint64_t min, uint64_t span, uint32_t *c)
{
    switch (in->key_type) {
    case DQO_TYPE_U32:
        jd_count_u32(in->build_keys, in->build_valid, lo, hi, min, span, c);
        break;
    case DQO_TYPE_I32:
        jd_count_i32(in->build_keys, in->build_valid, lo, hi, min, span, c);
        break;
    default:
        jd_count_i64(in->build_keys, in->build_valid, lo, hi, min, span, c);
        break;
    }
}

static void jd_scatter(const join_input *in, uint64_t lo, uint64_t hi,
                       uint64_t min, uint64_t span, uint32_t *cur,
                       uint32_t *rows)
{
    switch (in->key_type) {
    case DQO_TYPE_U32:
        jd_scatter_u32(in->build_keys, in->build_valid, lo, hi, min, span, cur,
                       rows);
        break;
    case DQO_TYPE_I32:
        jd_scatter_i32(in->build_keys, in->build_valid, lo, hi, min, span, cur,
                       rows);
        break;
    default:
        jd_scatter_i64(in->build_keys, in->build_valid, lo, hi, min, span, cur,
                       rows);
        break;
    }
}

/* One thread: counts at off[s + 2], a prefix sum (off[s + 1] = start of
 * slot s), the scatter advancing off[s + 1] to the end of slot s, which
 * leaves slot s's rows at [off[s], off[s + 1]). `off` has span + 3
 * entries. */
static dqo_status jd_build_serial(const join_input *in, uint64_t min,
                                  uint64_t span, uint32_t *off, uint32_t **rows)
{
    const uint64_t slots = span + 1;
    memset(off, 0, (slots + 2) * sizeof *off);
    jd_count(in, 0, in->build_rows, min, span, off + 2);
    for (uint64_t s = 2; s < slots + 2; s++)
        off[s] += off[s - 1];
    *rows = mem_alloc(((size_t)off[slots + 1] + 1) * sizeof **rows);
    if (*rows == NULL)
        return DQO_ENOMEM;
    jd_scatter(in, 0, in->build_rows, min, span, off + 1, *rows);
    return DQO_OK;
}

/* Several threads, each counting and scattering its block of build rows
 * with private counters h[t][s]; the slot-major prefix sum puts thread t's
 * rows of a slot before thread t + 1's, so the scatter stays stable. */
static dqo_status jd_build_private(const join_input *in, uint64_t min,
                                   uint64_t span, int nt, uint32_t *off,
                                   uint32_t **rows)
{
    const uint64_t slots = span + 1;
    const uint64_t n = in->build_rows;
    uint32_t *h = mem_calloc((size_t)nt * slots, sizeof *h);
    if (h == NULL)
        return DQO_ENOMEM;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; t++)
        jd_count(in, n * (uint64_t)t / (uint64_t)nt,
                 n * (uint64_t)(t + 1) / (uint64_t)nt, min, span,
                 h + (uint64_t)t * slots);
    uint32_t sum = 0;
    for (uint64_t s = 0; s < slots; s++) {
        off[s] = sum;
        for (int t = 0; t < nt; t++) {
            const uint32_t c = h[(uint64_t)t * slots + s];
            h[(uint64_t)t * slots + s] = sum;
            sum += c;
        }
    }
    off[slots] = sum;
    *rows = mem_alloc(((size_t)sum + 1) * sizeof **rows);
    if (*rows == NULL) {
        mem_free(h);
        return DQO_ENOMEM;
    }
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; t++)
        jd_scatter(in, n * (uint64_t)t / (uint64_t)nt,
                   n * (uint64_t)(t + 1) / (uint64_t)nt, min, span,
                   h + (uint64_t)t * slots, *rows);
    mem_free(h);
    return DQO_OK;
}

static dqo_status join_direct(const join_input *in, join_output *out)
{
    const dqo_column_stats *bs = in->build_stats;
    const bool no_key = join_no_valid_key(bs, in->build_rows);
    const uint64_t span = no_key ? 0 : (uint64_t)bs->max - (uint64_t)bs->min;
    if (span >= JOIN_DIRECT_MAX_SLOTS) {
        snprintf(out->detail, sizeof out->detail,
                 "sphj: build key range %lld..%lld needs %.4g slots, over "
                 "the limit of 2^26 (%llu)",
                 (long long)bs->min, (long long)bs->max, (double)span + 1.0,
                 (unsigned long long)JOIN_DIRECT_MAX_SLOTS);
        return DQO_EUNSUPPORTED;
    }
    if (join_empty(in, "sphj", out))
        return DQO_OK;
    const uint64_t slots = span + 1, min = (uint64_t)bs->min;
    int nt = in->threads;
    if ((uint64_t)nt * slots > JOIN_DIRECT_PRIVATE_MAX ||
        in->build_rows < (uint64_t)nt * JOIN_MIN_CHUNK_ROWS)
        nt = 1;
    uint32_t *rows = NULL;
    uint32_t *off = mem_alloc((slots + 3) * sizeof *off);
    dqo_status st = DQO_ENOMEM;
    if (off != NULL)
        st = nt > 1 ? jd_build_private(in, min, span, nt, off, &rows)
                    : jd_build_serial(in, min, span, off, &rows);
    if (st != DQO_OK) {
        snprintf(out->detail, sizeof out->detail,
                 "sphj: cannot allocate the array of %llu slots",
                 (unsigned long long)slots);
        goto done;
    }
    const jidx x = {.min = min, .span = span, .rows = rows, .off = off};
    int chunks = 1;
    st = jp_run(in, &x, &jp_sphj, "sphj", out, &chunks);
    if (st == DQO_OK)
        snprintf(out->detail, sizeof out->detail,
                 "sphj: array of %llu slots, build %s, probe in %d chunks, "
                 "%d threads",
                 (unsigned long long)slots,
                 nt > 1 ? "with per-thread counts" : "by one thread", chunks,
                 in->threads);
done:
    mem_free(off);
    mem_free(rows);
    return st;
}

/* ------------------------------------------------------------------- BSJ */

/* The distinct keys of sorted pairs (compacted in place into s's keys)
 * with the offset of each key's first row; off[d] ends the last key. */
static dqo_status jb_distinct(cpu_join_side *s, uint32_t **off, uint64_t *ndist)
{
    uint64_t *restrict k = s->own_keys;
    uint64_t d = 0;
    for (uint64_t i = 0; i < s->n; i++)
        d += i == 0 || k[i] != k[i - 1];
    uint32_t *o = mem_alloc(((size_t)d + 1) * sizeof *o);
    if (o == NULL)
        return DQO_ENOMEM;
    d = 0;
    for (uint64_t i = 0; i < s->n; i++) {
        if (i == 0 || k[i] != k[d - 1]) {
            k[d] = k[i];
            o[d++] = (uint32_t)i;
        }
    }
    o[d] = (uint32_t)s->n;
    *off = o;
    *ndist = d;
    return DQO_OK;
}

static dqo_status join_bsearch(const join_input *in, join_output *out)
{
    if (join_empty(in, "bsj", out))
        return DQO_OK;
    const dqo_column_stats *bs = in->build_stats;
    const bool sorted =
        bs->order == DQO_ORDER_ASC || bs->order == DQO_ORDER_CONST;
    cpu_join_side s;
    uint32_t *off = NULL;
    uint64_t ndist = 0;
    dqo_status st = cpu_join_side_pairs(in->key_type, in->build_keys,
                                        in->build_valid, in->build_rows, bs,
                                        bs->min, sorted, in->threads, &s);
    if (st == DQO_OK)
        st = jb_distinct(&s, &off, &ndist);
    if (st != DQO_OK) {
        snprintf(out->detail, sizeof out->detail,
                 "bsj: cannot allocate the sorted build side of %llu rows",
                 (unsigned long long)in->build_rows);
        goto done;
    }
    const jidx x = {.min = (uint64_t)bs->min,
                    .span = (uint64_t)bs->max - (uint64_t)bs->min,
                    .rows = s.rows,
                    .off = off,
                    .dkeys = s.own_keys,
                    .ndist = ndist};
    int chunks = 1;
    st = jp_run(in, &x, &jp_bsj, "bsj", out, &chunks);
    if (st == DQO_OK)
        snprintf(out->detail, sizeof out->detail,
                 "bsj: %llu distinct build keys (%s), probe in %d chunks, "
                 "%d threads",
                 (unsigned long long)ndist,
                 s.sorted_here ? "sorted here" : "input sorted", chunks,
                 in->threads);
done:
    cpu_join_side_free(&s);
    mem_free(off);
    return st;
}

/* -------------------------------------------------------------------- HJ */

/* The partitioned build: per-thread histograms of the partitions of their
 * blocks, a partition-major prefix sum, a stable scatter of (key, row). */
typedef struct jh_build {
    unsigned pbits;
    uint64_t nparts, n;
    uint64_t *hist;   /* threads x nparts cursors */
    uint64_t *pstart; /* nparts + 1: first item of each partition */
    uint64_t *pk;     /* n keys, partitioned */
    uint32_t *pr;     /* n rows, partitioned */
    uint64_t *pbase, *pmask;
    jh_slot *slots;
    uint32_t *rows;
} jh_build;

#define JH_DEFINE(kt, K)                                                       \
    static void jh_hist_##kt(const K *restrict k, const uint8_t *restrict v,   \
                             uint64_t lo, uint64_t hi, unsigned pbits,         \
                             uint64_t *restrict h)                             \
    {                                                                          \
        for (uint64_t i = lo; i < hi; i++)                                     \
            if (v == NULL || v[i] != 0)                                        \
                h[jh_part(cpu_hash64((uint64_t)(int64_t)k[i]), pbits)]++;      \
    }                                                                          \
    static void jh_scatter_##kt(                                               \
        const K *restrict k, const uint8_t *restrict v, uint64_t lo,           \
        uint64_t hi, unsigned pbits, uint64_t *restrict cur,                   \
        uint64_t *restrict pk, uint32_t *restrict pr)                          \
    {                                                                          \
        for (uint64_t i = lo; i < hi; i++) {                                   \
            if (v != NULL && v[i] == 0)                                        \
                continue;                                                      \
            const uint64_t key = (uint64_t)(int64_t)k[i];                      \
            const uint64_t pos = cur[jh_part(cpu_hash64(key), pbits)]++;       \
            pk[pos] = key;                                                     \
            pr[pos] = (uint32_t)i;                                             \
        }                                                                      \
    }
JH_DEFINE(u32, uint32_t)
JH_DEFINE(i32, int32_t)
JH_DEFINE(i64, int64_t)

/* Partitions and histograms for thread t of nt over the build side. */
static void jh_pass(const join_input *in, jh_build *b, int t, int nt,
                    bool scatter)
{
    const uint64_t n = in->build_rows;
    const uint64_t lo = n * (uint64_t)t / (uint64_t)nt;
    const uint64_t hi = n * (uint64_t)(t + 1) / (uint64_t)nt;
    uint64_t *h = b->hist + (uint64_t)t * b->nparts;
    const void *k = in->build_keys;
    const uint8_t *v = in->build_valid;
    switch (in->key_type) {
    case DQO_TYPE_U32:
        if (scatter)
            jh_scatter_u32(k, v, lo, hi, b->pbits, h, b->pk, b->pr);
        else
            jh_hist_u32(k, v, lo, hi, b->pbits, h);
        break;
    case DQO_TYPE_I32:
        if (scatter)
            jh_scatter_i32(k, v, lo, hi, b->pbits, h, b->pk, b->pr);
        else
            jh_hist_i32(k, v, lo, hi, b->pbits, h);
        break;
    default:
        if (scatter)
            jh_scatter_i64(k, v, lo, hi, b->pbits, h, b->pk, b->pr);
        else
            jh_hist_i64(k, v, lo, hi, b->pbits, h);
        break;
    }
}

/* The slot of `key` in table t (mask + 1 slots, a free one exists). */
static inline uint64_t jh_find(jh_slot *restrict t, uint64_t mask, uint64_t key)
{
    uint64_t i = cpu_hash64(key) & mask;
    while (t[i].lo != JOIN_HASH_EMPTY && t[i].key != key)
        i = (i + 1) & mask;
    return i;
}

/* Builds partition p's table: insert counting rows per key, lay the keys'
 * row ranges out in slot order from the partition's first item, then place
 * the rows in item (ascending row) order. */
static void jh_table(jh_build *b, uint64_t p)
{
    jh_slot *restrict t = b->slots + b->pbase[p];
    const uint64_t mask = b->pmask[p];
    const uint64_t lo = b->pstart[p], hi = b->pstart[p + 1];
    for (uint64_t i = 0; i <= mask; i++)
        t[i] = (jh_slot){0, JOIN_HASH_EMPTY, 0};
    for (uint64_t i = lo; i < hi; i++) {
        const uint64_t s = jh_find(t, mask, b->pk[i]);
        if (t[s].lo == JOIN_HASH_EMPTY)
            t[s] = (jh_slot){b->pk[i], 0, 0};
        t[s].cnt++;
    }
    uint64_t pos = lo;
    for (uint64_t i = 0; i <= mask; i++) {
        if (t[i].lo == JOIN_HASH_EMPTY)
            continue;
        t[i].lo = (uint32_t)pos;
        pos += t[i].cnt;
        t[i].cnt = 0;
    }
    for (uint64_t i = lo; i < hi; i++) {
        jh_slot *e = &t[jh_find(t, mask, b->pk[i])];
        b->rows[e->lo + e->cnt++] = b->pr[i];
    }
}

static unsigned jh_part_bits(uint64_t n, int threads)
{
    cpu_caches c;
    cpu_get_caches(&c);
    const uint64_t table = n * 2 * JOIN_HASH_SLOT_BYTES;
    const uint64_t fit = c.l2 / 2 > 0 ? c.l2 / 2 : 1;
    unsigned bits = 0;
    while (bits < JOIN_HASH_MAX_PART_BITS &&
           ((table >> bits) > fit ||
            (threads > 1 && (UINT64_C(1) << bits) <
                                (uint64_t)threads * JOIN_HASH_PART_PER_THREAD)))
        bits++;
    return bits;
}

static void jh_free(jh_build *b)
{
    mem_free(b->hist);
    mem_free(b->pstart);
    mem_scratch_free(b->pk);
    mem_scratch_free(b->pr);
    mem_free(b->pbase);
    mem_free(b->pmask);
    mem_free(b->slots);
    mem_free(b->rows);
}

/* Partitions the build side and sizes the tables (after the histograms). */
static dqo_status jh_partition(const join_input *in, jh_build *b, int nt)
{
    const uint64_t np = b->nparts;
    b->hist = mem_calloc((size_t)nt * np, sizeof *b->hist);
    b->pstart = mem_alloc((np + 1) * sizeof *b->pstart);
    b->pbase = mem_alloc((np + 1) * sizeof *b->pbase);
    b->pmask = mem_alloc(np * sizeof *b->pmask);
    if (b->hist == NULL || b->pstart == NULL || b->pbase == NULL ||
        b->pmask == NULL)
        return DQO_ENOMEM;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; t++)
        jh_pass(in, b, t, nt, false);
    uint64_t sum = 0, slots = 0;
    for (uint64_t p = 0; p < np; p++) {
        b->pstart[p] = sum;
        for (int t = 0; t < nt; t++) {
            const uint64_t c = b->hist[(uint64_t)t * np + p];
            b->hist[(uint64_t)t * np + p] = sum;
            sum += c;
        }
        /* Load <= 1/2, and at least one free slot to end every probe. */
        uint64_t cap = 1;
        while (cap < 2 * (sum - b->pstart[p]))
            cap <<= 1;
        b->pbase[p] = slots;
        b->pmask[p] = cap - 1;
        slots += cap;
    }
    b->pstart[np] = sum;
    b->pbase[np] = slots;
    b->n = sum;
    b->pk = mem_scratch_alloc(((size_t)sum + 1) * sizeof *b->pk);
    b->pr = mem_scratch_alloc(((size_t)sum + 1) * sizeof *b->pr);
    b->slots = mem_alloc((size_t)slots * sizeof *b->slots);
    b->rows = mem_alloc(((size_t)sum + 1) * sizeof *b->rows);
    if (b->pk == NULL || b->pr == NULL || b->slots == NULL || b->rows == NULL)
        return DQO_ENOMEM;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; t++)
        jh_pass(in, b, t, nt, true);
    return DQO_OK;
}

static dqo_status join_hash(const join_input *in, join_output *out)
{
    if (join_empty(in, "hj", out))
        return DQO_OK;
    jh_build b;
    memset(&b, 0, sizeof b);
    int nt = in->threads;
    if (in->build_rows < (uint64_t)nt * JOIN_MIN_CHUNK_ROWS)
        nt = 1;
    b.pbits = jh_part_bits(in->build_rows, nt);
    b.nparts = UINT64_C(1) << b.pbits;
    dqo_status st = jh_partition(in, &b, nt);
    if (st != DQO_OK) {
        snprintf(out->detail, sizeof out->detail,
                 "hj: cannot allocate the hash table of %llu build rows",
                 (unsigned long long)in->build_rows);
        goto done;
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (uint64_t p = 0; p < b.nparts; p++)
        jh_table(&b, p);
    const jidx x = {.rows = b.rows,
                    .slots = b.slots,
                    .pbase = b.pbase,
                    .pmask = b.pmask,
                    .pbits = b.pbits};
    int chunks = 1;
    st = jp_run(in, &x, &jp_hj, "hj", out, &chunks);
    if (st == DQO_OK)
        snprintf(out->detail, sizeof out->detail,
                 "hj: %llu partitions, %llu slots for %llu build rows, "
                 "probe in %d chunks, %d threads",
                 (unsigned long long)b.nparts,
                 (unsigned long long)b.pbase[b.nparts], (unsigned long long)b.n,
                 chunks, in->threads);
done:
    jh_free(&b);
    return st;
}

/* -------------------------------------------------------------- dispatch */

static dqo_status join_check(const join_input *in, int alg, join_output *out)
{
    const char *what = NULL;
    dqo_status st = DQO_EINVAL;
    if (alg < 0 || alg >= PLAN_JOIN_COUNT_)
        what = "unknown join algorithm";
    else if (in->key_type != DQO_TYPE_U32 && in->key_type != DQO_TYPE_I32 &&
             in->key_type != DQO_TYPE_I64) {
        what = "join keys must be u32, i32 or i64";
        st = DQO_ETYPE;
    } else if (in->threads < 1)
        what = "threads must be at least 1";
    else if (in->build_rows > UINT32_MAX || in->probe_rows > UINT32_MAX)
        what = "a join side has 2^32 rows or more (row ids are 32-bit)";
    else if ((in->build_rows > 0 && in->build_keys == NULL) ||
             (in->probe_rows > 0 && in->probe_keys == NULL))
        what = "a join side has rows but no keys";
    else if (in->build_stats == NULL || in->probe_stats == NULL)
        what = "a join side has no statistics";
    if (what == NULL)
        return DQO_OK;
    snprintf(out->detail, sizeof out->detail, "join (alg %d): %s", alg, what);
    return st;
}

dqo_status cpu_join(const join_input *in, int alg, join_output *out)
{
    if (out == NULL)
        return DQO_EINVAL;
    memset(out, 0, sizeof *out);
    if (in == NULL) {
        snprintf(out->detail, sizeof out->detail, "join: no input");
        return DQO_EINVAL;
    }
    dqo_status st = join_check(in, alg, out);
    if (st != DQO_OK)
        return st;
    switch ((plan_join_alg)alg) {
    case PLAN_JOIN_HASH: return join_hash(in, out);
    case PLAN_JOIN_DIRECT: return join_direct(in, out);
    case PLAN_JOIN_ORDER: return cpu_join_merge(in, false, out);
    case PLAN_JOIN_SORT: return cpu_join_merge(in, true, out);
    case PLAN_JOIN_BSEARCH: return join_bsearch(in, out);
    default: break;
    }
    snprintf(out->detail, sizeof out->detail, "join: %s has no kernel",
             join_names[alg]);
    return DQO_EINTERNAL;
}
