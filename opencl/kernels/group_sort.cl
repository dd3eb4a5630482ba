/*
 * group_sort.cl - a stable LSD radix sort of (key, row) pairs, 8 bits a
 * pass. Built after group_common.cl (and group_order.cl, which then reduces
 * the sorted pairs: the sort family) or before group_radix.cl (which sorts
 * by partition number only and then aggregates each partition: the radix
 * family).
 *
 * Elements: sk, the key minus the smallest key as an unsigned SK_T (uint
 * when the key range allows), and the row's index in the chunk (uint). The
 * first pass reads the chunk's keys and makes both on the fly; later passes
 * read the previous pass's output. The digit of a pass is 8 bits of
 * RS_PID(sk) from `shift` (RS_PID is sk itself for a sort; the radix family
 * defines it as the partition number).
 *
 * A pass over a chunk cut into nb blocks of `per` consecutive elements:
 *
 *   rs_hist     per block, the count of each of the 256 digits (local
 *               counters, RS_COPIES copies against contention), stored
 *               digit-major: hist[d * nb + b];
 *   rs_scan     one work-group per digit: the exclusive scan of its counts
 *               over the blocks in place, and its total;
 *   rs_scatter  per block, in tiles of wg * RS_IPT elements in order: the
 *               tile is sorted by digit in local memory with stable 2-bit
 *               splits (four 16-bit counters packed in a ulong, one scan
 *               over the work-group per split), then element e of digit d
 *               goes to gpos[d] + (e - the tile's first e of digit d), and
 *               gpos[d] advances by the tile's count of d. gpos starts at
 *               the digit's start (the scan of the digit totals) plus the
 *               blocks before (rs_scan): blocks in order, tiles in order,
 *               elements in order within a digit: the sort is stable.
 *               Writes of a digit's elements are consecutive.
 */

#ifndef SK_T
#define SK_T uint
#endif
#ifndef RS_IPT
#define RS_IPT 4
#endif
#define RS_COPIES 8

#if defined(RX_HASH_BITS)
/* Radix family, sparse keys: the top bits of the key's hash. */
#define RS_PID(k) (key_hash((long)(k)) >> (64 - RX_HASH_BITS))
#elif defined(RX_SHIFT)
/* Radix family, dense keys: the high bits of the key offset. */
#define RS_PID(k) ((ulong)(k) >> RX_SHIFT)
#else
#define RS_PID(k) ((ulong)(k))
#endif
#define RS_DIGIT(k, shift) ((uint)(RS_PID(k) >> (shift)) & 255u)

/* Element i of the chunk's keys as a key offset. */
#define RS_IN_KEY(i) ((SK_T)((ulong)(long)keys[off + (i)] - (ulong)kmin))

__kernel void rs_hist(GRP_INPUT, __global const SK_T *src, const int first,
                      const long kmin, const uint shift, const ulong per,
                      __global uint *hist, __local uint *lh)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    const ulong b = get_group_id(0), nb = get_num_groups(0);
    const ulong lo = b * per;
    const ulong hi = min(rows, lo + per);
    for (uint i = lid; i < 256 * RS_COPIES; i += wg)
        lh[i] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint copy = lid % RS_COPIES;
    for (ulong i = lo + lid; i < hi; i += wg) {
        const SK_T k = first ? RS_IN_KEY(i) : src[i];
        atomic_inc(lh + RS_DIGIT(k, shift) * RS_COPIES + copy);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint d = lid; d < 256; d += wg) {
        uint s = 0;
        for (uint c = 0; c < RS_COPIES; c++)
            s += lh[d * RS_COPIES + c];
        hist[d * nb + b] = s;
    }
}

/* One work-group per digit d: hist[d * nb ...] scanned, dtot[d] its sum. */
__kernel void rs_scan(__global uint *hist, const uint nb, __global uint *dtot,
                      __local uint *scratch)
{
    const uint sum =
        wg_scan_uint(hist + (ulong)get_group_id(0) * nb, nb, scratch);
    if (get_local_id(0) == 0)
        dtot[get_group_id(0)] = sum;
}

/* dbits: the digit's bits that can be set (1..8). Local: lk 2 * tile keys,
 * lp 2 * tile rows, ls wg ulongs, gpos / tst / ten 256 uints each. */
