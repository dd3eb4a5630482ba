/*
 * group_order.cl - order-based grouping: a segmented reduction over rows
 * clustered by key (a group is a run of equal keys). Built after
 * group_common.cl; the sort family (group_sort.c) builds it again with
 * OG_SORTED, to reduce the pairs its radix sort leaves ordered by key.
 *
 * A chunk's rows are cut into nb blocks of `per` consecutive rows, one
 * work-group each. A row is a run head when it is the chunk's first row or
 * its key differs from the previous row's (the first row of a block compares
 * with the last row of the block before). Three passes and a scan:
 *
 *   og_count    heads per block;
 *   scan_counts (group_common.cl) the heads of the blocks before each block,
 *               i.e. the output index of the block's first head; the total
 *               is the chunk's number of runs, written where the host reads
 *               it;
 *   og_emit     each block walks its rows in tiles of wg * OG_IPT rows, every
 *               work-item a slice of OG_IPT consecutive rows: a first walk
 *               counts the slice's heads (a scan over the work-group numbers
 *               them), the second folds the rows into private accumulators
 *               and writes every run that starts and ends inside the slice
 *               with plain stores. The run open at the end of a slice
 *               continues into the next slices: a segmented scan over the
 *               work-items (local memory, log2(wg) steps) combines those
 *               pieces, and the work-item whose first head closes a run
 *               writes it. The run open at the end of the tile is carried to
 *               the next tile. A run that starts in the block and ends in it
 *               is written by the block; the rows of a block before its first
 *               head (its "prefix") and a run still open at its end (its
 *               "suffix", when the next block continues it) go to a small
 *               array of block boundaries;
 *   og_fix      the block where a run crossing block boundaries starts folds
 *               the prefixes of the blocks it spans into its suffix and
 *               writes the run (one work-item per block, no atomics).
 *
 * Every run gets exactly one output entry, written once: no table to clear,
 * no atomics, and the result is deterministic (floating-point sums too).
 * Output entries are columns of `cap` entries, one buffer each (GRP_OUT):
 * o0 the keys, o1 the counts, o2.. the accumulators. An index at or beyond
 * cap sets WRAP_TABLE (the host retries with room for every row).
 *
 * With OG_SORTED the rows are read through a permutation: position i holds
 * the key sk[i] + kmin (SK_T, an offset from the smallest key) of row
 * perm[i] of the chunk.
 */

#ifdef OG_SORTED
#ifndef SK_T
#define SK_T uint
#endif
#define OG_ARGS                                                                \
    , __global const SK_T *sk, __global const uint *perm, const long kmin
#define OG_KEY(i) ((long)((ulong)sk[i] + (ulong)kmin))
#define OG_ROW(i) (off + (ulong)perm[i])
#else
#define OG_ARGS
#define OG_KEY(i) ((long)keys[off + (i)])
#define OG_ROW(i) (off + (i))
#endif

/* Rows per work-item and tile. */
#ifndef OG_IPT
#define OG_IPT 8
#endif

/* Words of a run's partial result: count and accumulators. Private arrays
 * are declared with the most words (OG_MAXW) so that the shared macros'
 * dead branches never index past them; the compiler keeps the used ones in
 * registers. */
#define OG_W (1 + NAGG)
#define OG_MAXW 9

/* Accumulator primitives on private memory (suffix x: one owner). */
inline void acc_add_x(long *p, long x, volatile __global int *w)
{
    (void)w;
    *p = (long)((ulong)*p + (ulong)x);
}
inline void acc_addc_x(long *p, long x, volatile __global int *w)
{
    const long old = *p;
    const long now = (long)((ulong)old + (ulong)x);
    if ((x > 0 && now < old) || (x < 0 && now > old))
        atomic_or(w, WRAP_SUM);
    *p = now;
}
inline void acc_min_x(long *p, long x)
{
    if (x < *p)
        *p = x;
}
inline void acc_max_x(long *p, long x)
{
    if (x > *p)
        *p = x;
}
#ifdef NEED_F64
inline void acc_fadd_x(long *p, double x)
{
    *p = as_long(as_double(*p) + x);
}
inline void acc_fmin_x(long *p, double x)
{
    if (x < as_double(*p))
        *p = as_long(x);
}
inline void acc_fmax_x(long *p, double x)
{
    if (x > as_double(*p))
        *p = as_long(x);
}
#else
#define acc_fadd_x(p, x) ((void)0)
#define acc_fmin_x(p, x) ((void)0)
#define acc_fmax_x(p, x) ((void)0)
#endif

inline void og_ident(long *v)
{
    IDENT_ALL(v, 1);
}

/* d = d (+) s: both partial results [count, acc...]. */
inline void og_merge(long *d, const long *s, volatile __global int *wrapped)
{
    MERGE_ALL(x, d, 1, s, 1);
}

