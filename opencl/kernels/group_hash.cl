/*
 * group_hash.cl - hash grouping (open addressing, linear probing, keys
 * claimed with compare-and-swap). Built after group_common.cl.
 *
 * The global table has TAB_E words per entry with the key first (TAB_K =
 * 1); a free entry holds the key `empty`, which no input key equals (the
 * host picks it outside the key range). Entries are never removed, so a key
 * once read stays: a stale "empty" read only costs a failed CAS.
 *
 *   hash_global  every row probes the global table.
 *   hash_local   each work-group first folds rows into a local table of LS
 *                entries (a few probes at most; a row that finds no room
 *                goes to the global table directly) and merges its local
 *                entries into the global table at the end: few groups
 *                (sparse keys) then cost local atomics, not global ones.
 *
 * A full global table sets WRAP_TABLE in the flag word; the host retries
 * with a larger one.
 */

#define LOCAL_PROBES 16

/* The entry of key k in the global table, claimed if new; 0 when full. */
inline __global long *hash_entry(__global long *tab, ulong mask, long empty,
                                 long k)
{
    ulong h = key_hash(k) & mask;
    for (ulong n = 0; n <= mask; n++) {
        __global long *e = tab + h * TAB_E;
        const long cur = e[0];
        if (cur == k)
            return e;
        if (cur == empty) {
            const long prev =
                atom_cmpxchg((volatile __global long *)e, empty, k);
            if (prev == empty || prev == k)
                return e;
        }
        h = (h + 1) & mask;
    }
    return 0;
}

__kernel void hash_global(GRP_INPUT, __global long *tab, const ulong mask,
                          const long empty)
{
    FOR_ROWS({
        __global long *e = hash_entry(tab, mask, empty, (long)keys[r]);
        if (e == 0) {
            atomic_or(wrapped, WRAP_TABLE);
            continue;
        }
        e += 1;
        ROW_ALL(g, e, 1, r);
    });
}

/* The entry of key k in a work-group's local table of LS keys (claimed if
 * new), or -1 when LOCAL_PROBES probes found neither it nor room. */
inline int local_entry(__local long *lt, uint LS, long empty, long k)
{
    uint h = (uint)key_hash(k) & (LS - 1);
    for (int n = 0; n < LOCAL_PROBES; n++) {
        const long cur = lt[h];
        if (cur == k)
            return (int)h;
        if (cur == empty) {
            const long prev =
                atom_cmpxchg((volatile __local long *)(lt + h), empty, k);
            if (prev == empty || prev == k)
                return (int)h;
        }
        h = (h + 1) & (LS - 1);
    }
    return -1;
}

/* lt: LS keys, then the count and aggregate fields, LS words each. */
__kernel void hash_local(GRP_INPUT, __global long *tab, const ulong mask,
                         const long empty, const uint LS, __local long *lt)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    __local long *fields = lt + LS;
    for (uint i = lid; i < LS; i += wg) {
        lt[i] = empty;
        IDENT_ALL(fields + i, LS);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    FOR_ROWS({
        const long k = (long)keys[r];
        const int h = local_entry(lt, LS, empty, k);
        if (h >= 0) {
            __local long *e = fields + h;
            ROW_ALL(l, e, LS, r);
        } else {
            __global long *e = hash_entry(tab, mask, empty, k);
            if (e == 0) {
                atomic_or(wrapped, WRAP_TABLE);
                continue;
            }
            e += 1;
            ROW_ALL(g, e, 1, r);
        }
    });
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = lid; s < LS; s += wg) {
        __local long *src = fields + s;
        if (src[0] == 0)
            continue;
        __global long *e = hash_entry(tab, mask, empty, lt[s]);
        if (e == 0) {
            atomic_or(wrapped, WRAP_TABLE);
            continue;
        }
        e += 1;
        MERGE_ALL(g, e, 1, src, LS);
    }
}

#ifdef NARROW
/* hash_local with a narrow (32-bit) local table: LS keys (long), then the
 * narrow fields (see group_common.cl). */
__kernel void hash_local_n(GRP_INPUT, __global long *tab, const ulong mask,
                           const long empty, const uint LS, __local long *lt)
{
    const uint lid = get_local_id(0), wg = get_local_size(0);
    __local uint *fields = (__local uint *)(lt + LS);
    for (uint i = lid; i < LS; i += wg) {
        lt[i] = empty;
        N_INIT(fields, i, LS);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    FOR_ROWS({
        const long k = (long)keys[r];
        const int h = local_entry(lt, LS, empty, k);
        if (h >= 0) {
            N_ROW(fields, h, LS, r);
        } else {
            __global long *e = hash_entry(tab, mask, empty, k);
            if (e == 0) {
                atomic_or(wrapped, WRAP_TABLE);
                continue;
            }
            e += 1;
            ROW_ALL(g, e, 1, r);
        }
    });
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = lid; s < LS; s += wg) {
        if (fields[s] == 0)
            continue;
        __global long *e = hash_entry(tab, mask, empty, lt[s]);
        if (e == 0) {
            atomic_or(wrapped, WRAP_TABLE);
            continue;
        }
        e += 1;
        N_FLUSH(fields, s, LS, e);
    }
}
#endif

#ifdef PACKED
/* hash_global for COUNT(*) + SUM of 32-bit values: entries of key and one
 * packed word (16 bytes: two per 32-byte sector), one atomic per row. */
__kernel void hash_packed(GRP_INPUT, __global long *tab, const ulong mask,
                          const long empty)
{
    FOR_ROWS({
        __global long *e = hash_entry(tab, mask, empty, (long)keys[r]);
        if (e == 0) {
            atomic_or(wrapped, WRAP_TABLE);
            continue;
        }
        packed_add((volatile __global long *)(e + 1), (long)a0[r], wrapped);
    });
}
#endif
