/*
 * group_sort.c - sort and order-based grouping (SOG): a parallel LSD radix
 * sort of (key, row id) pairs, then order-based grouping over the sorted keys
 * with agg_update_gather on the row ids (paper, Section 5.1, "Sort &
 * Order-based Grouping"). The radix sort is also BSG's way to find the
 * distinct keys (cpu_radix_sort_u64, declared in cpu_int.h).
 *
 * When the planner selects it: only when forced, or when a later consumer
 * wants the groups in key order and the input is neither sorted nor dense;
 * on unsorted input HG or SPHG are faster (paper, Figure 5), but SOG's cost
 * does not depend on the number of groups or on cache sizes.
 *
 * How: a pair is packed into one uint64, (key - min) above the row id, when
 * the key range and the row count fit in 64 bits together (always for u32
 * and i32 keys up to 2^32 rows); then only the ceil(log2(max - min + 1)) key
 * bits are sorted, in passes of at most 11 bits (ceil(bits / 11) balanced
 * passes, so a range of 2^16 takes two 8-bit passes). Wider i64 ranges sort a
 * uint64 key array and carry a uint32 row array along. All passes run in one
 * parallel region; each pass is per-thread histograms over contiguous
 * ranges, an exclusive scan in (digit, thread) order (so the sort is
 * stable), and a scatter through per-thread software write-combining buffers
 * of one cache line per digit (Polychroniou and Ross, SIGMOD 2014), which
 * turns 2048 scattered write streams into full-line non-temporal writes (the
 * target line is not read first). The grouping then walks the sorted pairs
 * like OG: per-thread ranges, exact slot offsets from a run count, and a
 * spare slot for a run that spans a range boundary. Output ascending by key.
 *
 * Cost: passes x (read + write of 8 n bytes) for the sort, plus a gather of
 * the aggregate columns in sorted order. Memory: two arrays of n uint64
 * (plus two of n uint32 for wide keys), per-thread histograms and 128 KiB
 * write-combining buffers, and the output. Rows are addressed with uint32
 * row ids: more than UINT32_MAX rows give DQO_EUNSUPPORTED.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cpu/cpu_int.h"

/* Most bits sorted per pass: 2^11 digits keep a thread's histogram (16 KiB)
 * in L1 and its write-combining buffers (128 KiB) in L2. */
#define RS_MAX_DIGIT_BITS 11
#define RS_MAX_DIGITS (1u << RS_MAX_DIGIT_BITS)
/* Elements per write-combining line: 64 bytes of uint64. */
#define RS_LINE 8

/* The smallest share of a sort or walk a thread gets (see group_order.c). */
#define SOG_MIN_ROWS_PER_THREAD 1024

/* Bits needed to write v (0 for v = 0). */
static inline unsigned rs_bits(uint64_t v)
{
    return v == 0 ? 0 : 64u - (unsigned)__builtin_clzll(v);
}

/* Writes one full, 64-byte aligned line with non-temporal stores: the line
 * goes to memory without being read first (no read-for-ownership), which
 * saves a third of a scatter's memory traffic. */
static inline void rs_stream_line(uint64_t *restrict dst,
                                  const uint64_t *restrict line, bool stream)
{
#if defined(__SSE2__)
    if (stream)
        for (int q = 0; q < RS_LINE / 2; q++)
        _mm_stream_si128((__m128i *)(void *)(dst + 2 * q),
                         _mm_load_si128((const __m128i *)(const void *)(line + 2 * q)));
    else
        memcpy(dst, line, RS_LINE * sizeof *line);
#else
    (void)stream;
    memcpy(dst, line, RS_LINE * sizeof *line);
#endif
}