__kernel void rs_scatter(GRP_INPUT, __global const SK_T *src_k,
                         __global const uint *src_p, const int first,
                         const long kmin, const uint shift, const uint dbits,
                         const ulong per, __global const uint *hist,
                         __global const uint *dtot, __global SK_T *dst_k,
                         __global uint *dst_p, __local SK_T *lk,
                         __local uint *lp, __local ulong *ls,
                         __local uint *gpos, __local uint *tst,
                         __local uint *ten)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    const ulong b = get_group_id(0), nb = get_num_groups(0);
    const ulong lo = b * per;
    const ulong hi = min(rows, lo + per);
    if (lo >= hi)
        return;
    const uint tile = wg * RS_IPT;
    if (lid == 0) {
        uint a = 0;
        for (uint d = 0; d < 256; d++) {
            gpos[d] = a + hist[d * nb + b];
            a += dtot[d];
        }
    }
    for (uint d = lid; d < 256; d += wg)
        tst[d] = ten[d] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (ulong t0 = lo; t0 < hi; t0 += tile) {
        const uint n = (uint)min((ulong)tile, hi - t0);
        for (uint e = lid; e < n; e += wg) {
            const ulong i = t0 + e;
            lk[e] = first ? RS_IN_KEY(i) : src_k[i];
            lp[e] = first ? (uint)i : src_p[i];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        uint cur = 0;
        for (uint rb = 0; rb < dbits; rb += 2) {
            __local SK_T *ik = lk + cur * tile;
            __local uint *ip = lp + cur * tile;
            __local SK_T *ok = lk + (cur ^ 1) * tile;
            __local uint *op = lp + (cur ^ 1) * tile;
            SK_T kk[RS_IPT];
            uint pp[RS_IPT], vv[RS_IPT];
            ulong cnt = 0;
            for (uint j = 0; j < RS_IPT; j++) {
                const uint e = lid * RS_IPT + j;
                vv[j] = 0;
                if (e < n) {
                    kk[j] = ik[e];
                    pp[j] = ip[e];
                    vv[j] = (RS_DIGIT(kk[j], shift) >> rb) & 3u;
                    cnt += 1UL << (16 * vv[j]);
                }
            }
            ls[lid] = cnt;
            barrier(CLK_LOCAL_MEM_FENCE);
            for (uint s = 1; s < wg; s <<= 1) {
                const ulong y = lid >= s ? ls[lid - s] : 0;
                barrier(CLK_LOCAL_MEM_FENCE);
                ls[lid] += y;
                barrier(CLK_LOCAL_MEM_FENCE);
            }
            const ulong tot = ls[wg - 1];
            ulong ex = ls[lid] - cnt;
            const uint f0 = (uint)(tot & 0xffff);
            const uint f1 = (uint)((tot >> 16) & 0xffff);
            const uint f2 = (uint)((tot >> 32) & 0xffff);
            for (uint j = 0; j < RS_IPT; j++) {
                const uint e = lid * RS_IPT + j;
                if (e < n) {
                    const uint v = vv[j];
                    const uint st = v == 0   ? 0
                                    : v == 1 ? f0
                                    : v == 2 ? f0 + f1
                                             : f0 + f1 + f2;
                    const uint pos = st + (uint)((ex >> (16 * v)) & 0xffff);
                    ex += 1UL << (16 * v);
                    ok[pos] = kk[j];
                    op[pos] = pp[j];
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            cur ^= 1;
        }
        __local SK_T *fk = lk + cur * tile;
        __local uint *fp = lp + cur * tile;
        for (uint e = lid; e < n; e += wg) {
            const uint d = RS_DIGIT(fk[e], shift);
            if (e == 0 || d != RS_DIGIT(fk[e - 1], shift))
                tst[d] = e;
            if (e == n - 1 || d != RS_DIGIT(fk[e + 1], shift))
                ten[d] = e + 1;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint e = lid; e < n; e += wg) {
            const uint d = RS_DIGIT(fk[e], shift);
            const uint at = gpos[d] + e - tst[d];
            dst_k[at] = fk[e];
            dst_p[at] = fp[e];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint d = lid; d < 256; d += wg) {
            gpos[d] += ten[d] - tst[d];
            tst[d] = ten[d] = 0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}
