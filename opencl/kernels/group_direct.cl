/*
 * group_direct.cl - direct (static perfect hash) grouping: the key minus the
 * smallest key is the entry index. Built after group_common.cl.
 *
 * Three modes, chosen by the host (opencl/group_direct.c) from the number of
 * entries S and the device's local memory:
 *
 *   direct_lanes   very small domains (10 groups): every work-item owns a
 *                  private copy of the table in local memory (layout
 *                  [field][entry][lane], so neighbouring lanes hit
 *                  neighbouring banks whatever their keys), updated without
 *                  atomics; the work-group folds its lanes at the end and
 *                  merges into the global table with one atomic per field
 *                  and entry. Ten groups cannot serialise on atomics.
 *   direct_local   domains that fit local memory: R copies of the table per
 *                  work-group (one per warp-sized slice of lanes while they
 *                  fit), local atomics, then the same merge.
 *   direct_global  larger domains: global atomics straight into the table
 *                  (it lives in the device's L2 cache while it fits).
 *
 * The global table has TAB_E words per entry (TAB_K = 0: no key word).
 */

#define DSLOT(r) ((ulong)((long)keys[r] - base))

__kernel void direct_global(GRP_INPUT, __global long *tab, const long base)
{
    FOR_ROWS({
        __global long *e = tab + DSLOT(r) * TAB_E;
        ROW_ALL(g, e, 1, r);
    });
}

/* Folds the work-group's local entry s (fields `stride` apart, `copies`
 * copies `cstride` words apart) into the global table. */
inline void direct_flush_entry(__local long *lt, uint s, uint stride,
                               uint copies, uint cstride, __global long *tab,
                               volatile __global int *wrapped)
{
    __local long *e0 = lt + s;
    for (uint c = 1; c < copies; c++) {
        __local long *ec = e0 + c * cstride;
        if (ec[0] != 0)
            MERGE_ALL(p, e0, stride, ec, stride);
    }
    if (e0[0] != 0)
        MERGE_ALL(g, tab + (ulong)s * TAB_E, 1, e0, stride);
}

__kernel void direct_local(GRP_INPUT, __global long *tab, const long base,
                           const uint S, const uint R, __local long *lt)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    const uint stride = R * S; /* between fields */
    for (uint i = lid; i < stride; i += wg)
        IDENT_ALL(lt + i, stride);
    barrier(CLK_LOCAL_MEM_FENCE);
    __local long *mine = lt + ((lid / 32) % R) * S;
    FOR_ROWS({
        __local long *e = mine + DSLOT(r);
        ROW_ALL(l, e, stride, r);
    });
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = lid; s < S; s += wg)
        direct_flush_entry(lt, s, stride, R, S, tab, wrapped);
}

__kernel void direct_lanes(GRP_INPUT, __global long *tab, const long base,
                           const uint S, __local long *lt)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    const uint stride = S * wg; /* between fields */
    for (uint i = lid; i < stride; i += wg)
        IDENT_ALL(lt + i, stride);
    barrier(CLK_LOCAL_MEM_FENCE);
    FOR_ROWS({
        __local long *e = lt + DSLOT(r) * wg + lid;
        ROW_ALL(p, e, stride, r);
    });
    barrier(CLK_LOCAL_MEM_FENCE);
    /* Fold the lanes pairwise: entry s of lane l sits at s * wg + l, so a
     * fold is a merge of lane l + h into lane l for every entry. */
    for (uint h = wg / 2; h > 0; h >>= 1) {
        for (uint t = lid; t < S * h; t += wg) {
            const uint s = t / h, l = t % h;
            __local long *dst = lt + s * wg + l;
            __local long *src = dst + h;
            if (src[0] != 0)
                MERGE_ALL(p, dst, stride, src, stride);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (uint s = lid; s < S; s += wg) {
        __local long *e = lt + s * wg;
        if (e[0] != 0)
            MERGE_ALL(g, tab + (ulong)s * TAB_E, 1, e, stride);
    }
}

#ifdef NARROW
/* direct_local with narrow (32-bit) local tables: R copies of S entries,
 * NWORDS words per entry (see group_common.cl). */
__kernel void direct_local_n(GRP_INPUT, __global long *tab, const long base,
                             const uint S, const uint R, __local uint *lt)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    for (uint i = lid; i < R * S; i += wg) {
        __local uint *t = lt + (i / S) * S * NWORDS;
        N_INIT(t, i % S, S);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    __local uint *mine = lt + ((lid / 32) % R) * S * NWORDS;
    FOR_ROWS({
        const uint s = (uint)DSLOT(r);
        N_ROW(mine, s, S, r);
    });
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint i = lid; i < R * S; i += wg) {
        __local uint *t = lt + (i / S) * S * NWORDS;
        const uint s = i % S;
        N_FLUSH(t, s, S, tab + (ulong)s * TAB_E);
    }
}
#endif

#ifdef PACKED
/* direct_global for COUNT(*) + SUM of 32-bit values: one packed word per
 * entry, one atomic per row. */
__kernel void direct_packed(GRP_INPUT, __global long *tab, const long base)
{
    FOR_ROWS({
        packed_add((volatile __global long *)(tab + DSLOT(r) * TAB_E),
                   (long)a0[r], wrapped);
    });
}
#endif