/* Orders the non-temporal stores of a pass before the threads' barrier. */
static inline void rs_stream_fence(void)
{
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

/* Flushes positions [from, to) of one digit's write-combining line. */
static inline void rs_flush(uint64_t *restrict dst, const uint64_t *restrict line,
                            uint64_t from, uint64_t to)
{
    for (uint64_t p = from; p < to; p++)
        dst[p] = line[p & (RS_LINE - 1)];
}

/* Sorts a (with payload pay, when not NULL) by bits [lo, lo + bits). */
static dqo_status rs_sort(uint64_t *a, uint64_t *tmp, uint32_t *pay,
                          uint32_t *ptmp, uint64_t n, unsigned lo,
                          unsigned bits, int threads, uint64_t **sorted,
                          uint32_t **sorted_pay)
{
    *sorted = a;
    if (sorted_pay != NULL)
        *sorted_pay = pay;
    if (bits == 0 || n < 2)
        return DQO_OK;
    const unsigned passes =
        (bits + RS_MAX_DIGIT_BITS - 1) / RS_MAX_DIGIT_BITS;
    const unsigned dbits = (bits + passes - 1) / passes;
    const uint64_t ndig = UINT64_C(1) << dbits;
    if ((uint64_t)threads > n / SOG_MIN_ROWS_PER_THREAD)
        threads = n / SOG_MIN_ROWS_PER_THREAD > 1
                      ? (int)(n / SOG_MIN_ROWS_PER_THREAD)
                      : 1;

    /* Per thread: digit offsets, the digits' first positions, and one
     * write-combining line per digit (payload sorts scatter directly). */
    uint64_t *hist = mem_alloc((size_t)threads * ndig * sizeof *hist);
    uint64_t *start = mem_alloc((size_t)threads * ndig * sizeof *start);
    uint64_t *wc = pay == NULL
                       ? mem_alloc((size_t)threads * ndig * RS_LINE * sizeof *wc)
                       : NULL;
    if (hist == NULL || start == NULL || (pay == NULL && wc == NULL)) {
        mem_free(hist);
        mem_free(start);
        mem_free(wc);
        return DQO_ENOMEM;
    }

    /* Streaming stores need 16-byte alignment (mem_alloc gives 64). */
    const bool stream = (((uintptr_t)a | (uintptr_t)tmp) & 15) == 0;
    uint64_t *src = a, *dst = tmp;
    uint32_t *psrc = pay, *pdst = ptmp;
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const uint64_t b = n * (uint64_t)t / (uint64_t)nt;
        const uint64_t e = n * (uint64_t)(t + 1) / (uint64_t)nt;
        uint64_t *restrict h = hist + (size_t)t * ndig;
        uint64_t *restrict first = start + (size_t)t * ndig;
        uint64_t *restrict line =
            wc == NULL ? NULL : wc + (size_t)t * ndig * RS_LINE;
        /* Not restrict: the buffers swap roles after every pass. */
        const uint64_t *s = src;
        uint64_t *d = dst;
        const uint32_t *ps = psrc;
        uint32_t *pd = pdst;
        for (unsigned p = 0; p < passes; p++) {
            const unsigned shift = lo + p * dbits;
            const uint64_t mask = ndig - 1;
            memset(h, 0, ndig * sizeof *h);
            for (uint64_t i = b; i < e; i++)
                h[(s[i] >> shift) & mask]++;
#pragma omp barrier
#pragma omp single
            {
                /* Digit-major, thread-minor: the stable order. */
                uint64_t sum = 0;
                for (uint64_t dg = 0; dg < ndig; dg++)
                    for (int u = 0; u < nt; u++) {
                        uint64_t c = hist[(size_t)u * ndig + dg];
                        hist[(size_t)u * ndig + dg] = sum;
                        sum += c;
                    }
            } /* implicit barrier */
            if (line != NULL) {
                memcpy(first, h, ndig * sizeof *h);
                for (uint64_t i = b; i < e; i++) {
                    const uint64_t x = s[i];
                    const uint64_t dg = (x >> shift) & mask;
                    const uint64_t pos = h[dg]++;
                    uint64_t *l = line + dg * RS_LINE;
                    l[pos & (RS_LINE - 1)] = x;
                    if ((pos & (RS_LINE - 1)) == RS_LINE - 1) {
                        const uint64_t base = pos + 1 - RS_LINE;
                        if (base >= first[dg])
                            rs_stream_line(d + base, l, stream);
                        else
                            rs_flush(d, l, first[dg], pos + 1);
                    }
                }
                for (uint64_t dg = 0; dg < ndig; dg++) {
                    const uint64_t pos = h[dg];
                    if ((pos & (RS_LINE - 1)) == 0)
                        continue;
                    uint64_t base = pos & ~(uint64_t)(RS_LINE - 1);
                    if (base < first[dg])
                        base = first[dg];
                    rs_flush(d, line + dg * RS_LINE, base, pos);
                }
                rs_stream_fence();
            } else {
                for (uint64_t i = b; i < e; i++) {
                    const uint64_t pos = h[(s[i] >> shift) & mask]++;
                    d[pos] = s[i];
                    pd[pos] = ps[i];
                }
            }
#pragma omp barrier
            /* Every thread swaps its private copies the same way. */
            const uint64_t *ts = s;
            s = d;
            d = (uint64_t *)ts;
            const uint32_t *tps = ps;
            ps = pd;
            pd = (uint32_t *)tps;
        }
    }
    if (passes % 2 == 1) {
        *sorted = tmp;
        if (sorted_pay != NULL)
            *sorted_pay = ptmp;
    }
    mem_free(hist);
    mem_free(start);
    mem_free(wc);
    return DQO_OK;
}

