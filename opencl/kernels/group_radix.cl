/*
 * group_radix.cl - radix-partitioned grouping: the chunk's (key - min, row)
 * pairs are sorted by partition number with the passes of group_sort.cl
 * (built before this file, RS_PID the partition of a key offset), then one
 * work-group per partition aggregates the partition's rows in a local
 * table and appends its groups to the chunk's output. Built after
 * group_common.cl and group_sort.cl.
 *
 * The host (opencl/group_radix.c) picks the partitioning:
 *
 *   RX_SHIFT      dense keys: partition p holds the key offsets
 *                 [p << RX_SHIFT, (p + 1) << RX_SHIFT), and its table is a
 *                 direct array (no keys, no probes, never full): offset k
 *                 is entry k & (2^RX_SHIFT - 1) of RX_LS >= 2^RX_SHIFT
 *                 entries (RX_LS is at least the work-group size: every
 *                 work-item owns an entry in the loops over the table;
 *                 PoCL 3.1 miscompiles a loop from get_local_id to a bound
 *                 of 1 whose result lives across a barrier);
 *   RX_HASH_BITS  sparse keys: the partition is the top RX_HASH_BITS bits
 *                 of the key's hash, the table an open-addressing table of
 *                 RX_LS entries (keys claimed by compare-and-swap, linear
 *                 probing on the low bits of the same hash), sized so that a
 *                 partition's expected groups fill at most half of it. A free
 *                 entry holds the all-ones key offset RX_EMPTY; that offset
 *                 itself (keys spanning the whole type) has its own entry,
 *                 RX_LS, after the table. A row that finds no room sets
 *                 WRAP_TABLE: the host runs again with more partitions.
 *
 * Output entries are columns of `cap` entries, one buffer each (GRP_OUT,
 * as in group_order.cl); each work-group reserves its range with one
 * atomic add on the count.
 */

#ifndef GRP_OUT
/* As in group_order.cl (not part of this program). */
#define GRP_OUT                                                                \
    __global long *o0, __global long *o1, __global long *o2,                   \
        __global long *o3, __global long *o4, __global long *o5,               \
        __global long *o6, __global long *o7, __global long *o8,               \
        __global long *o9
#define GRP_OUT_NAMES o0, o1, o2, o3, o4, o5, o6, o7, o8, o9
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

#ifndef RX_LS
#define RX_LS 1024
#endif
#ifdef RX_SHIFT
#define RX_DENSE 1
#define RX_LT RX_LS
#else
#define RX_DENSE 0
#define RX_LT (RX_LS + 1) /* with the entry of the key offset RX_EMPTY */
#endif

#ifdef SK_WIDE
#define RX_EMPTY ((SK_T)0xffffffffffffffffUL)
#define RX_CAS(p, k)                                                           \
    ((SK_T)atom_cmpxchg((volatile __local long *)(p), (long)RX_EMPTY,          \
                        (long)(k)))
#else
#define RX_EMPTY ((SK_T)0xffffffffu)
#define RX_CAS(p, k)                                                           \
    ((SK_T)atomic_cmpxchg((volatile __local uint *)(p), (uint)RX_EMPTY,        \
                          (uint)(k)))
#endif

/* bounds[2p], bounds[2p + 1]: the sorted positions [start, end) of
 * partition p (the host zeroes them first). */
__kernel void rx_bounds(__global const SK_T *sk, const ulong n,
                        __global uint *bounds)
{
    const ulong step = get_global_size(0);
    for (ulong i = get_global_id(0); i < n; i += step) {
        const ulong p = RS_PID(sk[i]);
        if (i == 0 || RS_PID(sk[i - 1]) != p)
            bounds[2 * p] = (uint)i;
        if (i == n - 1 || RS_PID(sk[i + 1]) != p)
            bounds[2 * p + 1] = (uint)(i + 1);
    }
}

/* The table's fields: 64-bit words (RX_F, via the shared ROW_ALL), or with
 * NARROW 32-bit words (the N_* macros of group_common.cl: native local
 * atomics where 64-bit ones are compare-and-swap loops). */