#ifndef GRP_OUT
/* The output columns of a chunk's groups (group_order.cl and
 * group_radix.cl): keys, counts, accumulators; unused ones are a dummy. */
#define GRP_OUT                                                                \
    __global long *o0, __global long *o1, __global long *o2,                   \
        __global long *o3, __global long *o4, __global long *o5,               \
        __global long *o6, __global long *o7, __global long *o8,               \
        __global long *o9
#define GRP_OUT_NAMES o0, o1, o2, o3, o4, o5, o6, o7, o8, o9
/* Entry i of the columns: key k, count v[0], accumulators v[1..]. */
#define GRP_OUT_PUT(i, k, v)                                                   \
    do {                                                                       \
        o0[i] = (k);                                                           \
        o1[i] = (v)[0];                                                        \
        if (NAGG > 0)                                                          \
            o2[i] = (v)[1];                                                    \
        if (NAGG > 1)                                                          \
            o3[i] = (v)[2];                                                    \
        if (NAGG > 2)                                                          \
            o4[i] = (v)[3];                                                    \
        if (NAGG > 3)                                                          \
            o5[i] = (v)[4];                                                    \
        if (NAGG > 4)                                                          \
            o6[i] = (v)[5];                                                    \
        if (NAGG > 5)                                                          \
            o7[i] = (v)[6];                                                    \
        if (NAGG > 6)                                                          \
            o8[i] = (v)[7];                                                    \
        if (NAGG > 7)                                                          \
            o9[i] = (v)[8];                                                    \
    } while (0)
#endif

/* Writes run `idx` (key k, partial v) into the output columns. */
inline void og_put(GRP_OUT, ulong idx, ulong cap, long k, const long *v,
                   volatile __global int *wrapped)
{
    if (idx >= cap) {
        atomic_or(wrapped, WRAP_TABLE);
        return;
    }
    GRP_OUT_PUT(idx, k, v);
}

inline void og_load_g(long *v, __global const long *src)
{
    for (int f = 0; f < OG_W; f++)
        v[f] = src[f];
}
inline void og_store_g(__global long *dst, const long *v)
{
    for (int f = 0; f < OG_W; f++)
        dst[f] = v[f];
}

/* Heads per block of `per` rows. */
__kernel void og_count(GRP_INPUT OG_ARGS, const ulong per,
                       __global ulong *counts, __local uint *scratch)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    const ulong lo = get_group_id(0) * per;
    const ulong hi = min(rows, lo + per);
    uint c = 0;
    for (ulong i = lo + lid; i < hi; i += wg)
        c += i == 0 || OG_KEY(i) != OG_KEY(i - 1);
    scratch[lid] = c;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = wg / 2; s > 0; s >>= 1) {
        if (lid < s)
            scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        counts[get_group_id(0)] = scratch[0];
}

/* The segmented reduction of one block per work-group (see the top).
 * offs: output index of each block's first head (scanned og_count);
 * total: the chunk's runs; bnd: per block its prefix and suffix partials
 * (2 * OG_W words). Local: sh wg uints, sf wg uints, sv wg * OG_W longs,
 * lc OG_W longs. wg is a power of two. */