dqo_status cpu_radix_sort_u64(uint64_t *a, uint64_t *tmp, uint64_t n,
                              unsigned lo, unsigned bits, int threads,
                              uint64_t **sorted)
{
    if (lo + bits > 64 || threads < 1)
        return DQO_EINVAL;
    return rs_sort(a, tmp, NULL, NULL, n, lo, bits, threads, sorted, NULL);
}

/* ------------------------------------------------------------- grouping */

/* The sorted pairs as the walk reads them: packed (key offset above `shift`
 * bits of row id) or wide (a key offset array and a row id array). */
typedef struct sog_pairs {
    const uint64_t *items;
    const uint32_t *rows; /* wide only */
    unsigned shift;       /* packed: bits of the row id */
    bool wide;
} sog_pairs;

static inline uint64_t sog_key(const sog_pairs *p, uint64_t i)
{
    return p->wide ? p->items[i] : p->items[i] >> p->shift;
}

/* One thread's share of the sorted pairs (see og_range in group_order.c). */
typedef struct sog_range {
    uint64_t begin, end, runs, off, walked;
    uint64_t first, last;
    bool cont;
    agg_flags flags;
    char pad[64];
} sog_range;

static inline void sog_view(agg_table *v, const grp_output *out,
                            const grp_input *in, uint64_t base)
{
    v->cap = UINT64_MAX;
    v->count = out->count + base;
    for (int a = 0; a < in->naggs; a++)
        v->acc[a] = (int64_t *)out->acc[a] + base;
}

/* Decodes n pairs from i into the chunk's key offsets and row ids. */
static inline void sog_decode(const sog_pairs *p, uint64_t i, uint32_t n,
                              uint64_t *restrict kc, uint32_t *restrict rc)
{
    if (p->wide) {
        memcpy(kc, p->items + i, n * sizeof *kc);
        memcpy(rc, p->rows + i, n * sizeof *rc);
        return;
    }
    const uint64_t *restrict x = p->items + i;
    const uint64_t rmask = (UINT64_C(1) << p->shift) - 1;
    const unsigned shift = p->shift;
    for (uint32_t j = 0; j < n; j++) {
        kc[j] = x[j] >> shift;
        rc[j] = (uint32_t)(x[j] & rmask);
    }
}

/* Accumulates range r of the sorted pairs into the output. */
static void sog_walk(const grp_input *in, grp_output *out, const sog_pairs *p,
                     sog_range *r, uint64_t spare, int64_t min,
                     uint64_t *restrict kc, uint32_t *restrict rc,
                     uint32_t *restrict slots)
{
    uint64_t i = r->begin;
    const uint64_t e = r->end;
    agg_table view;
    if (r->cont) {
        /* The run continued from the previous range goes to the spare
         * slot, a chunk at a time, every row in slot 0. */
        uint64_t j = i + 1;
        while (j < e && sog_key(p, j) == r->first)
            j++;
        sog_view(&view, out, in, spare);
        memset(slots, 0, AGG_CHUNK * sizeof *slots);
        while (i < j) {
            const uint32_t n = (uint32_t)(j - i < AGG_CHUNK ? j - i : AGG_CHUNK);
            sog_decode(p, i, n, kc, rc);
            agg_update_gather(&view, in, slots, rc, n, &r->flags);
            i += n;
        }
    }
    uint64_t g = 0;
    while (i < e) {
        const uint32_t n = (uint32_t)(e - i < AGG_CHUNK ? e - i : AGG_CHUNK);
        const uint64_t base = r->off + g;
        sog_decode(p, i, n, kc, rc);
        uint32_t s = 0;
        slots[0] = 0;
        for (uint32_t j = 1; j < n; j++) {
            s += kc[j] != kc[j - 1];
            slots[j] = s;
        }
        for (uint32_t j = 0; j < n; j++)
            out->keys[base + slots[j]] = (int64_t)((uint64_t)min + kc[j]);
        sog_view(&view, out, in, base);
        agg_update_gather(&view, in, slots, rc, n, &r->flags);
        g += s;
        i += n;
        g += i < e ? (uint64_t)(sog_key(p, i) != kc[n - 1]) : 1;
    }
    r->walked = g;
}

