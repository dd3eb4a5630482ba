/*
 * group_common.cl - what every grouping kernel shares (OpenCL C 1.2): the
 * query's shape as macros, the input argument block, the accumulator
 * updates on global and local memory (atomic) and on lane-private local
 * memory (plain), and the compaction of a table's used entries.
 *
 * The host (opencl/group.c, ocl_group_options) describes the query with -D
 * options, so a program is compiled once per shape and cached:
 *
 *   KEY_T        uint, int or long                the key column's type
 *   NAGG         0..8                             lowered aggregates
 *   Aj_OP        0 COUNT, 1 SUM, 2 MIN, 3 MAX     aggregate j's operation
 *   Aj_T         uint, int, long or double        its input type
 *   Aj_F         1: the accumulator is a double (f64 SUM/MIN/MAX)
 *   Aj_NULL      1: the column has NULLs (vj flags; 0 marks a NULL)
 *   Aj_CHECK     1: an i64 SUM, whose intermediate wraps are flagged
 *   TAB_E        words (long) per table entry; TAB_K 1: entries carry the key
 *   HAS_I64_EXT  cl_khr_int64_extended_atomics (atom_min / atom_max)
 *   NEED_F64     some aggregate reads or keeps doubles
 *
 * Table entry (see opencl/ocl_group.h): [key] count acc_0 ... acc_{NAGG-1}.
 * In local tables the fields are split (structure of arrays): field f of
 * entry e sits at base[e + f * stride]; the update macros take the stride.
 *
 * The flag word `wrapped`: bit 0 an i64 SUM wrapped (the host reruns the
 * query exactly on the CPU), bit 1 a hash table overflowed (the host
 * retries with a larger table), bit 2 a packed sum left its field (the
 * host retries unpacked).
 *
 * PACKED (with PACK_SB): the query is COUNT(*) and one SUM of 32-bit
 * values without NULLs, and a global table entry keeps both in one word,
 * count * 2^PACK_SB + sum with |sum| < 2^(PACK_SB - 1): one atomic per
 * row instead of two. The host picks PACK_SB so that the count cannot
 * reach the sign bit; a sum that leaves its field is caught by the add
 * that does it (WRAP_PACK). The compaction unpacks the word.
 */
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
#ifdef HAS_I64_EXT
#pragma OPENCL EXTENSION cl_khr_int64_extended_atomics : enable
#endif
#ifdef NEED_F64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#ifndef KEY_T
#define KEY_T uint
#endif
#ifndef NAGG
#define NAGG 0
#endif
#ifndef TAB_K
#define TAB_K 0
#endif
#ifndef TAB_E
#define TAB_E 2
#endif

/* Defaults for the aggregates the query does not use (dead code). */
#ifndef A0_T
#define A0_T int
#define A0_OP 0
#define A0_F 0
#define A0_NULL 0
#define A0_CHECK 0
#endif
#ifndef A1_T
#define A1_T int
#define A1_OP 0
#define A1_F 0
#define A1_NULL 0
#define A1_CHECK 0
#endif
#ifndef A2_T
#define A2_T int
#define A2_OP 0
#define A2_F 0
#define A2_NULL 0
#define A2_CHECK 0
#endif
#ifndef A3_T
#define A3_T int
#define A3_OP 0
#define A3_F 0
#define A3_NULL 0
#define A3_CHECK 0
#endif
#ifndef A4_T
#define A4_T int
#define A4_OP 0
#define A4_F 0
#define A4_NULL 0
#define A4_CHECK 0
#endif
#ifndef A5_T
#define A5_T int
#define A5_OP 0
#define A5_F 0
#define A5_NULL 0
#define A5_CHECK 0
#endif
#ifndef A6_T
#define A6_T int
#define A6_OP 0
#define A6_F 0
#define A6_NULL 0
#define A6_CHECK 0
#endif
#ifndef A7_T
#define A7_T int
#define A7_OP 0
#define A7_F 0
#define A7_NULL 0
#define A7_CHECK 0
#endif

#define WRAP_SUM 1
#define WRAP_TABLE 2
#define WRAP_PACK 4