__kernel void og_emit(GRP_INPUT OG_ARGS, const ulong per,
                      __global const ulong *offs, GRP_OUT, const ulong cap,
                      __global long *bnd, __local uint *sh, __local uint *sf,
                      __local long *sv, __local long *lc)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    const ulong b = get_group_id(0);
    const ulong lo = b * per;
    const ulong hi = min(rows, lo + per);
    if (lo >= hi)
        return;
    const ulong base = offs[b];
    const ulong tile = (ulong)wg * OG_IPT;
    __global long *bp = bnd + b * 2 * OG_W;
    if (lid == 0) {
        long t[OG_MAXW];
        og_ident(t);
        for (int f = 0; f < OG_W; f++)
            lc[f] = t[f];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    ulong hb = 0; /* heads in the tiles before */
    for (ulong t0 = lo; t0 < hi; t0 += tile) {
        const ulong s0 = t0 + (ulong)lid * OG_IPT;
        const ulong s1 = min(hi, s0 + OG_IPT);
        /* 1. The slice's heads, numbered over the work-group. */
        uint nh = 0;
        long prev = s0 > 0 && s0 < s1 ? OG_KEY(s0 - 1) : 0;
        for (ulong i = s0; i < s1; i++) {
            const long k = OG_KEY(i);
            nh += i == 0 || k != prev;
            prev = k;
        }
        sh[lid] = nh;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint s = 1; s < wg; s <<= 1) {
            const uint y = lid >= s ? sh[lid - s] : 0;
            barrier(CLK_LOCAL_MEM_FENCE);
            sh[lid] += y;
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        const ulong H = sh[lid] - nh; /* heads of the slices before */
        const ulong th = sh[wg - 1];  /* heads of the tile */
        /* 2. Fold the slice: P the rows before its first head, C the run
         * open now; runs closed inside the slice are written. */
        long P[OG_MAXW], C[OG_MAXW];
        og_ident(P);
        og_ident(C);
        uint m = 0;
        long pkey = 0, ckey = 0;
        prev = s0 > 0 && s0 < s1 ? OG_KEY(s0 - 1) : 0;
        for (ulong i = s0; i < s1; i++) {
            const long k = OG_KEY(i);
            if (i == 0 || k != prev) {
                if (m == 0) {
                    pkey = prev;
                    for (int f = 0; f < OG_W; f++)
                        P[f] = C[f];
                } else {
                    og_put(GRP_OUT_NAMES, base + hb + H + m - 1, cap, ckey, C,
                           wrapped);
                }
                og_ident(C);
                m++;
                ckey = k;
            }
            prev = k;
            const ulong r = OG_ROW(i);
            ROW_ALL(x, C, 1, r);
        }
        /* 3. Segmented inclusive scan of (F, C) over the work-items: F says
         * the value starts at a head of this tile. */
        uint F = m > 0;
        sf[lid] = F;
        for (int f = 0; f < OG_W; f++)
            sv[(uint)f * wg + lid] = C[f];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint s = 1; s < wg; s <<= 1) {
            const bool take = lid >= s && !F;
            uint fo = 0;
            long O[OG_MAXW];
            if (take) {
                fo = sf[lid - s];
                for (int f = 0; f < OG_W; f++)
                    O[f] = sv[(uint)f * wg + lid - s];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (take) {
                og_merge(C, O, wrapped);
                F = fo;
                sf[lid] = F;
                for (int f = 0; f < OG_W; f++)
                    sv[(uint)f * wg + lid] = C[f];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        /* 4. The run closed by this slice's first head: what the slices
         * before hold of it (and the carry when it began before the tile),
         * plus P. */
        if (m > 0) {
            long E[OG_MAXW];
            uint ef = 0;
            if (lid > 0) {
                ef = sf[lid - 1];
                for (int f = 0; f < OG_W; f++)
                    E[f] = sv[(uint)f * wg + lid - 1];
            } else {
                og_ident(E);
            }
            if (!ef) {
                long L[OG_MAXW];
                for (int f = 0; f < OG_W; f++)
                    L[f] = lc[f];
                og_merge(E, L, wrapped);
            }
            og_merge(E, P, wrapped);
            if (ef || hb > 0)
                og_put(GRP_OUT_NAMES, base + hb + H - 1, cap, pkey, E, wrapped);
            else
                og_store_g(bp, E); /* the block's prefix */
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* The run open at the end of the tile is carried. */
        if (lid == wg - 1) {
            if (!F) {
                long L[OG_MAXW];
                for (int f = 0; f < OG_W; f++)
                    L[f] = lc[f];
                og_merge(C, L, wrapped);
            }
            for (int f = 0; f < OG_W; f++)
                lc[f] = C[f];
        }
        hb += th;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        long L[OG_MAXW];
        for (int f = 0; f < OG_W; f++)
            L[f] = lc[f];
        if (hb == 0)
            og_store_g(bp, L); /* no head: the whole block is a prefix */
        else if (hi < rows && OG_KEY(hi) == OG_KEY(hi - 1))
            og_store_g(bp + OG_W, L); /* og_fix finishes the run */
        else
            og_put(GRP_OUT_NAMES, base + hb - 1, cap, OG_KEY(hi - 1), L,
                   wrapped);
    }
}

/* Runs that cross block boundaries, one work-item per block where such a
 * run starts. nb blocks; total: the chunk's runs. */
__kernel void og_fix(GRP_INPUT OG_ARGS, const ulong per, const ulong nb,
                     __global const ulong *offs, __global const ulong *total,
                     GRP_OUT, const ulong cap, __global const long *bnd)
{
    const ulong b = get_global_id(0);
    if (b >= nb)
        return;
    const ulong hi = min(rows, b * per + per);
    const ulong heads = (b + 1 < nb ? offs[b + 1] : total[0]) - offs[b];
    if (heads == 0 || hi >= rows || OG_KEY(hi) != OG_KEY(hi - 1))
        return;
    long A[OG_MAXW];
    og_load_g(A, bnd + (b * 2 + 1) * OG_W);
    for (ulong c = b + 1; c < nb; c++) {
        long S[OG_MAXW];
        og_load_g(S, bnd + c * 2 * OG_W);
        og_merge(A, S, wrapped);
        const ulong hc = (c + 1 < nb ? offs[c + 1] : total[0]) - offs[c];
        if (hc > 0)
            break;
    }
    og_put(GRP_OUT_NAMES, offs[b] + heads - 1, cap, OG_KEY(hi - 1), A, wrapped);
}