/* Groups the sorted pairs: run count per range, slot layout, walk, merge
 * of the runs that span ranges. */
static dqo_status sog_group(const grp_input *in, const sog_pairs *p,
                            int64_t min, grp_output *out, int *ranges_used)
{
    const uint64_t n = in->rows;
    int nr = in->threads;
    if ((uint64_t)nr > n / SOG_MIN_ROWS_PER_THREAD)
        nr = n / SOG_MIN_ROWS_PER_THREAD > 1
                 ? (int)(n / SOG_MIN_ROWS_PER_THREAD)
                 : 1;
    *ranges_used = nr;
    dqo_status st = DQO_OK;
    sog_range *ranges = mem_calloc((size_t)nr, sizeof *ranges);
    uint64_t *kc = mem_alloc((size_t)nr * AGG_CHUNK * sizeof *kc);
    uint32_t *rc = mem_alloc((size_t)nr * AGG_CHUNK * sizeof *rc);
    uint32_t *slots = mem_alloc((size_t)nr * AGG_CHUNK * sizeof *slots);
    if (ranges == NULL || kc == NULL || rc == NULL || slots == NULL) {
        st = DQO_ENOMEM;
        goto fail;
    }

#pragma omp parallel for num_threads(nr) schedule(static, 1)
    for (int t = 0; t < nr; t++) {
        sog_range *r = &ranges[t];
        r->begin = n * (uint64_t)t / (uint64_t)nr;
        r->end = n * (uint64_t)(t + 1) / (uint64_t)nr;
        r->flags.overflow_agg = -1;
        if (r->end == r->begin)
            continue;
        uint64_t runs = 1;
        if (p->wide) {
            const uint64_t *restrict k = p->items;
            for (uint64_t i = r->begin + 1; i < r->end; i++)
                runs += k[i] != k[i - 1];
        } else {
            const uint64_t *restrict k = p->items;
            const unsigned sh = p->shift;
            for (uint64_t i = r->begin + 1; i < r->end; i++)
                runs += (k[i] >> sh) != (k[i - 1] >> sh);
        }
        r->runs = runs;
        r->first = sog_key(p, r->begin);
        r->last = sog_key(p, r->end - 1);
    }

    uint64_t groups = 0;
    for (int t = 0, prev = -1; t < nr; t++) {
        sog_range *r = &ranges[t];
        if (r->end == r->begin)
            continue;
        r->cont = prev >= 0 && ranges[prev].last == r->first;
        r->off = groups;
        groups += r->runs - (r->cont ? 1 : 0);
        prev = t;
    }
    st = grp_output_alloc(out, in, groups + (uint64_t)nr);
    if (st != DQO_OK)
        goto fail;

#pragma omp parallel for num_threads(nr) schedule(static, 1)
    for (int t = 0; t < nr; t++) {
        sog_range *r = &ranges[t];
        agg_table view;
        sog_view(&view, out, in, 0);
        agg_table_reset(&view, in, r->off, r->runs - (r->cont ? 1 : 0));
        agg_table_reset(&view, in, groups + (uint64_t)t, 1);
        sog_walk(in, out, p, r, groups + (uint64_t)t, min,
                 kc + (size_t)t * AGG_CHUNK, rc + (size_t)t * AGG_CHUNK,
                 slots + (size_t)t * AGG_CHUNK);
    }

    agg_flags flags = {-1};
    agg_table view;
    sog_view(&view, out, in, 0);
    for (int t = 0; t < nr; t++) {
        const sog_range *r = &ranges[t];
        /* The walk writes exactly the runs the count found: same data. */
        if (r->end > r->begin && r->walked != r->runs - (r->cont ? 1 : 0)) {
            st = DQO_EINTERNAL;
            goto fail;
        }
        if (r->cont)
            agg_merge_range(&view, r->off - 1, &view, groups + (uint64_t)t, 1,
                            in, &flags);
        const int o = r->flags.overflow_agg;
        if (o >= 0 && (flags.overflow_agg < 0 || o < flags.overflow_agg))
            flags.overflow_agg = o;
    }
    out->groups = groups;
    out->overflow = flags.overflow_agg >= 0;
    out->overflow_agg = flags.overflow_agg;
    mem_free(ranges);
    mem_free(kc);
    mem_free(rc);
    mem_free(slots);
    return DQO_OK;
fail:
    grp_output_free(out, in->naggs);
    mem_free(ranges);
    mem_free(kc);
    mem_free(rc);
    mem_free(slots);
    return st;
}