/* The argument block every grouping kernel starts with: the chunk's keys
 * and aggregate columns (row r of the chunk is element off + r), and the
 * flag word. */
#define GRP_INPUT                                                              \
    __global const KEY_T *keys, __global const A0_T *a0,                       \
        __global const uchar *v0, __global const A1_T *a1,                     \
        __global const uchar *v1, __global const A2_T *a2,                     \
        __global const uchar *v2, __global const A3_T *a3,                     \
        __global const uchar *v3, __global const A4_T *a4,                     \
        __global const uchar *v4, __global const A5_T *a5,                     \
        __global const uchar *v5, __global const A6_T *a6,                     \
        __global const uchar *v6, __global const A7_T *a7,                     \
        __global const uchar *v7, const ulong off, const ulong rows,           \
        volatile __global int *wrapped

/* Runs `body` for every row r (an element index) of the chunk that this
 * work-item owns: the grid-stride loop unrolled four times, so that each
 * item has four independent loads of every column in flight (one row at a
 * time leaves the memory system idle between a load and its use) while
 * each load instruction of a warp still reads one contiguous span. */
#define FOR_ROWS(body)                                                         \
    do {                                                                       \
        const ulong gsz_ = get_global_size(0);                                 \
        ulong i_ = get_global_id(0);                                           \
        for (; i_ + 3 * gsz_ < rows; i_ += 4 * gsz_) {                         \
            for (int u_ = 0; u_ < 4; u_++) {                                   \
                const ulong r = off + i_ + (ulong)u_ * gsz_;                   \
                body                                                           \
            }                                                                  \
        }                                                                      \
        for (; i_ < rows; i_ += gsz_) {                                        \
            const ulong r = off + i_;                                          \
            body                                                               \
        }                                                                      \
    } while (0)

/* ------------------------------------------------ accumulator primitives */

/* One set per kind of memory: _g global atomics, _l local atomics, _p
 * plain local (a word only one work-item touches). Every one takes the
 * flag word for the checked add. */
#define ACC_ATOMIC_SET(AS, sfx)                                                \
    inline void acc_add_##sfx(volatile AS long *p, long x,                     \
                              volatile __global int *w)                        \
    {                                                                          \
        (void)w;                                                               \
        atom_add(p, x);                                                        \
    }                                                                          \
    inline void acc_addc_##sfx(volatile AS long *p, long x,                    \
                               volatile __global int *w)                       \
    {                                                                          \
        const long old = atom_add(p, x);                                       \
        const long now = (long)((ulong)old + (ulong)x);                        \
        if ((x > 0 && now < old) || (x < 0 && now > old))                      \
            atomic_or(w, WRAP_SUM);                                            \
    }                                                                          \
    inline void acc_min_##sfx(volatile AS long *p, long x)                     \
    {                                                                          \
        long cur = *p;                                                         \
        while (x < cur) {                                                      \
            const long prev = atom_cmpxchg(p, cur, x);                         \
            if (prev == cur)                                                   \
                break;                                                         \
            cur = prev;                                                        \
        }                                                                      \
    }                                                                          \
    inline void acc_max_##sfx(volatile AS long *p, long x)                     \
    {                                                                          \
        long cur = *p;                                                         \
        while (x > cur) {                                                      \
            const long prev = atom_cmpxchg(p, cur, x);                         \
            if (prev == cur)                                                   \
                break;                                                         \
            cur = prev;                                                        \
        }                                                                      \
    }

ACC_ATOMIC_SET(__global, g)
ACC_ATOMIC_SET(__local, l)

#ifdef HAS_I64_EXT
/* Native 64-bit min/max where the device has them (global memory only;
 * the local ones above are CAS loops that rarely loop). */
#define acc_min_g(p, x) atom_min((p), (x))
#define acc_max_g(p, x) atom_max((p), (x))
#endif