#ifdef NARROW
#define RX_F uint
#define RX_INIT(t, i) N_INIT(t, i, RX_LT)
#define RX_ROW(t, i, r) N_ROW(t, i, RX_LT, r)
#define RX_NV_(t, i, v, j)                                                     \
    if ((j) < NAGG)                                                            \
        (v)[1 + (j)] = N_VALUE(t, i, RX_LT, j);
#define RX_VALUES(t, i, v)                                                     \
    do {                                                                       \
        (v)[0] = (long)(t)[i];                                                 \
        RX_NV_(t, i, v, 0)                                                     \
        RX_NV_(t, i, v, 1) RX_NV_(t, i, v, 2) RX_NV_(t, i, v, 3)               \
            RX_NV_(t, i, v, 4) RX_NV_(t, i, v, 5) RX_NV_(t, i, v, 6)           \
                RX_NV_(t, i, v, 7)                                             \
    } while (0)
#else
#define RX_F long
#define RX_INIT(t, i) IDENT_ALL((t) + (i), RX_LT)
#define RX_ROW(t, i, r)                                                        \
    do {                                                                       \
        __local long *e_ = (t) + (i);                                          \
        ROW_ALL(l, e_, RX_LT, r);                                              \
    } while (0)
#define RX_VALUES(t, i, v)                                                     \
    do {                                                                       \
        for (int f_ = 0; f_ <= NAGG; f_++)                                     \
            (v)[f_] = (t)[(i) + (uint)f_ * RX_LT];                             \
    } while (0)
#endif

/* One work-group per partition. lkey: RX_LT keys (sparse only); lf: the
 * count and accumulator fields (RX_F), RX_LT words each; misc: 2 ulongs
 * (the work-group's used entries, its first output index). */
__kernel void rx_agg(GRP_INPUT, __global const SK_T *sk,
                     __global const uint *perm, const long kmin,
                     __global const uint *bounds, GRP_OUT, const ulong cap,
                     volatile __global long *count, __local SK_T *lkey,
                     __local RX_F *lf, __local ulong *misc)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    const ulong p = get_group_id(0);
    const uint start = bounds[2 * p], end = bounds[2 * p + 1];
    if (start >= end)
        return;
    for (uint i = lid; i < RX_LT; i += wg) {
#if !RX_DENSE
        lkey[i] = RX_EMPTY;
#endif
        RX_INIT(lf, i);
    }
    __local uint *used = (__local uint *)misc;
    if (lid == 0)
        *used = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint i = start + lid; i < end; i += wg) {
        const SK_T k = sk[i];
        const ulong r = off + (ulong)perm[i];
#if RX_DENSE
        const uint h = (uint)k & ((1u << RX_SHIFT) - 1);
#else
        uint h = (uint)key_hash((long)k) & (RX_LS - 1);
        int found = k == RX_EMPTY;
        if (found)
            h = RX_LS;
        for (uint n = 0; n < RX_LS && !found; n++) {
            const SK_T cur = lkey[h];
            if (cur == k) {
                found = 1;
                break;
            }
            if (cur == RX_EMPTY) {
                const SK_T prev = RX_CAS(lkey + h, k);
                if (prev == RX_EMPTY || prev == k) {
                    found = 1;
                    break;
                }
            }
            h = (h + 1) & (RX_LS - 1);
        }
        if (!found) {
            atomic_or(wrapped, WRAP_TABLE);
            continue;
        }
#endif
        RX_ROW(lf, h, r);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    uint mine = 0;
    for (uint s = lid; s < RX_LT; s += wg)
        mine += lf[s] != 0;
    uint at = atomic_add((volatile __local uint *)used, mine);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0)
        misc[1] = (ulong)atom_add(count, (long)*used);
    barrier(CLK_LOCAL_MEM_FENCE);
    const ulong base = misc[1];
    for (uint s = lid; s < RX_LT; s += wg) {
        if (lf[s] == 0)
            continue;
        const ulong idx = base + at++;
        if (idx >= cap) {
            atomic_or(wrapped, WRAP_TABLE);
            continue;
        }
#if RX_DENSE
        const ulong ko = (p << RX_SHIFT) + s;
#else
        const ulong ko = s == RX_LS ? (ulong)RX_EMPTY : (ulong)lkey[s];
#endif
        long v[9];
        RX_VALUES(lf, s, v);
        GRP_OUT_PUT(idx, (long)(ko + (ulong)kmin), v);
    }
}