/* Fills the pairs to sort from the keys: packed or wide. */
#define SOG_FILL(t, T)                                                         \
    static void sog_fill_##t(const T *restrict k, uint64_t n, int64_t min,     \
                             unsigned shift, bool wide, uint64_t *restrict a,  \
                             uint32_t *restrict rows, int threads)             \
    {                                                                          \
        if (wide) {                                                            \
            _Pragma("omp parallel for num_threads(threads) schedule(static)")  \
            for (uint64_t i = 0; i < n; i++) {                                 \
                a[i] = (uint64_t)(int64_t)k[i] - (uint64_t)min;                \
                rows[i] = (uint32_t)i;                                         \
            }                                                                  \
            return;                                                            \
        }                                                                      \
        _Pragma("omp parallel for num_threads(threads) schedule(static)")      \
        for (uint64_t i = 0; i < n; i++)                                       \
            a[i] = (((uint64_t)(int64_t)k[i] - (uint64_t)min) << shift) |     \
                   (shift != 0 ? i : 0); /* no row ids without aggregates */ \
    }

SOG_FILL(u32, uint32_t)
SOG_FILL(i32, int32_t)
SOG_FILL(i64, int64_t)
#undef SOG_FILL

dqo_status cpu_group_sort(const grp_input *in, const granule *g,
                          grp_output *out)
{
    (void)g;
    memset(out, 0, sizeof *out);
    if (in->naggs < 0 || in->naggs > GRP_MAX_AGGS || in->threads < 1 ||
        (in->rows > 0 && in->keys == NULL))
        return DQO_EINVAL;
    if (in->rows > UINT32_MAX)
        return DQO_EUNSUPPORTED;

    const uint64_t n = in->rows;
    const int64_t min = in->key_stats->min;
    const uint64_t range = n == 0 ? 0
                                  : (uint64_t)in->key_stats->max - (uint64_t)min;
    const unsigned kbits = rs_bits(range);
    /* Without aggregates the row ids are never read: sort the keys only. */
    const unsigned rbits = in->naggs == 0 ? 0 : rs_bits(n > 0 ? n - 1 : 0);
    const bool wide = kbits + rbits > 64;
    dqo_status st = DQO_OK;
    uint64_t *a = mem_scratch_alloc(n * sizeof *a);
    uint64_t *tmp = mem_scratch_alloc(n * sizeof *tmp);
    uint32_t *rows = wide ? mem_alloc(n * sizeof *rows) : NULL;
    uint32_t *rtmp = wide ? mem_alloc(n * sizeof *rtmp) : NULL;
    if (a == NULL || tmp == NULL || (wide && (rows == NULL || rtmp == NULL))) {
        st = DQO_ENOMEM;
        goto fail;
    }
    switch (in->key_type) {
    case DQO_TYPE_U32:
        sog_fill_u32(in->keys, n, min, rbits, wide, a, rows, in->threads);
        break;
    case DQO_TYPE_I32:
        sog_fill_i32(in->keys, n, min, rbits, wide, a, rows, in->threads);
        break;
    default:
        sog_fill_i64(in->keys, n, min, rbits, wide, a, rows, in->threads);
        break;
    }

    sog_pairs p = {.wide = wide, .shift = wide ? 0 : rbits};
    uint64_t *sorted = NULL;
    uint32_t *sorted_rows = NULL;
    st = rs_sort(a, tmp, rows, rtmp, n, wide ? 0 : rbits, kbits, in->threads,
                 &sorted, wide ? &sorted_rows : NULL);
    if (st != DQO_OK)
        goto fail;
    p.items = sorted;
    p.rows = sorted_rows;

    int nr = 1;
    st = sog_group(in, &p, min, out, &nr);
    if (st != DQO_OK)
        goto fail;
    const unsigned passes = (kbits + RS_MAX_DIGIT_BITS - 1) / RS_MAX_DIGIT_BITS;
    snprintf(out->detail, sizeof out->detail,
             "%s pairs, %u key bits in %u passes, ranges x%d",
             wide ? "wide" : "packed", kbits, passes, nr);
    mem_scratch_free(a);
    mem_scratch_free(tmp);
    mem_free(rows);
    mem_free(rtmp);
    return DQO_OK;
fail:
    mem_scratch_free(a);
    mem_scratch_free(tmp);
    mem_free(rows);
    mem_free(rtmp);
    return st;
}