inline void acc_add_p(__local long *p, long x, volatile __global int *w)
{
    (void)w;
    *p += x;
}
inline void acc_addc_p(__local long *p, long x, volatile __global int *w)
{
    const long old = *p;
    const long now = (long)((ulong)old + (ulong)x);
    if ((x > 0 && now < old) || (x < 0 && now > old))
        atomic_or(w, WRAP_SUM);
    *p = now;
}
inline void acc_min_p(__local long *p, long x)
{
    if (x < *p)
        *p = x;
}
inline void acc_max_p(__local long *p, long x)
{
    if (x > *p)
        *p = x;
}

#ifdef NEED_F64
#define ACC_F64_SET(AS, sfx)                                                   \
    inline void acc_fadd_##sfx(volatile AS long *p, double x)                  \
    {                                                                          \
        long cur = *p;                                                         \
        for (;;) {                                                             \
            const long now = as_long(as_double(cur) + x);                      \
            const long prev = atom_cmpxchg(p, cur, now);                       \
            if (prev == cur)                                                   \
                break;                                                         \
            cur = prev;                                                        \
        }                                                                      \
    }                                                                          \
    inline void acc_fmin_##sfx(volatile AS long *p, double x)                  \
    {                                                                          \
        long cur = *p;                                                         \
        while (x < as_double(cur)) {                                           \
            const long prev = atom_cmpxchg(p, cur, as_long(x));                \
            if (prev == cur)                                                   \
                break;                                                         \
            cur = prev;                                                        \
        }                                                                      \
    }                                                                          \
    inline void acc_fmax_##sfx(volatile AS long *p, double x)                  \
    {                                                                          \
        long cur = *p;                                                         \
        while (x > as_double(cur)) {                                           \
            const long prev = atom_cmpxchg(p, cur, as_long(x));                \
            if (prev == cur)                                                   \
                break;                                                         \
            cur = prev;                                                        \
        }                                                                      \
    }
ACC_F64_SET(__global, g)
ACC_F64_SET(__local, l)
inline void acc_fadd_p(__local long *p, double x)
{
    *p = as_long(as_double(*p) + x);
}
inline void acc_fmin_p(__local long *p, double x)
{
    if (x < as_double(*p))
        *p = as_long(x);
}
inline void acc_fmax_p(__local long *p, double x)
{
    if (x > as_double(*p))
        *p = as_long(x);
}
#define F64_BITS(x) as_long((double)(x))
#define F64_OF(w) as_double(w)
#else
/* Never reached without doubles (Aj_F is 0 for every aggregate). */
#define acc_fadd_g(p, x) ((void)0)
#define acc_fmin_g(p, x) ((void)0)
#define acc_fmax_g(p, x) ((void)0)
#define acc_fadd_l(p, x) ((void)0)
#define acc_fmin_l(p, x) ((void)0)
#define acc_fmax_l(p, x) ((void)0)
#define acc_fadd_p(p, x) ((void)0)
#define acc_fmin_p(p, x) ((void)0)
#define acc_fmax_p(p, x) ((void)0)
#define F64_BITS(x) 0L
#define F64_OF(w) 0
#endif

/* The identity an accumulator of aggregate j starts from (also the
 * host's fill pattern): 0, or +inf / -inf for MIN / MAX. */
#define IDENT(j)                                                               \
    (A##j##_OP == 2 ? (A##j##_F ? 0x7ff0000000000000L : LONG_MAX)              \
     : A##j##_OP == 3 ? (A##j##_F ? (long)0xfff0000000000000UL : LONG_MIN)     \
                      : 0L)

/* Folds value x of aggregate j into accumulator word p (sfx: g, l or p). */
#define ACC_UPD(sfx, j, p, x)                                                  \
    do {                                                                       \
        if (A##j##_OP == 0)                                                    \
            acc_add_##sfx((p), 1L, wrapped);                                   \
        else if (A##j##_F) {                                                   \
            if (A##j##_OP == 1)                                                \
                acc_fadd_##sfx((p), (double)(x));                              \
            else if (A##j##_OP == 2)                                           \
                acc_fmin_##sfx((p), (double)(x));                              \
            else                                                               \
                acc_fmax_##sfx((p), (double)(x));                              \
        } else if (A##j##_OP == 1) {                                           \
            if (A##j##_CHECK)                                                  \
                acc_addc_##sfx((p), (long)(x), wrapped);                       \
            else                                                               \
                acc_add_##sfx((p), (long)(x), wrapped);                        \
        } else if (A##j##_OP == 2)                                             \
            acc_min_##sfx((p), (long)(x));                                     \
        else                                                                   \
            acc_max_##sfx((p), (long)(x));                                     \
    } while (0)

/* Folds accumulator word w (a partial result) of aggregate j into p. */
#define ACC_MERGE(sfx, j, p, w)                                                \
    do {                                                                       \
        if (A##j##_F) {                                                        \
            if (A##j##_OP <= 1)                                                \
                acc_fadd_##sfx((p), F64_OF(w));                                \
            else if (A##j##_OP == 2)                                           \
                acc_fmin_##sfx((p), F64_OF(w));                                \
            else                                                               \
                acc_fmax_##sfx((p), F64_OF(w));                                \
        } else if (A##j##_OP <= 1) {                                           \
            if (A##j##_CHECK)                                                  \
                acc_addc_##sfx((p), (w), wrapped);                             \
            else                                                               \
                acc_add_##sfx((p), (w), wrapped);                              \
        } else if (A##j##_OP == 2)                                             \
            acc_min_##sfx((p), (w));                                           \
        else                                                                   \
            acc_max_##sfx((p), (w));                                           \
    } while (0)

/* Row r (an element index) of aggregate j into the entry whose count word
 * is at e (fields `stride` words apart), when the row's value is valid. */
#define ROW_AGG(sfx, j, e, stride, r)                                          \
    if ((j) < NAGG && (!A##j##_NULL || v##j[r]))                               \
    ACC_UPD(sfx, j, (e) + (1 + (j)) * (stride), a##j[r])

/* Row r into the entry at e: COUNT(*) and every aggregate. */
#define ROW_ALL(sfx, e, stride, r)                                             \
    do {                                                                       \
        acc_add_##sfx((e), 1L, wrapped);                                       \
        ROW_AGG(sfx, 0, e, stride, r);                                         \
        ROW_AGG(sfx, 1, e, stride, r);                                         \
        ROW_AGG(sfx, 2, e, stride, r);                                         \
        ROW_AGG(sfx, 3, e, stride, r);                                         \
        ROW_AGG(sfx, 4, e, stride, r);                                         \
        ROW_AGG(sfx, 5, e, stride, r);                                         \
        ROW_AGG(sfx, 6, e, stride, r);                                         \
        ROW_AGG(sfx, 7, e, stride, r);                                         \
    } while (0)

/* A partial entry (count c, aggregate word j at src[(1 + j) * sstride])
 * into the entry at e (fields `stride` apart). */
#define MERGE_AGG_(sfx, j, e, stride, src, sstride)                            \
    if ((j) < NAGG)                                                            \
    ACC_MERGE(sfx, j, (e) + (1 + (j)) * (stride), (src)[(1 + (j)) * (sstride)])
#define MERGE_ALL(sfx, e, stride, src, sstride)                                \
    do {                                                                       \
        acc_add_##sfx((e), (src)[0], wrapped);                                 \
        MERGE_AGG_(sfx, 0, e, stride, src, sstride);                           \
        MERGE_AGG_(sfx, 1, e, stride, src, sstride);                           \
        MERGE_AGG_(sfx, 2, e, stride, src, sstride);                           \
        MERGE_AGG_(sfx, 3, e, stride, src, sstride);                           \
        MERGE_AGG_(sfx, 4, e, stride, src, sstride);                           \
        MERGE_AGG_(sfx, 5, e, stride, src, sstride);                           \
        MERGE_AGG_(sfx, 6, e, stride, src, sstride);                           \
        MERGE_AGG_(sfx, 7, e, stride, src, sstride);                           \
    } while (0)

/* Sets the count and accumulator fields of entry e to their identities. */
#define IDENT_ALL(e, stride)                                                   \
    do {                                                                       \
        (e)[0] = 0;                                                            \
        if (NAGG > 0) (e)[1 * (stride)] = IDENT(0);                            \
        if (NAGG > 1) (e)[2 * (stride)] = IDENT(1);                            \
        if (NAGG > 2) (e)[3 * (stride)] = IDENT(2);                            \
        if (NAGG > 3) (e)[4 * (stride)] = IDENT(3);                            \
        if (NAGG > 4) (e)[5 * (stride)] = IDENT(4);                            \
        if (NAGG > 5) (e)[6 * (stride)] = IDENT(5);                            \
        if (NAGG > 6) (e)[7 * (stride)] = IDENT(6);                            \
        if (NAGG > 7) (e)[8 * (stride)] = IDENT(7);                            \
    } while (0)

/* The hash of a key (the 64-bit finaliser of MurmurHash3). */
inline ulong key_hash(long k)
{
    ulong x = (ulong)k;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdUL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53UL;
    x ^= x >> 33;
    return x;
}

#ifdef PACKED
/* The sum field of a packed word (sign-extended low PACK_SB bits). */
inline long packed_sum(long w)
{
    return (long)((ulong)w << (64 - PACK_SB)) >> (64 - PACK_SB);
}

inline void packed_add(volatile __global long *p, long v,
                       volatile __global int *w)
{
    const long old = atom_add(p, (long)(1UL << PACK_SB) + v);
    const long now = packed_sum(old) + v;
    if (now >= (long)(1UL << (PACK_SB - 1)) ||
        now < -(long)(1UL << (PACK_SB - 1)))
        atomic_or(w, WRAP_PACK);
}
#endif

/* ------------------------------------------------------------ compaction */

/* A table's used entries (count > 0) are copied, in entry order, into
 * dense arrays of the groups' keys, counts and accumulators.
 * Three passes: count per block, one work-group's scan of the counts, and
 * the scatter. A block is `per_wg` entries, one block per work-group. */
__kernel void tab_count(__global const long *tab, const ulong n,
                        const ulong per_wg, __global ulong *counts,
                        __local uint *scratch)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    const ulong lo = get_group_id(0) * per_wg;
    const ulong hi = min(n, lo + per_wg);
    uint c = 0;
    for (ulong i = lo + lid; i < hi; i += wg)
        c += tab[i * TAB_E + TAB_K] != 0;
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

/* wg_scan_T(a, n, scratch): exclusive scan of a[0..n) in place by the
 * calling work-group (size a power of two, scratch one T per item); returns
 * the sum to every item. */
#define WG_SCAN(T)                                                             \
    inline T wg_scan_##T(__global T *a, const uint n, __local T *scratch)      \
    {                                                                          \
        const uint lid = get_local_id(0), wg = get_local_size(0);              \
        T carry = 0;                                                           \
        for (uint base = 0; base < n; base += wg) {                            \
            const uint i = base + lid;                                         \
            const T x = i < n ? a[i] : 0;                                      \
            scratch[lid] = x;                                                  \
            barrier(CLK_LOCAL_MEM_FENCE);                                      \
            for (uint s = 1; s < wg; s <<= 1) {                                \
                const T y = lid >= s ? scratch[lid - s] : 0;                   \
                barrier(CLK_LOCAL_MEM_FENCE);                                  \
                scratch[lid] += y;                                             \
                barrier(CLK_LOCAL_MEM_FENCE);                                  \
            }                                                                  \
            if (i < n)                                                         \
                a[i] = carry + scratch[lid] - x;                               \
            carry += scratch[wg - 1];                                          \
            barrier(CLK_LOCAL_MEM_FENCE);                                      \
        }                                                                      \
        return carry;                                                          \
    }
WG_SCAN(uint)
WG_SCAN(ulong)

/* Exclusive scan of counts[0..n) in place by one work-group; total[0] gets
 * the sum. */
__kernel void scan_counts(__global ulong *counts, const uint n,
                          __global ulong *total, __local ulong *scratch)
{
    const ulong sum = wg_scan_ulong(counts, n, scratch);
    if (get_local_id(0) == 0)
        total[0] = sum;
}

/* The output is field-major (key[total], count[total], acc_0[total]...),
 * so that the host copies each result array in one piece. */
__kernel void tab_compact(__global const long *tab, const ulong n,
                          const ulong per_wg, __global const ulong *offs,
                          __global long *out, const long key_base,
                          const ulong total, __local uint *scratch)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    const ulong lo = get_group_id(0) * per_wg;
    const ulong hi = min(n, lo + per_wg);
    ulong at = offs[get_group_id(0)];
    for (ulong base = lo; base < hi; base += wg) {
        const ulong i = base + lid;
        const uint used = i < hi && tab[i * TAB_E + TAB_K] != 0;
        scratch[lid] = used;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint s = 1; s < wg; s <<= 1) {
            const uint y = lid >= s ? scratch[lid - s] : 0;
            barrier(CLK_LOCAL_MEM_FENCE);
            scratch[lid] += y;
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (used) {
            __global long *o = out + (at + scratch[lid] - 1);
            __global const long *e = tab + i * TAB_E;
            o[0] = TAB_K ? e[0] : key_base + (long)i;
#ifdef PACKED
            const long w = e[TAB_K], sum = packed_sum(w);
            o[total] = (w - sum) >> PACK_SB;
            o[2 * total] = sum;
#else
            for (int f = 0; f <= NAGG; f++)
                o[(1 + f) * total] = e[TAB_K + f];
#endif
        }
        at += scratch[wg - 1];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* ------------------------------------------------ narrow local tables */

/* Local 64-bit atomics are compare-and-swap loops on some GPUs (NVIDIA),
 * so local tables use 32-bit words when every aggregate allows (the host
 * defines NARROW): COUNT(*) and COUNT in one uint (a work-group sees fewer
 * than 2^32 rows), MIN/MAX of int/uint in one word with native atomic
 * min/max, and SUM of int/uint as a biased low word plus a high word: the
 * low word starts at 2^31 and an add that carries (or borrows) out of it
 * moves the high word, so sum = hi * 2^32 + lo - 2^31 exactly, and with
 * small values the high word is almost never touched.
 *
 * Field f of entry i of a table of n entries starts at word NOFF(f) * n + i
 * (f = 0 is the count; aggregate j is field NOFF_j; a SUM has its high
 * word n words after its low word). */
#define NW(j) ((j) < NAGG ? (A##j##_OP == 1 ? 2 : 1) : 0)
#define NOFF_0 1
#define NOFF_1 (NOFF_0 + NW(0))
#define NOFF_2 (NOFF_1 + NW(1))
#define NOFF_3 (NOFF_2 + NW(2))
#define NOFF_4 (NOFF_3 + NW(3))
#define NOFF_5 (NOFF_4 + NW(4))
#define NOFF_6 (NOFF_5 + NW(5))
#define NOFF_7 (NOFF_6 + NW(6))
#define NWORDS (NOFF_7 + NW(7))
#define NSIGNED(j) ((A##j##_T)(-1) < (A##j##_T)0)

#ifdef NARROW
inline void n_add(volatile __local uint *lo, volatile __local int *hi, int x,
                  int is_signed)
{
    const uint old = atomic_add(lo, (uint)x);
    const uint now = old + (uint)x;
    if (is_signed && x < 0) {
        if (now > old)
            atomic_dec(hi);
    } else if (now < old)
        atomic_inc(hi);
}

/* The identity words of aggregate j. */
#define N_IDENT(j)                                                             \
    (A##j##_OP == 1   ? 0x80000000u                                            \
     : A##j##_OP == 2 ? (NSIGNED(j) ? 0x7fffffffu : 0xffffffffu)               \
     : A##j##_OP == 3 ? (NSIGNED(j) ? 0x80000000u : 0u)                        \
                      : 0u)

/* Sets entry i of a narrow table of n entries (base t) to identities. */
#define N_INIT_AGG_(t, i, n, j)                                                \
    if ((j) < NAGG) {                                                          \
        (t)[NOFF_##j * (n) + (i)] = N_IDENT(j);                                \
        if (A##j##_OP == 1)                                                    \
            (t)[(NOFF_##j + 1) * (n) + (i)] = 0;                               \
    }
#define N_INIT(t, i, n)                                                        \
    do {                                                                       \
        (t)[i] = 0;                                                            \
        N_INIT_AGG_(t, i, n, 0) N_INIT_AGG_(t, i, n, 1)                        \
        N_INIT_AGG_(t, i, n, 2) N_INIT_AGG_(t, i, n, 3)                        \
        N_INIT_AGG_(t, i, n, 4) N_INIT_AGG_(t, i, n, 5)                        \
        N_INIT_AGG_(t, i, n, 6) N_INIT_AGG_(t, i, n, 7)                        \
    } while (0)

/* Row r into entry i of the narrow table t of n entries (local atomics). */
#define N_ROW_AGG_(t, i, n, r, j)                                              \
    if ((j) < NAGG && (!A##j##_NULL || v##j[r])) {                             \
        volatile __local uint *w_ = (t) + NOFF_##j * (n) + (i);                \
        if (A##j##_OP == 0)                                                    \
            atomic_inc(w_);                                                    \
        else if (A##j##_OP == 1)                                               \
            n_add(w_, (volatile __local int *)(w_ + (n)), (int)a##j[r],        \
                  NSIGNED(j));                                                 \
        else if (NSIGNED(j)) {                                                 \
            if (A##j##_OP == 2)                                                \
                atomic_min((volatile __local int *)w_, (int)a##j[r]);          \
            else                                                               \
                atomic_max((volatile __local int *)w_, (int)a##j[r]);          \
        } else {                                                               \
            if (A##j##_OP == 2)                                                \
                atomic_min(w_, (uint)a##j[r]);                                 \
            else                                                               \
                atomic_max(w_, (uint)a##j[r]);                                 \
        }                                                                      \
    }
#define N_ROW(t, i, n, r)                                                      \
    do {                                                                       \
        atomic_inc((volatile __local uint *)(t) + (i));                        \
        N_ROW_AGG_(t, i, n, r, 0) N_ROW_AGG_(t, i, n, r, 1)                    \
        N_ROW_AGG_(t, i, n, r, 2) N_ROW_AGG_(t, i, n, r, 3)                    \
        N_ROW_AGG_(t, i, n, r, 4) N_ROW_AGG_(t, i, n, r, 5)                    \
        N_ROW_AGG_(t, i, n, r, 6) N_ROW_AGG_(t, i, n, r, 7)                    \
    } while (0)

/* The 64-bit accumulator value of aggregate j in entry i. */
#define N_VALUE(t, i, n, j)                                                    \
    (A##j##_OP == 1                                                            \
         ? (long)(((ulong)(t)[(NOFF_##j + 1) * (n) + (i)] << 32) |             \
                  (ulong)(t)[NOFF_##j * (n) + (i)]) -                          \
               0x80000000L                                                     \
     : (A##j##_OP == 2 || A##j##_OP == 3) && NSIGNED(j)                        \
         ? (long)(int)(t)[NOFF_##j * (n) + (i)]                                \
         : (long)(t)[NOFF_##j * (n) + (i)])

/* Folds entry i of narrow table t (n entries) into the global entry e
 * (count word at e, fields one word apart), when it has rows. */
#define N_FLUSH_AGG_(t, i, n, e, j)                                            \
    if ((j) < NAGG) {                                                          \
        const long w_ = N_VALUE(t, i, n, j);                                   \
        ACC_MERGE(g, j, (e) + 1 + (j), w_);                                    \
    }
#define N_FLUSH(t, i, n, e)                                                    \
    do {                                                                       \
        if ((t)[i] != 0) {                                                     \
            acc_add_g((e), (long)(t)[i], wrapped);                             \
            N_FLUSH_AGG_(t, i, n, e, 0) N_FLUSH_AGG_(t, i, n, e, 1)            \
            N_FLUSH_AGG_(t, i, n, e, 2) N_FLUSH_AGG_(t, i, n, e, 3)            \
            N_FLUSH_AGG_(t, i, n, e, 4) N_FLUSH_AGG_(t, i, n, e, 5)            \
            N_FLUSH_AGG_(t, i, n, e, 6) N_FLUSH_AGG_(t, i, n, e, 7)            \
        }                                                                      \
    } while (0)
#endif /* NARROW */
